import { describe, expect, it } from "vitest";
import {
  fieldTypeOf,
  OPERATOR_LABELS,
  operatorLabel,
  operatorsFor,
  OPERATORS,
  pipelineFieldTypes,
  typeOfValue,
} from "./conditions";
import { availableVariables } from "./variables";
import type { JsonObject } from "./types";

describe("the operators the condition editor offers", () => {
  it("offers the operators that fit the field's type, and all of them when it is not known", () => {
    expect(operatorsFor("number")).toContain("greater_than");
    expect(operatorsFor("number")).not.toContain("starts_with");
    expect(operatorsFor("text")).toEqual(expect.arrayContaining(["contains", "starts_with", "ends_with", "matches"]));
    expect(operatorsFor("text")).not.toContain("before");
    expect(operatorsFor("date")).toEqual(expect.arrayContaining(["before", "after", "between"]));
    expect(operatorsFor("boolean")).toEqual(["equals", "not_equals", "is_empty", "is_not_empty"]);
    expect(operatorsFor("list")).toContain("length_greater_than");
    expect(operatorsFor("unknown")).toEqual(OPERATORS);
  });

  it("keeps a stored operator that does not fit, so the condition still shows, and reads aliases as names", () => {
    expect(operatorsFor("boolean", "matches")).toEqual(["equals", "not_equals", "is_empty", "is_not_empty", "matches"]);
    expect(operatorsFor("number", ">=")).toEqual(operatorsFor("number"));
    expect(operatorLabel(">=")).toBe("is greater than or equal to");
  });

  it("labels every operator of the language readably", () => {
    expect(OPERATORS).toHaveLength(21);
    for (const operator of OPERATORS) expect(OPERATOR_LABELS[operator]).not.toContain("_");
    expect(operatorLabel("not_in")).toBe("is not one of");
  });

  it("reads types from sample values: ISO text is a date, disagreeing samples leave a field unknown", () => {
    expect(typeOfValue("2026-03-04")).toBe("date");
    expect(typeOfValue("2026-03-04T10:00:00+01:00")).toBe("date");
    expect(typeOfValue("March")).toBe("text");
    expect(typeOfValue(3)).toBe("number");
    expect(typeOfValue([1])).toBe("list");
    const samples: JsonObject[] = [
      { amount: 10, due: "2026-03-04", paid: false, note: null, code: "A" },
      { amount: 12.5, due: "2026-04-01", paid: true, note: "x", code: 7 },
    ];
    expect(pipelineFieldTypes(samples)).toEqual({
      amount: "number",
      due: "date",
      paid: "boolean",
      note: "text",
      code: "unknown",
    });
  });
});

describe("field types from the graph", () => {
  const nodes: { id: string; type: string; data: JsonObject }[] = [
    { id: "start", type: "trigger", data: { kind: "record_created", pipeline_id: "invoices" } },
    { id: "find", type: "record_find", data: { name: "Find" } },
    { id: "gate", type: "condition", data: { name: "Gate" } },
  ];
  const edges = [
    { source: "start", target: "find" },
    { source: "find", target: "gate" },
  ];

  it("types the pipeline's record fields and earlier nodes' outputs for the condition editor", () => {
    const variables = availableVariables("gate", nodes, edges, { amount: "number", due: "date" });
    expect(fieldTypeOf("trigger.record.data.amount", variables)).toBe("number");
    expect(fieldTypeOf("trigger.record.data.due", variables)).toBe("date");
    expect(fieldTypeOf("nodes.find.output.count", variables)).toBe("number");
    expect(fieldTypeOf("nodes.find.output.records", variables)).toBe("list");
    expect(fieldTypeOf("trigger.occurred_at", variables)).toBe("date");
    expect(fieldTypeOf("trigger.record.data.unheard_of", variables)).toBe("unknown");
    expect(operatorsFor(fieldTypeOf("trigger.record.data.due", variables))).toContain("before");
  });
});
