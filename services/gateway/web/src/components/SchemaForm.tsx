import type { ConditionPreset } from "../model/conditions";
import { useState } from "react";
import type { Json, JsonObject, JsonSchema } from "../model/types";
import { COMMON_FIELDS, LITERAL_FIELDS } from "../model/schema";
import type { Variable } from "../model/variables";
import { Field, type FieldProblem } from "./SchemaFields";
import type { WorkflowChoice } from "./WorkflowPicker";

export type { FieldProblem };

interface FormProps {
  schema: JsonSchema;
  value: JsonObject;
  onChange: (value: JsonObject) => void;
  variables: Variable[];
  problems: FieldProblem[];
  /** Trigger configs are never rendered, so they get no template suggestions. */
  templates?: boolean;
  presets?: ConditionPreset[];
  readOnly?: boolean;
  /** Text fields chosen from a list (a Kafka node's `topic`: the tenant's granted topics), by name. */
  choices?: Record<string, string[]>;
  /** The tenant's workflows: a `workflow_id` field at any depth gets a picker by name beside it. */
  workflows?: WorkflowChoice[];
}

/** A node's side-panel form, generated from its type's JSON schema. Every input carries
 * `data-field` = its JSON pointer inside the node's data, the same pointer the validator uses. */
export function SchemaForm({
  schema,
  value,
  onChange,
  variables,
  problems,
  templates = true,
  presets,
  readOnly,
  choices,
  workflows,
}: FormProps) {
  const [advanced, setAdvanced] = useState(false);
  const properties = Object.entries(schema.properties ?? {});
  const own = properties.filter(([name]) => !COMMON_FIELDS.includes(name));
  const common = properties.filter(([name]) => COMMON_FIELDS.includes(name));
  const required = new Set(schema.required ?? []);
  const matched = (path: string) => problems.some((p) => p.path === path || p.path.startsWith(path + "/"));
  const unplaced = problems.filter(
    (p) =>
      !properties.some(([name]) => matched(`/${name}`) && (p.path === `/${name}` || p.path.startsWith(`/${name}/`))),
  );
  const set = (name: string, next: Json | undefined) => {
    const copy = { ...value };
    if (next === undefined) delete copy[name];
    else copy[name] = next;
    onChange(copy);
  };
  const render = ([name, property]: [string, JsonSchema]) => (
    <Field
      key={name}
      name={name}
      path={`/${name}`}
      schema={property}
      root={schema}
      value={value[name]}
      onChange={(next) => set(name, next)}
      variables={variables}
      problems={problems}
      required={required.has(name)}
      templates={templates && !LITERAL_FIELDS.has(name)}
      presets={presets}
      choices={choices?.[name]}
      workflows={workflows}
      readOnly={readOnly}
    />
  );
  const commonHasProblems = common.some(([name]) => matched(`/${name}`));
  return (
    <fieldset className="schema-form" disabled={readOnly}>
      {unplaced.map((p, i) => (
        <div key={i} className="field-error">
          {p.path ? `${p.path}: ` : ""}
          {p.message}
        </div>
      ))}
      {own.map(render)}
      {common.length > 0 && (
        <details
          open={advanced || commonHasProblems}
          onToggle={(e) => setAdvanced((e.target as HTMLDetailsElement).open)}
        >
          <summary>Errors, retries and timeout</summary>
          {common.map(render)}
        </details>
      )}
    </fieldset>
  );
}
