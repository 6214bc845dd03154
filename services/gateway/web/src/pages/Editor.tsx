import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, type Api } from "../api/client";
import { CanvasContext, type CanvasView } from "../canvas/context";
import { record, redo, replacePresent, undo, type History } from "../canvas/history";
import { NODE_TYPES } from "../canvas/nodeTypes";
import { SchemaForm, type FieldProblem } from "../components/SchemaForm";
import {
  absolutePosition,
  bodyDepth,
  copyNodes,
  definitionToGraph,
  edgeLabel,
  freshEdgeId,
  freshNodeId,
  graphToDefinition,
  groupSize,
  type CanvasEdge,
  type CanvasNode,
} from "../model/graph";
import { problemsByNode, starterConfig, typeLabel } from "../model/schema";
import type { JsonObject, NodeType, Problem, Version, Workflow } from "../model/types";
import { availableVariables } from "../model/variables";
import { Link, navigate } from "../router";
import { when } from "../format";

interface Graph {
  nodes: CanvasNode[];
  edges: CanvasEdge[];
}

const PALETTE_ORDER = ["Triggers", "AI", "Records", "Logic", "External", "Human"];
const DRAG_TYPE = "application/x-millrace-node";
const CLIPBOARD_KEY = "millrace.clipboard";

export function Editor(props: { api: Api; workflowId: string | null; version: number | null }) {
  return (
    <ReactFlowProvider>
      <EditorInner {...props} />
    </ReactFlowProvider>
  );
}

/** Grow each for_each so its body fits (never shrinks it). */
function fitGroups(nodes: CanvasNode[]): CanvasNode[] {
  return nodes.map((node) => {
    if (node.type !== "for_each") return node;
    const size = groupSize(nodes.filter((n) => n.parentId === node.id));
    const width = Math.max(Number(node.style?.width ?? 0), size.width);
    const height = Math.max(Number(node.style?.height ?? 0), size.height);
    if (width === node.style?.width && height === node.style?.height) return node;
    return { ...node, style: { ...node.style, width, height } };
  });
}

