import { describe, expect, it } from "vitest";
import catalog from "../test/node-types.json";
import { record, redo, undo } from "../canvas/history";
import { fieldKind, parseLoose, problemsByNode, resolve, starterConfig, unwrapNullable } from "./schema";
import type { JsonSchema } from "./types";

const types = catalog as unknown as { type: string; schema: JsonSchema }[];
const schemaOf = (type: string) => types.find((t) => t.type === type)!.schema;

describe("reading the node schemas", () => {
  it("knows every field kind the forms draw", () => {
    const http = schemaOf("http_request");
    const kinds = Object.fromEntries(
      Object.entries(http.properties!).map(([name, s]) => [name, fieldKind(unwrapNullable(s, http).schema)]),
    );
    expect(kinds).toMatchObject({
      name: "text",
      method: "enum",
      url: "text",
      headers: "string-map",
      auth: "object",
      body: "json",
      response_cap_bytes: "integer",
      retry: "object",
      on_error: "enum",
    });
    const condition = schemaOf("condition");
    expect(fieldKind(resolve(condition.properties!.condition, condition))).toBe("condition");
    expect(fieldKind(schemaOf("set").properties!.variables)).toBe("json-map");
    expect(fieldKind(schemaOf("ai_classification").properties!.labels)).toBe("string-list");
    expect(fieldKind(resolve(schemaOf("switch").properties!.cases, schemaOf("switch")))).toBe("object-list");
  });

  it("starts every palette type with its name and the defaults of its required fields", () => {
    for (const { type, schema } of types) {
      const config = starterConfig(type, schema, "Node");
      expect(config.name).toBe("Node");
      for (const field of schema.required ?? []) {
        if (schema.properties?.[field]?.default !== undefined) expect(config).toHaveProperty(field);
      }
    }
    expect(starterConfig("trigger", schemaOf("trigger"), "Start")).toEqual({ name: "Start", kind: "manual" });
  });

  it("reads loose values as JSON only when they look like JSON", () => {
    expect([
      parseLoose("25"),
      parseLoose("true"),
      parseLoose('["a"]'),
      parseLoose("small"),
      parseLoose("{{ x }}"),
    ]).toEqual([25, true, ["a"], "small", "{{ x }}"]);
  });
});

describe("validation problems", () => {
  it("land on nodes by index and field, on edges, or in the general list", () => {
    const mapped = problemsByNode(
      [
        { pointer: "/definition/nodes/1/data/url", message: "bad url" },
        { pointer: "/nodes/0", message: "unreachable" },
        { pointer: "/edges/0/target", message: "unknown node" },
        { pointer: "/settings/timeout_minutes", message: "too long" },
      ],
      ["start", "call"],
      ["e1"],
    );
    expect(mapped.nodes).toEqual({
      call: [{ path: "/url", message: "bad url" }],
      start: [{ path: "", message: "unreachable" }],
    });
    expect(mapped.edges).toEqual({ e1: ["unknown node"] });
    expect(mapped.other).toEqual(["/settings/timeout_minutes: too long"]);
  });
});

describe("undo history", () => {
  it("steps back and forth, and a new edit drops the redo branch", () => {
    let history = { past: [] as number[], present: 0, future: [] as number[] };
    history = record(record(history, 1), 2);
    history = undo(undo(history));
    expect(history.present).toBe(0);
    history = redo(history);
    expect(history.present).toBe(1);
    history = record(history, 5);
    expect(history).toEqual({ past: [0, 1], present: 5, future: [] });
    expect(undo({ past: [], present: 7, future: [] }).present).toBe(7);
  });
});
