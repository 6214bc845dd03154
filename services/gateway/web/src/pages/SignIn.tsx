import { useState } from "react";
import { signIn, type Session } from "../api/client";

export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [tenant, setTenant] = useState(() => localStorage.getItem("millrace.tenant") ?? "");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <div className="signin">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            const session = await signIn(tenant.trim(), email.trim(), password);
            localStorage.setItem("millrace.tenant", tenant.trim());
            onSignedIn(session);
          } catch (err) {
            setError((err as Error).message);
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1>Millrace</h1>
        <label>
          Tenant
          <input
            id="tenant"
            value={tenant}
            onChange={(e) => setTenant(e.target.value)}
            required
            autoComplete="organization"
          />
        </label>
        <label>
          Email
          <input
            id="email"
            type="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            required
            autoComplete="username"
          />
        </label>
        <label>
          Password
          <input
            id="password"
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
            autoComplete="current-password"
          />
        </label>
        {error && (
          <div className="error" role="alert">
            {error}
          </div>
        )}
        <button id="sign-in" type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </div>
  );
}
