/** The workflow editor's state: a pure reducer over the document being edited (name, settings, the
 * graph with its undo history) and what the page shows about it (validation, messages, versions,
 * the webhook address). The page's hooks do the I/O (API, clipboard, keyboard, time) and dispatch
 * what came of it, so every edit is tested here without React. */
import type { ConditionPreset, FieldType } from "./conditions";
import { applyEdgeChanges, applyNodeChanges, type Connection, type EdgeChange, type NodeChange } from "@xyflow/react";
import { record, redo, replacePresent, undo, type History } from "../canvas/history";
import {
  absolutePosition,
  bodyDepth,
  copyNodes,
  definitionToGraph,
  edgeLabel,
  freshEdgeId,
  shownLabel,
  freshNodeId,
  groupSize,
  type CanvasEdge,
  type CanvasNode,
} from "./graph";
import { starterConfig, typeLabel } from "./schema";
import type { Definition, JsonObject, NodeType, Problem, Version, Workflow } from "./types";

export interface Graph {
  nodes: CanvasNode[];
  edges: CanvasEdge[];
}

export interface Message {
  text: string;
  kind: "ok" | "error";
}

export interface EditorState {
  catalog: NodeType[];
  presets: ConditionPreset[];
  /** The types of the trigger pipeline's record fields, read from sample records (when it has any). */
  pipelineFields: Record<string, FieldType>;
  /** The stored workflow; null for a new one until its first save. */
  workflow: Workflow | null;
  name: string;
  /** The workflow's description (kept with the workflow, not in its definition). */
  description: string;
  settings: JsonObject;
  history: History<Graph>;
  /** A new workflow is there at once; a stored one once its definition has arrived. */
  loaded: boolean;
  dirty: boolean;
  /** Viewing an old version: nothing can change until "Edit from this version". */
  readOnly: boolean;
  problems: Problem[];
  checking: boolean;
  message: Message | null;
  /** The version list, while it is shown. */
  versions: Version[] | null;
  webhookUrl: string | null;
  runDialog: boolean;
  /** The last form edit and when it happened: edits of one node within a second are one undo step. */
  lastEdit: { key: string; at: number } | null;
  /** The graph as a node drag began: the whole drag is recorded as one step when it ends. */
  dragStart: Graph | null;
}

export type EditorAction =
  | { type: "catalogLoaded"; catalog: NodeType[] }
  | { type: "presetsLoaded"; presets: ConditionPreset[] }
  | { type: "pipelineSampled"; fields: Record<string, FieldType> }
  /** The stored workflow arrived; its definition (or an old version's) follows. */
  | { type: "workflowLoaded"; workflow: Workflow }
  | { type: "definitionLoaded"; definition: Definition }
  | { type: "renamed"; name: string }
  | { type: "described"; description: string }
  /** An edge's own label, set in the side panel; `now` as for form edits. */
  | { type: "edgeLabelled"; id: string; label: string; now: number }
  | { type: "settingsEdited"; settings: JsonObject }
  | { type: "nodesChanged"; changes: NodeChange<CanvasNode>[] }
  | { type: "edgesChanged"; changes: EdgeChange<CanvasEdge>[] }
  | { type: "connected"; connection: Connection }
  /** `at` is the drop point in canvas coordinates. */
  | { type: "nodeAdded"; nodeType: string; at: { x: number; y: number } }
  /** `now` in milliseconds, for coalescing a burst of form edits into one undo step. */
  | { type: "nodeEdited"; id: string; data: JsonObject; now: number }
  | { type: "pasted"; clip: Graph }
  | { type: "copied"; count: number }
  | { type: "dragStarted" }
  | { type: "dragStopped" }
  | { type: "undo" }
  | { type: "redo" }
  | { type: "validationStarted" }
  /** `problems` null: the check failed without a report, the shown problems stay. */
  | { type: "validationFinished"; problems: Problem[] | null }
  /** Nothing to check (no nodes): no problems. */
  | { type: "validationSkipped" }
  | { type: "saveStarted" }
  | { type: "created" }
  | { type: "saved"; workflow: Workflow }
  | { type: "saveFailed"; text: string; problems: Problem[] | null }
  | { type: "statusChanged"; workflow: Workflow; action: "activate" | "pause" }
  | { type: "versionsShown"; versions: Version[] | null }
  | { type: "editFromVersion" }
  | { type: "webhookResolved"; url: string | null }
  | { type: "runDialogToggled"; open: boolean }
  | { type: "failed"; text: string }
  | { type: "messageDismissed" };

