import { describe, expect, it } from "vitest";
import {
  canConnect,
  copySelection,
  editorReducer,
  fitGroups,
  initialEditorState,
  selectedNode,
  triggerKind,
  type EditorAction,
  type EditorState,
} from "./editor";
import type { CanvasNode } from "./graph";
import type { Definition, Json, NodeType, Workflow } from "./types";
import nodeTypes from "../test/node-types.json";

const catalog = nodeTypes as unknown as NodeType[];

const definition: Definition = {
  nodes: [
    { id: "hook", type: "trigger", position: { x: 0, y: 0 }, data: { name: "Hook", kind: "webhook" } },
    {
      id: "route",
      type: "switch",
      position: { x: 0, y: 120 },
      data: {
        name: "Route",
        cases: [
          { name: "big", condition: { field: "trigger.amount", operator: "greater_than", value: 10 } },
          { name: "small", condition: { field: "trigger.amount", operator: "less_than", value: 10 } },
        ],
      },
    },
    { id: "loop", type: "for_each", position: { x: 300, y: 240 }, data: { name: "Each", items: "{{ trigger.x }}" } },
    { id: "line", type: "set", position: { x: 20, y: 60 }, parentId: "loop", data: { name: "Line", variables: {} } },
    { id: "mark", type: "set", position: { x: -200, y: 240 }, data: { name: "Mark", variables: {} } },
  ],
  edges: [
    { id: "e1", source: "hook", target: "route" },
    { id: "e2", source: "route", target: "loop", sourceHandle: "case:big" },
    { id: "e3", source: "route", target: "mark", sourceHandle: "case:small" },
  ],
  settings: { retry_count: 1 },
};

const workflow: Workflow = {
  id: "7b0e4a4e-0000-4000-8000-000000000002",
  name: "Route",
  status: "draft",
  latest_version: 1,
  active_version: null,
  created_at: "2026-11-22T10:00:00Z",
  updated_at: "2026-11-22T10:00:00Z",
  run_count: 0,
  success_rate: null,
  last_run_at: null,
  definition,
};

function reduce(state: EditorState, ...actions: EditorAction[]): EditorState {
  return actions.reduce(editorReducer, state);
}

/** A new workflow with the node types known. */
const blank = () => reduce(initialEditorState({ workflowId: null, version: null }), { type: "catalogLoaded", catalog });

/** The stored workflow above, loaded. */
const opened = (version: number | null = null) =>
  reduce(
    initialEditorState({ workflowId: workflow.id, version }),
    { type: "catalogLoaded", catalog },
    { type: "workflowLoaded", workflow },
    { type: "definitionLoaded", definition },
  );

const nodes = (state: EditorState) => state.history.present.nodes;
const edges = (state: EditorState) => state.history.present.edges;
const ids = (state: EditorState) => nodes(state).map((n) => n.id);
const byId = (state: EditorState, id: string) => nodes(state).find((n) => n.id === id)!;

describe("opening the editor", () => {
  it("starts a new workflow loaded and editable, a stored one waiting for its definition, a version read only", () => {
    const fresh = initialEditorState({ workflowId: null, version: null });
    expect(fresh).toMatchObject({ loaded: true, readOnly: false, dirty: false, name: "Untitled workflow" });
    expect(fresh.history).toEqual({ past: [], present: { nodes: [], edges: [] }, future: [] });
    expect(initialEditorState({ workflowId: workflow.id, version: null })).toMatchObject({ loaded: false });
    expect(initialEditorState({ workflowId: workflow.id, version: 2 })).toMatchObject({ readOnly: true });
  });

  it("keeps the node types and condition presets", () => {
    const presets = [
      {
        id: "is_set",
        name: "Is set",
        description: "anything",
        condition: { field: "trigger", operator: "is_not_empty" },
      },
    ];
    const state = reduce(blank(), { type: "presetsLoaded", presets });
    expect(state.catalog).toBe(catalog);
    expect(state.presets).toBe(presets);
  });

  it("loads a workflow's name, settings and graph with an empty history", () => {
    const state = opened();
    expect(state).toMatchObject({ workflow, name: "Route", settings: { retry_count: 1 }, loaded: true, dirty: false });
    expect(ids(state)).toEqual(["hook", "route", "loop", "line", "mark"]);
    expect(byId(state, "line")).toMatchObject({ parentId: "loop", extent: "parent" });
    expect(edges(state).map((e) => e.label)).toEqual([undefined, "big", "small"]);
    expect(state.history.past).toEqual([]);
    // The workflow shows before its definition arrives (an old version's takes a second request).
    const named = reduce(initialEditorState({ workflowId: workflow.id, version: 1 }), {
      type: "workflowLoaded",
      workflow,
    });
    expect(named).toMatchObject({ workflow, name: "Route", loaded: false, readOnly: true });
    expect(named.history.present.nodes).toEqual([]);
    const bare = reduce(named, { type: "definitionLoaded", definition: { nodes: [], edges: [] } });
    expect(bare).toMatchObject({ settings: {}, loaded: true, readOnly: true });
  });
});

