import { useMemo, useState } from "react";
import type { Api } from "../../api/client";
import { formInput, inputFields, inputSchema } from "../../model/runInput";
import type { JsonObject, Workflow } from "../../model/types";
import { navigate } from "../../router";

/** Start a manual run with an input and a version; the page then follows the run. When the manual
 * trigger declares an input_schema of properties, the input is a form of them (checked here, and by
 * the server against the whole schema); otherwise a JSON object. */
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
  const fields = useMemo(() => inputFields(inputSchema(workflow.definition)), [workflow.definition]);
  const [texts, setTexts] = useState<Record<string, string>>({});
  const [fieldProblems, setFieldProblems] = useState<Record<string, string>>({});
  return (
    <div className="modal" role="dialog" aria-label="start a run">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          let parsed: JsonObject;
          if (fields) {
            const built = formInput(fields, texts);
            setFieldProblems(built.problems);
            if (Object.keys(built.problems).length > 0) return;
            parsed = built.input;
          } else
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
        {fields ? (
          <fieldset id="run-input-form">
            <legend>
              Input (templates read it as <code>trigger.…</code>)
            </legend>
            {fields.map((f) => (
              <div className="field" key={f.name}>
                <label htmlFor={`run-input-${f.name}`}>
                  {f.name}
                  {f.required ? " *" : ""}
                  {f.description ? <span className="muted"> ({f.description})</span> : null}
                </label>
                {f.kind === "boolean" ? (
                  <select
                    id={`run-input-${f.name}`}
                    value={texts[f.name] ?? ""}
                    onChange={(e) => setTexts({ ...texts, [f.name]: e.target.value })}
                  >
                    <option value="" />
                    <option value="true">true</option>
                    <option value="false">false</option>
                  </select>
                ) : (
                  <input
                    id={`run-input-${f.name}`}
                    className={f.kind === "json" ? "mono" : undefined}
                    type={f.kind === "number" || f.kind === "integer" ? "number" : "text"}
                    placeholder={f.kind === "json" ? "JSON" : ""}
                    value={texts[f.name] ?? ""}
                    onChange={(e) => setTexts({ ...texts, [f.name]: e.target.value })}
                  />
                )}
                {fieldProblems[f.name] && <div className="field-error">{fieldProblems[f.name]}</div>}
              </div>
            ))}
          </fieldset>
        ) : (
          <>
            <label htmlFor="run-input">
              Input (JSON object; templates read it as <code>trigger.…</code>)
            </label>
            <textarea
              id="run-input"
              className="mono"
              rows={10}
              value={input}
              onChange={(e) => setInput(e.target.value)}
            />
          </>
        )}
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