/** A new workflow is editable and loaded at once; a version is opened read only. */
export function initialEditorState(opening: { workflowId: string | null; version: number | null }): EditorState {
  return {
    catalog: [],
    presets: [],
    pipelineFields: {},
    workflow: null,
    name: "Untitled workflow",
    description: "",
    settings: {},
    history: { past: [], present: { nodes: [], edges: [] }, future: [] },
    loaded: opening.workflowId === null,
    dirty: false,
    readOnly: opening.version !== null,
    problems: [],
    checking: false,
    message: null,
    versions: null,
    webhookUrl: null,
    runDialog: false,
    lastEdit: null,
    dragStart: null,
  };
}

const COALESCE_MS = 1000;

/** Grow each for_each so its body fits (never shrinks it). */
export function fitGroups(nodes: CanvasNode[]): CanvasNode[] {
  return nodes.map((node) => {
    if (node.type !== "for_each") return node;
    const size = groupSize(nodes.filter((n) => n.parentId === node.id));
    const width = Math.max(Number(node.style?.width ?? 0), size.width);
    const height = Math.max(Number(node.style?.height ?? 0), size.height);
    if (width === node.style?.width && height === node.style?.height) return node;
    return { ...node, style: { ...node.style, width, height } };
  });
}

/** Whether the engine would take this connection: not into the trigger or the node itself, not across
 * a for_each body's boundary, not a second edge from the same handle to the same node. */
export function canConnect(graph: Graph, connection: Connection | CanvasEdge): boolean {
  const source = graph.nodes.find((n) => n.id === connection.source);
  const target = graph.nodes.find((n) => n.id === connection.target);
  if (!source || !target || source.id === target.id || target.type === "trigger") return false;
  if ((source.parentId ?? null) !== (target.parentId ?? null)) return false;
  return !graph.edges.some(
    (e) =>
      e.source === source.id &&
      e.target === target.id &&
      (e.sourceHandle ?? null) === (connection.sourceHandle ?? null),
  );
}

/** The selected nodes with the bodies of selected for_each nodes, and the edges among them; null
 * when nothing is selected. */
export function copySelection(graph: Graph): Graph | null {
  const chosen = graph.nodes.filter((n) => n.selected);
  if (chosen.length === 0) return null;
  const ids = new Set(chosen.map((n) => n.id));
  for (let grew = true; grew;) {
    grew = false;
    for (const n of graph.nodes)
      if (n.parentId && ids.has(n.parentId) && !ids.has(n.id)) {
        ids.add(n.id);
        grew = true;
      }
  }
  return {
    nodes: graph.nodes.filter((n) => ids.has(n.id)),
    edges: graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target)),
  };
}

/** The trigger's kind (webhook, schedule, …), or null without a trigger. */
/** The pipeline a record trigger watches, or null. */
export function triggerPipeline(nodes: CanvasNode[]): string | null {
  const trigger = nodes.find((n) => n.type === "trigger");
  const kind = typeof trigger?.data.kind === "string" ? trigger.data.kind : "";
  const pipeline = trigger?.data.pipeline_id;
  return (kind.startsWith("record_") || kind === "field_changed") && typeof pipeline === "string" && pipeline
    ? pipeline
    : null;
}

export function triggerKind(nodes: CanvasNode[]): string | null {
  const trigger = nodes.find((n) => n.type === "trigger");
  return typeof trigger?.data.kind === "string" ? trigger.data.kind : null;
}

/** The one selected edge while no node is selected, or null. */
export function selectedEdge(graph: Graph): CanvasEdge | null {
  if (graph.nodes.some((n) => n.selected)) return null;
  const selected = graph.edges.filter((e) => e.selected);
  return selected.length === 1 ? selected[0] : null;
}

function labelEdge(state: EditorState, id: string, label: string, now: number): EditorState {
  const { nodes, edges } = state.history.present;
  if (state.readOnly || !edges.some((e) => e.id === id)) return state;
  const next = edges.map((e) =>
    e.id === id ? { ...e, data: { ...e.data, label }, label: shownLabel(e.sourceHandle, label) } : e,
  );
  return commit(state, { nodes, edges: next }, { key: `label:${id}`, now });
}

/** The one selected node, or null. */
export function selectedNode(graph: Graph): CanvasNode | null {
  const selected = graph.nodes.filter((n) => n.selected);
  return selected.length === 1 ? selected[0] : null;
}

/** A new step of the graph; form edits with the same key within a second replace the last step. */
function commit(state: EditorState, next: Graph, coalesce?: { key: string; now: number }): EditorState {
  const last = state.lastEdit;
  const joins = coalesce && last?.key === coalesce.key && coalesce.now - last.at < COALESCE_MS;
  return {
    ...state,
    history: joins ? replacePresent(state.history, next) : record(state.history, next),
    lastEdit: coalesce ? { key: coalesce.key, at: coalesce.now } : null,
    dirty: true,
  };
}

