/** An `ai_agent` node's transcript, turn by turn: a pure fold of its four run events
 * (`agent.turn_requested`, `agent.turn_completed`, `agent.tool_call_scheduled`,
 * `agent.tool_call_finished`) while it runs, and the same read from its output (`transcript`: the
 * OpenAI-format messages, system excluded) once it succeeded. */
import type { Json, JsonObject, RunEvent } from "./types";

export type ToolOutcome = "succeeded" | "failed" | "refused" | "rejected";
/** `asked`: in the model's answer, not yet scheduled; `running`: sent to what runs it;
 * `awaiting_approval`: waits for the node's approver; `finished`: read from the output, whose messages
 * do not say how it ended. */
export type ToolCallStatus = "asked" | "running" | "awaiting_approval" | ToolOutcome | "finished";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface AgentToolCall {
  id: string;
  name: string;
  /** The parsed arguments, or the model's text when it is not JSON. */
  arguments: Json;
  /** `<node>#t<turn>.<index>`: the node id the call's command carries (and its approval's). */
  step: string | null;
  status: ToolCallStatus;
  /** The result as the model sees it. */
  content: string | null;
}

export interface AgentTurn {
  turn: number;
  /** `waiting`: asked of the model, no answer yet. */
  status: "waiting" | "answered";
  /** What the orchestrator told the model before this turn (why its last answer was not taken). */
  prompt: string | null;
  content: string | null;
  calls: AgentToolCall[];
  model: string | null;
  usage: Usage | null;
  cached: boolean;
}

export interface AgentTranscript {
  /** The node attempt the turns belong to: a new attempt starts the loop again. */
  attempt: number;
  task: string | null;
  turns: AgentTurn[];
  /** From the output, once the node succeeded. */
  answer: string | null;
  data: Json;
  model: string | null;
  usage: Usage | null;
  turnCount: number;
  toolCallCount: number;
}

export const AGENT_EVENTS = new Set([
  "agent.turn_requested",
  "agent.turn_completed",
  "agent.tool_call_scheduled",
  "agent.tool_call_finished",
]);

