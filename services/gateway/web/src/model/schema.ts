/** Reading the node types' JSON schemas (pydantic's output) for the generated forms. */
import type { Json, JsonObject, JsonSchema } from "./types";

export function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  let current = schema;
  const seen = new Set<string>();
  while (current.$ref && !seen.has(current.$ref)) {
    seen.add(current.$ref);
    const name = current.$ref.replace("#/$defs/", "");
    const target = root.$defs?.[name];
    if (!target) break;
    const { $ref: _ref, ...rest } = current;
    current = { ...target, ...rest };
  }
  return current;
}

/** `anyOf: [X, {type: null}]` -> X (nullable); anything else unchanged. */
export function unwrapNullable(schema: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  if (schema.anyOf) {
    const others = schema.anyOf.filter((s) => s.type !== "null");
    if (others.length === 1 && others.length < schema.anyOf.length) {
      const inner = resolve(others[0], root);
      return {
        schema: {
          ...inner,
          title: schema.title ?? inner.title,
          description: schema.description ?? inner.description,
          default: schema.default,
        },
        nullable: true,
      };
    }
  }
  return { schema: resolve(schema, root), nullable: false };
}

export type FieldKind =
  | "condition"
  | "enum"
  | "text"
  | "number"
  | "integer"
  | "boolean"
  | "string-list"
  | "enum-list"
  | "object-list"
  | "object"
  | "string-map"
  | "json-map"
  | "json";

export function isCondition(schema: JsonSchema): boolean {
  const options = schema.oneOf ?? [];
  return options.some((o) => o.$ref?.endsWith("/Comparison"));
}

export function fieldKind(schema: JsonSchema): FieldKind {
  if (isCondition(schema)) return "condition";
  if (schema.enum) return "enum";
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "string":
      return "text";
    case "number":
      return "number";
    case "integer":
      return "integer";
    case "boolean":
      return "boolean";
    case "array": {
      const items = schema.items ?? {};
      if (items.enum) return "enum-list";
      if (items.type === "string") return "string-list";
      return "object-list";
    }
    case "object": {
      if (schema.properties && Object.keys(schema.properties).length > 0) return "object";
      const extra = schema.additionalProperties;
      if (extra && typeof extra === "object" && extra.type === "string") return "string-map";
      return "json-map";
    }
    default:
      return "json";
  }
}

/** One option of a discriminated union: the discriminator's value that picks it, and its schema. */
export interface Variant {
  key: string;
  schema: JsonSchema;
}

/** A `oneOf` whose options are objects told apart by one property (pydantic's discriminated union,
 * or options that each fix the same property with `const`): that property and the options by its
 * value; null for anything else. */
export function discriminated(schema: JsonSchema, root: JsonSchema): { property: string; variants: Variant[] } | null {
  const options = (schema.oneOf ?? schema.anyOf ?? []).filter((o) => o.type !== "null").map((o) => resolve(o, root));
  if (options.length < 2) return null;
  const property = schema.discriminator?.propertyName ?? commonConstProperty(options);
  if (!property) return null;
  const variants: Variant[] = [];
  for (const option of options) {
    const fixed = option.properties?.[property];
    const key = fixed?.const ?? (fixed?.enum?.length === 1 ? fixed.enum[0] : undefined);
    if (typeof key !== "string") return null;
    variants.push({ key, schema: option });
  }
  return { property, variants };
}

function commonConstProperty(options: JsonSchema[]): string | null {
  const first = Object.entries(options[0].properties ?? {}).filter(([, p]) => p.const !== undefined);
  return (
    first.map(([name]) => name).find((name) => options.every((o) => o.properties?.[name]?.const !== undefined)) ?? null
  );
}

/** A new item of a union's variant: its discriminator and the defaults of its required fields. */
export function variantStarter(variant: Variant, property: string): JsonObject {
  const item: JsonObject = { [property]: variant.key };
  for (const field of variant.schema.required ?? []) {
    if (field in item) continue;
    const fallback = variant.schema.properties?.[field]?.default;
    if (fallback !== undefined) item[field] = fallback as Json;
  }
  return item;
}

/** Fields every node type shares; the form shows them in their own section. */
export const COMMON_FIELDS = ["retry", "timeout_seconds", "on_error", "fallback_output"];

/** Fields whose strings are read as they are, never rendered as templates. */
export const LITERAL_FIELDS = new Set([
  "name",
  "pipeline_id",
  "pipeline_ids",
  "credential",
  "secret_credential",
  "labels",
  "model",
  "cron",
  "timezone",
  "topic",
  "start_from",
  "field",
  "user",
  "role",
  "workflow_id",
  "version",
  "mode",
  "input_schema",
  "tools",
  "approver",
]);

