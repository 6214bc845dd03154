import { describe, expect, it } from "vitest";
import { countRequest, describeScope, tally, toggled, toggledAll } from "./bulk";

describe("bulk selections", () => {
  it("asks for the picked runs by id, or for the filter without its empty parts", () => {
    expect(countRequest("retry", { kind: "selected", runIds: ["a", "b"] })).toEqual({
      action: "retry",
      run_ids: ["a", "b"],
    });
    expect(countRequest("cancel", { kind: "matching", filter: { workflow_id: "w", status: undefined } })).toEqual({
      action: "cancel",
      filter: { workflow_id: "w" },
    });
  });

  it("says what a selection is in words", () => {
    expect(describeScope({ kind: "selected", runIds: ["a", "b"] })).toBe("the 2 selected");
    expect(describeScope({ kind: "matching", filter: { status: "failed", workflow_id: "0123456789" } })).toBe(
      "all matching status failed, workflow 01234567",
    );
    expect(describeScope({ kind: "matching", filter: {} })).toBe("all");
  });

  it("tallies outcomes in a fixed order", () => {
    expect(
      tally([
        { run_id: "a", outcome: "skipped", reason: "the run is completed" },
        { run_id: "b", outcome: "cancelled" },
        { run_id: "c", outcome: "cancelled" },
      ]),
    ).toBe("2 cancelled, 1 skipped");
    expect(tally([])).toBe("no runs");
  });

  it("toggles one run, and every run shown at once", () => {
    expect(toggled(["a"], "b")).toEqual(["a", "b"]);
    expect(toggled(["a", "b"], "a")).toEqual(["b"]);
    expect(toggledAll(["x"], ["a", "b"])).toEqual(["x", "a", "b"]);
    expect(toggledAll(["x", "a", "b"], ["a", "b"])).toEqual(["x"]);
    expect(toggledAll([], [])).toEqual([]);
  });
});
