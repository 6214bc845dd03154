import { useReactFlow } from "@xyflow/react";
import type { Dispatch } from "react";
import type { EditorAction, EditorState } from "../../model/editor";
import { canStartRuns, can, reason, useMe } from "../../permissions";
import { Link } from "../../router";
import type { DocumentActions } from "./useWorkflowDocument";

/** The name, status and versions of the workflow, the editing commands, the validation state, and
 * save, activate/pause, versions, run and runs. */
export function Toolbar(props: {
  state: EditorState;
  /** The version opened read only, if any. */
  version: number | null;
  dispatch: Dispatch<EditorAction>;
  actions: DocumentActions;
  onCopy: () => void;
  onPaste: () => void;
}) {
  const { state, version, dispatch, actions, onCopy, onPaste } = props;
  const { workflow, readOnly, dirty, history, checking } = state;
  const flow = useReactFlow();
  const me = useMe();
  const mayEdit = can(me, "edit_workflows");
  const mayRun = canStartRuns(me);
  const problemCount = state.problems.length;
  const empty = history.present.nodes.length === 0;
  const anySelected = history.present.nodes.some((n) => n.selected);
  return (
    <div className="toolbar">
      <input
        id="workflow-name"
        aria-label="workflow name"
        value={state.name}
        disabled={readOnly}
        onChange={(e) => dispatch({ type: "renamed", name: e.target.value })}
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
      <button
        type="button"
        onClick={() => dispatch({ type: "undo" })}
        disabled={history.past.length === 0 || readOnly}
        title="Undo (Ctrl+Z)"
      >
        Undo
      </button>
      <button
        type="button"
        onClick={() => dispatch({ type: "redo" })}
        disabled={history.future.length === 0 || readOnly}
        title="Redo (Ctrl+Shift+Z)"
      >
        Redo
      </button>
      <button type="button" onClick={onCopy} disabled={!anySelected} title="Copy (Ctrl+C)">
        Copy
      </button>
      <button type="button" onClick={onPaste} disabled={readOnly} title="Paste (Ctrl+V)">
        Paste
      </button>
      <button type="button" onClick={() => flow.fitView({ padding: 0.2 })}>
        Fit view
      </button>
      <span id="problem-count" className={problemCount ? "problems" : empty ? "muted" : "ok"}>
        {checking
          ? "checking…"
          : problemCount
            ? `${problemCount} problem${problemCount > 1 ? "s" : ""}`
            : empty
              ? "empty: drag a trigger from the palette"
              : "valid"}
      </span>
      <button
        id="save"
        type="button"
        className="primary"
        onClick={actions.save}
        disabled={!mayEdit || (!dirty && !!workflow) || (readOnly && !workflow)}
        title={mayEdit ? undefined : reason("edit_workflows")}
      >
        {readOnly ? "Save as new version" : "Save"}
      </button>
      {workflow &&
        (workflow.status === "active" ? (
          <button
            id="pause"
            type="button"
            onClick={() => actions.setStatus("pause")}
            disabled={!mayEdit}
            title={mayEdit ? undefined : reason("edit_workflows")}
          >
            Pause
          </button>
        ) : (
          <button
            id="activate"
            type="button"
            onClick={() => actions.setStatus("activate", version ?? undefined)}
            disabled={!mayEdit || dirty || workflow.status === "archived"}
            title={
              !mayEdit ? reason("edit_workflows") : dirty ? "Save first: activation pins a saved version" : undefined
            }
          >
            Activate{version ? ` v${version}` : ""}
          </button>
        ))}
      {workflow && (
        <button id="versions" type="button" onClick={actions.toggleVersions}>
          Versions
        </button>
      )}
      {workflow && (
        <button
          id="run"
          type="button"
          onClick={() => dispatch({ type: "runDialogToggled", open: true })}
          disabled={!mayRun}
          title={mayRun ? undefined : "only admins, editors and operators may start runs"}
        >
          Run…
        </button>
      )}
      {workflow && (
        <Link to={`/workflows/${workflow.id}/runs`} className="button">
          Runs
        </Link>
      )}
    </div>
  );
}
