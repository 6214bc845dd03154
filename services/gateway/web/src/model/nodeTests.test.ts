import { describe, expect, it } from "vitest";
import { codeSuggestions, pythonPath, withPinnedFields, wordBefore, type Pin } from "./nodeTests";

describe("pinned sample outputs in suggestions", () => {
  const variables = [
    { path: "trigger", hint: "" },
    { path: "nodes.calc.output", hint: "output of calc" },
  ];

  it("adds the fields of an earlier node's pin and of the trigger's", () => {
    const pins: Pin[] = [
      { node_id: "calc", output: { result: { total: 3 } }, pinned_at: "" },
      { node_id: "start", output: { customer: { name: "Ada" } }, pinned_at: "" },
      { node_id: "later", output: { x: 1 }, pinned_at: "" },
    ];
    const paths = withPinnedFields(variables, pins, "start").map((v) => v.path);
    expect(paths).toEqual([
      "trigger",
      "nodes.calc.output",
      "nodes.calc.output.result",
      "nodes.calc.output.result.total",
      "trigger.customer",
      "trigger.customer.name",
    ]);
  });
});

describe("the code editor's suggestions", () => {
  it("writes a template path as Python subscripts", () => {
    expect(pythonPath("nodes.calc.output.total")).toBe('nodes["calc"]["output"]["total"]');
    expect(pythonPath("trigger")).toBe("trigger");
  });

  it("finds the word before the caret and the names that start with it", () => {
    expect(wordBefore("x = tri", 7)).toEqual({ start: 4, partial: "tri" });
    expect(wordBefore("x = ", 4)).toBeNull();
    expect(codeSuggestions([{ path: "trigger.customer", hint: "" }], "tri").map((v) => v.path)).toEqual([
      "trigger",
      "trigger.customer",
    ]);
  });
});
