/** The live run view's state: a pure fold of run events (as streamed over SSE) into per-node
 * states. `foldRun(events)` equals applying `applyEvent` one event at a time. */
import type { Json, JsonObject, NodeExecution, Run, RunEvent } from "./types";
import { AGENT_EVENTS, applyAgentEvent, approvalDecided, type AgentTranscript } from "./agentTranscript";

export type NodeStatus =
  | "pending"
  | "scheduled"
  | "running"
  | "waiting"
  | "waiting_approval"
  | "retrying"
  | "succeeded"
  | "failed"
  | "skipped"
  | "abandoned";

export const STATUS_LABEL: Record<NodeStatus, string> = {
  pending: "pending",
  scheduled: "scheduled",
  running: "running",
  waiting: "waiting",
  waiting_approval: "waiting for approval",
  retrying: "retrying",
  succeeded: "succeeded",
  failed: "failed",
  skipped: "skipped",
  abandoned: "abandoned (run ended)",
};

export interface NodeRunState {
  key: string;
  nodeId: string;
  nodeType: string;
  status: NodeStatus;
  attempt: number;
  input: Json;
  output: Json;
  error: { type: string; message: string; retryable?: boolean } | null;
  scheduledAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  retryAt: string | null;
  takenHandles: string[] | null;
  /** An `ai_agent` node's turns and tool calls, folded from its agent events. */
  agent: AgentTranscript | null;
}

export type RunStatus =
  "pending" | "running" | "paused" | "completed" | "failed" | "cancelled" | "timed_out" | "throttled";

export interface RunViewState {
  status: RunStatus;
  lastSeq: number;
  reason: string | null;
  failedNodeId: string | null;
  /** The nodes a paused run waits on (their on_error is pause): a person retries or skips them. */
  pausedNodes: string[];
  /** By node instance key: the node id plus `[i]` per enclosing for_each item. */
  nodes: Record<string, NodeRunState>;
  output: Json;
}

export const INITIAL_RUN_STATE: RunViewState = {
  status: "pending",
  lastSeq: -1,
  reason: null,
  failedNodeId: null,
  pausedNodes: [],
  nodes: {},
  output: null,
};

const TERMINAL_RUN_EVENTS: Record<string, RunStatus> = {
  "run.completed": "completed",
  "run.failed": "failed",
  "run.cancelled": "cancelled",
  "run.timed_out": "timed_out",
  "run.throttled": "throttled",
};

export function isTerminal(status: RunStatus | string): boolean {
  return ["completed", "failed", "cancelled", "timed_out", "throttled"].includes(status);
}

/** `body[3][1]` -> `body`. */
export function baseNodeId(key: string): string {
  const cut = key.indexOf("[");
  return cut < 0 ? key : key.slice(0, cut);
}

function blank(key: string, nodeType = ""): NodeRunState {
  return {
    key,
    nodeId: baseNodeId(key),
    nodeType,
    status: "pending",
    attempt: 0,
    input: null,
    output: null,
    error: null,
    scheduledAt: null,
    finishedAt: null,
    durationMs: null,
    retryAt: null,
    takenHandles: null,
    agent: null,
  };
}

function withNode(state: RunViewState, key: string, change: (node: NodeRunState) => NodeRunState): RunViewState {
  const current = state.nodes[key] ?? blank(key);
  return { ...state, nodes: { ...state.nodes, [key]: change(current) } };
}

export function applyEvent(state: RunViewState, event: RunEvent): RunViewState {
  if (typeof event.seq === "number" && event.seq <= state.lastSeq) return state;
  const next = applyFresh(state, event);
  return { ...next, lastSeq: typeof event.seq === "number" ? event.seq : state.lastSeq };
}

