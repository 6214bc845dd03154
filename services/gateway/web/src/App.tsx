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
import { AllRuns } from "./pages/console/AllRuns";
import { Credentials } from "./pages/console/Credentials";
import { AiSettings } from "./pages/console/AiSettings";
import { NetworkPolicy } from "./pages/console/NetworkPolicy";
import { Users } from "./pages/console/Users";
import { Pipelines } from "./pages/console/Pipelines";
import { Approvals } from "./pages/console/Approvals";
import { Tasks } from "./pages/console/Tasks";
import { MeContext, can, type Me } from "./permissions";
import { NAV, isCurrent } from "./nav";

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [me, setMe] = useState<Me | null>(null);
  const { path, query } = useLocation();
  const route = match(path, query);
  const client = useMemo(() => (session ? api(session.token) : null), [session]);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      saveSession(null);
      setSession(null);
    });
  }, []);

  useEffect(() => {
    setMe(null);
    if (!client) return;
    client
      .me()
      .then(setMe)
      .catch(() => setMe({ roles: [], permissions: ["read"] }));
  }, [client]);

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
    <MeContext.Provider value={me}>
      <div className="app">
        <header className="topbar">
          <Link to="/" className="brand">
            Millrace
          </Link>
          <nav aria-label="main">
            {NAV.map(({ group, items }) => (
              <span className="nav-group" key={group} role="group" aria-label={group}>
                {items
                  .filter((item) => !item.needs || can(me, item.needs))
                  .map((item) => (
                    <Link key={item.to} to={item.to} current={isCurrent(item, path)}>
                      {item.label}
                    </Link>
                  ))}
              </span>
            ))}
          </nav>
          <span className="who">
            <span title={me ? `roles: ${me.roles.join(", ")}` : undefined}>
              {session.email} · {session.tenantId}
              {me && <span className="roles"> · {me.roles.join(", ")}</span>}
            </span>
            <button
              type="button"
              className="small sign-out"
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
          {route.page === "all-runs" && <AllRuns api={client} />}
          {route.page === "credentials" && <Credentials api={client} />}
          {route.page === "ai-settings" && <AiSettings api={client} />}
          {route.page === "network" && <NetworkPolicy api={client} />}
          {route.page === "users" && <Users api={client} />}
          {route.page === "pipelines" && (
            <Pipelines key={route.pipelineId ?? ""} api={client} pipelineId={route.pipelineId} />
          )}
          {route.page === "approvals" && (
            <Approvals key={route.approvalId ?? ""} api={client} approvalId={route.approvalId} />
          )}
          {route.page === "tasks" && <Tasks api={client} />}
          {route.page === "notifications" && <Notifications api={client} notificationId={route.notificationId} />}
          {route.page === "missing" && (
            <p className="empty">
              Nothing here. <Link to="/">Back to the workflows</Link>
            </p>
          )}
        </main>
      </div>
    </MeContext.Provider>
  );
}