export function emptyTranscript(attempt = 0, task: string | null = null): AgentTranscript {
  return {
    attempt,
    task,
    turns: [],
    answer: null,
    data: null,
    model: null,
    usage: null,
    turnCount: 0,
    toolCallCount: 0,
  };
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The model's arguments text as JSON when it reads as JSON, else the text itself. */
export function parseArguments(value: unknown): Json {
  if (typeof value !== "string") return (value as Json) ?? null;
  try {
    return JSON.parse(value) as Json;
  } catch {
    return value;
  }
}

function readUsage(value: unknown): Usage | null {
  if (!isObject(value)) return null;
  const n = (key: string) => (typeof value[key] === "number" ? (value[key] as number) : 0);
  return {
    prompt_tokens: n("prompt_tokens"),
    completion_tokens: n("completion_tokens"),
    total_tokens: n("total_tokens"),
  };
}

/** An assistant message's tool calls, in the OpenAI format, as calls the model asked for. */
function askedCalls(message: JsonObject): AgentToolCall[] {
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  return calls.filter(isObject).map((call, index) => {
    const fn = isObject(call.function) ? call.function : {};
    return {
      id: typeof call.id === "string" ? call.id : `call_${index + 1}`,
      name: typeof fn.name === "string" ? fn.name : "",
      arguments: parseArguments(fn.arguments),
      step: null,
      status: "asked" as ToolCallStatus,
      content: null,
    };
  });
}

function withTurn(t: AgentTranscript, turn: number, change: (turn: AgentTurn) => AgentTurn): AgentTranscript {
  const existing = t.turns.find((x) => x.turn === turn);
  const current: AgentTurn = existing ?? {
    turn,
    status: "waiting",
    prompt: null,
    content: null,
    calls: [],
    model: null,
    usage: null,
    cached: false,
  };
  const turns = existing
    ? t.turns.map((x) => (x.turn === turn ? change(current) : x))
    : [...t.turns, change(current)].sort((a, b) => a.turn - b.turn);
  return withCounts({ ...t, turns });
}

function withCall(turn: AgentTurn, id: string, change: (call: AgentToolCall) => AgentToolCall): AgentTurn {
  const existing = turn.calls.find((c) => c.id === id);
  const current: AgentToolCall = existing ?? {
    id,
    name: "",
    arguments: null,
    step: null,
    status: "asked",
    content: null,
  };
  return {
    ...turn,
    calls: existing ? turn.calls.map((c) => (c.id === id ? change(current) : c)) : [...turn.calls, change(current)],
  };
}

/** Counts and usage so far, summed over the turns (the output's figures replace them at the end). */
function withCounts(t: AgentTranscript): AgentTranscript {
  const answered = t.turns.filter((x) => x.usage);
  const usage = answered.length
    ? answered.reduce<Usage>(
        (sum, x) => ({
          prompt_tokens: sum.prompt_tokens + x.usage!.prompt_tokens,
          completion_tokens: sum.completion_tokens + x.usage!.completion_tokens,
          total_tokens: sum.total_tokens + x.usage!.total_tokens,
        }),
        { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      )
    : null;
  return {
    ...t,
    usage,
    turnCount: t.turns.filter((x) => x.status === "answered").length,
    toolCallCount: t.turns.reduce((n, x) => n + x.calls.filter((c) => c.status !== "asked").length, 0),
  };
}

/** One agent event folded into the node's transcript (`current` null: none yet). An event of a later
 * attempt of the node starts the transcript afresh. */
export function applyAgentEvent(
  current: AgentTranscript | null,
  event: RunEvent,
  task: string | null,
): AgentTranscript {
  const attempt = typeof event.attempt === "number" ? event.attempt : (current?.attempt ?? 0);
  const t = current && current.attempt >= attempt ? current : emptyTranscript(attempt, current?.task ?? task);
  const turn = typeof event.turn === "number" ? event.turn : 1;
  const callId = typeof event.call_id === "string" ? event.call_id : "";
  switch (event.type) {
    case "agent.turn_requested":
      return withTurn(t, turn, (x) => (typeof event.prompt === "string" ? { ...x, prompt: event.prompt } : x));
    case "agent.turn_completed": {
      const message = isObject(event.message) ? event.message : {};
      return withTurn(t, turn, (x) => ({
        ...x,
        status: "answered",
        content: typeof message.content === "string" ? message.content : null,
        // Calls already scheduled or finished (events replayed out of order) keep what they know.
        calls: askedCalls(message).map((asked) => x.calls.find((c) => c.id === asked.id) ?? asked),
        model: typeof event.model === "string" && event.model ? event.model : x.model,
        usage: readUsage(event.usage),
        cached: event.cached === true,
      }));
    }
    case "agent.tool_call_scheduled":
      return withTurn(t, turn, (x) =>
        withCall(x, callId, (c) => ({
          ...c,
          name: typeof event.tool === "string" ? event.tool : c.name,
          arguments: event.arguments !== undefined ? (event.arguments as Json) : c.arguments,
          step: typeof event.step === "string" ? event.step : c.step,
          status: c.status === "asked" ? (event.awaiting_approval ? "awaiting_approval" : "running") : c.status,
        })),
      );
    case "agent.tool_call_finished":
      return withTurn(t, turn, (x) =>
        withCall(x, callId, (c) => ({
          ...c,
          name: typeof event.tool === "string" ? event.tool : c.name,
          step: typeof event.step === "string" ? event.step : c.step,
          status: (event.outcome as ToolOutcome | undefined) ?? "finished",
          content: typeof event.content === "string" ? event.content : c.content,
        })),
      );
    default:
      return current ?? t;
  }
}

/** A call approved by the node's approver runs now (`approval.decided` names its step). */
export function approvalDecided(t: AgentTranscript, step: string): AgentTranscript {
  return {
    ...t,
    turns: t.turns.map((x) => ({
      ...x,
      calls: x.calls.map((c) =>
        c.step === step && c.status === "awaiting_approval" ? { ...c, status: "running" } : c,
      ),
    })),
  };
}

/** The transcript read from a succeeded node's output: its messages (user: the task; assistant: a turn;
 * tool: a call's result) and its figures. */
export function transcriptFromOutput(output: JsonObject, attempt = 0): AgentTranscript {
  let t = emptyTranscript(attempt);
  const messages = Array.isArray(output.transcript) ? output.transcript.filter(isObject) : [];
  let turn = 0;
  for (const message of messages) {
    if (message.role === "user" && t.task === null && turn === 0)
      t = { ...t, task: typeof message.content === "string" ? message.content : null };
    else if (message.role === "assistant") {
      turn += 1;
      t = withTurn(t, turn, (x) => ({
        ...x,
        status: "answered",
        content: typeof message.content === "string" ? message.content : null,
        calls: askedCalls(message).map((c) => ({ ...c, status: "finished" })),
      }));
    } else if (message.role === "tool" && typeof message.tool_call_id === "string") {
      const id = message.tool_call_id;
      const holder = [...t.turns].reverse().find((x) => x.calls.some((c) => c.id === id));
      if (holder)
        t = withTurn(t, holder.turn, (x) =>
          withCall(x, id, (c) => ({ ...c, content: typeof message.content === "string" ? message.content : "" })),
        );
    }
  }
  return withOutput(t, output);
}

/** The node's final figures (answer, data, usage, counts) over the transcript folded so far. */
export function withOutput(t: AgentTranscript, output: JsonObject): AgentTranscript {
  return {
    ...t,
    answer: typeof output.answer === "string" ? output.answer : t.answer,
    data: output.data !== undefined ? (output.data as Json) : t.data,
    model: typeof output.model === "string" ? output.model : t.model,
    usage: readUsage(output.usage) ?? t.usage,
    turnCount: typeof output.turns === "number" ? output.turns : t.turnCount,
    toolCallCount: typeof output.tool_calls === "number" ? output.tool_calls : t.toolCallCount,
  };
}

/** What the run view shows for an agent node: the folded events when there are any (they say how each
 * call ended), else what its output holds; the task from its input (the rendered config). */
export function agentView(folded: AgentTranscript | null, input: Json, output: Json): AgentTranscript {
  const task = isObject(input) && typeof input.task === "string" ? input.task : null;
  let t: AgentTranscript;
  if (folded && folded.turns.length > 0) t = isObject(output) ? withOutput(folded, output) : folded;
  else if (isObject(output) && Array.isArray(output.transcript)) t = transcriptFromOutput(output, folded?.attempt);
  else t = folded ?? emptyTranscript();
  return { ...t, task: task ?? t.task };
}