function EditorInner({ api, workflowId, version }: { api: Api; workflowId: string | null; version: number | null }) {
  const flow = useReactFlow();
  // useReactFlow() changes identity once the viewport is ready; loading must not run again then.
  const flowRef = useRef(flow);
  flowRef.current = flow;
  const [catalog, setCatalog] = useState<NodeType[]>([]);
  const [presets, setPresets] = useState<Record<string, JsonObject>>({});
  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [name, setName] = useState("Untitled workflow");
  const [settings, setSettings] = useState<JsonObject>({});
  const [history, setHistory] = useState<History<Graph>>({ past: [], present: { nodes: [], edges: [] }, future: [] });
  const [problems, setProblems] = useState<Problem[]>([]);
  const [checking, setChecking] = useState(false);
  const [dirty, setDirty] = useState(false);
  const [readOnly, setReadOnly] = useState(version !== null);
  const [message, setMessage] = useState<{ text: string; kind: "ok" | "error" } | null>(null);
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [runDialog, setRunDialog] = useState(false);
  const [webhookUrl, setWebhookUrl] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(workflowId === null);
  const dragStart = useRef<Graph | null>(null);
  const lastEdit = useRef<{ id: string; at: number } | null>(null);
  const { nodes, edges } = history.present;

  useEffect(() => {
    api
      .nodeTypes()
      .then(setCatalog)
      .catch((err) => setMessage({ text: (err as Error).message, kind: "error" }));
    api
      .conditionPresets()
      .then(setPresets)
      .catch(() => setPresets({}));
  }, [api]);

  useEffect(() => {
    if (!workflowId) return;
    (async () => {
      try {
        const current = await api.getWorkflow(workflowId);
        setWorkflow(current);
        setName(current.name);
        const definition = version
          ? ((await api.version(workflowId, version)).definition ?? current.definition)
          : current.definition;
        setSettings((definition.settings as JsonObject) ?? {});
        setHistory({ past: [], present: definitionToGraph(definition), future: [] });
        setLoaded(true);
        setTimeout(() => flowRef.current.fitView({ padding: 0.2 }), 50);
      } catch (err) {
        setMessage({ text: (err as Error).message, kind: "error" });
      }
    })();
  }, [api, workflowId, version]);

  const triggerKind = useMemo(() => {
    const trigger = nodes.find((n) => n.type === "trigger");
    return typeof trigger?.data.kind === "string" ? trigger.data.kind : null;
  }, [nodes]);

  useEffect(() => {
    if (!workflow || triggerKind !== "webhook") {
      setWebhookUrl(null);
      return;
    }
    api
      .webhook(workflow.id)
      .then((w) => setWebhookUrl(w.url))
      .catch(() => setWebhookUrl(null));
  }, [api, workflow, triggerKind]);

  // Validate as the user edits, so problems show on nodes and fields before saving.
  const definition = useMemo(() => graphToDefinition(nodes, edges, settings), [nodes, edges, settings]);
  useEffect(() => {
    if (!loaded) return;
    if (definition.nodes.length === 0) {
      setProblems([]);
      return;
    }
    setChecking(true);
    const timer = setTimeout(async () => {
      try {
        const report = await api.validate(definition);
        setProblems(report.problems);
      } catch (err) {
        if (err instanceof ApiError && err.details.length) setProblems(err.details);
      } finally {
        setChecking(false);
      }
    }, 400);
    return () => clearTimeout(timer);
  }, [api, definition, loaded]);

  const mapped = useMemo(
    () =>
      problemsByNode(
        problems,
        definition.nodes.map((n) => n.id),
        definition.edges.map((e) => e.id),
      ),
    [problems, definition],
  );
  const view: CanvasView = useMemo(() => ({ problems: mapped.nodes, run: null }), [mapped]);

  const commit = useCallback((next: Graph, coalesceKey?: string) => {
    const now = Date.now();
    const coalesce = coalesceKey && lastEdit.current?.id === coalesceKey && now - lastEdit.current.at < 1000;
    lastEdit.current = coalesceKey ? { id: coalesceKey, at: now } : null;
    setHistory((h) => (coalesce ? replacePresent(h, next) : record(h, next)));
    setDirty(true);
  }, []);

  const onNodesChange = useCallback(
    (changes: NodeChange<CanvasNode>[]) => {
      if (readOnly && changes.some((c) => c.type !== "select" && c.type !== "dimensions")) return;
      setHistory((h) => {
        const next = { ...h.present, nodes: applyNodeChanges(changes, h.present.nodes) };
        if (changes.some((c) => c.type === "remove")) {
          // A removed for_each takes its body along, however the removal was asked for.
          for (let ids = new Set(next.nodes.map((n) => n.id)), orphans = true; orphans;) {
            const kept = next.nodes.filter((n) => !n.parentId || ids.has(n.parentId));
            orphans = kept.length < next.nodes.length;
            next.nodes = kept;
            ids = new Set(kept.map((n) => n.id));
          }
          const ids = new Set(next.nodes.map((n) => n.id));
          next.edges = h.present.edges.filter((e) => ids.has(e.source) && ids.has(e.target));
          setDirty(true);
          return record(h, next);
        }
        return replacePresent(h, next);
      });
    },
    [readOnly],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange<CanvasEdge>[]) => {
      if (readOnly && changes.some((c) => c.type !== "select")) return;
      setHistory((h) => {
        const next = { ...h.present, edges: applyEdgeChanges(changes, h.present.edges) };
        // Edges of a removed node are already gone with it: that removal was recorded once.
        if (next.edges.length < h.present.edges.length) {
          setDirty(true);
          return record(h, next);
        }
        return replacePresent(h, next);
      });
    },
    [readOnly],
  );

  const isValidConnection = useCallback(
    (connection: Connection | CanvasEdge) => {
      const source = nodes.find((n) => n.id === connection.source);
      const target = nodes.find((n) => n.id === connection.target);
      if (!source || !target || source.id === target.id || target.type === "trigger") return false;
      if ((source.parentId ?? null) !== (target.parentId ?? null)) return false;
      return !edges.some(
        (e) =>
          e.source === source.id &&
          e.target === target.id &&
          (e.sourceHandle ?? null) === (connection.sourceHandle ?? null),
      );
    },
    [nodes, edges],
  );

  const onConnect = useCallback(
    (connection: Connection) => {
      if (readOnly || !isValidConnection(connection)) return;
      const id = freshEdgeId(
        connection.source,
        connection.sourceHandle,
        connection.target,
        edges.map((e) => e.id),
      );
      const edge: CanvasEdge = {
        id,
        source: connection.source,
        target: connection.target,
        sourceHandle: connection.sourceHandle ?? null,
        label: edgeLabel(connection.sourceHandle),
      };
      commit({ nodes, edges: [...edges, edge] });
    },
    [readOnly, isValidConnection, edges, nodes, commit],
  );

  const addNode = useCallback(
    (type: string, pointer: { x: number; y: number }) => {
      if (readOnly) return;
      // The node hangs from the pointer by its top middle; the pointer decides which body it joins.
      const at = { x: Math.round(pointer.x - 100), y: Math.round(pointer.y - 20) };
      const schema = catalog.find((t) => t.type === type)?.schema ?? {};
      const id = freshNodeId(
        type,
        nodes.map((n) => n.id),
      );
      let parent: CanvasNode | undefined;
      if (type !== "trigger") {
        // The innermost for_each under the drop point takes the node into its body.
        for (const candidate of nodes) {
          if (candidate.type !== "for_each") continue;
          const origin = absolutePosition(candidate, nodes);
          const width = Number(candidate.style?.width ?? candidate.measured?.width ?? 0);
          const height = Number(candidate.style?.height ?? candidate.measured?.height ?? 0);
          const inside = pointer.x >= origin.x && pointer.y >= origin.y;
          if (inside && pointer.x <= origin.x + width && pointer.y <= origin.y + height) {
            if (!parent || bodyDepth(candidate.id, nodes) > bodyDepth(parent.id, nodes)) parent = candidate;
          }
        }
      }
      const node: CanvasNode = {
        id,
        type,
        position: at,
        data: starterConfig(type, schema, typeLabel(type)),
        selected: true,
      };
      if (type === "for_each") node.style = { width: 360, height: 220 };
      if (parent) {
        const origin = absolutePosition(parent, nodes);
        node.parentId = parent.id;
        node.extent = "parent";
        node.position = { x: Math.max(10, at.x - origin.x), y: Math.max(40, at.y - origin.y) };
      }
      const others = nodes.map((n) => (n.selected ? { ...n, selected: false } : n));
      commit({ nodes: fitGroups([...others, node]), edges });
    },
    [readOnly, catalog, nodes, edges, commit],
  );

  const onDrop = useCallback(
    (event: React.DragEvent) => {
      event.preventDefault();
      const type = event.dataTransfer.getData(DRAG_TYPE);
      if (!type) return;
      const at = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      addNode(type, at);
    },
    [flow, addNode],
  );

  const selected = nodes.filter((n) => n.selected);
  const selectedNode = selected.length === 1 ? selected[0] : null;

  const updateData = useCallback(
    (id: string, data: JsonObject) => {
      if (readOnly) return;
      const next = nodes.map((n) => (n.id === id ? { ...n, data } : n));
      const ids = new Set(next.map((n) => n.id));
      // A handle that no longer exists (a removed switch case, error edges switched off) drops its edges.
      const node = next.find((n) => n.id === id)!;
      const kept = edges.filter((e) => {
        if (e.source !== id || !ids.has(e.target)) return true;
        if (e.sourceHandle === "error") return data.on_error === "error_edge";
        if (e.sourceHandle?.startsWith("case:") && node.type === "switch") {
          const cases = Array.isArray(data.cases) ? data.cases : [];
          return cases.some(
            (c) => c && typeof c === "object" && !Array.isArray(c) && `case:${c.name}` === e.sourceHandle,
          );
        }
        return true;
      });
      commit({ nodes: next, edges: kept }, `data:${id}`);
    },
    [readOnly, nodes, edges, commit],
  );

  const doUndo = useCallback(() => {
    setHistory(undo);
    setDirty(true);
  }, []);
  const doRedo = useCallback(() => {
    setHistory(redo);
    setDirty(true);
  }, []);
  const doCopy = useCallback(() => {
    const chosen = nodes.filter((n) => n.selected);
    if (chosen.length === 0) return;
    const ids = new Set(chosen.map((n) => n.id));
    // A copied for_each takes its body along.
    for (let grew = true; grew;) {
      grew = false;
      for (const n of nodes)
        if (n.parentId && ids.has(n.parentId) && !ids.has(n.id)) {
          ids.add(n.id);
          grew = true;
        }
    }
    const copied = nodes.filter((n) => ids.has(n.id));
    localStorage.setItem(
      CLIPBOARD_KEY,
      JSON.stringify({ nodes: copied, edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)) }),
    );
    setMessage({ text: `Copied ${copied.length} node${copied.length > 1 ? "s" : ""}`, kind: "ok" });
  }, [nodes, edges]);
  const doPaste = useCallback(() => {
    if (readOnly) return;
    const raw = localStorage.getItem(CLIPBOARD_KEY);
    if (!raw) return;
    const clip = JSON.parse(raw) as Graph;
    const pasted = copyNodes(clip.nodes, clip.edges, nodes, edges);
    commit({
      nodes: [...nodes.map((n) => ({ ...n, selected: false })), ...pasted.nodes],
      edges: [...edges, ...pasted.edges],
    });
  }, [readOnly, nodes, edges, commit]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      if (target.closest("input, textarea, select, [contenteditable=true]")) return;
      if (!(event.ctrlKey || event.metaKey)) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) doUndo();
      else if ((key === "z" && event.shiftKey) || key === "y") doRedo();
      else if (key === "c") doCopy();
      else if (key === "v") doPaste();
      else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [doUndo, doRedo, doCopy, doPaste]);

  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const save = async () => {
    setMessage(null);
    try {
      if (!workflow) {
        const created = await api.createWorkflow(name, definition);
        setDirty(false);
        navigate(`/workflows/${created.id}`, true);
        return;
      }
      const saved = await api.updateWorkflow(workflow.id, name, definition);
      setWorkflow(saved);
      setDirty(false);
      setReadOnly(false);
      if (version) navigate(`/workflows/${workflow.id}`, true);
      setMessage({ text: `Saved version ${saved.latest_version}`, kind: "ok" });
      if (versions) setVersions(await api.versions(saved.id));
    } catch (err) {
      if (err instanceof ApiError && err.details.length) setProblems(err.details);
      setMessage({ text: (err as Error).message, kind: "error" });
    }
  };

  const setStatus = async (action: "activate" | "pause", activateVersion?: number) => {
    if (!workflow) return;
    try {
      const next =
        action === "activate" ? await api.activate(workflow.id, activateVersion) : await api.pause(workflow.id);
      setWorkflow(next);
      setMessage({ text: action === "activate" ? `Version ${next.active_version} is active` : "Paused", kind: "ok" });
      if (versions) setVersions(await api.versions(workflow.id));
    } catch (err) {
      setMessage({ text: (err as Error).message, kind: "error" });
    }
  };

  const edgesShown = useMemo(
    () =>
      edges.map((e) =>
        mapped.edges[e.id] ? { ...e, className: "edge-problem", label: mapped.edges[e.id].join("; ") } : e,
      ),
    [edges, mapped],
  );
  const panelProblems: FieldProblem[] = selectedNode ? (mapped.nodes[selectedNode.id] ?? []) : [];
  const palette = useMemo(() => {
    const groups = new Map<string, NodeType[]>();
    for (const t of catalog) groups.set(t.category, [...(groups.get(t.category) ?? []), t]);
    return PALETTE_ORDER.filter((c) => groups.has(c)).map((c) => [c, groups.get(c)!] as const);
  }, [catalog]);
  const problemCount = problems.length;

  return (
    <div className="editor">
      <div className="toolbar">
        <input
          id="workflow-name"
          aria-label="workflow name"
          value={name}
          disabled={readOnly}
          onChange={(e) => {
            setName(e.target.value);
            setDirty(true);
          }}
        />
        {workflow && (
          <span className={`badge status-${workflow.status}`} id="workflow-status">
            {workflow.status}
          </span>
        )}
        {workflow && (
          <span className="muted">
            v{workflow.latest_version}
            {workflow.active_version ? ` · active v${workflow.active_version}` : ""}
          </span>
        )}
        <span className="spacer" />
        <button type="button" onClick={doUndo} disabled={history.past.length === 0 || readOnly} title="Undo (Ctrl+Z)">
          Undo
        </button>
        <button
          type="button"
          onClick={doRedo}
          disabled={history.future.length === 0 || readOnly}
          title="Redo (Ctrl+Shift+Z)"
        >
          Redo
        </button>
        <button type="button" onClick={doCopy} disabled={selected.length === 0} title="Copy (Ctrl+C)">
          Copy
        </button>
        <button type="button" onClick={doPaste} disabled={readOnly} title="Paste (Ctrl+V)">
          Paste
        </button>
        <button type="button" onClick={() => flow.fitView({ padding: 0.2 })}>
          Fit view
        </button>
        <span id="problem-count" className={problemCount ? "problems" : "ok"}>
          {checking ? "checking…" : problemCount ? `${problemCount} problem${problemCount > 1 ? "s" : ""}` : "valid"}
        </span>
        <button
          id="save"
          type="button"
          className="primary"
          onClick={save}
          disabled={(!dirty && !!workflow) || (readOnly && !workflow)}
        >
          {readOnly ? "Save as new version" : "Save"}
        </button>
        {workflow &&
          (workflow.status === "active" ? (
            <button id="pause" type="button" onClick={() => setStatus("pause")}>
              Pause
            </button>
          ) : (
            <button
              id="activate"
              type="button"
              onClick={() => setStatus("activate", version ?? undefined)}
              disabled={dirty || workflow.status === "archived"}
              title={dirty ? "Save first: activation pins a saved version" : undefined}
            >
              Activate{version ? ` v${version}` : ""}
            </button>
          ))}
        {workflow && (
          <button
            id="versions"
            type="button"
            onClick={async () => setVersions(versions ? null : await api.versions(workflow.id))}
          >
            Versions
          </button>
        )}
        {workflow && (
          <button id="run" type="button" onClick={() => setRunDialog(true)}>
            Run…
          </button>
        )}
        {workflow && (
          <Link to={`/workflows/${workflow.id}/runs`} className="button">
            Runs
          </Link>
        )}
      </div>
      {message && (
        <div
          className={`banner ${message.kind}`}
          role={message.kind === "error" ? "alert" : "status"}
          id="editor-message"
        >
          {message.text}
          <button type="button" className="icon" aria-label="dismiss" onClick={() => setMessage(null)}>
            ×
          </button>
        </div>
      )}
      {readOnly && workflow && version && (
        <div className="banner info" id="viewing-version">
          Viewing version {version} (read only).
          <button type="button" className="small" onClick={() => setReadOnly(false)}>
            Edit from this version
          </button>
          <Link to={`/workflows/${workflow.id}`}>Back to the latest</Link>
        </div>
      )}
      {webhookUrl && (
        <div className="banner info">
          Webhook address: <code id="webhook-url">{webhookUrl}</code>
        </div>
      )}
      <div className="editor-body">
        <aside className="palette" aria-label="node palette">
          {palette.map(([category, types]) => (
            <div key={category} className="palette-group">
              <h3>{category}</h3>
              {types.map((t) => (
                <div
                  key={t.type}
                  className={`palette-item wf-${t.type}`}
                  data-palette-type={t.type}
                  draggable={!readOnly}
                  title="Drag onto the canvas, or click to add"
                  onDragStart={(e) => {
                    e.dataTransfer.setData(DRAG_TYPE, t.type);
                    e.dataTransfer.effectAllowed = "move";
                  }}
                  onClick={() => {
                    const center = flow.screenToFlowPosition({ x: window.innerWidth / 2, y: window.innerHeight / 2 });
                    addNode(t.type, center);
                  }}
                >
                  {typeLabel(t.type)}
                </div>
              ))}
            </div>
          ))}
        </aside>
        <div
          className="canvas"
          onDragOver={(e) => {
            e.preventDefault();
            e.dataTransfer.dropEffect = "move";
          }}
          onDrop={onDrop}
        >
          <CanvasContext.Provider value={view}>
            <ReactFlow
              nodes={nodes}
              edges={edgesShown}
              nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              isValidConnection={isValidConnection}
              onNodeDragStart={() => {
                dragStart.current = history.present;
              }}
              onNodeDragStop={() => {
                const before = dragStart.current;
                dragStart.current = null;
                if (before && !readOnly) {
                  setHistory((h) => ({
                    past: [...h.past, before].slice(-100),
                    present: { ...h.present, nodes: fitGroups(h.present.nodes) },
                    future: [],
                  }));
                  setDirty(true);
                }
              }}
              nodesDraggable={!readOnly}
              nodesConnectable={!readOnly}
              deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
              defaultEdgeOptions={{ type: "smoothstep" }}
              defaultViewport={{ x: 0, y: 0, zoom: 1 }}
              proOptions={{ hideAttribution: true }}
            >
              <Background />
              <MiniMap pannable zoomable nodeColor={(n) => (mapped.nodes[n.id]?.length ? "#c62828" : "#9aa5b8")} />
              <Controls />
            </ReactFlow>
          </CanvasContext.Provider>
        </div>
        <aside className="side-panel" id="side-panel">
          {selectedNode ? (
            <NodePanel
              key={selectedNode.id}
              node={selectedNode}
              catalog={catalog}
              nodes={nodes}
              edges={edges}
              problems={panelProblems}
              presets={presets}
              readOnly={readOnly}
              webhookUrl={webhookUrl}
              onChange={(data) => updateData(selectedNode.id, data)}
              onDelete={() => void flow.deleteElements({ nodes: [{ id: selectedNode.id }] })}
            />
          ) : (
            <WorkflowPanel
              settings={settings}
              readOnly={readOnly}
              onChange={(next) => {
                setSettings(next);
                setDirty(true);
              }}
              other={mapped.other}
              versions={versions}
              workflow={workflow}
              onActivate={(v) => setStatus("activate", v)}
            />
          )}
          {selectedNode && versions && workflow && (
            <VersionList versions={versions} workflow={workflow} onActivate={(v) => setStatus("activate", v)} />
          )}
        </aside>
      </div>
      {runDialog && workflow && (
        <RunDialog
          api={api}
          workflow={workflow}
          onClose={() => setRunDialog(false)}
          onError={(text) => setMessage({ text, kind: "error" })}
        />
      )}
    </div>
  );
}

