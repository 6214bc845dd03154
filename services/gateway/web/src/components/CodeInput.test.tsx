import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import catalog from "../test/node-types.json";
import type { JsonObject, JsonSchema } from "../model/types";
import { SchemaForm } from "./SchemaForm";

const codeSchema = (catalog as unknown as { type: string; schema: JsonSchema }[]).find(
  (t) => t.type === "code",
)!.schema;

function Harness({ seen }: { seen: JsonObject[] }) {
  const [value, setValue] = useState<JsonObject>({ name: "Calc", code: "def main():\n    return " });
  return (
    <SchemaForm
      schema={codeSchema}
      value={value}
      variables={[{ path: "nodes.calc.output.total", hint: "pinned sample" }]}
      problems={[]}
      onChange={(next) => {
        seen.push(next);
        setValue(next);
      }}
    />
  );
}

describe("the code node's editor", () => {
  it("is a code area that suggests context paths and inserts them as Python", async () => {
    const seen: JsonObject[] = [];
    render(<Harness seen={seen} />);
    const editor = document.querySelector('[data-field="/code"]') as HTMLTextAreaElement;
    expect(editor.tagName).toBe("TEXTAREA");
    const user = userEvent.setup();
    await user.click(editor);
    await user.type(editor, "nodes.ca");
    const option = await screen.findByText('nodes["calc"]["output"]["total"]');
    await user.click(option);
    expect(seen[seen.length - 1].code).toBe('def main():\n    return nodes["calc"]["output"]["total"]');
  });
});