/** Nodes whose for_each is gone go too, however deep the body. */
function withoutOrphans(nodes: CanvasNode[]): CanvasNode[] {
  for (let ids = new Set(nodes.map((n) => n.id)), orphans = true; orphans;) {
    const kept = nodes.filter((n) => !n.parentId || ids.has(n.parentId));
    orphans = kept.length < nodes.length;
    nodes = kept;
    ids = new Set(kept.map((n) => n.id));
  }
  return nodes;
}

function changeNodes(state: EditorState, changes: NodeChange<CanvasNode>[]): EditorState {
  if (state.readOnly && changes.some((c) => c.type !== "select" && c.type !== "dimensions")) return state;
  const present = state.history.present;
  const nodes = applyNodeChanges(changes, present.nodes);
  if (changes.some((c) => c.type === "remove")) {
    // A removed for_each takes its body along, however the removal was asked for.
    const kept = withoutOrphans(nodes);
    const ids = new Set(kept.map((n) => n.id));
    const edges = present.edges.filter((e) => ids.has(e.source) && ids.has(e.target));
    return { ...state, history: record(state.history, { nodes: kept, edges }), dirty: true };
  }
  // Selection, measuring and positions during a drag are no steps of their own.
  return { ...state, history: replacePresent(state.history, { ...present, nodes }) };
}

function changeEdges(state: EditorState, changes: EdgeChange<CanvasEdge>[]): EditorState {
  if (state.readOnly && changes.some((c) => c.type !== "select")) return state;
  const present = state.history.present;
  const edges = applyEdgeChanges(changes, present.edges);
  // Edges of a removed node are already gone with it: that removal was recorded once.
  if (edges.length < present.edges.length) {
    return { ...state, history: record(state.history, { ...present, edges }), dirty: true };
  }
  return { ...state, history: replacePresent(state.history, { ...present, edges }) };
}

function connect(state: EditorState, connection: Connection): EditorState {
  const { nodes, edges } = state.history.present;
  if (state.readOnly || !canConnect(state.history.present, connection)) return state;
  const edge: CanvasEdge = {
    id: freshEdgeId(
      connection.source,
      connection.sourceHandle,
      connection.target,
      edges.map((e) => e.id),
    ),
    source: connection.source,
    target: connection.target,
    sourceHandle: connection.sourceHandle ?? null,
    label: edgeLabel(connection.sourceHandle),
  };
  return commit(state, { nodes, edges: [...edges, edge] });
}

function addNode(state: EditorState, type: string, pointer: { x: number; y: number }): EditorState {
  if (state.readOnly) return state;
  const { nodes, edges } = state.history.present;
  // The node hangs from the pointer by its top middle; the pointer decides which body it joins.
  const at = { x: Math.round(pointer.x - 100), y: Math.round(pointer.y - 20) };
  const schema = state.catalog.find((t) => t.type === type)?.schema ?? {};
  let parent: CanvasNode | undefined;
  if (type !== "trigger") {
    // The innermost for_each under the drop point takes the node into its body.
    for (const candidate of nodes) {
      if (candidate.type !== "for_each") continue;
      const origin = absolutePosition(candidate, nodes);
      const width = Number(candidate.style?.width ?? candidate.measured?.width ?? 0);
      const height = Number(candidate.style?.height ?? candidate.measured?.height ?? 0);
      const inside = pointer.x >= origin.x && pointer.y >= origin.y;
      if (inside && pointer.x <= origin.x + width && pointer.y <= origin.y + height) {
        if (!parent || bodyDepth(candidate.id, nodes) > bodyDepth(parent.id, nodes)) parent = candidate;
      }
    }
  }
  const node: CanvasNode = {
    id: freshNodeId(
      type,
      nodes.map((n) => n.id),
    ),
    type,
    position: at,
    data: starterConfig(type, schema, typeLabel(type)),
    selected: true,
  };
  if (type === "for_each") node.style = { width: 360, height: 220 };
  if (parent) {
    const origin = absolutePosition(parent, nodes);
    node.parentId = parent.id;
    node.extent = "parent";
    node.position = { x: Math.max(10, at.x - origin.x), y: Math.max(40, at.y - origin.y) };
  }
  const others = nodes.map((n) => (n.selected ? { ...n, selected: false } : n));
  return commit(state, { nodes: fitGroups([...others, node]), edges });
}

