import { describe, expect, it } from "vitest";
import { applyEvent, foldRun, INITIAL_RUN_STATE, isTerminal, stateFromRun, summarize } from "./runState";
import type { RunEvent } from "./types";

const run = "7b0e4a4e-0000-4000-8000-000000000001";
let seq = 0;
const ev = (type: string, extra: Partial<RunEvent> = {}): RunEvent => ({
  type,
  seq: ++seq,
  run_id: run,
  occurred_at: `2026-11-22T10:00:${String(seq).padStart(2, "0")}Z`,
  ...extra,
});

function branchRun(): RunEvent[] {
  seq = 0;
  return [
    ev("run.started"),
    ev("node.scheduled", { node_id: "hook", node_type: "trigger", attempt: 1, input: {} }),
    ev("node.succeeded", {
      node_id: "hook",
      node_type: "trigger",
      attempt: 1,
      output: { kind: "webhook" },
      duration_ms: 0,
    }),
    ev("node.scheduled", { node_id: "big", node_type: "condition", attempt: 1, input: {} }),
    ev("node.succeeded", {
      node_id: "big",
      node_type: "condition",
      attempt: 1,
      output: { result: false },
      duration_ms: 0,
      taken_handles: ["false"],
    }),
    ev("node.skipped", { node_id: "mark", node_type: "set" }),
    ev("node.scheduled", {
      node_id: "call",
      node_type: "http_request",
      attempt: 1,
      input: { url: "http://127.0.0.1/x" },
    }),
    // Logs of older versions carry the orchestrator's backstop timer; it changes nothing shown.
    ev("timer.scheduled", { node_id: "call", purpose: "node_timeout", attempt: 1 }),
  ];
}

