import type { Permission } from "./permissions";

/** The console's navigation: every page, grouped, with the permission it needs to be shown (pages
 * every role reads have none). Pages owned by other features plug in with one line here. */
export interface NavItem {
  to: string;
  label: string;
  needs?: Permission;
}

export const NAV: { group: string; items: NavItem[] }[] = [
  {
    group: "Build",
    items: [
      { to: "/", label: "Workflows" },
      { to: "/pipelines", label: "Records" },
    ],
  },
  {
    group: "Operate",
    items: [
      { to: "/runs", label: "Runs" },
      { to: "/approvals", label: "Approvals" },
      { to: "/tasks", label: "Tasks" },
      { to: "/dead-letters", label: "Dead letters", needs: "manage_tenant" },
      { to: "/notifications", label: "Notifications" },
    ],
  },
  {
    group: "Settings",
    items: [
      { to: "/credentials", label: "Credentials", needs: "manage_tenant" },
      { to: "/settings/ai", label: "AI", needs: "manage_tenant" },
      { to: "/users", label: "Users & API keys", needs: "manage_tenant" },
      { to: "/settings/network", label: "Network policy" },
    ],
  },
];

/** Whether a navigation link is the current page's (the workflow editor and a workflow's runs belong
 * to Workflows, one run to Runs). */
export function isCurrent(item: NavItem, path: string): boolean {
  if (item.to === "/") return path === "/" || path.startsWith("/workflows");
  return path === item.to || path.startsWith(`${item.to}/`);
}