function NodePanel(props: {
  node: CanvasNode;
  catalog: NodeType[];
  nodes: CanvasNode[];
  edges: CanvasEdge[];
  problems: FieldProblem[];
  presets: Record<string, JsonObject>;
  readOnly: boolean;
  webhookUrl: string | null;
  onChange: (data: JsonObject) => void;
  onDelete: () => void;
}) {
  const { node, catalog, nodes, edges, problems, presets, readOnly, onChange, onDelete, webhookUrl } = props;
  const type = catalog.find((t) => t.type === node.type);
  const variables = useMemo(() => availableVariables(node.id, nodes, edges), [node.id, nodes, edges]);
  if (!type) return <p className="empty">Unknown node type {node.type}</p>;
  return (
    <div className="node-panel" data-panel-node={node.id}>
      <div className="panel-head">
        <h2>{typeLabel(node.type ?? "")}</h2>
        <code className="muted">{node.id}</code>
        {!readOnly && (
          <button type="button" className="small danger" onClick={onDelete}>
            Delete
          </button>
        )}
      </div>
      {node.type === "trigger" && node.data.kind === "webhook" && (
        <p className="hint">
          {webhookUrl ? (
            <>
              POST to <code>{webhookUrl}</code>
            </>
          ) : (
            "Save the workflow to get its webhook address."
          )}
        </p>
      )}
      {node.parentId && (
        <p className="hint">
          Inside the for_each <code>{node.parentId}</code>: templates can read <code>item</code> and <code>index</code>.
        </p>
      )}
      <SchemaForm
        schema={type.schema}
        value={node.data}
        onChange={onChange}
        variables={variables}
        problems={problems}
        templates={node.type !== "trigger"}
        presets={node.type === "trigger" || node.type === "condition" ? presets : undefined}
        readOnly={readOnly}
      />
    </div>
  );
}

