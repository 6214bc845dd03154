import { fireEvent, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import catalog from "../test/node-types.json";
import { starterConfig } from "../model/schema";
import type { JsonObject, JsonSchema } from "../model/types";
import type { Variable } from "../model/variables";
import { SchemaForm, type FieldProblem } from "./SchemaForm";

const schemaOf = (type: string) =>
  (catalog as unknown as { type: string; schema: JsonSchema }[]).find((t) => t.type === type)!.schema;

const variables: Variable[] = [
  { path: "trigger.webhook.body", hint: "body" },
  { path: "trigger.webhook.query", hint: "query" },
  { path: "nodes.check.output.result", hint: "Check" },
];

function Harness({
  type,
  initial,
  problems = [],
  seen,
}: {
  type: string;
  initial: JsonObject;
  problems?: FieldProblem[];
  seen: JsonObject[];
}) {
  const [value, setValue] = useState(initial);
  return (
    <SchemaForm
      schema={schemaOf(type)}
      value={value}
      variables={variables}
      problems={problems}
      onChange={(next) => {
        seen.push(next);
        setValue(next);
      }}
    />
  );
}

const field = (path: string) => document.querySelector(`[data-field="${path}"]`) as HTMLInputElement;
const last = (seen: JsonObject[]) => seen[seen.length - 1];

describe("node forms from the node types' JSON schemas", () => {
  it("edits an HTTP request: method, url and headers, keeping the other fields", async () => {
    const seen: JsonObject[] = [];
    render(
      <Harness
        type="http_request"
        initial={starterConfig("http_request", schemaOf("http_request"), "Call")}
        seen={seen}
      />,
    );
    const user = userEvent.setup();
    await user.selectOptions(field("/method"), "POST");
    expect(last(seen)).toMatchObject({ name: "Call", method: "POST", url: "https://" });
    await user.clear(field("/url"));
    await user.type(field("/url"), "http://127.0.0.1:9/hook");
    expect(last(seen).url).toBe("http://127.0.0.1:9/hook");
    await user.click(document.querySelector('[data-add="/headers"]')!);
    await user.clear(field("/headers#key0"));
    await user.type(field("/headers#key0"), "x-team");
    await user.type(field("/headers/x-team"), "ops");
    expect(last(seen).headers).toEqual({ "x-team": "ops" });
    expect(last(seen).method).toBe("POST");
  });

  it("offers the available variables after {{ and completes the expression", async () => {
    const seen: JsonObject[] = [];
    render(<Harness type="ai_prompt" initial={{ name: "Ask", prompt: "" }} seen={seen} />);
    const user = userEvent.setup();
    await user.type(field("/prompt"), "Summarise {{{{ trigger.w");
    const list = screen.getByRole("listbox");
    expect(
      within(list)
        .getAllByRole("option")
        .map((o) => o.querySelector("code")!.textContent),
    ).toEqual(["trigger.webhook.body", "trigger.webhook.query"]);
    fireEvent.mouseDown(within(list).getAllByRole("option")[0]);
    expect(last(seen).prompt).toBe("Summarise {{ trigger.webhook.body }}");
    expect(screen.queryByRole("listbox")).toBeNull();
  });

  it("edits a condition: field from the suggestions, operator and a typed value", async () => {
    const seen: JsonObject[] = [];
    render(
      <Harness type="condition" initial={starterConfig("condition", schemaOf("condition"), "Big?")} seen={seen} />,
    );
    const user = userEvent.setup();
    await user.clear(field("/condition/field"));
    await user.type(field("/condition/field"), "nodes.check");
    fireEvent.mouseDown(within(screen.getByRole("listbox")).getByRole("option"));
    await user.selectOptions(field("/condition/operator"), "greater_than");
    await user.type(field("/condition/value"), "100");
    expect(last(seen).condition).toEqual({ field: "nodes.check.output.result", operator: "greater_than", value: 100 });
    await user.selectOptions(screen.getByLabelText("condition kind"), "and");
    expect(last(seen).condition).toEqual({
      and: [{ field: "nodes.check.output.result", operator: "greater_than", value: 100 }],
    });
  });

  it("edits set variables as named rows whose values are JSON when they read as JSON", async () => {
    const seen: JsonObject[] = [];
    render(<Harness type="set" initial={starterConfig("set", schemaOf("set"), "Mark")} seen={seen} />);
    const user = userEvent.setup();
    await user.click(document.querySelector('[data-add="/variables"]')!);
    await user.clear(field("/variables#key0"));
    await user.type(field("/variables#key0"), "route");
    await user.type(field("/variables/route"), "small");
    await user.click(document.querySelector('[data-add="/variables"]')!);
    await user.clear(field("/variables#key1"));
    await user.type(field("/variables#key1"), "limit");
    await user.type(field("/variables/limit"), "25");
    expect(last(seen).variables).toEqual({ route: "small", limit: 25 });
  });

  it("shows the validator's problems under the fields they point at, and the rest on top", () => {
    const problems = [
      { path: "/url", message: "String should match pattern '^(https?://|\\{\\{)'" },
      { path: "/timeout_seconds", message: "Input should be less than or equal to 3600" },
      { path: "", message: "Value error, body is not sent with GET" },
    ];
    render(<Harness type="http_request" initial={{ name: "Call", url: "ftp://x" }} problems={problems} seen={[]} />);
    expect(document.querySelector('[data-error-for="/url"]')!.textContent).toContain("should match pattern");
    expect(field("/url").getAttribute("aria-invalid")).toBe("true");
    // The common section opens by itself when one of its fields has a problem.
    expect(document.querySelector("details")!.open).toBe(true);
    expect(document.querySelector('[data-error-for="/timeout_seconds"]')).not.toBeNull();
    expect(screen.getByText(/body is not sent with GET/)).toBeTruthy();
  });

  it("switches on error edges, sets a retry policy, and fills an approval's assignee", async () => {
    const seen: JsonObject[] = [];
    render(<Harness type="approval" initial={starterConfig("approval", schemaOf("approval"), "Ask")} seen={seen} />);
    const user = userEvent.setup();
    await user.click(screen.getByText("Errors, retries and timeout"));
    await user.selectOptions(field("/on_error"), "error_edge");
    await user.click(document.querySelector('[data-add="/retry"]')!);
    await user.type(field("/retry/max_attempts"), "3");
    await user.clear(field("/assignee/role"));
    await user.type(field("/assignee/role"), "finance");
    expect(last(seen)).toMatchObject({
      on_error: "error_edge",
      retry: { max_attempts: 3 },
      assignee: { role: "finance" },
      title: "Please decide",
    });
  });

  it("gives trigger fields no template suggestions and offers every trigger kind", () => {
    render(
      <SchemaForm
        schema={schemaOf("trigger")}
        value={{ name: "Start", kind: "manual" }}
        variables={variables}
        problems={[]}
        templates={false}
        onChange={() => {}}
      />,
    );
    expect(Array.from(field("/kind").querySelectorAll("option")).map((o) => o.value)).toEqual(
      expect.arrayContaining(["webhook", "record_created", "scheduled", "manual"]),
    );
    expect(document.querySelector(".variables-button")).toBeNull();
  });

  it("names a for_each's item in its form", async () => {
    const seen: JsonObject[] = [];
    render(<Harness type="for_each" initial={{ name: "Rows", items: "{{ trigger.rows }}" }} seen={seen} />);
    const input = field("/item_variable");
    expect(input).toBeTruthy();
    await userEvent.type(input, "row");
    expect(seen.at(-1)).toMatchObject({ name: "Rows", item_variable: "row" });
  });
});

describe("a Kafka node's topic", () => {
  it("is chosen from the granted topics, not typed", () => {
    const seen: JsonObject[] = [];
    render(
      <SchemaForm
        schema={schemaOf("kafka_publish")}
        value={{ name: "Emit", topic: "" }}
        variables={variables}
        problems={[]}
        choices={{ topic: ["audit", "orders"] }}
        onChange={(next) => seen.push(next)}
      />,
    );
    const topic = document.querySelector('[data-field="/topic"]') as HTMLSelectElement;
    expect(topic.tagName).toBe("SELECT");
    expect([...topic.options].map((o) => o.value)).toEqual(["", "audit", "orders"]);
    fireEvent.change(topic, { target: { value: "orders" } });
    expect(seen[seen.length - 1].topic).toBe("orders");
  });
});