describe("editing the document", () => {
  it("renaming and editing settings leave unsaved changes", () => {
    const state = reduce(
      opened(),
      { type: "renamed", name: "Route by amount" },
      { type: "settingsEdited", settings: { timeout_minutes: 5 } },
    );
    expect(state).toMatchObject({ name: "Route by amount", settings: { timeout_minutes: 5 }, dirty: true });
  });

  it("adds a node of a type from the palette, hanging from the pointer, selected alone, as one step", () => {
    const first = reduce(blank(), { type: "nodeAdded", nodeType: "trigger", at: { x: 300, y: 100 } });
    const state = reduce(first, { type: "nodeAdded", nodeType: "http_request", at: { x: 300.4, y: 300 } });
    expect(ids(state)).toEqual(["trigger_1", "http_request_1"]);
    expect(byId(state, "http_request_1")).toMatchObject({
      type: "http_request",
      position: { x: 200, y: 280 },
      selected: true,
      data: { name: "HTTP request", method: "GET", url: "https://" },
    });
    expect(byId(state, "trigger_1").selected).toBe(false);
    expect(state.history.past).toHaveLength(2);
    expect(state.dirty).toBe(true);
    const again = reduce(state, { type: "nodeAdded", nodeType: "http_request", at: { x: 0, y: 0 } });
    expect(ids(again)).toContain("http_request_2");
  });

  it("a for_each comes with room for its body; a node dropped inside joins the innermost body", () => {
    let state = reduce(blank(), { type: "nodeAdded", nodeType: "for_each", at: { x: 100, y: 20 } });
    expect(byId(state, "for_each_1")).toMatchObject({ position: { x: 0, y: 0 }, style: { width: 360, height: 220 } });
    state = reduce(state, { type: "nodeAdded", nodeType: "for_each", at: { x: 300, y: 80 } });
    const inner = byId(state, "for_each_2");
    expect(inner).toMatchObject({ parentId: "for_each_1", extent: "parent", position: { x: 200, y: 60 } });
    // The outer group grew to hold the inner one.
    expect(byId(state, "for_each_1").style).toEqual({ width: 200 + 200 + 40, height: 220 });
    state = reduce(state, { type: "nodeAdded", nodeType: "set", at: { x: 250, y: 150 } });
    expect(byId(state, "set_1")).toMatchObject({ parentId: "for_each_2", position: { x: 10, y: 70 } });
    // A trigger never joins a body, and a drop outside every group stays at the top level.
    state = reduce(
      state,
      { type: "nodeAdded", nodeType: "trigger", at: { x: 150, y: 150 } },
      { type: "nodeAdded", nodeType: "end", at: { x: 2000, y: 2000 } },
    );
    expect(byId(state, "trigger_1").parentId).toBeUndefined();
    expect(byId(state, "end_1").parentId).toBeUndefined();
  });

  it("adds a node of a type it has no schema for with a starter config all the same", () => {
    const state = reduce(initialEditorState({ workflowId: null, version: null }), {
      type: "nodeAdded",
      nodeType: "set",
      at: { x: 0, y: 0 },
    });
    expect(byId(state, "set_1").data).toMatchObject({ name: "Set variables", variables: {} });
  });

  it("connects handles with a fresh edge labelled by its handle, as one step", () => {
    const state = reduce(opened(), {
      type: "connected",
      connection: { source: "route", sourceHandle: "default", target: "mark", targetHandle: null },
    });
    expect(edges(state).at(-1)).toEqual({
      id: "e_route_default_mark",
      source: "route",
      target: "mark",
      sourceHandle: "default",
      label: "default",
    });
    expect(state.history.past).toHaveLength(1);
    expect(state.dirty).toBe(true);
  });

  it("refuses connections the engine would refuse", () => {
    const state = opened();
    const graph = state.history.present;
    const refused = [
      { source: "route", sourceHandle: "default", target: "hook" }, // into the trigger
      { source: "mark", sourceHandle: null, target: "mark" }, // a loop onto itself
      { source: "mark", sourceHandle: null, target: "line" }, // into a body from outside
      { source: "route", sourceHandle: "case:big", target: "loop" }, // already there
      { source: "nowhere", sourceHandle: null, target: "mark" },
    ];
    for (const connection of refused) {
      expect(canConnect(graph, { ...connection, targetHandle: null })).toBe(false);
      expect(reduce(state, { type: "connected", connection: { ...connection, targetHandle: null } })).toBe(state);
    }
    expect(canConnect(graph, { source: "route", sourceHandle: "default", target: "loop", targetHandle: null })).toBe(
      true,
    );
  });

  it("edits a node's config; a burst of edits of one node within a second is one step", () => {
    let state = opened();
    state = reduce(
      state,
      { type: "nodeEdited", id: "mark", data: { name: "M" }, now: 1000 },
      { type: "nodeEdited", id: "mark", data: { name: "Ma" }, now: 1500 },
      { type: "nodeEdited", id: "mark", data: { name: "Mar" }, now: 2400 },
    );
    expect(byId(state, "mark").data).toEqual({ name: "Mar" });
    expect(state.history.past).toHaveLength(1);
    expect(state.dirty).toBe(true);
    // A pause of a second, or another node, starts a new step.
    state = reduce(state, { type: "nodeEdited", id: "mark", data: { name: "Mark" }, now: 3400 });
    expect(state.history.past).toHaveLength(2);
    state = reduce(state, { type: "nodeEdited", id: "line", data: { name: "L" }, now: 3500 });
    expect(state.history.past).toHaveLength(3);
    // Any other step in between ends the burst.
    state = reduce(
      state,
      {
        type: "connected",
        connection: { source: "route", sourceHandle: "default", target: "mark", targetHandle: null },
      },
      { type: "nodeEdited", id: "line", data: { name: "Li" }, now: 3600 },
    );
    expect(state.history.past).toHaveLength(5);
  });

  it("an edit that takes a handle away drops its edges", () => {
    let state = opened();
    const small = (definition.nodes[1].data.cases as Json[])[1];
    state = reduce(state, { type: "nodeEdited", id: "route", data: { name: "Route", cases: [small] }, now: 0 });
    expect(edges(state).map((e) => e.id)).toEqual(["e1", "e3"]);
    // Error edges go when the node stops taking them.
    state = reduce(
      state,
      { type: "nodeEdited", id: "mark", data: { name: "Mark", on_error: "error_edge" }, now: 5000 },
      { type: "connected", connection: { source: "mark", sourceHandle: "error", target: "loop", targetHandle: null } },
    );
    expect(edges(state).map((e) => e.id)).toContain("e_mark_error_loop");
    state = reduce(state, { type: "nodeEdited", id: "mark", data: { name: "Mark", on_error: "fail" }, now: 9000 });
    expect(edges(state).map((e) => e.id)).toEqual(["e1", "e3"]);
  });

  it("an edit of a node that is gone changes nothing", () => {
    const state = opened();
    expect(reduce(state, { type: "nodeEdited", id: "gone", data: {}, now: 0 })).toBe(state);
  });
});