const SETTINGS: [string, string, number | undefined][] = [
  ["max_executions_per_hour", "Runs per hour at most", 100],
  ["timeout_minutes", "Run time limit (minutes)", 60],
  ["retry_count", "Retries for nodes without their own policy", 3],
  ["max_concurrent_runs", "Runs in progress at once (empty: no limit)", undefined],
];

function WorkflowPanel(props: {
  settings: JsonObject;
  readOnly: boolean;
  onChange: (settings: JsonObject) => void;
  other: string[];
  versions: Version[] | null;
  workflow: Workflow | null;
  onActivate: (version: number) => void;
}) {
  const { settings, readOnly, onChange, other, versions, workflow, onActivate } = props;
  return (
    <div className="workflow-panel">
      <h2>Workflow</h2>
      <p className="hint">Drag nodes from the palette, connect their handles, select a node to edit it.</p>
      {other.length > 0 && (
        <div className="problem-list" id="workflow-problems">
          {other.map((text, i) => (
            <div key={i} className="field-error">
              {text}
            </div>
          ))}
        </div>
      )}
      <fieldset disabled={readOnly}>
        {SETTINGS.map(([key, text, fallback]) => (
          <div className="field" key={key}>
            <label htmlFor={`setting-${key}`}>{text}</label>
            <input
              id={`setting-${key}`}
              type="number"
              placeholder={fallback === undefined ? "" : String(fallback)}
              value={typeof settings[key] === "number" ? (settings[key] as number) : ""}
              onChange={(e) => {
                const next = { ...settings };
                if (e.target.value === "") delete next[key];
                else next[key] = Number(e.target.value);
                onChange(next);
              }}
            />
          </div>
        ))}
      </fieldset>
      {versions && workflow && <VersionList versions={versions} workflow={workflow} onActivate={onActivate} />}
    </div>
  );
}

