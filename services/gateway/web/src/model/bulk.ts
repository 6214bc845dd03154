/** Bulk retry and cancel of runs (POST /api/v1/runs/bulk): what a selection asks for, and what to
 * say about the answer. Pure; BulkRunActions is the component. */

export type BulkAction = "retry" | "cancel";

export interface RunFilter {
  workflow_id?: string;
  status?: string;
  started_after?: string;
  started_before?: string;
  trigger_kind?: string;
  q?: string;
}

/** The runs picked by hand (their ids), or every run the list's filter matches. */
export type BulkScope = { kind: "selected"; runIds: string[] } | { kind: "matching"; filter: RunFilter };

export interface BulkCount {
  count: number;
  token: string;
  expires_at: string;
}

export interface BulkOutcome {
  run_id: string;
  outcome: "retried" | "cancelled" | "skipped";
  reason?: string | null;
}

export const ACTION_LABEL: Record<BulkAction, string> = { retry: "Retry", cancel: "Cancel" };

/** The first call's body: the action with the run ids, or with the filter (empty parts left out). */
export function countRequest(action: BulkAction, scope: BulkScope): Record<string, unknown> {
  if (scope.kind === "selected") return { action, run_ids: scope.runIds };
  const filter = Object.fromEntries(Object.entries(scope.filter).filter(([, value]) => value));
  return { action, filter };
}

/** "status failed, workflow 1a2b3c4d": the filter in words, for the confirmation. */
export function describeScope(scope: BulkScope): string {
  if (scope.kind === "selected") return `the ${scope.runIds.length} selected`;
  const parts: string[] = [];
  if (scope.filter.status) parts.push(`status ${scope.filter.status}`);
  if (scope.filter.workflow_id) parts.push(`workflow ${scope.filter.workflow_id.slice(0, 8)}`);
  if (scope.filter.started_after) parts.push(`started after ${scope.filter.started_after}`);
  if (scope.filter.started_before) parts.push(`started before ${scope.filter.started_before}`);
  return parts.length ? `all matching ${parts.join(", ")}` : "all";
}

/** "2 cancelled, 1 skipped": how many runs had each outcome, in a fixed order, none left out. */
export function tally(results: BulkOutcome[]): string {
  if (results.length === 0) return "no runs";
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  return (["retried", "cancelled", "skipped"] as const)
    .filter((outcome) => counts.has(outcome))
    .map((outcome) => `${counts.get(outcome)} ${outcome}`)
    .join(", ");
}

/** The selection with `runId` added or removed. */
export function toggled(selected: string[], runId: string): string[] {
  return selected.includes(runId) ? selected.filter((id) => id !== runId) : [...selected, runId];
}

/** Every run shown selected, or (when all of them already are) none of them. */
export function toggledAll(selected: string[], shown: string[]): string[] {
  const all = shown.length > 0 && shown.every((id) => selected.includes(id));
  return all ? selected.filter((id) => !shown.includes(id)) : [...new Set([...selected, ...shown])];
}
