import { fireEvent, render, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import catalog from "../test/node-types.json";
import { discriminated, fieldKind, starterConfig } from "../model/schema";
import type { JsonObject, JsonSchema } from "../model/types";
import { SchemaForm } from "./SchemaForm";

const agent = (catalog as unknown as { type: string; schema: JsonSchema }[]).find((t) => t.type === "ai_agent")!.schema;
const WORKFLOWS = [
  { id: "5f0c1d2e-0000-4000-8000-000000000001", name: "Quote a deal" },
  { id: "5f0c1d2e-0000-4000-8000-000000000002", name: "Notify sales" },
];

function Harness({ initial, seen }: { initial: JsonObject; seen: JsonObject[] }) {
  const [value, setValue] = useState(initial);
  return (
    <SchemaForm
      schema={agent}
      value={value}
      variables={[]}
      problems={[{ path: "/tools/0/pipelines", message: "at least 1 item" }]}
      workflows={WORKFLOWS}
      onChange={(next) => {
        seen.push(next);
        setValue(next);
      }}
    />
  );
}

const field = (path: string) => document.querySelector(`[data-field="${path}"]`) as HTMLInputElement;
const add = (path: string, variant: string) =>
  document.querySelector(`[data-add="${path}"][data-variant="${variant}"]`) as HTMLButtonElement;

describe("the agent's form", () => {
  it("reads its tools as a union told apart by kind", () => {
    const union = discriminated(agent.properties!.tools.items!, agent);
    expect(union?.property).toBe("kind");
    expect(union?.variants.map((v) => v.key)).toEqual(["records", "http", "workflow"]);
    expect(fieldKind(agent.properties!.tools)).toBe("object-list");
    expect(discriminated(agent.properties!.task, agent)).toBeNull();
  });

  it("adds a tool per kind and edits each with its own fields", async () => {
    const seen: JsonObject[] = [];
    render(<Harness initial={starterConfig("ai_agent", agent, "Agent")} seen={seen} />);
    const user = userEvent.setup();
    await user.type(field("/task"), "Mark the deals");
    expect(field("/task").tagName).toBe("TEXTAREA");

    fireEvent.click(add("/tools", "records"));
    expect(seen.at(-1)!.tools).toEqual([{ kind: "records" }]);
    // A records tool: its pipelines, its actions as checkboxes (find by default), no URL or workflow.
    expect(field("/tools/0/url_patterns")).toBeNull();
    expect(field("/tools/0/kind").tagName).toBe("SELECT");
    expect(document.querySelector('[data-error-for="/tools/0/pipelines"]')!.textContent).toBe("at least 1 item");
    fireEvent.click(document.querySelector('[data-add="/tools/0/pipelines"]')!);
    await user.type(field("/tools/0/pipelines/0"), "deals");
    const actions = field("/tools/0/actions");
    expect((within(actions).getByLabelText("find") as HTMLInputElement).checked).toBe(true);
    await user.click(within(actions).getByLabelText("update"));
    expect(seen.at(-1)!.tools).toEqual([{ kind: "records", pipelines: ["deals"], actions: ["find", "update"] }]);

    // A workflow tool: its workflow picked by name (the id field follows), name and description.
    fireEvent.click(add("/tools", "workflow"));
    const picker = document.querySelector("#field-tools-1-workflow_id-picker") as HTMLSelectElement;
    expect([...picker.options].map((o) => o.textContent)).toEqual([
      "choose a workflow",
      "Quote a deal",
      "Notify sales",
    ]);
    await user.selectOptions(picker, WORKFLOWS[0].id);
    expect(field("/tools/1/workflow_id").value).toBe(WORKFLOWS[0].id);
    await user.type(field("/tools/1/name"), "quote");
    expect((seen.at(-1)!.tools as JsonObject[])[1]).toEqual({
      kind: "workflow",
      workflow_id: WORKFLOWS[0].id,
      name: "quote",
    });
    // Tool fields are read as they are: no template suggestions inside them.
    expect(document.querySelector('[data-field="/tools/1/description"]')!.closest(".template-input")).toBeNull();

    // An HTTP tool's methods are checkboxes too; switching an item's kind starts it afresh.
    fireEvent.click(add("/tools", "http"));
    expect(field("/tools/2/methods")).not.toBeNull();
    await user.selectOptions(field("/tools/2/kind"), "records");
    expect((seen.at(-1)!.tools as JsonObject[])[2]).toEqual({ kind: "records" });
    fireEvent.click(within(document.querySelector('[aria-label="tools 3"]') as HTMLElement).getByText("remove"));
    expect(seen.at(-1)!.tools as JsonObject[]).toHaveLength(2);
  });

  it("sets an approver as the approval node's assignee is set: a user or a role", async () => {
    const seen: JsonObject[] = [];
    render(<Harness initial={{ name: "Agent", task: "t" }} seen={seen} />);
    fireEvent.click(document.querySelector('[data-add="/approver"]')!);
    await userEvent.type(field("/approver/role"), "sales");
    expect(seen.at(-1)).toMatchObject({ approver: { role: "sales" } });
  });
});
