/** What a template in a node can read at that point of the graph: the trigger's fields, the outputs
 * of nodes that can have run before it, `vars` from earlier set nodes, and inside for_each bodies
 * each enclosing loop's item (by its `item_variable`) and `index`. Mirrors the reference rules of docs/node-reference.md#templates. */
import type { FieldType } from "./conditions";
import type { JsonObject } from "./types";

export interface Variable {
  path: string;
  hint: string;
  /** The value's type when it is known: the condition editor offers the operators that fit it. */
  type?: FieldType;
}

interface GraphNode {
  id: string;
  type?: string;
  parentId?: string | null;
  data: JsonObject;
}
interface GraphEdge {
  source: string;
  target: string;
}

const TRIGGER_FIELDS: Record<string, [string, string][]> = {
  record: [
    ["trigger.record.id", "record id"],
    ["trigger.record.pipeline_id", "pipeline"],
    ["trigger.record.data", "the record now"],
    ["trigger.record.old_data", "the record before the change"],
    ["trigger.event_type", "record event type"],
    ["trigger.occurred_at", "when it happened"],
  ],
  webhook: [
    ["trigger.webhook.body", "the request's JSON or form fields"],
    ["trigger.webhook.query", "query parameters"],
    ["trigger.webhook.headers", "request headers"],
    ["trigger.webhook.delivery_id", "delivery id"],
    ["trigger.webhook.received_at", "when it arrived"],
  ],
  scheduled: [
    ["trigger.schedule.slot", "the slot (UTC)"],
    ["trigger.schedule.slot_local", "the slot in the schedule's zone"],
    ["trigger.schedule.name", "the schedule's name"],
    ["trigger.schedule.late", "fired on recovery"],
  ],
  manual: [],
  kafka: [
    ["trigger.kafka.value", "the message's JSON value"],
    ["trigger.kafka.key", "the message's key"],
    ["trigger.kafka.headers", "the message's headers"],
    ["trigger.kafka.topic", "its topic"],
    ["trigger.kafka.partition", "its partition"],
    ["trigger.kafka.offset", "its offset"],
    ["trigger.kafka.timestamp", "its Kafka timestamp"],
  ],
};

/** The types of the trigger fields and node outputs whose shape is fixed. */
const KNOWN_TYPES: Record<string, FieldType> = {
  "trigger.record.data": "object",
  "trigger.record.old_data": "object",
  "trigger.occurred_at": "date",
  "trigger.changed_fields": "list",
  "trigger.webhook.body": "object",
  "trigger.webhook.received_at": "date",
  "trigger.schedule.slot": "date",
  "trigger.schedule.slot_local": "date",
  "trigger.schedule.late": "boolean",
  "trigger.kafka.value": "object",
  "trigger.kafka.key": "text",
  "trigger.kafka.offset": "number",
  "trigger.kafka.partition": "number",
  "trigger.kafka.timestamp": "date",
  "output.text": "text",
  "output.model": "text",
  "output.label": "text",
  "output.confidence": "number",
  "output.reasoning": "text",
  "output.records": "list",
  "output.count": "number",
  "output.result": "boolean",
  "output.case": "text",
  "output.results": "list",
  "output.errors": "list",
  "output.resumed_at": "date",
  "output.status": "number",
  "output.body": "object",
  "output.headers": "object",
  "output.decision": "text",
  "output.decided_by": "text",
  "output.note": "text",
  "output.task_id": "text",
};

function knownType(path: string, nodeType?: string): FieldType | undefined {
  if (path.startsWith("nodes.")) {
    const field = path.split(".").slice(2).join(".");
    if (nodeType === "ai_analysis" && field === "output.result") return "object";
    return KNOWN_TYPES[field];
  }
  return KNOWN_TYPES[path];
}

const OUTPUT_FIELDS: Record<string, string[]> = {
  ai_prompt: ["text", "model", "usage"],
  ai_analysis: ["result", "model", "usage"],
  ai_classification: ["label", "confidence", "reasoning"],
  record_create: ["record", "record.id", "record.data"],
  record_update: ["record", "record.id", "record.data"],
  record_delete: ["record"],
  record_find: ["records", "count"],
  condition: ["result"],
  switch: ["case"],
  for_each: ["results", "errors", "count"],
  wait_delay: ["resumed_at"],
  set: ["variables"],
  end: [],
  http_request: ["status", "body", "headers"],
  webhook_out: ["status", "body", "headers"],
  approval: ["decision", "decided_by", "note"],
  task_notify: ["task_id"],
  wait_for_event: ["source", "name", "payload", "received_at"],
  respond_to_webhook: ["status", "headers", "body"],
  kafka_publish: ["topic", "partition", "offset"],
};

function triggerFields(kind: string): [string, string][] {
  if (kind.startsWith("record_") || kind === "field_changed") {
    const fields = [...TRIGGER_FIELDS.record];
    if (kind === "field_changed") fields.push(["trigger.changes", "old and new value of each watched field"]);
    if (kind === "record_updated" || kind === "field_changed")
      fields.push(["trigger.changed_fields", "fields that differ"]);
    return fields;
  }
  return TRIGGER_FIELDS[kind] ?? [];
}

