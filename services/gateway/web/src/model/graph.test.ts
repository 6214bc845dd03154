import { describe, expect, it } from "vitest";
import { copyNodes, definitionToGraph, freshNodeId, graphToDefinition, groupSize } from "./graph";
import { sourceHandles } from "./handles";
import type { Definition } from "./types";

const definition: Definition = {
  nodes: [
    { id: "hook", type: "trigger", position: { x: 0, y: 0 }, data: { name: "Hook", kind: "webhook" } },
    {
      id: "big",
      type: "condition",
      position: { x: 0, y: 120 },
      data: { name: "Big?", condition: { field: "trigger.webhook.body.amount", operator: "greater_than", value: 10 } },
    },
    {
      id: "loop",
      type: "for_each",
      position: { x: 300, y: 240 },
      data: { name: "Each", items: "{{ trigger.webhook.body.lines }}" },
    },
    {
      id: "line",
      type: "set",
      position: { x: 20, y: 300 },
      parentId: "loop",
      data: { name: "Line", variables: { sku: "{{ item.sku }}" } },
    },
    { id: "mark", type: "set", position: { x: -200, y: 240 }, data: { name: "Mark", variables: { small: true } } },
  ],
  edges: [
    { id: "e1", source: "hook", target: "big" },
    { id: "e2", source: "big", target: "loop", sourceHandle: "true" },
    { id: "e3", source: "big", target: "mark", sourceHandle: "false" },
  ],
  settings: { retry_count: 1 },
};

describe("definition <-> graph", () => {
  it("round-trips a definition with handles, a for_each body and settings unchanged", () => {
    const graph = definitionToGraph(definition);
    expect(graphToDefinition(graph.nodes, graph.edges, definition.settings)).toEqual(definition);
  });

  it("puts body nodes inside their for_each, after it, confined to it", () => {
    const reordered = {
      ...definition,
      nodes: [definition.nodes[3], ...definition.nodes.filter((n) => n.id !== "line")],
    };
    const { nodes } = definitionToGraph(reordered);
    const ids = nodes.map((n) => n.id);
    expect(ids.indexOf("loop")).toBeLessThan(ids.indexOf("line"));
    const line = nodes.find((n) => n.id === "line")!;
    expect(line.parentId).toBe("loop");
    expect(line.extent).toBe("parent");
  });

  it("sizes a for_each group to hold its body", () => {
    const { nodes } = definitionToGraph(definition);
    const loop = nodes.find((n) => n.id === "loop")!;
    const size = groupSize([{ position: { x: 20, y: 300 } }]);
    expect(loop.style).toEqual(size);
    expect(size.height).toBeGreaterThanOrEqual(300 + 64);
  });

  it("labels edges with their handle and leaves plain edges without one", () => {
    const { edges } = definitionToGraph(definition);
    expect(edges.map((e) => [e.id, e.sourceHandle, e.label])).toEqual([
      ["e1", null, undefined],
      ["e2", "true", "true"],
      ["e3", "false", "false"],
    ]);
    const back = graphToDefinition(definitionToGraph(definition).nodes, edges);
    expect(back.edges[0]).not.toHaveProperty("sourceHandle");
    expect(back).not.toHaveProperty("settings");
  });

  it("rounds positions and does not share data objects with the canvas", () => {
    const graph = definitionToGraph(definition);
    graph.nodes[0].position = { x: 10.6, y: -3.2 };
    const out = graphToDefinition(graph.nodes, graph.edges);
    expect(out.nodes[0].position).toEqual({ x: 11, y: -3 });
    (out.nodes[1].data.condition as { value: number }).value = 99;
    expect((graph.nodes[1].data.condition as { value: number }).value).toBe(10);
  });
});

describe("ids and copies", () => {
  it("picks the smallest free id of a type", () => {
    expect(freshNodeId("set", ["set_1", "set_3"])).toBe("set_2");
    expect(freshNodeId("trigger", [])).toBe("trigger_1");
  });

  it("copies a for_each with its body and the edges among the copies, under fresh ids", () => {
    const graph = definitionToGraph(definition);
    const chosen = graph.nodes.filter((n) => ["big", "loop", "line"].includes(n.id));
    const copy = copyNodes(chosen, graph.edges, graph.nodes, graph.edges);
    expect(copy.nodes.map((n) => n.id)).toEqual(["condition_1", "for_each_1", "set_1"]);
    expect(copy.nodes[2].parentId).toBe("for_each_1");
    expect(copy.nodes[2].position).toEqual({ x: 20, y: 300 });
    expect(copy.nodes[0].position).toEqual({ x: 40, y: 160 });
    expect(copy.edges).toEqual([
      {
        id: "e_condition_1_true_for_each_1",
        source: "condition_1",
        target: "for_each_1",
        sourceHandle: "true",
        label: "true",
      },
    ]);
  });
});

describe("source handles", () => {
  it("gives each type the handles the engine accepts", () => {
    expect(sourceHandles("condition", {}).map((h) => h.id)).toEqual(["true", "false"]);
    expect(sourceHandles("approval", {}).map((h) => h.id)).toEqual(["approved", "rejected", "timeout"]);
    expect(sourceHandles("for_each", {}).map((h) => h.id)).toEqual(["done"]);
    expect(sourceHandles("http_request", {}).map((h) => h.id)).toEqual([null]);
    expect(sourceHandles("switch", { cases: [{ name: "vip" }, { name: "rest" }] }).map((h) => h.id)).toEqual([
      "case:vip",
      "case:rest",
      "default",
    ]);
  });

  it("adds an error handle only when the on-error mode asks for it", () => {
    expect(sourceHandles("http_request", { on_error: "error_edge" }).map((h) => h.id)).toEqual([null, "error"]);
    expect(sourceHandles("http_request", { on_error: "fallback" }).map((h) => h.id)).toEqual([null]);
    expect(sourceHandles("condition", { on_error: "error_edge" }).map((h) => h.id)).toEqual(["true", "false", "error"]);
  });
});
