import { useState } from "react";
import type { Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { when } from "../../format";
import { Link } from "../../router";
import { ErrorLine, describe, useLoaded } from "./common";

type Task = Schemas["TaskOut"];

/** The caller's tasks (from task_notify nodes and paused runs): open ones first, mark them done. */
export function Tasks({ api }: { api: Api }) {
  const [status, setStatus] = useState("open");
  const { value, error, setError, reload } = useLoaded(
    () => api.get<{ items: Task[] }>(`/tasks?status=${status}&limit=200`),
    [api, status],
  );
  const items = value?.items ?? null;
  return (
    <section className="page console-page" id="tasks-page">
      <div className="page-head">
        <h1>Tasks</h1>
        <div className="filters">
          <select aria-label="task status" id="task-status" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="open">open</option>
            <option value="done">done</option>
          </select>
        </div>
      </div>
      <ErrorLine error={error} />
      {items === null ? (
        <p className="empty">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty" id="no-tasks">
          {status === "open"
            ? "Nothing to do. Tasks appear here when a workflow’s task node or a paused run assigns one to you or your role."
            : "No finished tasks yet."}
        </p>
      ) : (
        <ul className="inbox" id="tasks">
          {items.map((t) => (
            <li key={t.id} className="card" data-task-id={t.id}>
              <div className="inbox-head">
                <strong>{t.title}</strong>
                <span className="muted">
                  {when(t.created_at)} · for {t.assignee_user ?? `role ${t.assignee_role}`}
                </span>
              </div>
              {t.message && <p>{t.message}</p>}
              <div className="actions">
                {t.run_id && <Link to={`/runs/${t.run_id}`}>Open the run</Link>}
                {t.status === "open" ? (
                  <button
                    type="button"
                    className="small primary"
                    onClick={() =>
                      api
                        .post(`/tasks/${t.id}/done`)
                        .then(reload)
                        .catch((err) => setError(describe(err)))
                    }
                  >
                    Mark done
                  </button>
                ) : (
                  <span className="muted">done {when(t.done_at)}</span>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
