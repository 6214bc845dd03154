import { ReactFlowProvider } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useReducer, useState } from "react";
import type { Api } from "../api/client";
import { editorReducer, initialEditorState } from "../model/editor";
import { graphToDefinition } from "../model/graph";
import type { GrantedTopic } from "../model/kafkaTopics";
import { Link } from "../router";
import { Canvas } from "./editor/Canvas";
import { Palette } from "./editor/Palette";
import { RunDialog } from "./editor/RunDialog";
import { SidePanel, type WorkflowChoice } from "./editor/SidePanel";
import { useNodeTester } from "./editor/NodeTestPanel";
import { Toolbar } from "./editor/Toolbar";
import { useClipboard, useShortcuts } from "./editor/useShortcuts";
import { useValidation } from "./editor/useValidation";
import { useWorkflowDocument } from "./editor/useWorkflowDocument";

/** The workflow editor: the state lives in the pure reducer of model/editor.ts; the hooks in
 * ./editor do the I/O (API, validation, clipboard, keyboard) and the components there draw it. */
export function Editor(props: { api: Api; workflowId: string | null; version: number | null }) {
  return (
    <ReactFlowProvider>
      <EditorInner {...props} />
    </ReactFlowProvider>
  );
}

function EditorInner({ api, workflowId, version }: { api: Api; workflowId: string | null; version: number | null }) {
  const [state, dispatch] = useReducer(editorReducer, { workflowId, version }, initialEditorState);
  const { workflow, message, readOnly, settings } = state;
  const graph = state.history.present;
  const definition = useMemo(() => graphToDefinition(graph.nodes, graph.edges, settings), [graph, settings]);
  const problems = useValidation(api, definition, state.loaded, state.problems, dispatch);
  const actions = useWorkflowDocument(api, { workflowId, version }, state, definition, dispatch);
  const { copy, paste } = useClipboard(graph, dispatch);
  const tester = useNodeTester(api, workflow?.id ?? null, definition);
  const undo = useCallback(() => dispatch({ type: "undo" }), []);
  const redo = useCallback(() => dispatch({ type: "redo" }), []);
  useShortcuts({ undo, redo, copy, paste });
  const [kafkaTopics, setKafkaTopics] = useState<GrantedTopic[]>([]);
  useEffect(() => {
    api
      .kafkaTopics()
      .then((answer) => setKafkaTopics(answer.items))
      .catch(() => setKafkaTopics([]));
  }, [api]);
  const workflowChoices = useWorkflowChoices(api);
  const lastRun = useLastRun(api, workflowId);

  return (
    <div className="editor">
      <Toolbar state={state} version={version} dispatch={dispatch} actions={actions} onCopy={copy} onPaste={paste} />
      {message && (
        <div
          className={`banner ${message.kind}`}
          role={message.kind === "error" ? "alert" : "status"}
          id="editor-message"
        >
          {message.text}
          <button
            type="button"
            className="icon"
            aria-label="dismiss"
            onClick={() => dispatch({ type: "messageDismissed" })}
          >
            ×
          </button>
        </div>
      )}
      {readOnly && workflow && version && (
        <div className="banner info" id="viewing-version">
          Viewing version {version} (read only).
          <button type="button" className="small" onClick={() => dispatch({ type: "editFromVersion" })}>
            Edit from this version
          </button>
          <Link to={`/workflows/${workflow.id}`}>Back to the latest</Link>
        </div>
      )}
      {state.webhookUrl && (
        <div className="banner info">
          Webhook address: <code id="webhook-url">{state.webhookUrl}</code>
        </div>
      )}
      <div className="editor-body">
        <Palette
          catalog={state.catalog}
          readOnly={readOnly}
          onAdd={(nodeType, at) => dispatch({ type: "nodeAdded", nodeType, at })}
        />
        <Canvas graph={graph} problems={problems} readOnly={readOnly} dispatch={dispatch} lastRun={lastRun} />
        <SidePanel
          state={state}
          problems={problems}
          dispatch={dispatch}
          workflowChoices={workflowChoices}
          onActivate={(v) => actions.setStatus("activate", v)}
          kafkaTopics={kafkaTopics}
          tester={tester}
        />
      </div>
      {state.runDialog && workflow && (
        <RunDialog
          api={api}
          workflow={workflow}
          onClose={() => dispatch({ type: "runDialogToggled", open: false })}
          onError={(text) => dispatch({ type: "failed", text })}
        />
      )}
    </div>
  );
}

/** The tenant's workflows (the first 200 by name), for the sub-workflow node's and the error workflow's
 * pickers; none when they cannot be listed (the id can still be typed). */
function useWorkflowChoices(api: Api): WorkflowChoice[] {
  const [choices, setChoices] = useState<WorkflowChoice[]>([]);
  useEffect(() => {
    let live = true;
    Promise.resolve()
      .then(() => api.listWorkflows("?limit=200"))
      .then((page) => {
        if (live) setChoices(page.items.map((w) => ({ id: w.id, name: w.name })));
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [api]);
  return choices;
}

/** Each node's status in the workflow's latest run (shown on the canvas while editing). */
function useLastRun(api: Api, workflowId: string | null): Record<string, string> | undefined {
  const [statuses, setStatuses] = useState<Record<string, string> | undefined>(undefined);
  useEffect(() => {
    if (!workflowId) return;
    let stale = false;
    api
      .listRuns(workflowId)
      .then(async (page) => {
        const latest = page.items[0];
        if (!latest || stale) return;
        const run = await api.getRun(latest.run_id);
        if (!stale) setStatuses(Object.fromEntries(run.nodes.map((n) => [n.node_id.split("[")[0], n.status])));
      })
      .catch(() => undefined);
    return () => {
      stale = true;
    };
  }, [api, workflowId]);
  return statuses;
}
