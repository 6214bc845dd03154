import { useState } from "react";
import type { Api } from "../api/client";
import { AgentTranscript } from "../components/AgentTranscript";
import { duration, pretty, when } from "../format";
import { agentView } from "../model/agentTranscript";
import { STATUS_LABEL, type NodeRunState } from "../model/runState";
import type { Run } from "../model/types";
import { Link } from "../router";
import { ApprovalLink } from "./console/ApprovalLink";

/** A run's node, selected on the run view's canvas: its state, attempts and times, error, an agent's
 * transcript, output and input; for a for_each body node, the item picked. */
export function NodeDetail({
  api,
  runId,
  nodeId,
  instances,
  logRow,
}: {
  api: Api;
  runId: string;
  nodeId: string;
  instances: NodeRunState[];
  logRow: (key: string) => Run["nodes"][number] | null;
}) {
  const [index, setIndex] = useState(0);
  const instance = instances[Math.min(index, instances.length - 1)];
  if (!instance) {
    return (
      <div data-detail-node={nodeId}>
        <h2>{nodeId}</h2>
        <p className="empty">Not reached (yet).</p>
      </div>
    );
  }
  const row = logRow(instance.key);
  const input = instance.input ?? row?.input ?? null;
  const output = instance.output ?? row?.output ?? null;
  const error = instance.error ?? (row?.error as NodeRunState["error"]) ?? null;
  return (
    <div data-detail-node={nodeId}>
      <h2>{nodeId}</h2>
      {instances.length > 1 && (
        <select aria-label="item" value={index} onChange={(e) => setIndex(Number(e.target.value))}>
          {instances.map((inst, i) => (
            <option key={inst.key} value={i}>
              {inst.key} · {STATUS_LABEL[inst.status]}
            </option>
          ))}
        </select>
      )}
      <dl className="facts">
        <dt>State</dt>
        <dd id="detail-status">
          {STATUS_LABEL[instance.status]}
          {instance.status === "waiting_approval" && <ApprovalLink api={api} runId={runId} nodeId={nodeId} />}
        </dd>
        <dt>Attempts</dt>
        <dd id="detail-attempts">{instance.attempt || row?.attempts || 0}</dd>
        <dt>Duration</dt>
        <dd>{duration(instance.durationMs ?? row?.duration_ms)}</dd>
        <dt>Scheduled</dt>
        <dd>{when(instance.scheduledAt ?? row?.scheduled_at)}</dd>
        <dt>Finished</dt>
        <dd>{when(instance.finishedAt ?? row?.finished_at)}</dd>
        {instance.retryAt && (
          <>
            <dt>Next attempt</dt>
            <dd>{when(instance.retryAt)}</dd>
          </>
        )}
      </dl>
      {error && (
        <>
          <h3>Error</h3>
          <pre tabIndex={0} className="json error" id="detail-error">
            {pretty(error)}
          </pre>
        </>
      )}
      {instance.nodeType === "sub_workflow" && childOf(input, output) && (
        <p>
          <Link className="detail-child-run" to={`/runs/${childOf(input, output)}`}>
            Open the sub-workflow run
          </Link>
        </p>
      )}
      {(instance.nodeType === "ai_agent" || row?.node_type === "ai_agent") && (
        <AgentTranscript transcript={agentView(instance.agent, input, output)} api={api} runId={runId} />
      )}
      <h3>Output</h3>
      <pre tabIndex={0} className="json" id="detail-output">
        {output === null ? "—" : pretty(output)}
      </pre>
      <h3>Input</h3>
      <pre tabIndex={0} className="json" id="detail-input">
        {input === null ? "—" : pretty(input)}
      </pre>
    </div>
  );
}

/** The child run of a sub_workflow node: named in its input (and, fire and forget, its output). */
function childOf(input: unknown, output: unknown): string | null {
  for (const value of [input, output])
    if (value && typeof value === "object" && typeof (value as Record<string, unknown>).run_id === "string")
      return (value as Record<string, string>).run_id;
  return null;
}
