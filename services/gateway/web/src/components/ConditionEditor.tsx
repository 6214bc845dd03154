import {
  CASE_OPERATORS,
  DATE_OPERATORS,
  fieldTypeOf,
  operatorLabel,
  operatorsFor,
  OPERATOR_ALIASES,
  type ConditionPreset,
} from "../model/conditions";
import type { Json, JsonObject } from "../model/types";
import { parseLoose, showLoose } from "../model/schema";
import type { Variable } from "../model/variables";
import { TemplateInput } from "./TemplateInput";

const NO_VALUE = new Set(["is_empty", "is_not_empty"]);

type Kind = "comparison" | "and" | "or" | "not";

function kindOf(condition: JsonObject | null | undefined): Kind {
  if (condition && "and" in condition) return "and";
  if (condition && "or" in condition) return "or";
  if (condition && "not" in condition) return "not";
  return "comparison";
}

function blankComparison(): JsonObject {
  return { field: "trigger", operator: "is_not_empty" };
}

interface Props {
  value: JsonObject | null | undefined;
  onChange: (value: JsonObject) => void;
  field: string;
  variables: Variable[];
  problems: { path: string; message: string }[];
  presets?: ConditionPreset[];
}

/** A condition tree: a comparison, or all/any of several, or not. Pointers follow the JSON shape
 * (`/condition/and/0/field`) so the validator's problems land on the right input. */
export function ConditionEditor({ value, onChange, field, variables, problems, presets }: Props) {
  const kind = kindOf(value);
  const paths = variables.map((v) => ({ ...v, path: v.path }));
  const here = problems.filter((p) => p.path === field);
  const change = (next: Kind) => {
    if (next === kind) return;
    const current = value ?? blankComparison();
    if (next === "comparison")
      onChange(kind === "not" ? ((current.not as JsonObject) ?? blankComparison()) : blankComparison());
    else if (next === "not") onChange({ not: current });
    else onChange({ [next]: kind === "comparison" || kind === "not" ? [current] : ((current[kind] as Json[]) ?? []) });
  };
  return (
    <div className="condition" data-field={field}>
      <div className="condition-head">
        <select
          aria-label="condition kind"
          data-field={`${field}#kind`}
          value={kind}
          onChange={(e) => change(e.target.value as Kind)}
        >
          <option value="comparison">comparison</option>
          <option value="and">all of</option>
          <option value="or">any of</option>
          <option value="not">not</option>
        </select>
        {presets && presets.length > 0 && (
          <select
            aria-label="preset"
            value=""
            onChange={(e) => {
              const chosen = presets.find((p) => p.id === e.target.value);
              if (chosen) onChange(structuredClone(chosen.condition));
            }}
          >
            <option value="">preset…</option>
            {presets.map((preset) => (
              <option key={preset.id} value={preset.id} title={preset.description}>
                {preset.name}
              </option>
            ))}
          </select>
        )}
      </div>
      {here.map((p, i) => (
        <div key={i} className="field-error">
          {p.message}
        </div>
      ))}
      {kind === "comparison" && (
        <Comparison
          value={value ?? blankComparison()}
          onChange={onChange}
          field={field}
          variables={paths}
          problems={problems}
        />
      )}
      {(kind === "and" || kind === "or") && (
        <div className="condition-children">
          {((value?.[kind] as JsonObject[]) ?? []).map((child, index, all) => (
            <div className="condition-child" key={index}>
              <ConditionEditor
                value={child}
                field={`${field}/${kind}/${index}`}
                variables={variables}
                problems={problems}
                onChange={(next) => onChange({ [kind]: all.map((c, i) => (i === index ? next : c)) })}
              />
              <button
                type="button"
                className="icon"
                aria-label="remove condition"
                onClick={() => onChange({ [kind]: all.filter((_, i) => i !== index) })}
              >
                ×
              </button>
            </div>
          ))}
          <button
            type="button"
            className="small"
            onClick={() => onChange({ [kind]: [...((value?.[kind] as JsonObject[]) ?? []), blankComparison()] })}
          >
            + condition
          </button>
        </div>
      )}
      {kind === "not" && (
        <div className="condition-children">
          <ConditionEditor
            value={(value?.not as JsonObject) ?? blankComparison()}
            field={`${field}/not`}
            variables={variables}
            problems={problems}
            onChange={(next) => onChange({ not: next })}
          />
        </div>
      )}
    </div>
  );
}

