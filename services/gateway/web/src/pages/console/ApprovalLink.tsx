import { useEffect, useState } from "react";
import type { Api } from "../../api/client";
import { Link } from "../../router";

/** From a run's node that waits for a decision to its approval in the inbox. */
export function ApprovalLink({ api, runId, nodeId }: { api: Api; runId: string; nodeId: string }) {
  const [id, setId] = useState<string | null>(null);
  useEffect(() => {
    api
      .get<{ id: string; node_id: string; status: string }[]>(`/approvals?run_id=${runId}`)
      .then((items) => setId(items.find((a) => a.node_id === nodeId && a.status === "pending")?.id ?? null))
      .catch(() => setId(null));
  }, [api, runId, nodeId]);
  return id ? (
    <>
      {" · "}
      <Link to={`/approvals/${id}`} className="approval-link">
        Decide in the inbox
      </Link>
    </>
  ) : null;
}
