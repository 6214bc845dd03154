/** Testing a node in the editor and its pinned sample outputs: the suggestions pins add to later
 * nodes, and the code editor's suggestions (the code node's context names, written as Python). */
import type { Variable } from "./variables";
import type { Json, JsonObject } from "./types";

export interface NodeTestResult {
  node_id: string;
  node_type: string;
  status: "succeeded" | "failed";
  output: JsonObject | null;
  error: { type: string; message: string; line?: number | null } | null;
  handle: string | null;
  notes: string[];
}

export interface Pin {
  node_id: string;
  output: JsonObject;
  pinned_at: string;
}

/** Nodes whose test answers at once, without side effects (the others need a confirmation). */
export const TESTED_IN_PLACE = new Set(["set", "end", "condition", "switch", "for_each", "wait_delay", "code"]);

const MAX_DEPTH = 3;

function paths(prefix: string, value: Json, depth: number, out: string[]): void {
  out.push(prefix);
  if (depth >= MAX_DEPTH || value === null || typeof value !== "object" || Array.isArray(value)) return;
  for (const [key, inner] of Object.entries(value)) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) paths(`${prefix}.${key}`, inner, depth + 1, out);
  }
}

/** `variables` with the fields of pinned outputs added: `trigger.<field>` from the trigger node's pin,
 * `nodes.<id>.output.<field>` from an earlier node's; those already listed are kept as they are. */
export function withPinnedFields(variables: Variable[], pins: Pin[], triggerId: string | null): Variable[] {
  const known = new Set(variables.map((v) => v.path));
  const out = [...variables];
  for (const pin of pins) {
    const prefix = pin.node_id === triggerId ? "trigger" : `nodes.${pin.node_id}.output`;
    if (prefix !== "trigger" && !known.has(prefix)) continue; // not an earlier node of this one
    const found: string[] = [];
    for (const [key, value] of Object.entries(pin.output)) {
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) paths(`${prefix}.${key}`, value, 1, found);
    }
    for (const path of found) {
      if (known.has(path)) continue;
      known.add(path);
      out.push({ path, hint: "pinned sample" });
    }
  }
  return out;
}

/** A template path as the Python a code node reads it with: `nodes.a.output.total` is
 * `nodes["a"]["output"]["total"]`. */
export function pythonPath(path: string): string {
  const [head, ...rest] = path.split(".");
  return head + rest.map((part) => `[${JSON.stringify(part)}]`).join("");
}

/** The identifier path being typed before the caret (letters, digits, `_`, `.`), if any. */
export function wordBefore(text: string, caret: number): { start: number; partial: string } | null {
  const match = /[A-Za-z_][A-Za-z0-9_.]*$/.exec(text.slice(0, caret));
  if (!match) return null;
  return { start: caret - match[0].length, partial: match[0] };
}

/** The code editor's suggestions for `partial`: context names and paths that start with it. */
export function codeSuggestions(variables: Variable[], partial: string, limit = 12): Variable[] {
  const names: Variable[] = [
    { path: "trigger", hint: "what started the run" },
    { path: "nodes", hint: "earlier nodes' output and error" },
    { path: "vars", hint: "variables set so far" },
    { path: "item", hint: "the for_each item (in a loop)" },
    { path: "index", hint: "its position (in a loop)" },
    { path: "workflow", hint: "id, version, vars" },
    { path: "now", hint: "when the node was scheduled (ISO-8601)" },
  ];
  const seen = new Set<string>();
  return [...names, ...variables]
    .filter((v) => v.path.startsWith(partial) && v.path !== partial && !seen.has(v.path) && seen.add(v.path))
    .slice(0, limit);
}
