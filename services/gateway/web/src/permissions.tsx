import { createContext, useContext } from "react";

/** What the signed-in caller may do, as GET /api/v1/me answers; the console hides or disables what
 * the role cannot do and says why (the API refuses it with 403 anyway). */
export type Permission = "read" | "edit_workflows" | "operate_runs" | "edit_records" | "manage_tenant" | "approve";

export interface Me {
  roles: string[];
  permissions: string[];
}

/** Who has the permission, for the reason shown next to a disabled control. */
const HOLDERS: Record<Permission, string> = {
  read: "every role",
  edit_workflows: "admins and editors",
  operate_runs: "admins and operators",
  edit_records: "admins, editors and operators",
  manage_tenant: "admins",
  approve: "admins and approvers",
};

export function can(me: Me | null, permission: Permission): boolean {
  return me?.permissions.includes(permission) ?? false;
}

/** Starting a manual (test) run: operators run workflows, editors test the ones they build. */
export function canStartRuns(me: Me | null): boolean {
  return can(me, "operate_runs") || can(me, "edit_workflows");
}

export function reason(permission: Permission): string {
  return `only ${HOLDERS[permission]} may do this (your roles lack “${permission}”)`;
}

export const MeContext = createContext<Me | null>(null);

export function useMe(): Me | null {
  return useContext(MeContext);
}

/** A line that says what the caller cannot do here, and why. */
export function NotAllowed({ permission, what }: { permission: Permission; what: string }) {
  return (
    <p className="not-allowed" role="note">
      You can see {what}, but {reason(permission)}.
    </p>
  );
}