export function label(name: string, schema: JsonSchema): string {
  const text = schema.title ?? name.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1).toLowerCase();
}

/** A starting config for a node dropped from the palette: the name, and required fields that have
 * an obvious empty shape (the validator then says what is still missing). */
export function starterConfig(type: string, schema: JsonSchema, name: string): JsonObject {
  const starters: Record<string, JsonObject> = {
    trigger: { kind: "manual" },
    condition: { condition: { field: "trigger", operator: "is_not_empty" } },
    switch: { cases: [{ name: "first", condition: { field: "trigger", operator: "is_not_empty" } }] },
    for_each: { items: "{{ trigger.items }}" },
    set: { variables: {} },
    http_request: { method: "GET", url: "https://" },
    webhook_out: { url: "https://" },
    approval: { assignee: { role: "approver" }, title: "Please decide" },
    task_notify: { assignee: { role: "operator" }, title: "Task" },
    ai_prompt: { prompt: "" },
    ai_analysis: { prompt: "", output_schema: { type: "object", properties: { summary: { type: "string" } } } },
    ai_classification: { text: "", labels: ["yes", "no"] },
    ai_agent: { task: "", tools: [] },
    record_create: { pipeline_id: "", data: {} },
    record_update: { pipeline_id: "", record_id: "", data: {} },
    record_find: { pipeline_id: "" },
    record_delete: { pipeline_id: "", record_id: "" },
    wait_delay: { duration_seconds: 60 },
    sub_workflow: { workflow_id: "", mode: "wait", input: {} },
    wait_for_event: { event: "signal", signal_name: "go", wait_seconds: 3600 },
    respond_to_webhook: { status: 200, body: { ok: true } },
    kafka_publish: { topic: "", value: {} },
  };
  const config: JsonObject = { name, ...(structuredClone(starters[type]) ?? {}) };
  for (const field of schema.required ?? []) {
    if (field in config) continue;
    const property = schema.properties?.[field];
    if (property?.default !== undefined) config[field] = property.default as Json;
  }
  return config;
}

export const TYPE_LABELS: Record<string, string> = {
  trigger: "Trigger",
  ai_prompt: "AI prompt",
  ai_analysis: "AI analysis",
  ai_classification: "AI classification",
  ai_agent: "AI agent",
  record_create: "Create record",
  record_update: "Update record",
  record_find: "Find records",
  record_delete: "Delete record",
  condition: "Condition",
  switch: "Switch",
  for_each: "For each",
  wait_delay: "Wait",
  set: "Set variables",
  end: "End",
  http_request: "HTTP request",
  webhook_out: "Send webhook",
  approval: "Approval",
  task_notify: "Task",
  sub_workflow: "Sub-workflow",
  wait_for_event: "Wait for event",
  respond_to_webhook: "Respond to webhook",
  kafka_publish: "Publish to Kafka",
  code: "Code",
};

export function typeLabel(type: string): string {
  return TYPE_LABELS[type] ?? type;
}

/** A JSON-ish text box value: JSON when it reads as JSON, else the text itself. */
export function parseLoose(text: string): Json {
  const trimmed = text.trim();
  if (/^(\{|\[|"|-?\d|true$|false$|null$)/.test(trimmed)) {
    try {
      return JSON.parse(trimmed) as Json;
    } catch {
      return text;
    }
  }
  return text;
}

export function showLoose(value: Json | undefined): string {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Problems whose pointer falls under a node's data: `/nodes/<i>/data/x/y` -> `/x/y`. */
export function problemsByNode(
  problems: { pointer: string; message: string }[],
  nodeIds: string[],
  edgeIds: string[],
): { nodes: Record<string, { path: string; message: string }[]>; edges: Record<string, string[]>; other: string[] } {
  const nodes: Record<string, { path: string; message: string }[]> = {};
  const edges: Record<string, string[]> = {};
  const other: string[] = [];
  for (const problem of problems) {
    const pointer = problem.pointer.replace(/^\/definition/, "");
    const node = /^\/nodes\/(\d+)(\/.*)?$/.exec(pointer);
    const edge = /^\/edges\/(\d+)(\/.*)?$/.exec(pointer);
    if (node && nodeIds[Number(node[1])] !== undefined) {
      const id = nodeIds[Number(node[1])];
      const rest = node[2] ?? "";
      const path = rest.startsWith("/data") ? rest.slice(5) : rest;
      (nodes[id] ??= []).push({ path, message: problem.message });
    } else if (edge && edgeIds[Number(edge[1])] !== undefined) {
      (edges[edgeIds[Number(edge[1])]] ??= []).push(problem.message);
    } else {
      other.push(`${pointer || "/"}: ${problem.message}`);
    }
  }
  return { nodes, edges, other };
}
