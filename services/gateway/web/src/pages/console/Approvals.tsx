import { useState } from "react";
import type { Api } from "../../api/client";
import { pretty, when } from "../../format";
import { can, reason, useMe } from "../../permissions";
import { Link, navigate } from "../../router";
import { ErrorLine, Notice, describe, useLoaded } from "./common";

interface Summary {
  id: string;
  run_id: string;
  node_id: string;
  workflow_id: string;
  title: string;
  status: string;
  assignee: { user?: string | null; role?: string | null };
  quorum: number;
  requested_at: string;
  due_at: string | null;
}

interface Detail extends Summary {
  description: string;
  data: unknown;
  snapshot_hash: string;
  requested_by: string | null;
  decisions: { decided_by: string; decision: string; note: string; decided_at: string }[];
  history: { actor: string | null; action: string; at: string }[];
}

function assignee(a: Summary["assignee"]): string {
  return a.user ? a.user : a.role ? `role ${a.role}` : "—";
}

/** The approvals inbox (the approval service's API, through the gateway): pending approvals for the
 * caller or their roles; one approval's data, decide it with a note. */
export function Approvals({ api, approvalId }: { api: Api; approvalId: string | null }) {
  return approvalId ? <ApprovalDetail api={api} id={approvalId} /> : <Inbox api={api} />;
}

function Inbox({ api }: { api: Api }) {
  const { value: items, error } = useLoaded(() => api.get<Summary[]>("/approvals"), [api]);
  return (
    <section className="page console-page" id="approvals-page">
      <div className="page-head">
        <h1>Approvals</h1>
      </div>
      <ErrorLine error={error} />
      {items === null ? (
        !error && <p className="empty">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty" id="no-approvals">
          Nothing waits for your decision. Approval nodes of running workflows put their requests here.
        </p>
      ) : (
        <table className="list" id="approvals">
          <thead>
            <tr>
              <th>Request</th>
              <th>For</th>
              <th>Requested</th>
              <th>Due</th>
              <th>Run</th>
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.id} data-approval-id={a.id}>
                <td>
                  <Link to={`/approvals/${a.id}`}>{a.title}</Link>
                </td>
                <td>{assignee(a.assignee)}</td>
                <td>{when(a.requested_at)}</td>
                <td>{when(a.due_at)}</td>
                <td>
                  <Link to={`/runs/${a.run_id}`}>
                    <code>{a.run_id.slice(0, 8)}</code>
                  </Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function ApprovalDetail({ api, id }: { api: Api; id: string }) {
  const me = useMe();
  const mayDecide = can(me, "approve");
  const { value: approval, error, setError, reload } = useLoaded(() => api.get<Detail>(`/approvals/${id}`), [api, id]);
  const [note, setNote] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const decide = async (decision: "approved" | "rejected") => {
    if (!approval) return;
    try {
      const result = await api.post<{ status: string }>(`/approvals/${id}/decision`, {
        decision,
        note,
        snapshot_hash: approval.snapshot_hash,
      });
      setNotice(`Decided: ${decision}; the approval is ${result.status}.`);
      setError(null);
      await reload();
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <section className="page console-page" id="approval-page">
      <div className="page-head">
        <h1>
          <Link to="/approvals">Approvals</Link> / {approval?.title ?? "…"}
        </h1>
      </div>
      <ErrorLine error={error} />
      <Notice text={notice} />
      {approval && (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <span className={`badge approval-${approval.status}`} id="approval-status">
                {approval.status}
              </span>
            </dd>
            <dt>For</dt>
            <dd>{assignee(approval.assignee)}</dd>
            <dt>Run</dt>
            <dd>
              <Link to={`/runs/${approval.run_id}`}>
                <code>{approval.run_id.slice(0, 8)}</code>
              </Link>{" "}
              node <code>{approval.node_id}</code>
            </dd>
            <dt>Requested</dt>
            <dd>{when(approval.requested_at)}</dd>
            <dt>Due</dt>
            <dd>{when(approval.due_at)}</dd>
          </dl>
          {approval.description && <p>{approval.description}</p>}
          <h2>Data to decide on</h2>
          <pre tabIndex={0} className="json" id="approval-data">
            {pretty(approval.data)}
          </pre>
          {approval.status === "pending" &&
            (mayDecide ? (
              <div className="card">
                <label>
                  Note (optional)
                  <textarea id="approval-note" rows={2} value={note} onChange={(e) => setNote(e.target.value)} />
                </label>
                <div className="actions">
                  <button type="button" className="primary" id="approve" onClick={() => void decide("approved")}>
                    Approve
                  </button>
                  <button type="button" className="danger" id="reject" onClick={() => void decide("rejected")}>
                    Reject
                  </button>
                </div>
              </div>
            ) : (
              <p className="not-allowed">You cannot decide: {reason("approve")}.</p>
            ))}
          {approval.decisions.length > 0 && (
            <>
              <h2>Decisions</h2>
              <ul id="approval-decisions">
                {approval.decisions.map((d) => (
                  <li key={`${d.decided_by}${d.decided_at}`}>
                    {d.decision} by {d.decided_by} {when(d.decided_at)}
                    {d.note && `: ${d.note}`}
                  </li>
                ))}
              </ul>
            </>
          )}
          <button type="button" onClick={() => navigate("/approvals")}>
            Back to the inbox
          </button>
        </>
      )}
    </section>
  );
}
