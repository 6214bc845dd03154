/** What the condition editor offers: the operators that fit a field's type (from the trigger's pipeline
 * fields and earlier nodes' output shapes when they are known), each with a readable label. Mirrors
 * docs/templates-and-conditions.md#operators. */
import type { Json, JsonObject } from "./types";

export type FieldType = "text" | "number" | "boolean" | "date" | "list" | "object" | "unknown";

export const OPERATOR_LABELS: Record<string, string> = {
  equals: "equals",
  not_equals: "does not equal",
  greater_than: "is greater than",
  greater_than_or_equals: "is greater than or equal to",
  less_than: "is less than",
  less_than_or_equals: "is less than or equal to",
  contains: "contains",
  not_contains: "does not contain",
  starts_with: "starts with",
  ends_with: "ends with",
  is_empty: "is empty",
  is_not_empty: "is not empty",
  in: "is one of",
  not_in: "is not one of",
  matches: "matches pattern",
  before: "is before",
  after: "is after",
  between: "is between",
  length_equals: "has length",
  length_greater_than: "is longer than",
  length_less_than: "is shorter than",
};

export const OPERATORS = Object.keys(OPERATOR_LABELS);

/** The short spellings the API accepts, shown as the named operator. */
export const OPERATOR_ALIASES: Record<string, string> = {
  "==": "equals",
  "!=": "not_equals",
  ">": "greater_than",
  ">=": "greater_than_or_equals",
  "<": "less_than",
  "<=": "less_than_or_equals",
};

/** The operators `ignore_case` applies to. */
export const CASE_OPERATORS = new Set(["contains", "not_contains", "starts_with", "ends_with"]);
/** The operators that read relative dates, and so a time zone. */
export const DATE_OPERATORS = new Set([
  "before",
  "after",
  "between",
  "greater_than",
  "greater_than_or_equals",
  "less_than",
  "less_than_or_equals",
]);

const BY_TYPE: Record<Exclude<FieldType, "unknown">, string[]> = {
  text: [
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches",
    "in",
    "not_in",
    "is_empty",
    "is_not_empty",
    "length_equals",
    "length_greater_than",
    "length_less_than",
  ],
  number: [
    "equals",
    "not_equals",
    "greater_than",
    "greater_than_or_equals",
    "less_than",
    "less_than_or_equals",
    "between",
    "in",
    "not_in",
    "is_empty",
    "is_not_empty",
  ],
  boolean: ["equals", "not_equals", "is_empty", "is_not_empty"],
  date: ["before", "after", "between", "equals", "not_equals", "is_empty", "is_not_empty"],
  list: [
    "contains",
    "not_contains",
    "is_empty",
    "is_not_empty",
    "length_equals",
    "length_greater_than",
    "length_less_than",
  ],
  object: [
    "equals",
    "not_equals",
    "is_empty",
    "is_not_empty",
    "length_equals",
    "length_greater_than",
    "length_less_than",
  ],
};

/** The operators for a field of `type`, in a readable order; every operator when the type is not
 * known. The current operator stays offered even when it does not fit, so a stored condition shows. */
export function operatorsFor(type: FieldType, current?: string): string[] {
  const fitting = type === "unknown" ? OPERATORS : BY_TYPE[type];
  const named = current ? (OPERATOR_ALIASES[current] ?? current) : undefined;
  return named && !fitting.includes(named) ? [...fitting, named] : fitting;
}

export function operatorLabel(operator: string): string {
  const named = OPERATOR_ALIASES[operator] ?? operator;
  return OPERATOR_LABELS[named] ?? named.replace(/_/g, " ");
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})?)?$/;

/** The type a sample value shows: ISO-8601 text is a date. */
export function typeOfValue(value: Json | undefined): FieldType {
  if (value === null || value === undefined) return "unknown";
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "string") return ISO_DATE.test(value.trim()) ? "date" : "text";
  if (Array.isArray(value)) return "list";
  return "object";
}

/** Each top-level field of a pipeline's sample records with the type its values agree on ("unknown"
 * when they disagree, leaving nulls out). */
export function pipelineFieldTypes(samples: JsonObject[]): Record<string, FieldType> {
  const types: Record<string, FieldType> = {};
  for (const data of samples) {
    for (const [name, value] of Object.entries(data)) {
      const type = typeOfValue(value);
      if (type === "unknown") continue;
      types[name] = types[name] === undefined || types[name] === type ? type : "unknown";
    }
  }
  return types;
}

/** The type of the field at `path`, when a known variable names it. */
export function fieldTypeOf(path: string, variables: { path: string; type?: FieldType }[]): FieldType {
  return variables.find((v) => v.path === path.trim())?.type ?? "unknown";
}

export interface ConditionPreset {
  id: string;
  name: string;
  description: string;
  condition: JsonObject;
}
