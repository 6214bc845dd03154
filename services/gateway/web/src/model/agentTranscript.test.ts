import { describe, expect, it } from "vitest";
import { agentView, applyAgentEvent, transcriptFromOutput, type AgentTranscript } from "./agentTranscript";
import { foldRun, stateFromRun, summarize } from "./runState";
import type { JsonObject, Run, RunEvent } from "./types";

const run = "7b0e4a4e-0000-4000-8000-000000000002";
let seq = 0;
const ev = (type: string, extra: Partial<RunEvent> = {}): RunEvent => ({
  type,
  seq: ++seq,
  run_id: run,
  occurred_at: `2026-12-03T10:00:${String(seq).padStart(2, "0")}Z`,
  ...extra,
});
const usage = (prompt: number, completion: number) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});
const call = (id: string, name: string, args: JsonObject) => ({
  id,
  type: "function",
  function: { name, arguments: JSON.stringify(args) },
});
const TASK = "Find open deals over 10,000 in pipeline deals and mark them for review";

/** An agent that finds the deals, updates one (the second call is refused), and answers. */
function agentRun(): RunEvent[] {
  seq = 0;
  const a = { node_id: "agent1", attempt: 1 };
  return [
    ev("run.started"),
    ev("node.scheduled", { ...a, node_type: "ai_agent", input: { name: "Agent", task: TASK, tools: [] } }),
    ev("agent.turn_requested", { ...a, turn: 1, idempotency_key: "k1" }),
    ev("timer.scheduled", { node_id: "agent1#m1", purpose: "node_timeout" }),
    ev("agent.turn_completed", {
      ...a,
      turn: 1,
      message: {
        role: "assistant",
        content: null,
        tool_calls: [call("call_1", "find_records", { pipeline: "deals", filter: { status: "open" } })],
      },
      model: "scripted",
      usage: usage(100, 20),
    }),
    ev("agent.tool_call_scheduled", {
      ...a,
      turn: 1,
      call_id: "call_1",
      step: "agent1#t1.0",
      tool: "find_records",
      arguments: { pipeline: "deals", filter: { status: "open" } },
      idempotency_key: "s1",
    }),
    ev("agent.tool_call_finished", {
      ...a,
      turn: 1,
      call_id: "call_1",
      step: "agent1#t1.0",
      tool: "find_records",
      outcome: "succeeded",
      content: '{"records": [{"id": "d1", "amount": 12000}]}',
    }),
    ev("agent.turn_requested", { ...a, turn: 2, idempotency_key: "k2" }),
    ev("agent.turn_completed", {
      ...a,
      turn: 2,
      message: {
        role: "assistant",
        content: "Marking d1.",
        tool_calls: [
          call("call_2", "update_record", { pipeline: "deals", record_id: "d1", data: { review: true } }),
          call("call_3", "delete_record", { record_id: "d1" }),
        ],
      },
      model: "scripted",
      usage: usage(200, 30),
    }),
    ev("agent.tool_call_finished", {
      ...a,
      turn: 2,
      call_id: "call_3",
      step: "agent1#t2.1",
      tool: "delete_record",
      outcome: "refused",
      content: "no tool named delete_record",
    }),
    ev("agent.tool_call_scheduled", {
      ...a,
      turn: 2,
      call_id: "call_2",
      step: "agent1#t2.0",
      tool: "update_record",
      arguments: { pipeline: "deals", record_id: "d1", data: { review: true } },
      idempotency_key: "s2",
    }),
  ];
}

const agentOf = (events: RunEvent[]): AgentTranscript => foldRun(events).nodes.agent1.agent!;

