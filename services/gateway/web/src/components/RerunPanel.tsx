import { useState } from "react";
import type { Json, JsonObject } from "../model/types";
import { JsonEditor } from "./JsonEditor";

interface Props {
  /** The original run's trigger (its `data` is what the re-run starts from unless edited). */
  trigger: Json;
  onRerun: (input: JsonObject | undefined) => Promise<void>;
  onClose: () => void;
}

function triggerData(trigger: Json): JsonObject {
  if (trigger && typeof trigger === "object" && !Array.isArray(trigger)) {
    const data = (trigger as JsonObject).data;
    if (data && typeof data === "object" && !Array.isArray(data)) return data as JsonObject;
  }
  return {};
}

/** Start a run again from the original's trigger data, or from an edited copy of it. */
export function RerunPanel({ trigger, onRerun, onClose }: Props) {
  const original = triggerData(trigger);
  const [input, setInput] = useState<Json | undefined>(original);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const edited = JSON.stringify(input ?? {}) !== JSON.stringify(original);
  const valid = input === undefined || (typeof input === "object" && input !== null && !Array.isArray(input));
  return (
    <div className="banner" id="rerun-panel" role="dialog" aria-label="re-run">
      <p>
        A new run of this workflow version, from this run's trigger data. Edit the input to change what the new run
        starts from.
      </p>
      <JsonEditor id="rerun-input" field="/input" value={input} onChange={setInput} rows={8} invalid={!valid} />
      {!valid && <div className="field-error">the input is a JSON object</div>}
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      <button
        id="rerun-submit"
        type="button"
        disabled={busy || !valid}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            await onRerun(edited ? ((input ?? {}) as JsonObject) : undefined);
          } catch (err) {
            setError((err as Error).message);
          } finally {
            setBusy(false);
          }
        }}
      >
        {edited ? "Re-run with this input" : "Re-run"}
      </button>
      <button type="button" onClick={onClose}>
        Close
      </button>
    </div>
  );
}