describe("canvas changes", () => {
  it("selecting, measuring and moving replace the present without a step", () => {
    const state = reduce(opened(), {
      type: "nodesChanged",
      changes: [
        { type: "select", id: "mark", selected: true },
        { type: "position", id: "hook", position: { x: 5, y: 5 }, dragging: true },
        { type: "dimensions", id: "hook", dimensions: { width: 200, height: 64 } },
      ],
    });
    expect(byId(state, "mark").selected).toBe(true);
    expect(byId(state, "hook").position).toEqual({ x: 5, y: 5 });
    expect(state.history.past).toEqual([]);
    expect(state.dirty).toBe(false);
    expect(selectedNode(state.history.present)?.id).toBe("mark");
  });

  it("removing a for_each takes its body and their edges along, as one step", () => {
    const state = reduce(opened(), { type: "nodesChanged", changes: [{ type: "remove", id: "loop" }] });
    expect(ids(state)).toEqual(["hook", "route", "mark"]);
    expect(edges(state).map((e) => e.id)).toEqual(["e1", "e3"]);
    expect(state.history.past).toHaveLength(1);
    expect(state.dirty).toBe(true);
    // React Flow then reports the removed node's edges: no second step.
    const after = reduce(state, { type: "edgesChanged", changes: [{ type: "remove", id: "e2" }] });
    expect(after.history.past).toHaveLength(1);
  });

  it("removing a nested body removes every level of it", () => {
    let state = reduce(
      blank(),
      { type: "nodeAdded", nodeType: "for_each", at: { x: 100, y: 20 } },
      { type: "nodeAdded", nodeType: "for_each", at: { x: 120, y: 80 } },
      { type: "nodeAdded", nodeType: "set", at: { x: 150, y: 150 } },
      { type: "nodeAdded", nodeType: "end", at: { x: 2000, y: 2000 } },
    );
    expect(byId(state, "set_1").parentId).toBe("for_each_2");
    state = reduce(state, { type: "nodesChanged", changes: [{ type: "remove", id: "for_each_1" }] });
    expect(ids(state)).toEqual(["end_1"]);
  });

  it("removing an edge is a step; selecting one is not", () => {
    const selected = reduce(opened(), {
      type: "edgesChanged",
      changes: [{ type: "select", id: "e1", selected: true }],
    });
    expect(edges(selected)[0].selected).toBe(true);
    expect(selected.history.past).toEqual([]);
    const removed = reduce(selected, { type: "edgesChanged", changes: [{ type: "remove", id: "e1" }] });
    expect(edges(removed).map((e) => e.id)).toEqual(["e2", "e3"]);
    expect(removed.history.past).toHaveLength(1);
    expect(removed.dirty).toBe(true);
  });

  it("a drag is one step from where it began to where it ended, with the groups grown to fit", () => {
    let state = reduce(opened(), { type: "dragStarted" });
    const before = state.history.present;
    state = reduce(
      state,
      {
        type: "nodesChanged",
        changes: [{ type: "position", id: "line", position: { x: 400, y: 60 }, dragging: true }],
      },
      {
        type: "nodesChanged",
        changes: [{ type: "position", id: "line", position: { x: 500, y: 60 }, dragging: true }],
      },
      { type: "dragStopped" },
    );
    expect(state.history.past).toEqual([before]);
    expect(byId(state, "line").position).toEqual({ x: 500, y: 60 });
    expect(Number(byId(state, "loop").style!.width)).toBe(500 + 200 + 40);
    expect(state.dirty).toBe(true);
    expect(state.dragStart).toBeNull();
    // A stop without a start records nothing.
    expect(reduce(state, { type: "dragStopped" }).history).toBe(state.history);
  });

  it("grows groups to fit, never shrinks them, and leaves a fitting group as it is", () => {
    const loop: CanvasNode = { id: "loop", type: "for_each", position: { x: 0, y: 0 }, data: {}, style: {} };
    const child: CanvasNode = { id: "c", type: "set", position: { x: 300, y: 10 }, parentId: "loop", data: {} };
    const [grown] = fitGroups([loop, child]);
    expect(grown.style).toEqual({ width: 540, height: 220 });
    const big = { ...loop, style: { width: 900, height: 900 } };
    expect(fitGroups([big, child])[0]).toBe(big);
  });
});