function Comparison({
  value,
  onChange,
  field,
  variables,
  problems,
}: {
  value: JsonObject;
  onChange: (value: JsonObject) => void;
  field: string;
  variables: Variable[];
  problems: { path: string; message: string }[];
}) {
  const stored = typeof value.operator === "string" ? value.operator : "equals";
  const operator = OPERATOR_ALIASES[stored] ?? stored;
  const fieldType = fieldTypeOf(typeof value.field === "string" ? value.field : "", variables);
  const set = (key: string, next: Json | undefined) => {
    const copy: JsonObject = { ...value };
    if (next === undefined || next === "") delete copy[key];
    else copy[key] = next;
    onChange(copy);
  };
  const errors = (name: string) => problems.filter((p) => p.path === `${field}/${name}`);
  return (
    <div className="comparison">
      <label>
        Field
        <TemplateInput
          bare
          field={`${field}/field`}
          value={typeof value.field === "string" ? value.field : ""}
          variables={variables}
          invalid={errors("field").length > 0}
          placeholder="trigger.webhook.body.amount"
          onChange={(text) => set("field", text)}
        />
      </label>
      {errors("field").map((p, i) => (
        <div key={i} className="field-error">
          {p.message}
        </div>
      ))}
      <label>
        Operator
        <select
          data-field={`${field}/operator`}
          value={operator}
          onChange={(e) => {
            const copy: JsonObject = { ...value, operator: e.target.value };
            if (NO_VALUE.has(e.target.value)) {
              delete copy.value;
              delete copy.value_to;
            }
            if (e.target.value !== "between") delete copy.value_to;
            if (!CASE_OPERATORS.has(e.target.value)) delete copy.ignore_case;
            onChange(copy);
          }}
        >
          {operatorsFor(fieldType, operator).map((op) => (
            <option key={op} value={op}>
              {operatorLabel(op)}
            </option>
          ))}
        </select>
      </label>
      {CASE_OPERATORS.has(operator) && (
        <label className="inline">
          <input
            type="checkbox"
            data-field={`${field}/ignore_case`}
            checked={value.ignore_case === true}
            onChange={(e) => set("ignore_case", e.target.checked ? true : undefined)}
          />
          ignore case
        </label>
      )}
      {DATE_OPERATORS.has(operator) && (fieldType === "date" || fieldType === "unknown") && (
        <label>
          Time zone
          <input
            type="text"
            data-field={`${field}/time_zone`}
            value={typeof value.time_zone === "string" ? value.time_zone : ""}
            placeholder="UTC, or e.g. Europe/Berlin"
            className={errors("time_zone").length ? "invalid" : undefined}
            onChange={(e) => set("time_zone", e.target.value.trim() === "" ? undefined : e.target.value.trim())}
          />
        </label>
      )}
      {errors("time_zone").map((p, i) => (
        <div key={i} className="field-error">
          {p.message}
        </div>
      ))}
      {errors("operator").map((p, i) => (
        <div key={i} className="field-error">
          {p.message}
        </div>
      ))}
      {!NO_VALUE.has(operator) && (
        <label>
          Value
          <input
            type="text"
            data-field={`${field}/value`}
            value={showLoose(value.value)}
            className={errors("value").length ? "invalid" : undefined}
            placeholder='text, a number, true, ["a","b"]'
            onChange={(e) => set("value", e.target.value === "" ? undefined : parseLoose(e.target.value))}
          />
        </label>
      )}
      {errors("value").map((p, i) => (
        <div key={i} className="field-error">
          {p.message}
        </div>
      ))}
      {operator === "between" && (
        <label>
          And
          <input
            type="text"
            data-field={`${field}/value_to`}
            value={showLoose(value.value_to)}
            onChange={(e) => set("value_to", e.target.value === "" ? undefined : parseLoose(e.target.value))}
          />
        </label>
      )}
    </div>
  );
}
