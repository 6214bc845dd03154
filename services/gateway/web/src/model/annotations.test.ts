import { describe, expect, it } from "vitest";
import { editorReducer, initialEditorState, selectedEdge } from "./editor";
import { DESCRIPTION_KEY, copyNodes, definitionToGraph, graphToDefinition } from "./graph";
import type { Definition } from "./types";
import { availableVariables } from "./variables";

const definition: Definition = {
  nodes: [
    { id: "start", type: "trigger", position: { x: 0, y: 0 }, data: { name: "Start", kind: "manual" } },
    {
      id: "check",
      type: "condition",
      position: { x: 0, y: 120 },
      description: "Only big orders",
      data: { name: "Big?", condition: { field: "trigger.n", operator: "greater_than", value: 1 } },
    },
    { id: "done", type: "end", position: { x: 0, y: 240 }, data: { name: "Done" } },
  ],
  edges: [
    { id: "a", source: "start", target: "check", label: "always" },
    { id: "b", source: "check", target: "done", sourceHandle: "true", label: "big order" },
  ],
  settings: { variables: { threshold: 10 } },
};

describe("node descriptions, edge labels and workflow constants", () => {
  it("keeps a node's description and an edge's label through the canvas and back", () => {
    const graph = definitionToGraph(definition);
    expect(graph.nodes[1].data[DESCRIPTION_KEY]).toBe("Only big orders");
    expect(graph.edges.map((e) => e.label)).toEqual(["always", "true · big order"]);
    expect(graphToDefinition(graph.nodes, graph.edges, definition.settings)).toEqual(definition);
  });

  it("copies a description and a label with the nodes", () => {
    const graph = definitionToGraph(definition);
    const copied = copyNodes(graph.nodes.slice(1), graph.edges, graph.nodes, graph.edges);
    expect(copied.nodes[0].data[DESCRIPTION_KEY]).toBe("Only big orders");
    expect(copied.edges[0].label).toBe("true · big order");
    expect(graphToDefinition(copied.nodes, copied.edges).edges[0].label).toBe("big order");
  });

  it("labels the selected edge as one undo step per burst of typing", () => {
    let state = editorReducer(initialEditorState({ workflowId: null, version: null }), {
      type: "definitionLoaded",
      definition,
    });
    state = editorReducer(state, { type: "edgesChanged", changes: [{ id: "b", type: "select", selected: true }] });
    expect(selectedEdge(state.history.present)?.id).toBe("b");
    state = editorReducer(state, { type: "edgeLabelled", id: "b", label: "b", now: 1000 });
    state = editorReducer(state, { type: "edgeLabelled", id: "b", label: "big", now: 1200 });
    const edge = state.history.present.edges.find((e) => e.id === "b")!;
    expect(edge.label).toBe("true · big");
    expect(state.history.past.length).toBe(1);
    state = editorReducer(state, { type: "undo" });
    expect(state.history.present.edges.find((e) => e.id === "b")!.label).toBe("true · big order");
  });

  it("offers the workflow's constants to templates", () => {
    const graph = definitionToGraph(definition);
    const paths = availableVariables("done", graph.nodes, graph.edges, {}, { threshold: 10 }).map((v) => v.path);
    expect(paths).toContain("workflow.vars.threshold");
  });

  it("keeps the workflow's description with the workflow, apart from its definition", () => {
    let state = initialEditorState({ workflowId: null, version: null });
    state = editorReducer(state, { type: "described", description: "Greets" });
    expect(state.description).toBe("Greets");
    expect(state.dirty).toBe(true);
  });
});
