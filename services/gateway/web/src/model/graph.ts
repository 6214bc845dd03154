/** Conversion between the stored workflow definition and the canvas's React Flow graph. Pure: no
 * React, no I/O, so the round trip is tested on its own. */
import type { Edge, Node } from "@xyflow/react";
import type { Definition, DefinitionEdge, DefinitionNode, JsonObject } from "./types";

export type CanvasNode = Node<JsonObject>;
export type CanvasEdge = Edge;

/** Where a node's description travels on the canvas: in its data, beside the config (the forms show
 * only the config's fields), and back beside `data` in the definition. */
export const DESCRIPTION_KEY = "$description";

/** An edge's own label (the definition's `label`), kept in the canvas edge's data. */
export function ownLabel(edge: CanvasEdge): string {
  const label = (edge.data as { label?: unknown } | undefined)?.label;
  return typeof label === "string" ? label : "";
}

/** What an edge shows: its handle, then its own label. */
export function shownLabel(handle: string | null | undefined, label: string | null | undefined): string | undefined {
  const parts = [edgeLabel(handle), label || undefined].filter((p): p is string => !!p);
  return parts.length ? parts.join(" · ") : undefined;
}

export const NODE_WIDTH = 200;
export const NODE_HEIGHT = 64;
export const GROUP_MIN_WIDTH = 360;
export const GROUP_MIN_HEIGHT = 220;
const GROUP_PADDING = 40;

/** The size a for_each group needs to hold its body (positions of children are relative to it). */
export function groupSize(children: { position: { x: number; y: number } }[]): { width: number; height: number } {
  let width = GROUP_MIN_WIDTH;
  let height = GROUP_MIN_HEIGHT;
  for (const child of children) {
    width = Math.max(width, child.position.x + NODE_WIDTH + GROUP_PADDING);
    height = Math.max(height, child.position.y + NODE_HEIGHT + GROUP_PADDING);
  }
  return { width, height };
}

/** Parents before children, as React Flow requires; otherwise the definition's order. */
function parentsFirst<T extends { id: string; parentId?: string | null }>(nodes: T[]): T[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const placed = new Set<string>();
  const ordered: T[] = [];
  const visit = (node: T, path: Set<string>) => {
    if (placed.has(node.id) || path.has(node.id)) return;
    path.add(node.id);
    const parent = node.parentId ? byId.get(node.parentId) : undefined;
    if (parent) visit(parent, path);
    placed.add(node.id);
    ordered.push(node);
  };
  for (const node of nodes) visit(node, new Set());
  return ordered;
}

export function edgeLabel(handle: string | null | undefined): string | undefined {
  if (!handle) return undefined;
  return handle.startsWith("case:") ? handle.slice(5) : handle;
}

export function definitionToGraph(definition: Definition): { nodes: CanvasNode[]; edges: CanvasEdge[] } {
  const childrenOf = new Map<string, DefinitionNode[]>();
  for (const node of definition.nodes) {
    if (node.parentId) childrenOf.set(node.parentId, [...(childrenOf.get(node.parentId) ?? []), node]);
  }
  const nodes: CanvasNode[] = parentsFirst(definition.nodes).map((node) => {
    const canvas: CanvasNode = {
      id: node.id,
      type: node.type,
      position: { x: node.position?.x ?? 0, y: node.position?.y ?? 0 },
      data: structuredClone(node.data ?? {}),
    };
    if (node.description) canvas.data[DESCRIPTION_KEY] = node.description;
    if (node.parentId) {
      canvas.parentId = node.parentId;
      canvas.extent = "parent";
    }
    if (node.type === "for_each") {
      const size = groupSize(childrenOf.get(node.id) ?? []);
      canvas.style = { width: size.width, height: size.height };
    }
    return canvas;
  });
  const edges: CanvasEdge[] = definition.edges.map((edge) => ({
    id: edge.id,
    source: edge.source,
    target: edge.target,
    sourceHandle: edge.sourceHandle ?? null,
    label: shownLabel(edge.sourceHandle, edge.label),
    ...(edge.label ? { data: { label: edge.label } } : {}),
  }));
  return { nodes, edges };
}

