import { useState } from "react";
import type { Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { when } from "../../format";
import { NotAllowed, can, useMe } from "../../permissions";
import { ErrorLine, Notice, describe, useLoaded } from "./common";

type Credential = Schemas["CredentialOut"];

type Kind = "bearer" | "basic" | "header" | "hmac";

/** The fields each kind of secret takes (see POST /api/v1/credentials). */
const FIELDS: Record<Kind, { key: string; label: string; secret: boolean }[]> = {
  bearer: [{ key: "token", label: "Token", secret: true }],
  basic: [
    { key: "username", label: "Username", secret: false },
    { key: "password", label: "Password", secret: true },
  ],
  header: [
    { key: "header_name", label: "Header name", secret: false },
    { key: "value", label: "Header value", secret: true },
  ],
  hmac: [{ key: "secret", label: "Shared secret (16+ characters)", secret: true }],
};

/** A secret's form; what is typed is sent once and never shown again (the API never returns it). */
function SecretForm({
  name,
  onSave,
  onCancel,
}: {
  name: string | null;
  onSave: (name: string, secret: Record<string, string>) => Promise<void>;
  onCancel?: () => void;
}) {
  const [newName, setNewName] = useState("");
  const [kind, setKind] = useState<Kind>("bearer");
  const [values, setValues] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const prefix = name ? `rotate-${name}` : "credential";
  return (
    <form
      className="card form-grid"
      id={name ? `rotate-form-${name}` : "credential-form"}
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        try {
          await onSave(name ?? newName.trim(), { kind, ...values });
          setValues({});
          setNewName("");
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2>{name ? `Rotate “${name}”` : "Add a credential"}</h2>
      {!name && (
        <label>
          Name
          <input
            id="credential-name"
            required
            pattern="[A-Za-z0-9_.\-]+"
            value={newName}
            onChange={(e) => setNewName(e.target.value)}
          />
          <span className="hint">Nodes name it in their “credential” field: letters, digits, _ . -</span>
        </label>
      )}
      <label>
        Kind
        <select id={`${prefix}-kind`} value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
          <option value="bearer">bearer token</option>
          <option value="basic">basic (username and password)</option>
          <option value="header">a header</option>
          <option value="hmac">HMAC secret (signed webhooks)</option>
        </select>
      </label>
      {FIELDS[kind].map((field) => (
        <label key={field.key}>
          {field.label}
          <input
            id={`${prefix}-${field.key}`}
            type={field.secret ? "password" : "text"}
            autoComplete="off"
            required={field.key !== "password"}
            value={values[field.key] ?? ""}
            onChange={(e) => setValues({ ...values, [field.key]: e.target.value })}
          />
        </label>
      ))}
      <div className="actions">
        <button type="submit" className="primary" disabled={busy} id={`${prefix}-save`}>
          {name ? "Rotate" : "Save credential"}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

export function Credentials({ api }: { api: Api }) {
  const me = useMe();
  const admin = can(me, "manage_tenant");
  const {
    value: items,
    error,
    setError,
    reload,
  } = useLoaded(
    () => (admin ? api.get<Credential[]>("/credentials") : Promise.resolve([] as Credential[])),
    [api, admin],
  );
  const [rotating, setRotating] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const act = async (done: string, action: () => Promise<unknown>) => {
    try {
      await action();
      setNotice(done);
      setError(null);
      await reload();
    } catch (err) {
      setNotice(null);
      setError(describe(err));
      throw err;
    }
  };

  return (
    <section className="page console-page" id="credentials-page">
      <div className="page-head">
        <h1>Credentials</h1>
      </div>
      <p className="hint">
        Secrets that HTTP, webhook and AI nodes use by name. They are encrypted at rest and never shown again after
        saving; rotate one to replace it.
      </p>
      {!admin && me && <NotAllowed permission="manage_tenant" what="that credentials exist" />}
      <ErrorLine error={error} />
      <Notice text={notice} />
      {admin && (
        <>
          {items === null ? (
            <p className="empty">Loading…</p>
          ) : items.length === 0 ? (
            <p className="empty" id="no-credentials">
              No credentials yet. Add one below, then name it in a node’s “credential” field.
            </p>
          ) : (
            <table className="list" id="credentials">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Kind</th>
                  <th>Secret</th>
                  <th>Created</th>
                  <th>Last rotated</th>
                  <th>
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((c) => (
                  <tr key={c.name} data-credential={c.name}>
                    <td>
                      <code>{c.name}</code>
                    </td>
                    <td>{c.kind}</td>
                    <td className="muted">•••••• (write-only)</td>
                    <td>{when(c.created_at)}</td>
                    <td>{when(c.updated_at)}</td>
                    <td className="actions">
                      <button type="button" className="small" onClick={() => setRotating(c.name)}>
                        Rotate
                      </button>
                      <button
                        type="button"
                        className="small danger"
                        onClick={() =>
                          window.confirm(`Delete “${c.name}”? Nodes that name it will fail.`) &&
                          act(`Deleted ${c.name}.`, () => api.del(`/credentials/${encodeURIComponent(c.name)}`)).catch(
                            () => undefined,
                          )
                        }
                      >
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {rotating && (
            <SecretForm
              key={rotating}
              name={rotating}
              onCancel={() => setRotating(null)}
              onSave={(name, secret) =>
                act(`Rotated ${name}.`, () => api.put(`/credentials/${encodeURIComponent(name)}`, { secret })).then(
                  () => setRotating(null),
                )
              }
            />
          )}
          <SecretForm
            name={null}
            onSave={(name, secret) => act(`Saved ${name}.`, () => api.post("/credentials", { name, secret }))}
          />
        </>
      )}
    </section>
  );
}
