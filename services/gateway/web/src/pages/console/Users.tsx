import { useState } from "react";
import type { Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { when } from "../../format";
import { NotAllowed, can, useMe } from "../../permissions";
import { ErrorLine, Notice, describe, useLoaded } from "./common";

const ROLES = ["admin", "editor", "operator", "viewer", "approver"];

type User = Schemas["UserOut"];
type ApiKey = Schemas["ApiKeyOut"];

function RolePicker({ id, value, onChange }: { id: string; value: string[]; onChange: (roles: string[]) => void }) {
  return (
    <fieldset className="roles" id={id}>
      <legend>Roles</legend>
      {ROLES.map((role) => (
        <label key={role} className="inline">
          <input
            type="checkbox"
            name={role}
            checked={value.includes(role)}
            onChange={(e) => onChange(e.target.checked ? [...value, role] : value.filter((r) => r !== role))}
          />
          {role}
        </label>
      ))}
    </fieldset>
  );
}

/** The tenant's users (invite, change roles, disable) and API keys (create, shown once; revoke). */
export function Users({ api }: { api: Api }) {
  const me = useMe();
  const admin = can(me, "manage_tenant");
  const users = useLoaded(() => (admin ? api.get<User[]>("/users") : Promise.resolve([] as User[])), [api, admin]);
  const keys = useLoaded(
    () => (admin ? api.get<ApiKey[]>("/api-keys") : Promise.resolve([] as ApiKey[])),
    [api, admin],
  );
  const [invite, setInvite] = useState({ email: "", password: "", roles: ["viewer"] });
  const [keyForm, setKeyForm] = useState({ name: "", roles: ["operator"] });
  const [newKey, setNewKey] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const act = async (done: string, action: () => Promise<unknown>) => {
    try {
      await action();
      setError(null);
      setNotice(done);
      await Promise.all([users.reload(), keys.reload()]);
      return true;
    } catch (err) {
      setNotice(null);
      setError(describe(err));
      return false;
    }
  };

  if (!admin)
    return (
      <section className="page console-page" id="users-page">
        <h1>Users &amp; API keys</h1>
        {me && <NotAllowed permission="manage_tenant" what="this page" />}
      </section>
    );

  return (
    <section className="page console-page" id="users-page">
      <div className="page-head">
        <h1>Users &amp; API keys</h1>
      </div>
      <ErrorLine error={error ?? users.error ?? keys.error} />
      <Notice text={notice} />
      <h2>Users</h2>
      <table className="list" id="users">
        <thead>
          <tr>
            <th>Email</th>
            <th>Roles</th>
            <th>State</th>
            <th>Since</th>
            <th>
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(users.value ?? []).map((u) => (
            <tr key={u.id} data-user={u.email}>
              <td>{u.email}</td>
              <td>
                <RolePicker
                  id={`roles-${u.id}`}
                  value={u.roles}
                  onChange={(roles) =>
                    roles.length > 0 &&
                    void act(`Changed the roles of ${u.email}.`, () => api.patch(`/users/${u.id}`, { roles }))
                  }
                />
              </td>
              <td>{u.disabled ? <span className="badge">disabled</span> : "active"}</td>
              <td>{when(u.created_at)}</td>
              <td className="actions">
                <button
                  type="button"
                  className="small"
                  onClick={() =>
                    void act(`${u.disabled ? "Enabled" : "Disabled"} ${u.email}.`, () =>
                      api.patch(`/users/${u.id}`, { disabled: !u.disabled }),
                    )
                  }
                >
                  {u.disabled ? "Enable" : "Disable"}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        className="card form-grid"
        id="invite-form"
        onSubmit={async (e) => {
          e.preventDefault();
          if (await act(`Added ${invite.email}.`, () => api.post("/users", invite)))
            setInvite({ email: "", password: "", roles: ["viewer"] });
        }}
      >
        <h3>Add a user</h3>
        <label>
          Email
          <input
            id="invite-email"
            type="email"
            required
            value={invite.email}
            onChange={(e) => setInvite({ ...invite, email: e.target.value })}
          />
        </label>
        <label>
          First password (10+ characters; tell it to them)
          <input
            id="invite-password"
            type="password"
            minLength={10}
            required
            autoComplete="new-password"
            value={invite.password}
            onChange={(e) => setInvite({ ...invite, password: e.target.value })}
          />
        </label>
        <RolePicker id="invite-roles" value={invite.roles} onChange={(roles) => setInvite({ ...invite, roles })} />
        <div className="actions">
          <button type="submit" className="primary" id="invite-save">
            Add user
          </button>
        </div>
      </form>

      <h2>API keys</h2>
      {newKey && (
        <div className="card notice" id="new-api-key" role="status">
          The new key, shown this once: <code>{newKey}</code>
        </div>
      )}
      {(keys.value ?? []).length === 0 ? (
        <p className="empty" id="no-api-keys">
          No API keys. Create one for a script or another system to call the API.
        </p>
      ) : (
        <table className="list" id="api-keys">
          <thead>
            <tr>
              <th>Name</th>
              <th>Prefix</th>
              <th>Roles</th>
              <th>Last used</th>
              <th>State</th>
              <th>
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(keys.value ?? []).map((k) => (
              <tr key={k.id} data-api-key={k.name}>
                <td>{k.name}</td>
                <td>
                  <code>{k.prefix}…</code>
                </td>
                <td>{k.roles.join(", ")}</td>
                <td>{when(k.last_used_at)}</td>
                <td>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : "active"}</td>
                <td className="actions">
                  {!k.revoked_at && (
                    <button
                      type="button"
                      className="small danger"
                      onClick={() => void act(`Revoked ${k.name}.`, () => api.del(`/api-keys/${k.id}`))}
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        className="card form-grid"
        id="api-key-form"
        onSubmit={async (e) => {
          e.preventDefault();
          let key = "";
          const ok = await act(`Created ${keyForm.name}.`, async () => {
            key = (await api.post<{ key: string }>("/api-keys", keyForm)).key;
          });
          if (ok) {
            setNewKey(key);
            setKeyForm({ name: "", roles: ["operator"] });
          }
        }}
      >
        <h3>Create an API key</h3>
        <label>
          Name
          <input
            id="api-key-name"
            required
            value={keyForm.name}
            onChange={(e) => setKeyForm({ ...keyForm, name: e.target.value })}
          />
        </label>
        <RolePicker id="api-key-roles" value={keyForm.roles} onChange={(roles) => setKeyForm({ ...keyForm, roles })} />
        <div className="actions">
          <button type="submit" className="primary" id="api-key-save">
            Create key
          </button>
        </div>
      </form>
    </section>
  );
}