describe("a version opened read only", () => {
  it("refuses every change to the graph but lets nodes be selected and copied", () => {
    const state = opened(1);
    const refused: EditorAction[] = [
      { type: "nodeAdded", nodeType: "set", at: { x: 0, y: 0 } },
      { type: "nodeEdited", id: "mark", data: { name: "M" }, now: 0 },
      {
        type: "connected",
        connection: { source: "route", sourceHandle: "default", target: "mark", targetHandle: null },
      },
      { type: "nodesChanged", changes: [{ type: "remove", id: "mark" }] },
      { type: "nodesChanged", changes: [{ type: "position", id: "mark", position: { x: 1, y: 1 } }] },
      { type: "edgesChanged", changes: [{ type: "remove", id: "e1" }] },
      { type: "pasted", clip: { nodes: [byId(state, "mark")], edges: [] } },
    ];
    for (const action of refused) expect(reduce(state, action)).toBe(state);
    const selected = reduce(state, { type: "nodesChanged", changes: [{ type: "select", id: "mark", selected: true }] });
    expect(byId(selected, "mark").selected).toBe(true);
    const dragged = reduce(selected, { type: "dragStarted" }, { type: "dragStopped" });
    expect(dragged.history.past).toEqual([]);
    expect(dragged.dirty).toBe(false);
  });

  it("becomes editable from that version", () => {
    expect(reduce(opened(1), { type: "editFromVersion" }).readOnly).toBe(false);
  });
});

