import type { Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { when } from "../../format";
import { ErrorLine, useLoaded } from "./common";

type Policy = Schemas["NetworkPolicyOut"];

/** The tenant's network policy, read-only: only the installation's operator changes it. */
export function NetworkPolicy({ api }: { api: Api }) {
  const { value: policy, error } = useLoaded(() => api.get<Policy>("/settings/network"), [api]);
  return (
    <section className="page console-page" id="network-page">
      <div className="page-head">
        <h1>Network policy</h1>
      </div>
      <p className="hint">
        HTTP, webhook and AI nodes may call public addresses. Private and loopback networks are reachable only where the
        installation’s operator allowed them for this tenant (<code>millrace-admin allow-networks</code>); a tenant
        cannot open them itself, so this page shows the policy without changing it.
      </p>
      <ErrorLine error={error} />
      {policy &&
        (policy.allow_private_targets ? (
          <p id="network-allowed">Every private and loopback address is allowed.</p>
        ) : policy.allowed_networks.length === 0 ? (
          <p className="empty" id="network-public-only">
            Public addresses only. Ask your operator to allow a private network if a node must reach one.
          </p>
        ) : (
          <>
            <ul id="network-allowed">
              {policy.allowed_networks.map((n) => (
                <li key={n}>
                  <code>{n}</code>
                </li>
              ))}
            </ul>
            <p className="hint">Set {when(policy.updated_at)}.</p>
          </>
        ))}
    </section>
  );
}
