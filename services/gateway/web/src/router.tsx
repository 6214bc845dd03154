import { useEffect, useState } from "react";

/** A small History API router: the gateway answers every client route with index.html. */
export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function useLocation(): { path: string; query: URLSearchParams } {
  const [location, setLocation] = useState(() => ({ path: window.location.pathname, search: window.location.search }));
  useEffect(() => {
    const update = () => setLocation({ path: window.location.pathname, search: window.location.search });
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return { path: location.path, query: new URLSearchParams(location.search) };
}

export type Route =
  | { page: "signin" }
  | { page: "workflows" }
  | { page: "editor"; workflowId: string | null; version: number | null }
  | { page: "runs"; workflowId: string }
  | { page: "run"; runId: string }
  | { page: "dead-letters"; letterId: number | null }
  | { page: "notifications"; notificationId: string | null }
  | { page: "all-runs" }
  | { page: "credentials" }
  | { page: "ai-settings" }
  | { page: "network" }
  | { page: "users" }
  | { page: "pipelines"; pipelineId: string | null }
  | { page: "approvals"; approvalId: string | null }
  | { page: "tasks" }
  | { page: "missing" };

/** Console pages whose address is one fixed path. */
const FIXED: Record<string, Route> = {
  runs: { page: "all-runs" },
  credentials: { page: "credentials" },
  "settings/ai": { page: "ai-settings" },
  "settings/network": { page: "network" },
  users: { page: "users" },
  tasks: { page: "tasks" },
  pipelines: { page: "pipelines", pipelineId: null },
  approvals: { page: "approvals", approvalId: null },
};

export function match(path: string, query: URLSearchParams): Route {
  const parts = path.replace(/\/+$/, "").split("/").filter(Boolean);
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "workflows")) return { page: "workflows" };
  if (parts[0] === "signin" && parts.length === 1) return { page: "signin" };
  if (parts[0] === "workflows" && parts.length === 2) {
    const version = Number(query.get("version"));
    return { page: "editor", workflowId: parts[1] === "new" ? null : parts[1], version: version > 0 ? version : null };
  }
  if (parts[0] === "workflows" && parts.length === 3 && parts[2] === "runs")
    return { page: "runs", workflowId: parts[1] };
  const fixed = FIXED[parts.join("/")];
  if (fixed) return fixed;
  if (parts[0] === "pipelines" && parts.length === 2)
    return { page: "pipelines", pipelineId: decodeURIComponent(parts[1]) };
  if (parts[0] === "approvals" && parts.length === 2) return { page: "approvals", approvalId: parts[1] };
  if (parts[0] === "runs" && parts.length === 2) return { page: "run", runId: parts[1] };
  if (parts[0] === "dead-letters" && parts.length === 1) return { page: "dead-letters", letterId: null };
  if (parts[0] === "dead-letters" && parts.length === 2 && /^\d+$/.test(parts[1]))
    return { page: "dead-letters", letterId: Number(parts[1]) };
  if (parts[0] === "notifications" && parts.length <= 2)
    return { page: "notifications", notificationId: parts[1] ?? null };
  return { page: "missing" };
}

export function Link({
  to,
  children,
  className,
  current,
}: {
  to: string;
  children: React.ReactNode;
  className?: string;
  current?: boolean;
}) {
  return (
    <a
      href={to}
      className={className}
      aria-current={current ? "page" : undefined}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}
