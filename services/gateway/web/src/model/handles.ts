/** Which source handles a node has: the builder draws one connector per handle. Mirrors
 * `source_handles` in libs/common/src/millrace_common/language/workflow_nodes.py. */
import type { JsonObject } from "./types";

export const ERROR_HANDLE = "error";
export const CASE_PREFIX = "case:";

const NAMED: Record<string, string[]> = {
  condition: ["true", "false"],
  approval: ["approved", "rejected", "timeout"],
  for_each: ["done"],
  wait_for_event: ["event", "timeout"],
};

/** Types whose edges must name a handle. */
export const HANDLE_REQUIRED = new Set(["condition", "switch", "approval", "wait_for_event"]);

export interface SourceHandle {
  /** The edge's sourceHandle; null for a node's single plain output. */
  id: string | null;
  label: string;
}

export function sourceHandles(type: string, data: JsonObject): SourceHandle[] {
  const handles: SourceHandle[] = [];
  if (type === "switch") {
    const cases = Array.isArray(data.cases) ? data.cases : [];
    for (const c of cases) {
      if (c && typeof c === "object" && !Array.isArray(c) && typeof c.name === "string" && c.name) {
        handles.push({ id: CASE_PREFIX + c.name, label: c.name });
      }
    }
    handles.push({ id: "default", label: "default" });
  } else if (NAMED[type]) {
    for (const name of NAMED[type]) handles.push({ id: name, label: name });
  } else {
    handles.push({ id: null, label: "" });
  }
  if (data.on_error === "error_edge") handles.push({ id: ERROR_HANDLE, label: "error" });
  return handles;
}

export function hasTarget(type: string): boolean {
  return type !== "trigger";
}