describe("an agent node's transcript from its events", () => {
  it("folds each turn, its calls with their arguments, and their results as they come", () => {
    const t = agentOf(agentRun());
    expect(t.task).toBe(TASK);
    expect(t.turns.map((x) => [x.turn, x.status, x.content])).toEqual([
      [1, "answered", null],
      [2, "answered", "Marking d1."],
    ]);
    expect(t.turns[0].calls).toEqual([
      {
        id: "call_1",
        name: "find_records",
        arguments: { pipeline: "deals", filter: { status: "open" } },
        step: "agent1#t1.0",
        status: "succeeded",
        content: '{"records": [{"id": "d1", "amount": 12000}]}',
      },
    ]);
    expect(t.turns[1].calls.map((c) => [c.id, c.name, c.status, c.content])).toEqual([
      ["call_2", "update_record", "running", null],
      ["call_3", "delete_record", "refused", "no tool named delete_record"],
    ]);
    expect(t.usage).toEqual(usage(300, 50));
    expect([t.turnCount, t.toolCallCount]).toEqual([2, 3]);
  });

  it("keeps the agent one canvas node: its turns' and calls' timers and steps make no nodes of their own", () => {
    const state = foldRun(agentRun());
    expect(Object.keys(state.nodes)).toEqual(["agent1"]);
    expect(state.nodes.agent1.status).toBe("running");
    expect(Object.keys(summarize(state))).toEqual(["agent1"]);
  });

  it("shows the node waiting for its approver while a call does, and running again once decided", () => {
    const events = agentRun();
    const a = { node_id: "agent1", attempt: 1 };
    events.push(
      ev("agent.turn_requested", { ...a, turn: 3, idempotency_key: "k3" }),
      ev("agent.turn_completed", {
        ...a,
        turn: 3,
        message: { role: "assistant", content: null, tool_calls: [call("call_4", "create_record", { data: {} })] },
        usage: usage(1, 1),
      }),
      ev("agent.tool_call_scheduled", {
        ...a,
        turn: 3,
        call_id: "call_4",
        step: "agent1#t3.0",
        tool: "create_record",
        arguments: { data: {} },
        idempotency_key: "s4",
        awaiting_approval: true,
      }),
      ev("approval.requested", { node_id: "agent1#t3.0" }),
    );
    const waiting = foldRun(events);
    expect(waiting.nodes.agent1.status).toBe("waiting_approval");
    expect(waiting.nodes.agent1.agent!.turns[2].calls[0].status).toBe("awaiting_approval");
    const decided = foldRun([...events, ev("approval.decided", { node_id: "agent1#t3.0", decision: "approved" })]);
    expect(decided.nodes.agent1.status).toBe("running");
    expect(decided.nodes.agent1.agent!.turns[2].calls[0].status).toBe("running");
  });

  it("starts again on a new attempt of the node, and ignores an event it has already applied", () => {
    const events = agentRun();
    const again = foldRun([
      ...events,
      ev("node.retry_scheduled", { node_id: "agent1", attempt: 1, error: { type: "timeout", message: "slow" } }),
      ev("node.scheduled", { node_id: "agent1", node_type: "ai_agent", attempt: 2, input: { task: TASK } }),
      ev("agent.turn_requested", { node_id: "agent1", attempt: 2, turn: 1, idempotency_key: "k1" }),
    ]);
    expect(again.nodes.agent1.agent!.attempt).toBe(2);
    expect(again.nodes.agent1.agent!.turns.map((x) => x.status)).toEqual(["waiting"]);
    const once = foldRun(events);
    expect(foldRun([events[events.length - 1]], once)).toBe(once);
  });
});

describe("an agent node's transcript once it succeeded", () => {
  const output: JsonObject = {
    answer: "Marked 1 deal for review.",
    data: null,
    turns: 3,
    tool_calls: 3,
    model: "scripted",
    usage: usage(400, 60),
    transcript: [
      { role: "user", content: TASK },
      { role: "assistant", content: null, tool_calls: [call("call_1", "find_records", { pipeline: "deals" })] },
      { role: "tool", tool_call_id: "call_1", content: '{"records": []}' },
      { role: "assistant", content: "Marked 1 deal for review." },
    ],
  };

  it("reads the messages of the output when no events were seen (a stored run)", () => {
    const t = transcriptFromOutput(output);
    expect(t.task).toBe(TASK);
    expect(t.turns.map((x) => x.content)).toEqual([null, "Marked 1 deal for review."]);
    expect(t.turns[0].calls).toMatchObject([
      {
        id: "call_1",
        name: "find_records",
        arguments: { pipeline: "deals" },
        status: "finished",
        content: '{"records": []}',
      },
    ]);
    expect([t.answer, t.turnCount, t.toolCallCount, t.usage?.total_tokens]).toEqual([
      "Marked 1 deal for review.",
      3,
      3,
      460,
    ]);
    const stored = stateFromRun({
      status: "completed",
      nodes: [
        { node_id: "agent1", node_type: "ai_agent", status: "succeeded", attempts: 1, input: {}, output },
        { node_id: "agent1#t1.0", node_type: "record_find", status: "succeeded", attempts: 1 },
      ],
    } as unknown as Run);
    expect(Object.keys(stored.nodes)).toEqual(["agent1"]);
    expect(agentView(stored.nodes.agent1.agent, stored.nodes.agent1.input, stored.nodes.agent1.output).answer).toBe(
      "Marked 1 deal for review.",
    );
  });

  it("keeps the outcomes the events told and takes the answer and figures from the output", () => {
    const events = agentRun();
    events.push(ev("node.succeeded", { node_id: "agent1", node_type: "ai_agent", attempt: 1, output }));
    const node = foldRun(events).nodes.agent1;
    const view = agentView(node.agent, node.input, node.output);
    expect(view.turns[1].calls[1].status).toBe("refused");
    expect([view.answer, view.turnCount, view.toolCallCount, view.usage?.total_tokens, view.task]).toEqual([
      "Marked 1 deal for review.",
      3,
      3,
      460,
      TASK,
    ]);
  });

  it("keeps what the model was told before a turn", () => {
    const t = applyAgentEvent(
      null,
      ev("agent.turn_requested", { node_id: "a", attempt: 1, turn: 2, prompt: "the answer is not JSON" }),
      null,
    );
    expect(t.turns[0]).toMatchObject({ turn: 2, status: "waiting", prompt: "the answer is not JSON" });
  });

  it("keeps a model's arguments that are not JSON as their text", () => {
    const t = applyAgentEvent(
      null,
      ev("agent.turn_completed", {
        node_id: "a",
        attempt: 1,
        turn: 1,
        message: { role: "assistant", tool_calls: [{ id: "c", function: { name: "x", arguments: "{oops" } }] },
      }),
      null,
    );
    expect(t.turns[0].calls[0].arguments).toBe("{oops");
  });
});