describe("the run event fold", () => {
  it("shows succeeded, skipped and running nodes as the events arrive", () => {
    const state = foldRun(branchRun());
    expect(state.status).toBe("running");
    expect(state.nodes.hook.status).toBe("succeeded");
    expect(state.nodes.big.output).toEqual({ result: false });
    expect(state.nodes.big.takenHandles).toEqual(["false"]);
    expect(state.nodes.mark.status).toBe("skipped");
    expect(state.nodes.call.status).toBe("running");
    expect(state.nodes.call.input).toEqual({ url: "http://127.0.0.1/x" });
    expect(state.lastSeq).toBe(8);
  });

  it("shows a wait_for_event node with a timeout as waiting, and done once its event came", () => {
    seq = 0;
    const waiting = foldRun([
      ev("run.started"),
      ev("node.scheduled", { node_id: "wait", node_type: "wait_for_event", attempt: 1, input: { event: "signal" } }),
      ev("timer.scheduled", { node_id: "wait", purpose: "event_wait", attempt: 1 }),
    ]);
    expect(waiting.nodes.wait.status).toBe("waiting");
    const resumed = applyEvent(
      waiting,
      ev("node.succeeded", {
        node_id: "wait",
        node_type: "wait_for_event",
        attempt: 1,
        output: { source: "signal", name: "go", payload: { ok: true }, received_at: null },
        duration_ms: 0,
        taken_handles: ["event"],
      }),
    );
    expect(resumed.nodes.wait.status).toBe("succeeded");
    expect(resumed.nodes.wait.takenHandles).toEqual(["event"]);
  });

  it("shows the nodes still in flight as abandoned when the run is cancelled, and keeps the settled ones", () => {
    const state = foldRun([...branchRun(), ev("run.cancelled", { reason: "stop" })]);
    expect(state.status).toBe("cancelled");
    expect(state.nodes.call.status).toBe("abandoned");
    expect(state.nodes.hook.status).toBe("succeeded");
    expect(state.nodes.mark.status).toBe("skipped");
  });

  it("reads an abandoned node from the stored node log", () => {
    const row = {
      node_id: "call",
      node_type: "http_request",
      status: "abandoned",
      attempts: 1,
      input: {},
      output: null,
      error: null,
      scheduled_at: null,
      finished_at: null,
      duration_ms: null,
    };
    const state = stateFromRun({ status: "cancelled", error: "stop", nodes: [row] } as never);
    expect(state.nodes.call.status).toBe("abandoned");
  });

  it("counts attempts through a retry and keeps the error until the next attempt", () => {
    const events = branchRun();
    events.push(
      ev("node.retry_scheduled", {
        node_id: "call",
        node_type: "http_request",
        attempt: 1,
        error: { type: "http_status", message: "503", retryable: true },
        retry_at: "2026-11-22T10:01:00Z",
      }),
    );
    let state = foldRun(events);
    expect(state.nodes.call.status).toBe("retrying");
    expect(state.nodes.call.attempt).toBe(1);
    expect(state.nodes.call.error?.message).toBe("503");
    state = applyEvent(
      state,
      ev("node.scheduled", { node_id: "call", node_type: "http_request", attempt: 2, input: {} }),
    );
    expect(state.nodes.call.status).toBe("running");
    expect(state.nodes.call.attempt).toBe(2);
    expect(state.nodes.call.error).toBeNull();
    state = applyEvent(
      state,
      ev("node.failed", {
        node_id: "call",
        node_type: "http_request",
        attempt: 2,
        error: { type: "http_status", message: "500" },
        duration_ms: 12,
      }),
    );
    state = applyEvent(state, ev("run.failed", { reason: "node call failed", failed_node_id: "call" }));
    expect(state.nodes.call).toMatchObject({ status: "failed", attempt: 2, durationMs: 12 });
    expect(state).toMatchObject({ status: "failed", failedNodeId: "call", reason: "node call failed" });
  });

  it("ignores an event it has already applied, so a resumed stream can overlap", () => {
    const events = branchRun();
    const once = foldRun(events);
    const twice = foldRun([...events, ...events.slice(3)]);
    expect(twice).toEqual(once);
  });

  it("shows a sub_workflow node that waits for its child as waiting, and one that does not as done", () => {
    seq = 0;
    const waiting = foldRun([
      ev("run.started"),
      ev("node.scheduled", { node_id: "call", node_type: "sub_workflow", attempt: 1, input: {} }),
      ev("child_run.requested", { node_id: "call", child_run_id: "c-1", mode: "wait" }),
    ]);
    expect(waiting.nodes.call.status).toBe("waiting");
    seq = 0;
    const forgotten = foldRun([
      ev("run.started"),
      ev("node.scheduled", { node_id: "call", node_type: "sub_workflow", attempt: 1, input: {} }),
      ev("child_run.requested", { node_id: "call", child_run_id: "c-1", mode: "fire_and_forget" }),
      ev("node.succeeded", { node_id: "call", node_type: "sub_workflow", attempt: 1, output: { run_id: "c-1" } }),
    ]);
    expect(forgotten.nodes.call.status).toBe("succeeded");
  });

  it("waits for approval, then follows the decision", () => {
    seq = 0;
    let state = foldRun([
      ev("run.started"),
      ev("node.scheduled", { node_id: "ask", node_type: "approval", attempt: 1, input: {} }),
      ev("approval.requested", { node_id: "ask" }),
    ]);
    expect(state.nodes.ask.status).toBe("waiting_approval");
    state = foldRun(
      [
        ev("node.succeeded", {
          node_id: "ask",
          node_type: "approval",
          attempt: 1,
          output: { decision: "approved" },
          duration_ms: 5,
        }),
        ev("run.completed"),
      ],
      state,
    );
    expect(state.nodes.ask.status).toBe("succeeded");
    expect(state.status).toBe("completed");
  });

  it("puts retried nodes back to pending and the run back to running", () => {
    seq = 0;
    const failed = foldRun([
      ev("run.started"),
      ev("node.scheduled", { node_id: "call", node_type: "http_request", attempt: 1, input: {} }),
      ev("node.failed", {
        node_id: "call",
        node_type: "http_request",
        attempt: 1,
        error: { type: "timeout", message: "slow" },
        duration_ms: 1,
      }),
      ev("run.failed", { reason: "x", failed_node_id: "call" }),
    ]);
    const retried = applyEvent(failed, ev("run.retried", { node_ids: ["call"] }));
    expect(retried.status).toBe("running");
    expect(retried.nodes.call.status).toBe("pending");
    expect(retried.failedNodeId).toBeNull();
  });

  it("summarises the items of a for_each body on their canvas node", () => {
    seq = 0;
    const state = foldRun([
      ev("node.scheduled", { node_id: "loop", node_type: "for_each", attempt: 1, input: {} }),
      ev("for_each.item_scheduled", { node_id: "loop", index: 0 }),
      ev("node.scheduled", { node_id: "line[0]", node_type: "set", attempt: 1, input: {} }),
      ev("node.succeeded", { node_id: "line[0]", node_type: "set", attempt: 1, output: {}, duration_ms: 0 }),
      ev("node.scheduled", { node_id: "line[1]", node_type: "set", attempt: 1, input: {} }),
      ev("node.scheduled", { node_id: "line[10]", node_type: "set", attempt: 1, input: {} }),
    ]);
    const summary = summarize(state);
    expect(summary.loop.status).toBe("running");
    expect(summary.line.status).toBe("running");
    expect(summary.line.counts).toEqual({ succeeded: 1, running: 2 });
    expect(summary.line.instances.map((i) => i.key)).toEqual(["line[0]", "line[1]", "line[10]"]);
  });

  it("reads the same states from a stored node log", () => {
    const state = stateFromRun({
      run_id: run,
      workflow_id: "w",
      workflow_version: 1,
      status: "running",
      error: null,
      started_at: "2026-11-22T10:00:00Z",
      finished_at: null,
      trigger: {},
      nodes: [
        {
          node_id: "call",
          node_type: "http_request",
          status: "scheduled",
          attempts: 2,
          input: {},
          output: null,
          error: null,
          scheduled_at: null,
          finished_at: null,
          duration_ms: null,
        },
        {
          node_id: "mark",
          node_type: "set",
          status: "skipped",
          attempts: 0,
          input: null,
          output: null,
          error: null,
          scheduled_at: null,
          finished_at: null,
          duration_ms: null,
        },
      ],
    });
    expect(state.nodes.call).toMatchObject({ status: "running", attempt: 2 });
    expect(state.nodes.mark.status).toBe("skipped");
    expect(INITIAL_RUN_STATE.nodes).toEqual({});
  });

  it("pauses on a failed node and goes on when a person retries it", () => {
    seq = 0;
    const paused = foldRun([
      ev("run.started"),
      ev("node.scheduled", { node_id: "crm", node_type: "http_request", attempt: 1, input: {} }),
      ev("node.failed", {
        node_id: "crm",
        node_type: "http_request",
        attempt: 1,
        error: { type: "http_status", message: "500" },
        duration_ms: 3,
      }),
      ev("run.paused", { node_id: "crm", reason: "node 'crm' failed: 500", notify: { role: "admin" } }),
    ]);
    expect(paused.status).toBe("paused");
    expect(paused.pausedNodes).toEqual(["crm"]);
    expect(paused.reason).toBe("node 'crm' failed: 500");
    expect(isTerminal(paused.status)).toBe(false);
    const retried = applyEvent(paused, ev("run.continued", { node_ids: ["crm"], action: "retry" }));
    expect(retried).toMatchObject({ status: "running", pausedNodes: [], reason: null });
    expect(retried.nodes.crm).toMatchObject({ status: "pending", error: null });
    const skipped = applyEvent(paused, ev("run.continued", { node_ids: ["crm"], action: "skip" }));
    expect(skipped.nodes.crm.status).toBe("failed");
    expect(skipped.status).toBe("running");
  });

  it("keeps the final output of a completed run, from its event or its stored record", () => {
    seq = 0;
    const done = foldRun([ev("run.started"), ev("run.completed", { final_output: { total: 42 } })]);
    expect(done.status).toBe("completed");
    expect(done.output).toEqual({ total: 42 });
    const retried = foldRun([ev("run.failed", { reason: "x" }), ev("run.retried", { node_ids: [] })], done);
    expect(retried.output).toBeNull();
    const stored = stateFromRun({
      run_id: run,
      workflow_id: "w",
      workflow_version: 1,
      status: "completed",
      error: null,
      started_at: "2026-11-22T10:00:00Z",
      finished_at: "2026-11-22T10:00:01Z",
      trigger: {},
      final_output: { total: 42 },
      nodes: [],
    });
    expect(stored.output).toEqual({ total: 42 });
  });
});
