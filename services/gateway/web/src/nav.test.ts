import { describe, expect, it } from "vitest";
import { NAV, isCurrent } from "./nav";
import { can, canStartRuns, reason } from "./permissions";
import { match } from "./router";

const none = new URLSearchParams();

describe("the console's navigation", () => {
  it("routes every page of the navigation to a page of the app", () => {
    for (const { items } of NAV)
      for (const item of items) {
        if (item.to === "/notifications") continue; // the notifications feature brings its page
        expect(match(item.to, none).page, item.to).not.toBe("missing");
      }
  });

  it("reads a pipeline's and an approval's address", () => {
    expect(match("/pipelines/orders%3Aeu", none)).toEqual({ page: "pipelines", pipelineId: "orders:eu" });
    expect(match("/approvals/abc", none)).toEqual({ page: "approvals", approvalId: "abc" });
    expect(match("/settings/ai", none)).toEqual({ page: "ai-settings" });
    expect(match("/runs", none)).toEqual({ page: "all-runs" });
    expect(match("/runs/r1", none)).toEqual({ page: "run", runId: "r1" });
  });

  it("marks the editor and a workflow's runs as Workflows, one run as Runs", () => {
    const workflows = NAV[0].items[0];
    const runs = NAV[1].items[0];
    expect(isCurrent(workflows, "/workflows/w1/runs")).toBe(true);
    expect(isCurrent(workflows, "/runs/r1")).toBe(false);
    expect(isCurrent(runs, "/runs/r1")).toBe(true);
  });
});

describe("permissions", () => {
  const editor = { roles: ["editor"], permissions: ["read", "edit_workflows", "edit_records"] };
  const viewer = { roles: ["viewer"], permissions: ["read"] };

  it("lets editors and operators start runs, not viewers", () => {
    expect(canStartRuns(editor)).toBe(true);
    expect(canStartRuns({ roles: ["operator"], permissions: ["read", "operate_runs"] })).toBe(true);
    expect(canStartRuns(viewer)).toBe(false);
    expect(canStartRuns(null)).toBe(false);
  });

  it("says who may do what the caller cannot", () => {
    expect(can(viewer, "manage_tenant")).toBe(false);
    expect(reason("manage_tenant")).toBe("only admins may do this (your roles lack “manage_tenant”)");
  });
});