/** Nodes that reach `nodeId` along edges (same scope only, as edges never cross a body boundary). */
function edgeAncestors(nodeId: string, edges: GraphEdge[]): string[] {
  const incoming = new Map<string, string[]>();
  for (const edge of edges) incoming.set(edge.target, [...(incoming.get(edge.target) ?? []), edge.source]);
  const seen = new Set<string>();
  const order: string[] = [];
  const stack = [...(incoming.get(nodeId) ?? [])];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id) || id === nodeId) continue;
    seen.add(id);
    order.push(id);
    stack.push(...(incoming.get(id) ?? []));
  }
  return order;
}

/** Every node that can have run before `nodeId`: its edge ancestors, and those of each enclosing
 * for_each (but not the for_each itself, whose output exists only after every item). */
export function ancestors(nodeId: string, nodes: GraphNode[], edges: GraphEdge[]): string[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out: string[] = [];
  let current: string | undefined = nodeId;
  const seen = new Set<string>();
  while (current && !seen.has(current)) {
    seen.add(current);
    out.push(...edgeAncestors(current, edges));
    current = byId.get(current)?.parentId ?? undefined;
  }
  return [...new Set(out)];
}

/** The item names a node's templates can read: one per enclosing for_each (its `item_variable`,
 * `item` by default), innermost first; an inner loop's name hides an outer loop's of the same name. */
export function loopItems(nodeId: string, nodes: GraphNode[]): { name: string; loopId: string }[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out: { name: string; loopId: string }[] = [];
  const seen = new Set<string>();
  let loopId = byId.get(nodeId)?.parentId ?? undefined;
  while (loopId && !seen.has(loopId)) {
    seen.add(loopId);
    const loop = byId.get(loopId);
    const named = loop?.data.item_variable;
    const name = typeof named === "string" && named !== "" ? named : "item";
    if (!out.some((known) => known.name === name)) out.push({ name, loopId });
    loopId = loop?.parentId ?? undefined;
  }
  return out;
}

export function availableVariables(
  nodeId: string,
  nodes: GraphNode[],
  edges: GraphEdge[],
  pipelineFields: Record<string, FieldType> = {},
  workflowVariables: JsonObject = {},
): Variable[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const trigger = nodes.find((n) => n.type === "trigger");
  const kind = typeof trigger?.data.kind === "string" ? trigger.data.kind : "manual";
  const out: Variable[] = [{ path: "trigger", hint: `what started the run (${kind})` }];
  for (const [path, hint] of triggerFields(kind)) out.push({ path, hint, type: knownType(path) });
  if (kind.startsWith("record_") || kind === "field_changed") {
    for (const [name, type] of Object.entries(pipelineFields))
      out.push({ path: `trigger.record.data.${name}`, hint: `record field (${type})`, type });
  }
  out.push({ path: "workflow.id", hint: "this workflow" }, { path: "workflow.version", hint: "its version" });
  for (const name of Object.keys(workflowVariables ?? {}))
    out.push({ path: `workflow.vars.${name}`, hint: "workflow constant" });
  const loops = loopItems(nodeId, nodes);
  for (const { name, loopId } of loops) out.push({ path: name, hint: `the current item of ${loopId}` });
  if (loops.length > 0) out.push({ path: "index", hint: "the innermost item's position, from 0" });
  const earlier = ancestors(nodeId, nodes, edges)
    .map((id) => byId.get(id))
    .filter((n): n is GraphNode => !!n && n.type !== "trigger");
  for (const ancestor of earlier) {
    if (ancestor.type === "set" && ancestor.data.variables && typeof ancestor.data.variables === "object") {
      for (const name of Object.keys(ancestor.data.variables as JsonObject))
        out.push({ path: `vars.${name}`, hint: `set by ${ancestor.id}` });
    }
  }
  for (const ancestor of earlier) {
    const name = typeof ancestor.data.name === "string" ? ancestor.data.name : ancestor.id;
    out.push({ path: `nodes.${ancestor.id}.output`, hint: `output of ${name}` });
    for (const field of OUTPUT_FIELDS[ancestor.type ?? ""] ?? []) {
      const path = `nodes.${ancestor.id}.output.${field}`;
      out.push({ path, hint: name, type: knownType(path, ancestor.type) });
    }
    if (ancestor.data.on_error === "error_edge")
      out.push({ path: `nodes.${ancestor.id}.error`, hint: `error of ${name}` });
  }
  return out;
}

/** The open `{{ ...` before the caret, if the caret is inside an unfinished expression. */
export function openExpression(text: string, caret: number): { start: number; partial: string } | null {
  const before = text.slice(0, caret);
  const open = before.lastIndexOf("{{");
  if (open < 0 || before.indexOf("}}", open) >= 0) return null;
  const partial = before.slice(open + 2);
  if (!/^\s*[A-Za-z0-9_.[\]]*$/.test(partial)) return null;
  return { start: open + 2, partial: partial.trim() };
}

/** Insert `path` into `text` at the open expression, closing it: returns the new text and caret. */
export function insertVariable(text: string, caret: number, path: string): { text: string; caret: number } {
  const open = openExpression(text, caret);
  if (!open) {
    const inserted = `{{ ${path} }}`;
    return { text: text.slice(0, caret) + inserted + text.slice(caret), caret: caret + inserted.length };
  }
  const after = text.slice(caret);
  const closes = /^\s*}}/.test(after);
  const piece = ` ${path}${closes ? "" : " }}"}`;
  const next = text.slice(0, open.start) + piece + after;
  return { text: next, caret: open.start + piece.length + (closes ? after.match(/^\s*}}/)![0].length : 0) };
}
