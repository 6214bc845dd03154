import { describe, expect, it } from "vitest";
import { actionsOf, instantOf, NO_FILTERS, outcomeOf, queryOf, shownValue, type DeadLetter } from "./deadLetters";

const letter: DeadLetter = {
  id: 7,
  topic: "records.events",
  tenant_id: "acme",
  state: "pending",
  cause: "failed",
  reason: "handling failed 3 times",
  error_type: "ProgrammingError",
  attempts: 3,
  consumer_group: "trigger",
  source_partition: 1,
  source_offset: 12,
  dlq_partition: 0,
  dlq_offset: 3,
  key: "r-1",
  value_truncated: false,
  dead_lettered_at: "2026-12-02T10:00:00Z",
  replay_requested_at: null,
  replayed_at: null,
  replayed_by: null,
  discarded_at: null,
  discarded_by: null,
  headers: {},
  trace: null,
  value_kind: "json",
  value: { type: "record.created" },
  value_base64: "",
};

describe("dead-letter filters", () => {
  it("puts only the filters that are set in the query, pending by default", () => {
    expect(queryOf(NO_FILTERS)).toBe("?state=pending&limit=50&offset=0");
    const query = new URLSearchParams(
      queryOf({ ...NO_FILTERS, topic: "runs.commands", reason: "  permission denied ", state: "" }, 50),
    );
    expect(Object.fromEntries(query)).toEqual({
      topic: "runs.commands",
      reason: "permission denied",
      limit: "50",
      offset: "50",
    });
  });

  it("sends times as instants and leaves out what is not a time", () => {
    expect(instantOf("")).toBeNull();
    expect(instantOf("not a time")).toBeNull();
    const since = new URLSearchParams(queryOf({ ...NO_FILTERS, since: "2026-12-01T08:30" })).get("since");
    expect(since).toBe(new Date("2026-12-01T08:30").toISOString());
  });
});

describe("a dead letter's actions", () => {
  it("replays and discards only a pending letter, and replays none kept only in part", () => {
    expect(actionsOf(letter)).toEqual({ replay: true, discard: true });
    expect(actionsOf({ ...letter, state: "replayed" })).toEqual({ replay: false, discard: false });
    expect(actionsOf({ ...letter, value_truncated: true })).toEqual({ replay: false, discard: true });
  });

  it("says who acted", () => {
    expect(outcomeOf({ ...letter, state: "replayed", replayed_by: "user:1@acme" })).toBe("replayed by user:1@acme");
    expect(outcomeOf(letter)).toBe("waiting for an operator");
  });

  it("shows JSON indented, text as it is, and binary by its size", () => {
    expect(shownValue(letter)).toBe('{\n  "type": "record.created"\n}');
    expect(shownValue({ ...letter, value_kind: "text", value: "{not json" })).toBe("{not json");
    expect(shownValue({ ...letter, value_kind: "binary", value: null, value_base64: "AAAA" })).toContain("3 bytes");
  });
});