function applyFresh(state: RunViewState, event: RunEvent): RunViewState {
  const key = event.node_id ?? "";
  const at = event.occurred_at ?? null;
  if (AGENT_EVENTS.has(event.type)) return applyAgent(state, key, event);
  // `K#m1`, `K#t1.0`: an agent node's model turn or tool call (its timers, approvals, child runs).
  if (key.includes("#")) return applyAgentStep(state, key, event);
  switch (event.type) {
    case "run.started":
      return { ...state, status: "running" };
    case "node.scheduled":
      // Sent to its runner (or started in place): running, as a snapshot's "scheduled" row reads.
      // Later events refine it (a delay's timer: waiting; an approval: waiting for a decision).
      return withNode(state, key, (n) => ({
        ...n,
        nodeType: event.node_type ?? n.nodeType,
        status: "running",
        attempt: event.attempt ?? n.attempt + 1,
        input: (event.input as Json) ?? null,
        error: null,
        scheduledAt: at,
        finishedAt: null,
        durationMs: null,
        retryAt: null,
        // A new attempt of an agent node runs its loop again.
        agent: n.agent && n.agent.attempt < (event.attempt ?? n.attempt + 1) ? null : n.agent,
      }));
    case "timer.scheduled": {
      if (!event.node_id) return state;
      const purpose = event.purpose as string;
      const status: NodeStatus | null =
        purpose === "node_timeout" ? "running" : purpose === "delay" || purpose === "event_wait" ? "waiting" : null;
      if (!status) return state;
      return withNode(state, key, (n) => (isSettled(n.status) ? n : { ...n, status }));
    }
    case "for_each.item_scheduled":
      return withNode(state, key, (n) => (isSettled(n.status) ? n : { ...n, status: "running" }));
    case "approval.requested":
      return withNode(state, key, (n) => ({ ...n, status: "waiting_approval" }));
    case "child_run.requested":
      // A sub_workflow node that waits for its child run.
      return event.mode === "wait"
        ? withNode(state, key, (n) => (isSettled(n.status) ? n : { ...n, status: "waiting" }))
        : state;
    case "node.retry_scheduled":
      return withNode(state, key, (n) => ({
        ...n,
        nodeType: event.node_type ?? n.nodeType,
        status: "retrying",
        attempt: event.attempt ?? n.attempt,
        error: event.error ?? null,
        retryAt: event.retry_at ?? null,
        finishedAt: at,
      }));
    case "node.succeeded":
      return withNode(state, key, (n) => ({
        ...n,
        nodeType: event.node_type ?? n.nodeType,
        status: "succeeded",
        attempt: event.attempt ?? n.attempt,
        output: (event.output as Json) ?? null,
        error: null,
        finishedAt: at,
        durationMs: event.duration_ms ?? null,
        takenHandles: event.taken_handles ?? null,
      }));
    case "node.failed":
      return withNode(state, key, (n) => ({
        ...n,
        nodeType: event.node_type ?? n.nodeType,
        status: "failed",
        attempt: event.attempt ?? n.attempt,
        error: event.error ?? null,
        finishedAt: at,
        durationMs: event.duration_ms ?? null,
      }));
    case "node.skipped":
      return withNode(state, key, (n) => ({
        ...n,
        nodeType: event.node_type ?? n.nodeType,
        status: "skipped",
        finishedAt: at,
      }));
    case "run.paused":
      return {
        ...state,
        status: "paused",
        reason: (event.reason as string | undefined) ?? null,
        pausedNodes: [...state.pausedNodes, key],
      };
    case "run.continued": {
      let next: RunViewState = { ...state, status: "running", reason: null, pausedNodes: [] };
      if (event.action === "retry")
        for (const id of (event.node_ids as string[] | undefined) ?? [])
          next = withNode(next, id, (n) => ({ ...n, status: "pending", error: null }));
      return next;
    }
    case "run.retried": {
      let next: RunViewState = { ...state, status: "running", reason: null, failedNodeId: null, output: null };
      for (const id of event.node_ids ?? [])
        next = withNode(next, id, (n) => ({ ...n, status: "pending", error: null }));
      return next;
    }
    default: {
      const terminal = TERMINAL_RUN_EVENTS[event.type];
      if (!terminal) return state;
      // A run that ended early leaves its in-flight nodes abandoned (as the stored node log says).
      const nodes =
        terminal === "completed" || terminal === "throttled"
          ? state.nodes
          : Object.fromEntries(
              Object.entries(state.nodes).map(([id, n]) => [
                id,
                isSettled(n.status) || n.status === "pending" ? n : { ...n, status: "abandoned" as NodeStatus },
              ]),
            );
      return {
        ...state,
        nodes,
        status: terminal,
        reason: (event.reason as string | undefined) ?? null,
        failedNodeId: (event.failed_node_id as string | undefined) ?? null,
        // The run's final output: the output of its top-level end node that finished last.
        output: terminal === "completed" ? ((event.final_output as Json | undefined) ?? null) : null,
      };
    }
  }
}

function applyAgent(state: RunViewState, key: string, event: RunEvent): RunViewState {
  return withNode(state, key, (n) => {
    const task = n.input && typeof n.input === "object" && !Array.isArray(n.input) ? n.input.task : null;
    const agent = applyAgentEvent(n.agent, event, typeof task === "string" ? task : null);
    return { ...n, nodeType: n.nodeType || "ai_agent", agent, status: agentStatus(n.status, agent) };
  });
}