export function graphToDefinition(nodes: CanvasNode[], edges: CanvasEdge[], settings?: JsonObject): Definition {
  const definitionNodes: DefinitionNode[] = nodes.map((node) => {
    const { [DESCRIPTION_KEY]: description, ...data } = node.data;
    const out: DefinitionNode = {
      id: node.id,
      type: node.type ?? "",
      position: { x: Math.round(node.position.x), y: Math.round(node.position.y) },
      data: structuredClone(data),
    };
    if (node.parentId) out.parentId = node.parentId;
    if (typeof description === "string" && description !== "") out.description = description;
    return out;
  });
  const definitionEdges: DefinitionEdge[] = edges.map((edge) => {
    const out: DefinitionEdge = { id: edge.id, source: edge.source, target: edge.target };
    if (edge.sourceHandle) out.sourceHandle = edge.sourceHandle;
    if (ownLabel(edge)) out.label = ownLabel(edge);
    return out;
  });
  const definition: Definition = { nodes: definitionNodes, edges: definitionEdges };
  if (settings && Object.keys(settings).length > 0) definition.settings = structuredClone(settings);
  return definition;
}

/** A node id not yet used: `<type>_<n>` with the smallest free n. */
export function freshNodeId(type: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  for (let n = 1; ; n++) {
    const id = `${type}_${n}`;
    if (!used.has(id)) return id;
  }
}

export function freshEdgeId(
  source: string,
  handle: string | null | undefined,
  target: string,
  taken: Iterable<string>,
): string {
  const used = new Set(taken);
  const base = `e_${source}_${handle ? handle.replace(/[^A-Za-z0-9_-]/g, "_") + "_" : ""}${target}`;
  if (!used.has(base)) return base;
  for (let n = 2; ; n++) if (!used.has(`${base}_${n}`)) return `${base}_${n}`;
}

/** Absolute canvas position of a node (children are stored relative to their parent). */
export function absolutePosition(node: CanvasNode, nodes: CanvasNode[]): { x: number; y: number } {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let x = node.position.x;
  let y = node.position.y;
  let parent = node.parentId ? byId.get(node.parentId) : undefined;
  const seen = new Set<string>();
  while (parent && !seen.has(parent.id)) {
    seen.add(parent.id);
    x += parent.position.x;
    y += parent.position.y;
    parent = parent.parentId ? byId.get(parent.parentId) : undefined;
  }
  return { x, y };
}

/** How deep a node sits in for_each bodies (0 at the top level). */
export function bodyDepth(nodeId: string, nodes: { id: string; parentId?: string | null }[]): number {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let depth = 0;
  let current = byId.get(nodeId);
  const seen = new Set<string>();
  while (current?.parentId && !seen.has(current.id)) {
    seen.add(current.id);
    depth++;
    current = byId.get(current.parentId);
  }
  return depth;
}

/** Copy nodes (and the edges among them) with fresh ids, shifted by `offset`; a copied body moves
 * with its for_each, a node whose parent was not copied lands at the top level. */
export function copyNodes(
  selected: CanvasNode[],
  allEdges: CanvasEdge[],
  existing: CanvasNode[],
  existingEdges: CanvasEdge[],
  offset = { x: 40, y: 40 },
): { nodes: CanvasNode[]; edges: CanvasEdge[] } {
  const taken = new Set(existing.map((n) => n.id));
  const rename = new Map<string, string>();
  for (const node of parentsFirst(selected)) {
    const id = freshNodeId(node.type ?? "node", taken);
    taken.add(id);
    rename.set(node.id, id);
  }
  const nodes = parentsFirst(selected).map((node) => {
    const parentCopied = node.parentId ? rename.get(node.parentId) : undefined;
    const position = parentCopied
      ? { ...node.position }
      : node.parentId
        ? { x: absolutePosition(node, existing).x + offset.x, y: absolutePosition(node, existing).y + offset.y }
        : { x: node.position.x + offset.x, y: node.position.y + offset.y };
    const copy: CanvasNode = {
      id: rename.get(node.id)!,
      type: node.type,
      position,
      data: structuredClone(node.data),
      selected: true,
    };
    if (parentCopied) {
      copy.parentId = parentCopied;
      copy.extent = "parent";
    }
    if (node.style) copy.style = { ...node.style };
    return copy;
  });
  const edgeIds = new Set(existingEdges.map((e) => e.id));
  const edges: CanvasEdge[] = [];
  for (const edge of allEdges) {
    const source = rename.get(edge.source);
    const target = rename.get(edge.target);
    if (!source || !target) continue;
    const id = freshEdgeId(source, edge.sourceHandle, target, edgeIds);
    edgeIds.add(id);
    const label = ownLabel(edge);
    edges.push({
      id,
      source,
      target,
      sourceHandle: edge.sourceHandle ?? null,
      label: shownLabel(edge.sourceHandle, label),
      ...(label ? { data: { label } } : {}),
    });
  }
  return { nodes, edges };
}
