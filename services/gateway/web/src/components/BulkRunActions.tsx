import { useState } from "react";
import { ApiError } from "../api/client";
import {
  ACTION_LABEL,
  countRequest,
  describeScope,
  tally,
  toggled,
  toggledAll,
  type BulkAction,
  type BulkCount,
  type BulkOutcome,
  type BulkScope,
  type RunFilter,
} from "../model/bulk";
import { Link } from "../router";

/** The one call the component needs: POST /api/v1/runs/bulk (both steps). */
export interface BulkApi {
  bulkRuns: (body: Record<string, unknown>) => Promise<BulkCount | { results: BulkOutcome[] }>;
}

type Step =
  | { kind: "idle" }
  | { kind: "busy" }
  | { kind: "confirm"; action: BulkAction; scope: BulkScope; counted: BulkCount; notice?: string }
  | { kind: "done"; action: BulkAction; results: BulkOutcome[] };

interface Props {
  api: BulkApi;
  /** The runs picked in the list. */
  selected: string[];
  /** What the list shows: "all matching" acts on every run it matches, on every page. */
  filter: RunFilter;
  /** After an operation: clear the selection, reload the list. */
  onDone?: () => void;
}

/** Retry or cancel the selected runs, or all runs matching the list's filter: counts them first,
 * asks to confirm that count, then acts (only if the count still holds) and shows what it did per run. */
export function BulkRunActions({ api, selected, filter, onDone }: Props) {
  const [step, setStep] = useState<Step>({ kind: "idle" });
  const [error, setError] = useState<string | null>(null);

  const count = async (action: BulkAction, scope: BulkScope, notice?: string) => {
    setError(null);
    setStep({ kind: "busy" });
    try {
      const counted = (await api.bulkRuns(countRequest(action, scope))) as BulkCount;
      setStep({ kind: "confirm", action, scope, counted, notice });
    } catch (err) {
      setError((err as Error).message);
      setStep({ kind: "idle" });
    }
  };

  const confirm = async (action: BulkAction, scope: BulkScope, counted: BulkCount) => {
    setError(null);
    setStep({ kind: "busy" });
    try {
      const answer = (await api.bulkRuns({ action, token: counted.token })) as { results: BulkOutcome[] };
      setStep({ kind: "done", action, results: answer.results });
      onDone?.();
    } catch (err) {
      if (err instanceof ApiError && err.code === "stale_selection") {
        // The runs changed since they were counted: count again and ask again.
        await count(action, scope, `The runs changed: ${err.message}`);
        return;
      }
      setError((err as Error).message);
      setStep({ kind: "idle" });
    }
  };

  const busy = step.kind === "busy";
  return (
    <div className="bulk-actions" id="bulk-actions">
      <div className="toolbar-row">
        <span className="muted" id="bulk-selected-count">
          {selected.length} selected
        </span>
        {(["retry", "cancel"] as const).map((action) => (
          <button
            key={`${action}-selected`}
            id={`bulk-${action}-selected`}
            type="button"
            disabled={busy || selected.length === 0}
            onClick={() => void count(action, { kind: "selected", runIds: selected })}
          >
            {ACTION_LABEL[action]} selected
          </button>
        ))}
        {(["retry", "cancel"] as const).map((action) => (
          <button
            key={`${action}-matching`}
            id={`bulk-${action}-matching`}
            type="button"
            disabled={busy}
            onClick={() => void count(action, { kind: "matching", filter })}
          >
            {ACTION_LABEL[action]} all matching
          </button>
        ))}
      </div>
      {error && (
        <div className="error" role="alert" id="bulk-error">
          {error}
        </div>
      )}
      {step.kind === "confirm" && (
        <div className="banner" role="dialog" aria-label="confirm bulk operation" id="bulk-confirm">
          {step.notice && <p className="muted">{step.notice}</p>}
          <p>
            {ACTION_LABEL[step.action]} <strong id="bulk-confirm-count">{step.counted.count}</strong>{" "}
            {step.counted.count === 1 ? "run" : "runs"} ({describeScope(step.scope)})? Runs this cannot apply to are
            skipped.
          </p>
          <button
            id="bulk-confirm-button"
            type="button"
            className={step.action === "cancel" ? "danger" : ""}
            disabled={step.counted.count === 0}
            onClick={() => void confirm(step.action, step.scope, step.counted)}
          >
            {ACTION_LABEL[step.action]} {step.counted.count} {step.counted.count === 1 ? "run" : "runs"}
          </button>
          <button type="button" id="bulk-back" onClick={() => setStep({ kind: "idle" })}>
            Back
          </button>
        </div>
      )}
      {step.kind === "done" && (
        <div className="banner" id="bulk-results">
          <p id="bulk-tally">
            {ACTION_LABEL[step.action]}: {tally(step.results)}.
          </p>
          {step.results.length > 0 && (
            <table className="list">
              <thead>
                <tr>
                  <th>Run</th>
                  <th>Outcome</th>
                  <th>Reason</th>
                </tr>
              </thead>
              <tbody>
                {step.results.map((r) => (
                  <tr key={r.run_id} data-run-id={r.run_id} data-outcome={r.outcome}>
                    <td>
                      <Link to={`/runs/${r.run_id}`}>
                        <code>{r.run_id.slice(0, 8)}</code>
                      </Link>
                    </td>
                    <td>{r.outcome}</td>
                    <td className="muted">{r.reason ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <button type="button" id="bulk-close" onClick={() => setStep({ kind: "idle" })}>
            Close
          </button>
        </div>
      )}
    </div>
  );
}

/** The header cell of a runs table whose rows can be picked: selects every run shown, or none. */
export function SelectAllRuns({
  shown,
  selected,
  onChange,
}: {
  shown: string[];
  selected: string[];
  onChange: (selected: string[]) => void;
}) {
  return (
    <th>
      <input
        type="checkbox"
        id="select-all-runs"
        aria-label="select every run shown"
        checked={shown.length > 0 && shown.every((id) => selected.includes(id))}
        onChange={() => onChange(toggledAll(selected, shown))}
      />
    </th>
  );
}

/** A row's cell that picks its run (clicking it does not open the row's run). */
export function SelectRun({
  runId,
  selected,
  onChange,
}: {
  runId: string;
  selected: string[];
  onChange: (selected: string[]) => void;
}) {
  return (
    <td onClick={(e) => e.stopPropagation()}>
      <input
        type="checkbox"
        className="select-run"
        aria-label={`select run ${runId.slice(0, 8)}`}
        checked={selected.includes(runId)}
        onChange={() => onChange(toggled(selected, runId))}
      />
    </td>
  );
}
