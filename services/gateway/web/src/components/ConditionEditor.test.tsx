import { fireEvent, render, screen, within } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import type { ConditionPreset } from "../model/conditions";
import type { JsonObject } from "../model/types";
import type { Variable } from "../model/variables";
import { ConditionEditor } from "./ConditionEditor";

const variables: Variable[] = [
  { path: "trigger.record.data.amount", hint: "record field (number)", type: "number" },
  { path: "trigger.record.data.subject", hint: "record field (text)", type: "text" },
  { path: "trigger.record.data.due", hint: "record field (date)", type: "date" },
];
const presets: ConditionPreset[] = [
  {
    id: "high_value_invoice",
    name: "High-value invoice",
    description: "The amount is 10,000 or more",
    condition: { field: "trigger.record.data.amount", operator: "greater_than_or_equals", value: 10000 },
  },
];

function Harness({ initial, seen }: { initial: JsonObject; seen: JsonObject[] }) {
  const [value, setValue] = useState<JsonObject>(initial);
  return (
    <ConditionEditor
      value={value}
      field="/condition"
      variables={variables}
      problems={[]}
      presets={presets}
      onChange={(next) => {
        seen.push(next);
        setValue(next);
      }}
    />
  );
}

const operatorSelect = (container: HTMLElement) =>
  container.querySelector('[data-field="/condition/operator"]') as HTMLSelectElement;
const labels = (select: HTMLSelectElement) => Array.from(select.options).map((o) => o.textContent);

describe("the condition editor", () => {
  it("offers the operators of a number field with readable labels, and not the text ones", () => {
    const { container } = render(
      <Harness initial={{ field: "trigger.record.data.amount", operator: "==", value: 1 }} seen={[]} />,
    );
    const select = operatorSelect(container);
    expect(select.value).toBe("equals");
    expect(labels(select)).toContain("is greater than or equal to");
    expect(labels(select)).not.toContain("starts with");
    expect(container.querySelector('[data-field="/condition/ignore_case"]')).toBeNull();
  });

  it("offers ignore case for a text operator and writes it only when ticked", () => {
    const seen: JsonObject[] = [];
    const { container } = render(
      <Harness initial={{ field: "trigger.record.data.subject", operator: "contains", value: "urgent" }} seen={seen} />,
    );
    expect(labels(operatorSelect(container))).toContain("starts with");
    const box = container.querySelector('[data-field="/condition/ignore_case"]') as HTMLInputElement;
    fireEvent.click(box);
    expect(seen.at(-1)).toEqual({
      field: "trigger.record.data.subject",
      operator: "contains",
      value: "urgent",
      ignore_case: true,
    });
    fireEvent.change(operatorSelect(container), { target: { value: "equals" } });
    expect(seen.at(-1)).toEqual({ field: "trigger.record.data.subject", operator: "equals", value: "urgent" });
  });

  it("offers date operators and a time zone for a date field", () => {
    const seen: JsonObject[] = [];
    const { container } = render(
      <Harness initial={{ field: "trigger.record.data.due", operator: "before", value: "today" }} seen={seen} />,
    );
    expect(labels(operatorSelect(container))).toEqual(expect.arrayContaining(["is before", "is after", "is between"]));
    const zone = container.querySelector('[data-field="/condition/time_zone"]') as HTMLInputElement;
    fireEvent.change(zone, { target: { value: "Europe/Berlin" } });
    expect(seen.at(-1)).toMatchObject({ operator: "before", time_zone: "Europe/Berlin" });
  });

  it("lists presets by name with their description, and inserts a copy of the condition", () => {
    const seen: JsonObject[] = [];
    render(<Harness initial={{ field: "trigger", operator: "is_not_empty" }} seen={seen} />);
    const menu = screen.getByLabelText("preset") as HTMLSelectElement;
    const option = within(menu).getByText("High-value invoice") as HTMLOptionElement;
    expect(option.title).toBe("The amount is 10,000 or more");
    fireEvent.change(menu, { target: { value: "high_value_invoice" } });
    expect(seen.at(-1)).toEqual(presets[0].condition);
    expect(seen.at(-1)).not.toBe(presets[0].condition);
  });
});