describe("copy and paste", () => {
  it("copies the selection with the bodies of selected for_each nodes and the edges among them", () => {
    const state = reduce(opened(), {
      type: "nodesChanged",
      changes: [
        { type: "select", id: "route", selected: true },
        { type: "select", id: "loop", selected: true },
      ],
    });
    const clip = copySelection(state.history.present)!;
    expect(clip.nodes.map((n) => n.id)).toEqual(["route", "loop", "line"]);
    expect(clip.edges.map((e) => e.id)).toEqual(["e2"]);
    expect(copySelection(opened().history.present)).toBeNull();
    expect(reduce(state, { type: "copied", count: 3 }).message).toEqual({ text: "Copied 3 nodes", kind: "ok" });
    expect(reduce(state, { type: "copied", count: 1 }).message).toEqual({ text: "Copied 1 node", kind: "ok" });
  });

  it("pastes under fresh ids, selected alone, as one step", () => {
    const state = reduce(opened(), { type: "nodesChanged", changes: [{ type: "select", id: "loop", selected: true }] });
    const clip = copySelection(state.history.present)!;
    const pasted = reduce(state, { type: "pasted", clip });
    expect(ids(pasted)).toEqual([...ids(state), "for_each_1", "set_1"]);
    expect(byId(pasted, "set_1").parentId).toBe("for_each_1");
    expect(
      nodes(pasted)
        .filter((n) => n.selected)
        .map((n) => n.id),
    ).toEqual(["for_each_1", "set_1"]);
    expect(pasted.history.past).toHaveLength(1);
    expect(pasted.dirty).toBe(true);
  });
});

describe("undo and redo", () => {
  it("step back and forth through the recorded graphs and leave unsaved changes", () => {
    const added = reduce(opened(), { type: "nodeAdded", nodeType: "end", at: { x: 0, y: 600 } });
    const undone = reduce(added, { type: "undo" });
    expect(undone.history.present).toEqual(opened().history.present);
    expect(undone.dirty).toBe(true);
    const redone = reduce(undone, { type: "redo" });
    expect(redone.history.present).toBe(added.history.present);
    // With nothing to undo the graph stays; the page counts it as a change all the same.
    const untouched = reduce(opened(), { type: "undo" }, { type: "redo" });
    expect(untouched.history).toEqual(opened().history);
    expect(untouched.dirty).toBe(true);
  });

  it("undoing every step of any edit sequence restores the loaded graph, and redoing them restores the last", () => {
    let seed = 11;
    const random = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n);
    const types = ["set", "condition", "for_each", "http_request", "end"];
    for (let round = 0; round < 30; round++) {
      let state = opened();
      for (let step = 0; step < 25; step++) {
        const present = nodes(state);
        const some = () => present[random(present.length)]?.id ?? "none";
        const choice = random(6);
        const action: EditorAction =
          choice === 0
            ? { type: "nodeAdded", nodeType: types[random(types.length)], at: { x: random(800), y: random(800) } }
            : choice === 1
              ? {
                  type: "connected",
                  connection: { source: some(), sourceHandle: null, target: some(), targetHandle: null },
                }
              : choice === 2
                ? { type: "nodeEdited", id: some(), data: { name: `n${step}` }, now: step * 700 }
                : choice === 3
                  ? { type: "nodesChanged", changes: [{ type: "remove", id: some() }] }
                  : choice === 4
                    ? { type: "undo" }
                    : { type: "redo" };
        state = reduce(state, action);
        // Whatever happened, the graph holds together: every edge and body has its nodes, ids are unique.
        const known = new Set(ids(state));
        expect(known.size).toBe(nodes(state).length);
        for (const e of edges(state)) expect(known.has(e.source) && known.has(e.target)).toBe(true);
        for (const n of nodes(state)) if (n.parentId) expect(known.has(n.parentId)).toBe(true);
      }
      const last = state.history.present;
      const steps = state.history.past.length;
      let back = state;
      for (let i = 0; i < steps; i++) back = reduce(back, { type: "undo" });
      expect(back.history.present).toEqual(opened().history.present);
      for (let i = 0; i < steps; i++) back = reduce(back, { type: "redo" });
      expect(back.history.present).toBe(last);
    }
  });
});

