import type { Definition, Json, JsonObject, JsonSchema } from "./types";

/** A field of the Run dialog's form, drawn from a manual trigger's input_schema. */
export interface InputField {
  name: string;
  kind: "text" | "number" | "integer" | "boolean" | "json";
  required: boolean;
  description?: string;
}

/** The input_schema of the definition's manual trigger, or null. */
export function inputSchema(definition: Definition | undefined): JsonSchema | null {
  const trigger = definition?.nodes.find((n) => n.type === "trigger");
  const schema = trigger?.data.kind === "manual" ? trigger.data.input_schema : undefined;
  return schema && typeof schema === "object" && !Array.isArray(schema) ? (schema as JsonSchema) : null;
}

/** One field per top-level property, when the schema is an object of properties; null otherwise
 * (the dialog then keeps the JSON box, and the server checks the input). */
export function inputFields(schema: JsonSchema | null): InputField[] | null {
  if (!schema || !schema.properties || Object.keys(schema.properties).length === 0) return null;
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, property]) => {
    const type = Array.isArray(property.type) ? property.type[0] : property.type;
    const kind: InputField["kind"] =
      type === "string" || type === "number" || type === "integer" || type === "boolean"
        ? type === "string"
          ? "text"
          : type
        : "json";
    return { name, kind, required: required.has(name), description: property.description };
  });
}

/** The input the form's texts stand for, and a problem per field that does not fit (by name). */
export function formInput(
  fields: InputField[],
  texts: Record<string, string>,
): { input: JsonObject; problems: Record<string, string> } {
  const input: JsonObject = {};
  const problems: Record<string, string> = {};
  for (const field of fields) {
    const text = (texts[field.name] ?? "").trim();
    if (text === "") {
      if (field.required) problems[field.name] = "required";
      continue;
    }
    let value: Json;
    switch (field.kind) {
      case "text":
        value = texts[field.name];
        break;
      case "boolean":
        value = text === "true";
        break;
      case "number":
      case "integer": {
        const n = Number(text);
        if (!Number.isFinite(n) || (field.kind === "integer" && !Number.isInteger(n))) {
          problems[field.name] = field.kind === "integer" ? "a whole number" : "a number";
          continue;
        }
        value = n;
        break;
      }
      default:
        try {
          value = JSON.parse(text) as Json;
        } catch {
          problems[field.name] = "JSON";
          continue;
        }
    }
    input[field.name] = value;
  }
  return { input, problems };
}
