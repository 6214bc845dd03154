/** Dead letters as the page lists, filters and shows them. Pure. */

export const DEAD_LETTER_TOPICS = [
  "records.events",
  "runs.commands",
  "runs.events",
  "runs.approvals",
  "nodes.results",
  "nodes.ready.ai",
  "nodes.ready.http",
  "nodes.ready.record",
  "nodes.ready.other",
] as const;

export const DEAD_LETTER_STATES = ["pending", "replaying", "replayed", "discarded"] as const;
export const DEAD_LETTER_CAUSES = ["undecodable", "failed", "rejected", "kafka_refused"] as const;

export type DeadLetterState = (typeof DEAD_LETTER_STATES)[number];

export interface DeadLetterSummary {
  id: number;
  topic: string;
  tenant_id: string | null;
  state: DeadLetterState;
  cause: string;
  reason: string;
  error_type: string | null;
  attempts: number;
  consumer_group: string;
  source_partition: number;
  source_offset: number;
  dlq_partition: number;
  dlq_offset: number;
  key: string | null;
  value_truncated: boolean;
  dead_lettered_at: string;
  replay_requested_at: string | null;
  replayed_at: string | null;
  replayed_by: string | null;
  discarded_at: string | null;
  discarded_by: string | null;
}

export interface DeadLetter extends DeadLetterSummary {
  headers: Record<string, string>;
  trace: string | null;
  value_kind: "json" | "text" | "binary";
  value: unknown;
  value_base64: string;
}

export interface DeadLetterFilters {
  topic: string;
  tenant: string;
  cause: string;
  reason: string;
  state: string;
  /** A `datetime-local` value (the browser's time zone), or "". */
  since: string;
  until: string;
}

export const NO_FILTERS: DeadLetterFilters = {
  topic: "",
  tenant: "",
  cause: "",
  reason: "",
  state: "pending",
  since: "",
  until: "",
};

/** The list's query string: only the filters set, times as ISO instants. */
export function queryOf(filters: DeadLetterFilters, offset = 0, limit = 50): string {
  const params = new URLSearchParams();
  for (const name of ["topic", "tenant", "cause", "state"] as const) {
    if (filters[name]) params.set(name, filters[name]);
  }
  if (filters.reason.trim()) params.set("reason", filters.reason.trim());
  for (const name of ["since", "until"] as const) {
    const instant = instantOf(filters[name]);
    if (instant) params.set(name, instant);
  }
  params.set("limit", String(limit));
  params.set("offset", String(offset));
  return `?${params.toString()}`;
}

/** A `datetime-local` value read in the browser's time zone, as an ISO instant; null when unset or not a time. */
export function instantOf(local: string): string | null {
  if (!local) return null;
  const time = new Date(local);
  return Number.isNaN(time.getTime()) ? null : time.toISOString();
}

/** Whether replay and discard apply: only to a pending letter; replay also needs the whole message. */
export function actionsOf(letter: DeadLetterSummary): { replay: boolean; discard: boolean } {
  const pending = letter.state === "pending";
  return { replay: pending && !letter.value_truncated, discard: pending };
}

/** The original message as the page shows it. */
export function shownValue(letter: DeadLetter): string {
  if (letter.value_kind === "json") return JSON.stringify(letter.value, null, 2);
  if (letter.value_kind === "text") return String(letter.value);
  return `(binary, ${Math.floor((letter.value_base64.length * 3) / 4)} bytes; base64 below)`;
}

/** Who did what to the letter, in a line. */
export function outcomeOf(letter: DeadLetterSummary): string {
  if (letter.state === "replayed") return `replayed by ${letter.replayed_by ?? "?"}`;
  if (letter.state === "replaying") return `replay asked by ${letter.replayed_by ?? "?"}; sent once Kafka takes it`;
  if (letter.state === "discarded") return `discarded by ${letter.discarded_by ?? "?"}`;
  return "waiting for an operator";
}