function editNode(state: EditorState, id: string, data: JsonObject, now: number): EditorState {
  const { nodes, edges } = state.history.present;
  const node = nodes.find((n) => n.id === id);
  if (state.readOnly || !node) return state;
  const next = nodes.map((n) => (n.id === id ? { ...n, data } : n));
  const ids = new Set(next.map((n) => n.id));
  // A handle that no longer exists (a removed switch case, error edges switched off) drops its edges.
  const kept = edges.filter((e) => {
    if (e.source !== id || !ids.has(e.target)) return true;
    if (e.sourceHandle === "error") return data.on_error === "error_edge";
    if (e.sourceHandle?.startsWith("case:") && node.type === "switch") {
      const cases = Array.isArray(data.cases) ? data.cases : [];
      return cases.some((c) => c && typeof c === "object" && !Array.isArray(c) && `case:${c.name}` === e.sourceHandle);
    }
    return true;
  });
  return commit(state, { nodes: next, edges: kept }, { key: `data:${id}`, now });
}

function paste(state: EditorState, clip: Graph): EditorState {
  if (state.readOnly) return state;
  const { nodes, edges } = state.history.present;
  const pasted = copyNodes(clip.nodes, clip.edges, nodes, edges);
  return commit(state, {
    nodes: [...nodes.map((n) => ({ ...n, selected: false })), ...pasted.nodes],
    edges: [...edges, ...pasted.edges],
  });
}

function stopDrag(state: EditorState): EditorState {
  const before = state.dragStart;
  if (!before || state.readOnly) return { ...state, dragStart: null };
  // The step goes from the graph before the drag to where it ended, with the groups grown to fit.
  const moved = { ...state.history.present, nodes: fitGroups(state.history.present.nodes) };
  return { ...state, history: record({ ...state.history, present: before }, moved), dirty: true, dragStart: null };
}

export function editorReducer(state: EditorState, action: EditorAction): EditorState {
  switch (action.type) {
    case "catalogLoaded":
      return { ...state, catalog: action.catalog };
    case "presetsLoaded":
      return { ...state, presets: action.presets };
    case "pipelineSampled":
      return { ...state, pipelineFields: action.fields };
    case "workflowLoaded":
      return {
        ...state,
        workflow: action.workflow,
        name: action.workflow.name,
        description: action.workflow.description ?? "",
      };
    case "definitionLoaded":
      return {
        ...state,
        settings: (action.definition.settings as JsonObject) ?? {},
        history: { past: [], present: definitionToGraph(action.definition), future: [] },
        loaded: true,
      };
    case "renamed":
      return { ...state, name: action.name, dirty: true };
    case "described":
      return { ...state, description: action.description, dirty: true };
    case "edgeLabelled":
      return labelEdge(state, action.id, action.label, action.now);
    case "settingsEdited":
      return { ...state, settings: action.settings, dirty: true };
    case "nodesChanged":
      return changeNodes(state, action.changes);
    case "edgesChanged":
      return changeEdges(state, action.changes);
    case "connected":
      return connect(state, action.connection);
    case "nodeAdded":
      return addNode(state, action.nodeType, action.at);
    case "nodeEdited":
      return editNode(state, action.id, action.data, action.now);
    case "pasted":
      return paste(state, action.clip);
    case "copied":
      return {
        ...state,
        message: { text: `Copied ${action.count} node${action.count > 1 ? "s" : ""}`, kind: "ok" },
      };
    case "dragStarted":
      return { ...state, dragStart: state.history.present };
    case "dragStopped":
      return stopDrag(state);
    case "undo":
      return { ...state, history: undo(state.history), dirty: true };
    case "redo":
      return { ...state, history: redo(state.history), dirty: true };
    case "validationStarted":
      return { ...state, checking: true };
    case "validationFinished":
      return { ...state, checking: false, problems: action.problems ?? state.problems };
    case "validationSkipped":
      return { ...state, problems: [] };
    case "saveStarted":
      return { ...state, message: null };
    case "created":
      return { ...state, dirty: false };
    case "saved":
      return {
        ...state,
        workflow: action.workflow,
        dirty: false,
        readOnly: false,
        message: { text: `Saved version ${action.workflow.latest_version}`, kind: "ok" },
      };
    case "saveFailed":
      return {
        ...state,
        problems: action.problems ?? state.problems,
        message: { text: action.text, kind: "error" },
      };
    case "statusChanged":
      return {
        ...state,
        workflow: action.workflow,
        message: {
          text: action.action === "activate" ? `Version ${action.workflow.active_version} is active` : "Paused",
          kind: "ok",
        },
      };
    case "versionsShown":
      return { ...state, versions: action.versions };
    case "editFromVersion":
      return { ...state, readOnly: false };
    case "webhookResolved":
      return action.url === state.webhookUrl ? state : { ...state, webhookUrl: action.url };
    case "runDialogToggled":
      return { ...state, runDialog: action.open };
    case "failed":
      return { ...state, message: { text: action.text, kind: "error" } };
    case "messageDismissed":
      return { ...state, message: null };
  }
}