describe("validation", () => {
  it("shows checking while a check runs, then its problems", () => {
    const problems = [{ pointer: "/nodes/4/data/variables", message: "at least one variable" }];
    const checking = reduce(opened(), { type: "validationStarted" });
    expect(checking.checking).toBe(true);
    const done = reduce(checking, { type: "validationFinished", problems });
    expect(done).toMatchObject({ checking: false, problems });
    // A check that failed without a report keeps the problems shown.
    const failed = reduce(done, { type: "validationStarted" }, { type: "validationFinished", problems: null });
    expect(failed).toMatchObject({ checking: false, problems });
    // An empty graph has nothing to check.
    expect(reduce(done, { type: "validationSkipped" }).problems).toEqual([]);
  });
});

describe("saving and the workflow's status", () => {
  it("a new workflow's first save only clears the unsaved changes (the page then opens it)", () => {
    const state = reduce(blank(), { type: "renamed", name: "New" }, { type: "saveStarted" }, { type: "created" });
    expect(state).toMatchObject({ dirty: false, message: null, workflow: null });
  });

  it("saving a new version replaces the workflow, says so, and ends a read-only view", () => {
    const next = { ...workflow, latest_version: 2 };
    const state = reduce(
      opened(1),
      { type: "failed", text: "old" },
      { type: "editFromVersion" },
      { type: "renamed", name: "Again" },
      { type: "saveStarted" },
    );
    expect(state.message).toBeNull();
    const saved = reduce(state, { type: "saved", workflow: next });
    expect(saved).toMatchObject({ workflow: next, dirty: false, readOnly: false });
    expect(saved.message).toEqual({ text: "Saved version 2", kind: "ok" });
  });

  it("a refused save shows why, and the gateway's problems when it sent some", () => {
    const problems = [{ pointer: "/edges/0", message: "unknown node" }];
    const state = reduce(opened(), { type: "renamed", name: "x" });
    const refused = reduce(state, { type: "saveFailed", text: "invalid definition", problems });
    expect(refused).toMatchObject({ problems, dirty: true, message: { text: "invalid definition", kind: "error" } });
    const down = reduce(refused, { type: "saveFailed", text: "network down", problems: null });
    expect(down).toMatchObject({ problems, message: { text: "network down", kind: "error" } });
  });

  it("activating and pausing replace the workflow and say so", () => {
    const active = { ...workflow, status: "active" as const, active_version: 1 };
    const activated = reduce(opened(), { type: "statusChanged", workflow: active, action: "activate" });
    expect(activated).toMatchObject({ workflow: active, message: { text: "Version 1 is active", kind: "ok" } });
    const paused = { ...workflow, status: "paused" as const };
    const after = reduce(activated, { type: "statusChanged", workflow: paused, action: "pause" });
    expect(after).toMatchObject({ workflow: paused, message: { text: "Paused", kind: "ok" } });
  });
});

describe("what the page shows besides the graph", () => {
  it("shows and hides the versions, the run dialog, the webhook address and messages", () => {
    const versions = [{ version: 1, created_at: "2026-11-22T10:00:00Z", active: false }];
    let state = reduce(opened(), { type: "versionsShown", versions });
    expect(state.versions).toBe(versions);
    state = reduce(state, { type: "versionsShown", versions: null });
    expect(state.versions).toBeNull();
    state = reduce(state, { type: "runDialogToggled", open: true });
    expect(state.runDialog).toBe(true);
    expect(reduce(state, { type: "runDialogToggled", open: false }).runDialog).toBe(false);
    state = reduce(state, { type: "webhookResolved", url: "http://127.0.0.1/hooks/abc" });
    expect(state.webhookUrl).toBe("http://127.0.0.1/hooks/abc");
    expect(reduce(state, { type: "webhookResolved", url: "http://127.0.0.1/hooks/abc" })).toBe(state);
    expect(reduce(state, { type: "webhookResolved", url: null }).webhookUrl).toBeNull();
    state = reduce(state, { type: "failed", text: "not found" });
    expect(state.message).toEqual({ text: "not found", kind: "error" });
    expect(reduce(state, { type: "messageDismissed" }).message).toBeNull();
  });

  it("reads the trigger's kind from the graph", () => {
    expect(triggerKind(nodes(opened()))).toBe("webhook");
    expect(triggerKind([])).toBeNull();
  });
});