function VersionList({
  versions,
  workflow,
  onActivate,
}: {
  versions: Version[];
  workflow: Workflow;
  onActivate: (version: number) => void;
}) {
  return (
    <div className="versions" id="version-list">
      <h3>Versions</h3>
      <ul>
        {versions.map((v) => (
          <li key={v.version} data-version={v.version}>
            <strong>v{v.version}</strong> <span className="muted">{when(v.created_at)}</span>
            {v.active && <span className="badge status-active">active</span>}
            <Link to={`/workflows/${workflow.id}?version=${v.version}`}>View</Link>
            {!v.active && workflow.status !== "archived" && (
              <button type="button" className="small" onClick={() => onActivate(v.version)}>
                Activate
              </button>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

function RunDialog({
  api,
  workflow,
  onClose,
  onError,
}: {
  api: Api;
  workflow: Workflow;
  onClose: () => void;
  onError: (text: string) => void;
}) {
  const [input, setInput] = useState("{\n  \n}");
  const [version, setVersion] = useState<string>("");
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <div className="modal" role="dialog" aria-label="start a run">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          let parsed: JsonObject;
          try {
            const value = JSON.parse(input || "{}");
            if (!value || typeof value !== "object" || Array.isArray(value))
              throw new Error("the input must be a JSON object");
            parsed = value as JsonObject;
          } catch (err) {
            setProblem((err as Error).message);
            return;
          }
          try {
            const started = await api.startRun(workflow.id, parsed, version ? Number(version) : undefined);
            navigate(`/runs/${started.run_id}`);
          } catch (err) {
            onError((err as Error).message);
            onClose();
          }
        }}
      >
        <h2>Run “{workflow.name}”</h2>
        <label htmlFor="run-input">
          Input (JSON object; templates read it as <code>trigger.…</code>)
        </label>
        <textarea id="run-input" className="mono" rows={10} value={input} onChange={(e) => setInput(e.target.value)} />
        {problem && <div className="field-error">{problem}</div>}
        <label htmlFor="run-version">Version</label>
        <select id="run-version" value={version} onChange={(e) => setVersion(e.target.value)}>
          <option value="">
            {workflow.active_version ? `active (v${workflow.active_version})` : `latest (v${workflow.latest_version})`}
          </option>
          {Array.from({ length: workflow.latest_version }, (_, i) => workflow.latest_version - i).map((v) => (
            <option key={v} value={v}>
              v{v}
            </option>
          ))}
        </select>
        <div className="modal-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button id="start-run" type="submit" className="primary">
            Start run
          </button>
        </div>
      </form>
    </div>
  );
}
