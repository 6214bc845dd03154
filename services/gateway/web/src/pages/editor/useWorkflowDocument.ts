import { useReactFlow } from "@xyflow/react";
import { useEffect, useRef, type Dispatch } from "react";
import { ApiError, type Api } from "../../api/client";
import { pipelineFieldTypes } from "../../model/conditions";
import { triggerKind, triggerPipeline, type EditorAction, type EditorState } from "../../model/editor";
import type { Definition } from "../../model/types";
import { navigate } from "../../router";

export interface DocumentActions {
  save: () => Promise<void>;
  setStatus: (action: "activate" | "pause", version?: number) => Promise<void>;
  toggleVersions: () => Promise<void>;
}

/** The workflow through the API: the node types and presets the forms need, loading the workflow (or
 * one of its versions), its webhook address, saving, activating, pausing and its versions; and a
 * warning before leaving with unsaved changes. */
export function useWorkflowDocument(
  api: Api,
  opening: { workflowId: string | null; version: number | null },
  state: EditorState,
  definition: Definition,
  dispatch: Dispatch<EditorAction>,
): DocumentActions {
  const { workflowId, version } = opening;
  const { workflow, name, description, versions, dirty } = state;
  const flow = useReactFlow();
  // useReactFlow() changes identity once the viewport is ready; loading must not run again then.
  const flowRef = useRef(flow);
  flowRef.current = flow;

  useEffect(() => {
    api
      .nodeTypes()
      .then((catalog) => dispatch({ type: "catalogLoaded", catalog }))
      .catch((err) => dispatch({ type: "failed", text: (err as Error).message }));
    api
      .conditionPresets()
      .then((presets) => dispatch({ type: "presetsLoaded", presets }))
      .catch(() => dispatch({ type: "presetsLoaded", presets: [] }));
  }, [api, dispatch]);

  useEffect(() => {
    if (!workflowId) return;
    (async () => {
      try {
        const current = await api.getWorkflow(workflowId);
        dispatch({ type: "workflowLoaded", workflow: current });
        const definition = version
          ? ((await api.version(workflowId, version)).definition ?? current.definition)
          : current.definition;
        dispatch({ type: "definitionLoaded", definition });
        setTimeout(() => flowRef.current.fitView({ padding: 0.2 }), 50);
      } catch (err) {
        dispatch({ type: "failed", text: (err as Error).message });
      }
    })();
  }, [api, workflowId, version, dispatch]);

  const kind = triggerKind(state.history.present.nodes);
  const pipeline = triggerPipeline(state.history.present.nodes);
  // The record fields' types come from the pipeline's newest records: pipelines have no schema.
  useEffect(() => {
    if (!pipeline) {
      dispatch({ type: "pipelineSampled", fields: {} });
      return;
    }
    api
      .sampleRecords(pipeline)
      .then((page) => dispatch({ type: "pipelineSampled", fields: pipelineFieldTypes(page.items.map((r) => r.data)) }))
      .catch(() => dispatch({ type: "pipelineSampled", fields: {} }));
  }, [api, pipeline, dispatch]);
  useEffect(() => {
    if (!workflow || kind !== "webhook") {
      dispatch({ type: "webhookResolved", url: null });
      return;
    }
    api
      .webhook(workflow.id)
      .then((w) => dispatch({ type: "webhookResolved", url: w.url }))
      .catch(() => dispatch({ type: "webhookResolved", url: null }));
  }, [api, workflow, kind, dispatch]);

  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const save = async () => {
    dispatch({ type: "saveStarted" });
    try {
      if (!workflow) {
        const created = await api.createWorkflow(name, definition, description);
        dispatch({ type: "created" });
        navigate(`/workflows/${created.id}`, true);
        return;
      }
      const saved = await api.updateWorkflow(workflow.id, name, definition, description);
      dispatch({ type: "saved", workflow: saved });
      if (version) navigate(`/workflows/${workflow.id}`, true);
      if (versions) dispatch({ type: "versionsShown", versions: await api.versions(saved.id) });
    } catch (err) {
      const problems = err instanceof ApiError && err.details.length ? err.details : null;
      dispatch({ type: "saveFailed", text: (err as Error).message, problems });
    }
  };

  const setStatus = async (action: "activate" | "pause", activateVersion?: number) => {
    if (!workflow) return;
    try {
      const next =
        action === "activate" ? await api.activate(workflow.id, activateVersion) : await api.pause(workflow.id);
      dispatch({ type: "statusChanged", workflow: next, action });
      if (versions) dispatch({ type: "versionsShown", versions: await api.versions(workflow.id) });
    } catch (err) {
      dispatch({ type: "failed", text: (err as Error).message });
    }
  };

  const toggleVersions = async () => {
    if (!workflow) return;
    dispatch({ type: "versionsShown", versions: versions ? null : await api.versions(workflow.id) });
  };

  return { save, setStatus, toggleVersions };
}
