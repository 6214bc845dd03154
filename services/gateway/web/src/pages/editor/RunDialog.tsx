import { useState } from "react";
import type { Api } from "../../api/client";
import type { JsonObject, Workflow } from "../../model/types";
import { navigate } from "../../router";

/** Start a manual run with a JSON input and a version; the page then follows the run. */
export function RunDialog({
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
