import { describe, expect, it } from "vitest";
import { formInput, inputFields, inputSchema } from "./runInput";
import type { Definition, Json, JsonSchema } from "./types";

const SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    n: { type: "integer", description: "how many" },
    name: { type: "string" },
    urgent: { type: "boolean" },
    tags: { type: "array" },
  },
  required: ["n"],
};

describe("the Run dialog's input form", () => {
  it("reads the manual trigger's input_schema and no other", () => {
    const manual: Definition = {
      nodes: [
        {
          id: "t",
          type: "trigger",
          position: { x: 0, y: 0 },
          data: { kind: "manual", input_schema: SCHEMA as unknown as Json },
        },
      ],
      edges: [],
    };
    expect(inputSchema(manual)).toEqual(SCHEMA);
    const webhook: Definition = {
      nodes: [{ id: "t", type: "trigger", position: { x: 0, y: 0 }, data: { kind: "webhook" } }],
      edges: [],
    };
    expect(inputSchema(webhook)).toBeNull();
  });

  it("has a field per property, with its kind and whether it is required", () => {
    expect(inputFields(SCHEMA)).toEqual([
      { name: "n", kind: "integer", required: true, description: "how many" },
      { name: "name", kind: "text", required: false, description: undefined },
      { name: "urgent", kind: "boolean", required: false, description: undefined },
      { name: "tags", kind: "json", required: false, description: undefined },
    ]);
    expect(inputFields({ type: "object" })).toBeNull();
  });

  it("builds the input from the texts and names what does not fit", () => {
    const fields = inputFields(SCHEMA)!;
    expect(formInput(fields, { n: "3", name: "Ada", urgent: "true", tags: '["a"]' })).toEqual({
      input: { n: 3, name: "Ada", urgent: true, tags: ["a"] },
      problems: {},
    });
    expect(formInput(fields, { n: "", tags: "[" }).problems).toEqual({ n: "required", tags: "JSON" });
    expect(formInput(fields, { n: "1.5" }).problems).toEqual({ n: "a whole number" });
  });
});
