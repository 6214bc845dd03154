import { describe, expect, it } from "vitest";
import type { JsonObject } from "./types";
import { ancestors, availableVariables, insertVariable, loopItems, openExpression } from "./variables";

type TestNode = { id: string; type: string; parentId?: string; data: JsonObject };

const nodes: TestNode[] = [
  { id: "hook", type: "trigger", data: { name: "Hook", kind: "webhook" } },
  { id: "find", type: "record_find", data: { name: "Find", pipeline_id: "leads" } },
  { id: "mark", type: "set", data: { name: "Mark", variables: { tier: "gold" } } },
  { id: "loop", type: "for_each", data: { name: "Each", items: "{{ nodes.find.output.records }}" } },
  { id: "line", type: "http_request", parentId: "loop", data: { name: "Line", url: "https://x" } },
  { id: "after", type: "end", data: { name: "After" } },
  { id: "side", type: "set", data: { name: "Side", variables: { x: 1 } } },
];
const edges = [
  { source: "hook", target: "find" },
  { source: "find", target: "mark" },
  { source: "mark", target: "loop" },
  { source: "loop", target: "after" },
  { source: "hook", target: "side" },
];

describe("variables available to a node", () => {
  it("offers the webhook trigger's fields, earlier outputs and vars, and nothing from other branches", () => {
    const paths = availableVariables("loop", nodes, edges).map((v) => v.path);
    expect(paths).toContain("trigger.webhook.body");
    expect(paths).toContain("nodes.find.output.records");
    expect(paths).toContain("vars.tier");
    expect(paths).not.toContain("nodes.side.output");
    expect(paths).not.toContain("vars.x");
    expect(paths).not.toContain("item");
  });

  it("offers item and index inside a body, and the for_each's ancestors but not the for_each", () => {
    const paths = availableVariables("line", nodes, edges).map((v) => v.path);
    expect(paths).toEqual(expect.arrayContaining(["item", "index", "nodes.find.output", "vars.tier"]));
    expect(paths).not.toContain("nodes.loop.output");
    expect(ancestors("after", nodes, edges).sort()).toEqual(["find", "hook", "loop", "mark"]);
  });

  it("offers a node's error only when it takes the error edge", () => {
    const withError = nodes.map((n) => (n.id === "find" ? { ...n, data: { ...n.data, on_error: "error_edge" } } : n));
    expect(availableVariables("mark", withError, edges).map((v) => v.path)).toContain("nodes.find.error");
    expect(availableVariables("mark", nodes, edges).map((v) => v.path)).not.toContain("nodes.find.error");
  });
});

describe("nested loops", () => {
  const nested: TestNode[] = [
    { id: "start", type: "trigger", data: { name: "Start", kind: "manual" } },
    { id: "rows", type: "for_each", data: { name: "Rows", items: "{{ trigger.rows }}", item_variable: "row" } },
    { id: "label", type: "set", parentId: "rows", data: { name: "Label", variables: { n: 1 } } },
    { id: "cells", type: "for_each", parentId: "rows", data: { name: "Cells", items: "{{ row.cells }}" } },
    { id: "cell", type: "set", parentId: "cells", data: { name: "Cell", variables: { v: 1 } } },
    { id: "deep", type: "for_each", parentId: "cells", data: { name: "Deep", items: "{{ item }}" } },
    { id: "leaf", type: "set", parentId: "deep", data: { name: "Leaf", variables: { w: 1 } } },
  ];
  const nestedEdges = [
    { source: "start", target: "rows" },
    { source: "label", target: "cells" },
    { source: "cell", target: "deep" },
  ];

  it("offers every enclosing loop's item by its name, the inner one hiding an outer one of the same name", () => {
    expect(loopItems("cell", nested)).toEqual([
      { name: "item", loopId: "cells" },
      { name: "row", loopId: "rows" },
    ]);
    expect(loopItems("leaf", nested)).toEqual([
      { name: "item", loopId: "deep" },
      { name: "row", loopId: "rows" },
    ]);
    expect(loopItems("rows", nested)).toEqual([]);
  });

  it("offers the nodes of every enclosing body to the innermost one", () => {
    const paths = availableVariables("leaf", nested, nestedEdges).map((v) => v.path);
    expect(paths).toEqual(expect.arrayContaining(["row", "item", "index", "nodes.label.output", "nodes.cell.output"]));
    expect(paths).not.toContain("nodes.deep.output");
  });
});

describe("template expressions", () => {
  it("finds the open expression before the caret", () => {
    expect(openExpression("Hi {{ trig", 10)).toEqual({ start: 5, partial: "trig" });
    expect(openExpression("Hi {{ x }} y", 12)).toBeNull();
    expect(openExpression("no braces", 5)).toBeNull();
  });

  it("completes the expression and closes it", () => {
    expect(insertVariable("Hi {{ trig", 10, "trigger.webhook.body")).toEqual({
      text: "Hi {{ trigger.webhook.body }}",
      caret: 29,
    });
    expect(insertVariable("a ", 2, "vars.x")).toEqual({ text: "a {{ vars.x }}", caret: 14 });
  });
});
