import {
  applyNodeChanges,
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  type Node,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { ApiError, type Api } from "../api/client";
import { followStream, sleep, StreamRefused } from "../api/sse";
import { CanvasContext } from "../canvas/context";
import { NODE_TYPES } from "../canvas/nodeTypes";
import { definitionToGraph, type CanvasEdge } from "../model/graph";
import {
  applyEvent,
  INITIAL_RUN_STATE,
  isTerminal,
  stateFromRun,
  summarize,
  type RunViewState,
} from "../model/runState";
import type { Definition, Run, RunEvent } from "../model/types";
import { Link, navigate } from "../router";
import { RerunPanel } from "../components/RerunPanel";
import { can, reason, useMe } from "../permissions";
import { NodeDetail } from "./RunNodeDetail";
import { between, pretty, when } from "../format";

const FINISHED = new Set(["completed", "failed", "cancelled", "timed_out", "throttled"]);

const MINIMAP: Record<string, string> = { succeeded: "#1f8a4c", failed: "#c62828", skipped: "#d1d5db" };

type Action = { kind: "event"; event: RunEvent } | { kind: "snapshot"; state: RunViewState } | { kind: "reset" };

function reducer(state: RunViewState, action: Action): RunViewState {
  if (action.kind === "event") return applyEvent(state, action.event);
  if (action.kind === "snapshot") return action.state;
  return INITIAL_RUN_STATE;
}

/** One run, live: node states from the run's event stream (SSE), or from its stored node log when
 * the stream is not offered. */
export function RunView({ api, token, runId }: { api: Api; token: string; runId: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [definition, setDefinition] = useState<Definition | null>(null);
  const [state, dispatch] = useReducer(reducer, INITIAL_RUN_STATE);
  const [error, setError] = useState<string | null>(null);
  const [mode, setMode] = useState<"connecting" | "live" | "polling" | "reconnecting" | "done">("connecting");
  const [selected, setSelected] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  // Child runs asked for while the view follows the stream (the run record lists them once started).
  const [requested, setRequested] = useState<Record<string, string>>({});
  const [rerunOpen, setRerunOpen] = useState(false);
  const stateRef = useRef(state);
  stateRef.current = state;

  const refresh = useCallback(async () => {
    const current = await api.getRun(runId);
    setRun(current);
    return current;
  }, [api, runId]);

  // The run record and the definition of the version it runs; a just-started run may not be
  // recorded yet, so a 404 is retried for a while.
  useEffect(() => {
    const controller = new AbortController();
    (async () => {
      const deadline = Date.now() + 20000;
      for (;;) {
        try {
          const current = await refresh();
          const version = await api.version(current.workflow_id, current.workflow_version);
          if (version.definition) setDefinition(version.definition);
          return;
        } catch (err) {
          if (controller.signal.aborted) return;
          if (err instanceof ApiError && err.status === 404 && Date.now() < deadline) {
            await sleep(400, controller.signal);
            continue;
          }
          setError((err as Error).message);
          return;
        }
      }
    })();
    return () => controller.abort();
  }, [api, refresh]);

  // Live states: the SSE stream, resumed from the last seq seen; polling the run if no stream.
  useEffect(() => {
    if (!run) return;
    const controller = new AbortController();
    let finished = false;
    const poll = async () => {
      setMode("polling");
      while (!controller.signal.aborted) {
        try {
          const current = await refresh();
          dispatch({ kind: "snapshot", state: stateFromRun(current) });
          if (isTerminal(current.status)) {
            setMode("done");
            return;
          }
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) setError((err as Error).message);
        }
        await sleep(700, controller.signal);
      }
    };
    const last = stateRef.current.lastSeq;
    followStream({
      url: `/api/v1/runs/${runId}/events`,
      token,
      signal: controller.signal,
      lastEventId: last >= 0 ? String(last) : null,
      onState: (s) => setMode(s === "open" ? "live" : s === "reconnecting" ? "reconnecting" : "done"),
      onMessage: (message) => {
        let event: RunEvent;
        try {
          event = JSON.parse(message.data) as RunEvent;
        } catch {
          return;
        }
        if (typeof event.seq !== "number" && message.id !== null) event.seq = Number(message.id);
        dispatch({ kind: "event", event });
        if (event.type === "child_run.requested" && event.child_run_id && event.node_id)
          setRequested((r) => ({ ...r, [event.child_run_id!]: event.node_id! }));
        if (isTerminal(event.type.replace("run.", "")) && event.type.startsWith("run.")) finished = true;
      },
      finished: () => finished,
    })
      .then(async () => {
        if (controller.signal.aborted) return;
        setMode("done");
        await refresh().catch(() => undefined);
      })
      .catch((err) => {
        if (controller.signal.aborted) return;
        if (err instanceof StreamRefused && (err.status === 404 || err.status === 405)) void poll();
        else setError((err as Error).message);
      });
    return () => controller.abort();
    // Reconnect on retry (generation); the run record itself changing must not restart the stream.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [run !== null, runId, token, generation]);

  const graph = useMemo(() => (definition ? definitionToGraph(definition) : { nodes: [], edges: [] }), [definition]);
  // The nodes keep the sizes React Flow measured (the minimap draws only measured nodes); new node
  // objects make React Flow measure them again (hidden meanwhile): only selection changes them.
  const [measured, setMeasured] = useState<Node[]>([]);
  useEffect(() => setMeasured(graph.nodes), [graph.nodes]);
  const onNodesChange = useCallback(
    (changes: NodeChange[]) =>
      setMeasured((current) =>
        applyNodeChanges(
          changes.filter((c) => c.type === "dimensions"),
          current,
        ),
      ),
    [],
  );
  const nodes = useMemo(() => measured.map((n) => ({ ...n, selected: n.id === selected })), [measured, selected]);
  const me = useMe();
  const mayOperate = can(me, "operate_runs");
  const operateTitle = mayOperate ? undefined : reason("operate_runs");
  const summary = useMemo(() => summarize(state), [state]);
  const edges: CanvasEdge[] = useMemo(
    () =>
      graph.edges.map((edge) => {
        const source = summary[edge.source];
        const target = summary[edge.target];
        let className = "";
        if (source?.status === "succeeded" && target && target.status !== "skipped") className = "edge-taken";
        else if (target?.status === "skipped" || source?.status === "skipped") className = "edge-dead";
        return { ...edge, className, animated: className === "edge-taken" && !isTerminal(state.status) };
      }),
    [graph.edges, summary, state.status],
  );
  const view = useMemo(() => ({ problems: {}, run: summary }), [summary]);
  const status = state.status === "pending" && run ? run.status : state.status;
  const logRow = (key: string) => run?.nodes.find((n) => n.node_id === key) ?? null;

  return (
    <div className="run-view">
      <div className="toolbar">
        <h1>
          Run <code>{runId.slice(0, 8)}</code>
        </h1>
        <span className={`badge run-${status}`} id="run-status">
          {status}
        </span>
        <span className="muted" id="stream-mode">
          {mode}
        </span>
        {run && <Link to={`/workflows/${run.workflow_id}/runs`}>All runs</Link>}
        {run && <Link to={`/workflows/${run.workflow_id}`}>Workflow (v{run.workflow_version})</Link>}
        {run?.parent_run_id && (
          <Link className="parent-run" to={`/runs/${run.parent_run_id}`}>
            Parent run ({run.parent_node_id})
          </Link>
        )}
        <span className="spacer" />
        {status === "paused" && (
          <>
            <span className="muted" id="paused-on">
              Paused on {state.pausedNodes.join(", ") || "a failed node"}
            </span>
            {(["retry", "skip"] as const).map((action) => (
              <button
                key={action}
                id={`${action}-paused`}
                disabled={!mayOperate}
                title={operateTitle}
                type="button"
                onClick={async () => {
                  try {
                    await api.continueRun(runId, action);
                  } catch (err) {
                    setError((err as Error).message);
                  }
                }}
              >
                {action === "retry" ? "Retry the node" : "Skip the node"}
              </button>
            ))}
          </>
        )}
        {(status === "running" || status === "paused") && (
          <button
            id="cancel-run"
            disabled={!mayOperate}
            title={operateTitle}
            type="button"
            className="danger"
            onClick={async () => {
              try {
                await api.cancelRun(runId);
              } catch (err) {
                setError((err as Error).message);
              }
            }}
          >
            Cancel
          </button>
        )}
        {status === "failed" && (
          <button
            id="retry-run"
            disabled={!mayOperate}
            title={operateTitle}
            type="button"
            onClick={async () => {
              try {
                await api.retryRun(runId);
                setGeneration((g) => g + 1);
              } catch (err) {
                setError((err as Error).message);
              }
            }}
          >
            Retry from failed node{state.failedNodeId ? ` (${state.failedNodeId})` : "s"}
          </button>
        )}
        {run && FINISHED.has(status) && (
          <button id="rerun-open" type="button" onClick={() => setRerunOpen((open) => !open)}>
            Re-run…
          </button>
        )}
      </div>
      {rerunOpen && run && (
        <RerunPanel
          trigger={run.trigger}
          onClose={() => setRerunOpen(false)}
          onRerun={async (input) => {
            const started = await api.rerunRun(runId, input);
            navigate(`/runs/${started.run_id}`);
          }}
        />
      )}
      {error && (
        <div className="banner error" role="alert">
          {error}
        </div>
      )}
      {state.reason && (
        <div className="banner error" id="run-reason">
          {state.reason}
        </div>
      )}
      <div className="run-body">
        <div className="canvas">
          <ReactFlowProvider>
            <CanvasContext.Provider value={view}>
              <ReactFlow
                nodes={nodes}
                onNodesChange={onNodesChange}
                edges={edges}
                nodeTypes={NODE_TYPES}
                nodesDraggable={false}
                nodesConnectable={false}
                elementsSelectable
                deleteKeyCode={null}
                onNodeClick={(_, node) => setSelected(node.id)}
                onPaneClick={() => setSelected(null)}
                defaultEdgeOptions={{ type: "smoothstep" }}
                fitView
                fitViewOptions={{ padding: 0.15, maxZoom: 1 }}
                proOptions={{ hideAttribution: true }}
              >
                <Background />
                <MiniMap pannable zoomable nodeColor={(n) => MINIMAP[summary[n.id]?.status ?? ""] ?? "#9aa5b8"} />
                <Controls showInteractive={false} />
              </ReactFlow>
            </CanvasContext.Provider>
          </ReactFlowProvider>
        </div>
        <aside className="side-panel" id="node-detail">
          {selected ? (
            <NodeDetail
              api={api}
              runId={runId}
              nodeId={selected}
              instances={summary[selected]?.instances ?? []}
              logRow={logRow}
            />
          ) : (
            <div>
              <h2>Run</h2>
              {run && (
                <dl className="facts">
                  <dt>Started</dt>
                  <dd>{when(run.started_at)}</dd>
                  <dt>Finished</dt>
                  <dd>{when(run.finished_at)}</dd>
                  <dt>Duration</dt>
                  <dd id="run-duration" title="from the trigger's receipt to the run's end">
                    {between(run.started_at, run.finished_at)}
                  </dd>
                  <dt>Version</dt>
                  <dd>v{run.workflow_version}</dd>
                  {run.rerun_of && (
                    <>
                      <dt>Re-run of</dt>
                      <dd id="rerun-of">
                        <Link to={`/runs/${run.rerun_of}`}>
                          <code>{run.rerun_of.slice(0, 8)}</code>
                        </Link>
                      </dd>
                    </>
                  )}
                  {run.reruns && run.reruns.length > 0 && (
                    <>
                      <dt>Re-runs</dt>
                      <dd id="reruns">
                        {run.reruns.map((id) => (
                          <Link key={id} to={`/runs/${id}`}>
                            <code>{id.slice(0, 8)}</code>{" "}
                          </Link>
                        ))}
                      </dd>
                    </>
                  )}
                </dl>
              )}
              {status === "completed" && (
                <>
                  <h3>Final output</h3>
                  <pre tabIndex={0} className="json" id="run-final-output">
                    {(state.output ?? run?.final_output ?? null) === null
                      ? "— (no end node ran)"
                      : pretty(state.output ?? run?.final_output ?? null)}
                  </pre>
                </>
              )}
              <ChildRuns run={run} requested={requested} />
              <p className="hint">Select a node to see its input, output, error, attempts and durations.</p>
              <h3>Trigger</h3>
              <pre tabIndex={0} className="json">
                {pretty(run?.trigger)}
              </pre>
            </div>
          )}
        </aside>
      </div>
    </div>
  );
}

/** The runs this run's sub_workflow nodes started, each a link to its own view. */
function ChildRuns({ run, requested }: { run: Run | null; requested: Record<string, string> }) {
  const known = new Map<string, { node: string; status: string }>();
  for (const child of run?.children ?? [])
    known.set(child.run_id, { node: child.parent_node_id ?? "", status: child.status });
  for (const [id, node] of Object.entries(requested)) if (!known.has(id)) known.set(id, { node, status: "starting" });
  if (known.size === 0) return null;
  return (
    <>
      <h3>Sub-workflow runs</h3>
      <ul id="run-children">
        {[...known.entries()].map(([id, child]) => (
          <li key={id} data-child-run={id}>
            <Link to={`/runs/${id}`}>{id.slice(0, 8)}</Link> <span className="muted">from {child.node}</span>{" "}
            <span className={`badge run-${child.status}`}>{child.status}</span>
          </li>
        ))}
      </ul>
    </>
  );
}
