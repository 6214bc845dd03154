import type { Api } from "../api/client";
import { pretty } from "../format";
import type { AgentToolCall, AgentTranscript as Transcript, ToolCallStatus, Usage } from "../model/agentTranscript";
import { ApprovalLink } from "../pages/console/ApprovalLink";

const CALL_LABEL: Record<ToolCallStatus, string> = {
  asked: "asked",
  running: "running",
  awaiting_approval: "waiting for approval",
  succeeded: "succeeded",
  failed: "failed",
  refused: "refused",
  rejected: "rejected",
  finished: "done",
};

/** The badge colours the run view already uses for node states. */
const CALL_CLASS: Record<ToolCallStatus, string> = {
  asked: "run-running",
  running: "run-running",
  awaiting_approval: "run-paused",
  succeeded: "run-succeeded",
  failed: "run-failed",
  refused: "run-failed",
  rejected: "run-failed",
  finished: "run-succeeded",
};

const tokens = (usage: Usage | null) =>
  usage ? `${usage.total_tokens} tokens (${usage.prompt_tokens} prompt, ${usage.completion_tokens} completion)` : "—";

/** An `ai_agent` node's transcript, turn by turn: the task, each model turn (its text and the tools it
 * called with their arguments), each call's outcome and result, the final answer, tokens and counts. */
export function AgentTranscript({ transcript, api, runId }: { transcript: Transcript; api?: Api; runId?: string }) {
  const { task, turns, answer, data } = transcript;
  return (
    <section className="agent-transcript" id="agent-transcript" aria-labelledby="agent-transcript-title">
      <h3 id="agent-transcript-title">Transcript</h3>
      <dl className="facts" id="agent-figures">
        <dt>Turns</dt>
        <dd id="agent-turns">{transcript.turnCount}</dd>
        <dt>Tool calls</dt>
        <dd id="agent-tool-calls">{transcript.toolCallCount}</dd>
        <dt>Usage</dt>
        <dd id="agent-usage">{tokens(transcript.usage)}</dd>
        {transcript.model && (
          <>
            <dt>Model</dt>
            <dd>{transcript.model}</dd>
          </>
        )}
      </dl>
      {task !== null && (
        <div className="agent-task">
          <h4>Task</h4>
          <p className="agent-text">{task}</p>
        </div>
      )}
      {turns.length === 0 && <p className="empty">No turn yet.</p>}
      <ol className="agent-turns">
        {turns.map((turn) => (
          <li key={turn.turn} className="agent-turn" data-turn={turn.turn}>
            <h4>
              Turn {turn.turn}
              {turn.status === "waiting" && <span className="badge run-running">asking the model</span>}
              {turn.cached && <span className="badge">recorded answer</span>}
              {turn.usage && <span className="muted agent-turn-usage"> · {turn.usage.total_tokens} tokens</span>}
            </h4>
            {turn.prompt && (
              <p className="agent-text agent-prompt">
                <span className="agent-call-part">Told the model: </span>
                {turn.prompt}
              </p>
            )}
            {turn.content && <p className="agent-text">{turn.content}</p>}
            {turn.calls.length > 0 && (
              <ul className="agent-calls">
                {turn.calls.map((call) => (
                  <ToolCall key={call.id} call={call} api={api} runId={runId} />
                ))}
              </ul>
            )}
          </li>
        ))}
      </ol>
      {answer !== null && (
        <div className="agent-answer">
          <h4>Answer</h4>
          <p className="agent-text" id="agent-answer">
            {answer}
          </p>
        </div>
      )}
      {data !== null && data !== undefined && (
        <div className="agent-answer">
          <h4>Data</h4>
          <pre tabIndex={0} className="json" id="agent-data">
            {pretty(data)}
          </pre>
        </div>
      )}
    </section>
  );
}

/** A result that is JSON, indented; any other text as it is. */
function readable(content: string): string {
  try {
    const parsed: unknown = JSON.parse(content);
    return typeof parsed === "object" && parsed !== null ? pretty(parsed) : content;
  } catch {
    return content;
  }
}

function ToolCall({ call, api, runId }: { call: AgentToolCall; api?: Api; runId?: string }) {
  const failed = call.status === "failed" || call.status === "refused" || call.status === "rejected";
  return (
    <li className="agent-call" data-call={call.id} data-tool={call.name} data-outcome={call.status}>
      <div className="agent-call-head">
        <span className="agent-call-label">Tool call</span> <code>{call.name || "(no name)"}</code>
        <span className={`badge ${CALL_CLASS[call.status]}`}>{CALL_LABEL[call.status]}</span>
        {call.status === "awaiting_approval" && api && runId && call.step && (
          <ApprovalLink api={api} runId={runId} nodeId={call.step} />
        )}
      </div>
      <div className="agent-call-part">Arguments</div>
      <pre tabIndex={0} className="json agent-arguments">
        {typeof call.arguments === "string" ? call.arguments : pretty(call.arguments)}
      </pre>
      {call.content !== null && (
        <>
          <div className="agent-call-part">Result</div>
          <pre tabIndex={0} className={failed ? "json error agent-result" : "json agent-result"}>
            {readable(call.content)}
          </pre>
        </>
      )}
    </li>
  );
}
