import { useCallback, useEffect, useState } from "react";
import type { Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { between, pretty, when } from "../../format";
import type { JsonObject } from "../../model/types";
import { NotAllowed, can, useMe } from "../../permissions";
import { Link, navigate } from "../../router";
import { ErrorLine, Notice, describe, useLoaded } from "./common";

type Pipeline = Schemas["PipelineOut"];
type Record_ = Schemas["RecordOut"];

function parseObject(text: string): JsonObject {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("a record is a JSON object");
  return value as JsonObject;
}

/** The pipelines (create one) or, with a pipeline chosen, its records. */
export function Pipelines({ api, pipelineId }: { api: Api; pipelineId: string | null }) {
  return pipelineId ? <PipelineRecords api={api} pipelineId={pipelineId} /> : <PipelineList api={api} />;
}

function PipelineList({ api }: { api: Api }) {
  const me = useMe();
  const { value: items, error, setError, reload } = useLoaded(() => api.get<Pipeline[]>("/pipelines"), [api]);
  const [form, setForm] = useState({ id: "", name: "" });
  const editor = can(me, "edit_workflows");
  return (
    <section className="page console-page" id="pipelines-page">
      <div className="page-head">
        <h1>Pipelines and records</h1>
      </div>
      <p className="hint">
        A pipeline holds records; a record trigger starts a workflow when one is created, changed or deleted.
      </p>
      <ErrorLine error={error} />
      {items === null ? (
        <p className="empty">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty" id="no-pipelines">
          No pipelines yet. {editor ? "Create one below, then add records to it." : "An editor or admin creates them."}
        </p>
      ) : (
        <table className="list" id="pipelines">
          <thead>
            <tr>
              <th>Pipeline</th>
              <th>Id</th>
              <th>Records</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {items.map((p) => (
              <tr key={p.id} data-pipeline={p.id}>
                <td>
                  <Link to={`/pipelines/${encodeURIComponent(p.id)}`}>{p.name}</Link>
                </td>
                <td>
                  <code>{p.id}</code>
                </td>
                <td>{p.record_count}</td>
                <td>{when(p.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editor ? (
        <form
          className="card form-grid"
          id="pipeline-form"
          onSubmit={async (e) => {
            e.preventDefault();
            try {
              await api.post("/pipelines", { id: form.id.trim(), name: form.name.trim() || form.id.trim() });
              navigate(`/pipelines/${encodeURIComponent(form.id.trim())}`);
            } catch (err) {
              setError(describe(err));
              await reload();
            }
          }}
        >
          <h2>Create a pipeline</h2>
          <label>
            Id (used by record triggers)
            <input
              id="pipeline-id"
              required
              pattern="[A-Za-z0-9_.:\-]+"
              value={form.id}
              onChange={(e) => setForm({ ...form, id: e.target.value })}
            />
          </label>
          <label>
            Name
            <input id="pipeline-name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
          </label>
          <div className="actions">
            <button type="submit" className="primary" id="pipeline-save">
              Create pipeline
            </button>
          </div>
        </form>
      ) : (
        me && <NotAllowed permission="edit_workflows" what="the pipelines" />
      )}
    </section>
  );
}

function PipelineRecords({ api, pipelineId }: { api: Api; pipelineId: string }) {
  const me = useMe();
  const mayEdit = can(me, "edit_records");
  const base = `/pipelines/${encodeURIComponent(pipelineId)}`;
  const pipeline = useLoaded(() => api.get<Pipeline>(base), [api, base]);
  const [q, setQ] = useState("");
  const [rows, setRows] = useState<Record_[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [editing, setEditing] = useState<Record_ | "new" | null>(null);
  const [text, setText] = useState("{}");
  const [runs, setRuns] = useState<{ record: string; items: Schemas["RunSummary"][] } | null>(null);

  const page = useCallback(
    (after: string | null) => {
      const query = new URLSearchParams({ limit: "25" });
      if (q.trim()) query.set("q", q.trim());
      if (after) query.set("cursor", after);
      return api.get<Schemas["RecordPage"]>(`${base}/records?${query}`);
    },
    [api, base, q],
  );
  const load = useCallback(
    () =>
      page(null)
        .then((p) => {
          setRows(p.items);
          setCursor(p.next_cursor ?? null);
        })
        .catch((err) => setError(describe(err))),
    [page],
  );
  useEffect(() => {
    const timer = setTimeout(() => void load(), 250);
    return () => clearTimeout(timer);
  }, [load]);

  const edit = (target: Record_ | "new") => {
    setEditing(target);
    setText(target === "new" ? "{\n  \n}" : pretty(target.data));
  };

  const save = async () => {
    try {
      const data = parseObject(text);
      if (editing === "new") await api.post(`${base}/records`, { data });
      else if (editing) await api.put(`${base}/records/${editing.id}`, { data });
      setNotice(editing === "new" ? "Record created." : "Record saved.");
      setError(null);
      setEditing(null);
      await load();
    } catch (err) {
      setNotice(null);
      setError(describe(err));
    }
  };

  return (
    <section className="page console-page" id="records-page">
      <div className="page-head">
        <h1>
          <Link to="/pipelines">Pipelines</Link> / {pipeline.value?.name ?? pipelineId}
        </h1>
        <div className="filters">
          <input
            type="search"
            id="records-q"
            aria-label="search in records"
            placeholder="Search in records"
            value={q}
            onChange={(e) => setQ(e.target.value)}
          />
          {mayEdit && (
            <button type="button" className="primary" id="new-record" onClick={() => edit("new")}>
              New record
            </button>
          )}
        </div>
      </div>
      {!mayEdit && me && <NotAllowed permission="edit_records" what="the records" />}
      <ErrorLine error={error ?? pipeline.error} />
      <Notice text={notice} />
      {editing && (
        <div className="card" id="record-editor">
          <label>
            {editing === "new" ? "New record (JSON object)" : `Record ${editing.id.slice(0, 8)} (JSON object)`}
            <textarea
              id="record-data"
              rows={8}
              className="mono"
              value={text}
              onChange={(e) => setText(e.target.value)}
            />
          </label>
          <div className="actions">
            <button type="button" className="primary" id="record-save" onClick={() => void save()}>
              Save record
            </button>
            <button type="button" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {rows === null ? (
        <p className="empty">Loading…</p>
      ) : rows.length === 0 ? (
        <p className="empty" id="no-records">
          {q
            ? "No record matches."
            : "No records yet. Add one with “New record”; record triggers start their workflows."}
        </p>
      ) : (
        <table className="list" id="records">
          <thead>
            <tr>
              <th>Record</th>
              <th>Data</th>
              <th>Changed</th>
              <th>
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-record-id={r.id}>
                <td>
                  <code>{r.id.slice(0, 8)}</code>
                </td>
                <td>
                  <code className="record-data">{JSON.stringify(r.data).slice(0, 160)}</code>
                </td>
                <td>{when(r.updated_at)}</td>
                <td className="actions">
                  {mayEdit && (
                    <button type="button" className="small" onClick={() => edit(r)}>
                      Edit
                    </button>
                  )}
                  <button
                    type="button"
                    className="small record-runs"
                    onClick={() =>
                      api
                        .get<Schemas["RunPage"]>(`/runs?record_id=${r.id}&limit=50`)
                        .then((p) => setRuns({ record: r.id, items: p.items }))
                        .catch((err) => setError(describe(err)))
                    }
                  >
                    Runs
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button
          type="button"
          id="records-more"
          onClick={() =>
            page(cursor)
              .then((p) => {
                setRows([...(rows ?? []), ...p.items]);
                setCursor(p.next_cursor ?? null);
              })
              .catch((err) => setError(describe(err)))
          }
        >
          Load more
        </button>
      )}
      {runs && (
        <div className="card" id="record-runs">
          <h2>Runs record {runs.record.slice(0, 8)} started</h2>
          {runs.items.length === 0 ? (
            <p className="empty">None: no active workflow has a record trigger on this pipeline for that change.</p>
          ) : (
            <ul>
              {runs.items.map((run) => (
                <li key={run.run_id}>
                  <Link to={`/runs/${run.run_id}`}>
                    <code>{run.run_id.slice(0, 8)}</code>
                  </Link>{" "}
                  <span className={`badge run-${run.status}`}>{run.status}</span> {when(run.started_at)} ·{" "}
                  {between(run.started_at, run.finished_at)}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