function applyAgentStep(state: RunViewState, step: string, event: RunEvent): RunViewState {
  const key = step.slice(0, step.indexOf("#"));
  const node = state.nodes[key];
  if (!node) return state;
  if (event.type === "approval.requested")
    return withNode(state, key, (n) => (isSettled(n.status) ? n : { ...n, status: "waiting_approval" }));
  if (event.type === "approval.decided" && node.agent)
    return withNode(state, key, (n) => {
      const agent = approvalDecided(n.agent!, step);
      return { ...n, agent, status: agentStatus(n.status, agent) };
    });
  return state;
}

/** A running agent waits for its approver while one of its calls does. */
function agentStatus(status: NodeStatus, agent: AgentTranscript): NodeStatus {
  if (isSettled(status) || status === "abandoned") return status;
  const waiting = agent.turns.some((t) => t.calls.some((c) => c.status === "awaiting_approval"));
  return waiting ? "waiting_approval" : "running";
}

function isSettled(status: NodeStatus): boolean {
  return status === "succeeded" || status === "failed" || status === "skipped";
}

export function foldRun(events: RunEvent[], initial: RunViewState = INITIAL_RUN_STATE): RunViewState {
  return events.reduce(applyEvent, initial);
}

const STORED_STATUS: Record<string, NodeStatus> = {
  pending: "pending",
  scheduled: "running",
  retrying: "retrying",
  succeeded: "succeeded",
  failed: "failed",
  skipped: "skipped",
  waiting: "waiting_approval",
  abandoned: "abandoned",
};

/** The same state read from the run's stored node log (GET /runs/{id}), for a finished run or
 * when no stream is available. */
export function stateFromRun(run: Run): RunViewState {
  const nodes: Record<string, NodeRunState> = {};
  for (const row of run.nodes) if (!row.node_id.includes("#")) nodes[row.node_id] = fromExecution(row);
  const status = (
    ["running", "paused", "completed", "failed", "cancelled", "timed_out", "throttled"].includes(run.status)
      ? run.status
      : "running"
  ) as RunStatus;
  // A stored run names no paused node: the failed nodes of a paused run are the ones it waits on.
  const pausedNodes = status === "paused" ? run.nodes.filter((n) => n.status === "failed").map((n) => n.node_id) : [];
  return {
    status,
    lastSeq: -1,
    reason: run.error,
    failedNodeId: null,
    pausedNodes,
    nodes,
    output: run.final_output ?? null,
  };
}

function fromExecution(row: NodeExecution): NodeRunState {
  const error =
    row.error && typeof row.error === "object" && !Array.isArray(row.error) ? (row.error as JsonObject) : null;
  let status = STORED_STATUS[row.status] ?? "scheduled";
  if (row.node_type === "approval" && status === "running") status = "waiting_approval";
  if (row.node_type === "wait_for_event" && status === "running") status = "waiting";
  return {
    ...blank(row.node_id, row.node_type),
    status,
    attempt: row.attempts,
    input: row.input,
    output: row.output,
    error: error
      ? {
          type: String(error.type ?? "error"),
          message: String(error.message ?? ""),
          retryable: Boolean(error.retryable),
        }
      : null,
    scheduledAt: row.scheduled_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
  };
}

export interface NodeSummary {
  /** The state shown on the canvas node: the node itself, or for a body node its most advanced instance. */
  status: NodeStatus;
  attempt: number;
  instances: NodeRunState[];
  counts: Partial<Record<NodeStatus, number>>;
}

const PRIORITY: NodeStatus[] = [
  "failed",
  "retrying",
  "waiting_approval",
  "running",
  "waiting",
  "scheduled",
  "succeeded",
  "skipped",
  "pending",
];

/** Per canvas node: its state, folding the instances of a for_each body node into one summary. */
export function summarize(state: RunViewState): Record<string, NodeSummary> {
  const out: Record<string, NodeSummary> = {};
  for (const node of Object.values(state.nodes)) {
    const summary = out[node.nodeId] ?? { status: "pending", attempt: 0, instances: [], counts: {} };
    summary.instances.push(node);
    summary.counts[node.status] = (summary.counts[node.status] ?? 0) + 1;
    out[node.nodeId] = summary;
  }
  for (const summary of Object.values(out)) {
    summary.instances.sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true }));
    const present = PRIORITY.filter((s) => summary.counts[s]);
    // Any live instance outranks finished ones; otherwise a failure shows before successes.
    summary.status = present[0] ?? "pending";
    summary.attempt = Math.max(...summary.instances.map((i) => i.attempt));
  }
  return out;
}
