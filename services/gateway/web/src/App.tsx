import { useEffect, useMemo, useState } from "react";
import { api, loadSession, saveSession, setUnauthenticatedHandler, type Session } from "./api/client";
import { Link, match, navigate, useLocation } from "./router";
import { SignIn } from "./pages/SignIn";
import { WorkflowList } from "./pages/WorkflowList";
import { Editor } from "./pages/Editor";
import { RunsList } from "./pages/RunsList";
import { RunView } from "./pages/RunView";
import { DeadLetters } from "./pages/DeadLetters";
import { Notifications } from "./pages/Notifications";

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const { path, query } = useLocation();
  const route = match(path, query);
  const client = useMemo(() => (session ? api(session.token) : null), [session]);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      saveSession(null);
      setSession(null);
    });
  }, []);

  if (!session || !client || route.page === "signin") {
    return (
      <SignIn
        onSignedIn={(next) => {
          saveSession(next);
          setSession(next);
          if (route.page === "signin") navigate("/", true);
        }}
      />
    );
  }

  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">
          Millrace
        </Link>
        <nav>
          <Link to="/">Workflows</Link>
          <Link to="/dead-letters">Dead letters</Link>
          <Link to="/notifications">Notifications</Link>
        </nav>
        <span className="who">
          {session.email} · {session.tenantId}
          <button
            type="button"
            className="small"
            onClick={() => {
              saveSession(null);
              setSession(null);
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <main>
        {route.page === "workflows" && <WorkflowList api={client} />}
        {route.page === "editor" && (
          <Editor
            key={`${route.workflowId}:${route.version}`}
            api={client}
            workflowId={route.workflowId}
            version={route.version}
          />
        )}
        {route.page === "runs" && (
          <RunsList key={route.workflowId} api={client} token={session.token} workflowId={route.workflowId} />
        )}
        {route.page === "run" && <RunView key={route.runId} api={client} token={session.token} runId={route.runId} />}
        {route.page === "dead-letters" && <DeadLetters api={client} letterId={route.letterId} />}
        {route.page === "notifications" && <Notifications api={client} notificationId={route.notificationId} />}
        {route.page === "missing" && (
          <p className="empty">
            Nothing here. <Link to="/">Back to the workflows</Link>
          </p>
        )}
      </main>
    </div>
  );
}
