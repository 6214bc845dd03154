import type { ConditionPreset } from "../model/conditions";
import { useState } from "react";
import type { Json, JsonObject, JsonSchema } from "../model/types";
import { COMMON_FIELDS, fieldKind, label, LITERAL_FIELDS, resolve, unwrapNullable } from "../model/schema";
import type { Variable } from "../model/variables";
import { ConditionEditor } from "./ConditionEditor";
import { JsonEditor } from "./JsonEditor";
import { KeyValueEditor } from "./KeyValueEditor";
import { CodeInput } from "./CodeInput";
import { TemplateInput } from "./TemplateInput";

export interface FieldProblem {
  path: string;
  message: string;
}

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
}

const LONG_TEXT = new Set(["prompt", "system", "description", "message", "text"]);
const JSON_FIELDS = new Set(["output_schema", "fallback_output"]);

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

interface FieldProps {
  name: string;
  path: string;
  schema: JsonSchema;
  root: JsonSchema;
  value: Json | undefined;
  onChange: (value: Json | undefined) => void;
  variables: Variable[];
  problems: FieldProblem[];
  required: boolean;
  templates: boolean;
  presets?: ConditionPreset[];
  choices?: string[];
}

function Field(props: FieldProps) {
  const { name, path, root, value, onChange, variables, problems, required, templates, presets, choices } = props;
  const { schema, nullable } = unwrapNullable(props.schema, root);
  const kind = JSON_FIELDS.has(name) ? "json" : choices ? "choice" : fieldKind(schema);
  const errors = problems.filter((p) => p.path === path);
  const invalid = errors.length > 0;
  const id = `field-${path.slice(1).replace(/[^A-Za-z0-9_-]/g, "-")}`;
  // A title that came with a referenced model names the model, not the field.
  const title = label(name, props.schema.title ? props.schema : {}) + (required ? " *" : "");
  let control: React.ReactNode;

  switch (kind) {
    case "condition":
      control =
        nullable && (value === undefined || value === null) ? (
          <button
            type="button"
            className="small"
            data-add={path}
            onClick={() => onChange({ field: "trigger", operator: "is_not_empty" })}
          >
            + add a condition
          </button>
        ) : (
          <ConditionEditor
            value={value as JsonObject | null}
            onChange={onChange}
            field={path}
            variables={variables}
            problems={problems}
            presets={presets}
          />
        );
      break;
    case "enum":
      control = (
        <select
          id={id}
          data-field={path}
          className={invalid ? "invalid" : undefined}
          value={value === undefined || value === null ? "" : String(value)}
          onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)}
        >
          {(!required || value === undefined) && (
            <option value="">{schema.default !== undefined ? `(default: ${schema.default})` : "—"}</option>
          )}
          {(schema.enum ?? []).map((option) => (
            <option key={String(option)} value={String(option)}>
              {String(option)}
            </option>
          ))}
        </select>
      );
      break;
    case "choice":
      control = (
        <select
          id={id}
          data-field={path}
          className={invalid ? "invalid" : undefined}
          value={typeof value === "string" ? value : ""}
          onChange={(e) => onChange(e.target.value === "" && !required ? undefined : e.target.value)}
        >
          <option value="">{(choices ?? []).length === 0 ? "— none granted —" : "—"}</option>
          {(choices ?? []).map((option) => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
        </select>
      );
      break;
    case "text":
      control =
        schema.format === "python" ? (
          <CodeInput
            id={id}
            field={path}
            value={typeof value === "string" ? value : ""}
            variables={variables}
            invalid={invalid}
            onChange={(text) => onChange(text)}
          />
        ) : templates ? (
          <TemplateInput
            id={id}
            field={path}
            value={typeof value === "string" ? value : ""}
            multiline={LONG_TEXT.has(name)}
            variables={variables}
            invalid={invalid}
            onChange={(text) => onChange(text === "" && !required ? undefined : text)}
          />
        ) : (
          <input
            id={id}
            type="text"
            data-field={path}
            className={invalid ? "invalid" : undefined}
            value={typeof value === "string" ? value : ""}
            placeholder={schema.default !== undefined && schema.default !== null ? String(schema.default) : undefined}
            onChange={(e) => onChange(e.target.value === "" && !required ? undefined : e.target.value)}
          />
        );
      break;
    case "number":
    case "integer":
      control = (
        <input
          id={id}
          type="number"
          data-field={path}
          className={invalid ? "invalid" : undefined}
          step={kind === "integer" ? 1 : "any"}
          min={schema.minimum}
          max={schema.maximum}
          value={typeof value === "number" ? value : ""}
          placeholder={schema.default !== undefined && schema.default !== null ? String(schema.default) : undefined}
          onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
        />
      );
      break;
    case "boolean":
      control = (
        <input
          id={id}
          type="checkbox"
          data-field={path}
          checked={value === undefined ? Boolean(schema.default) : Boolean(value)}
          onChange={(e) => onChange(e.target.checked)}
        />
      );
      break;
    case "string-list":
      control = <StringList path={path} value={Array.isArray(value) ? (value as string[]) : []} onChange={onChange} />;
      break;
    case "object-list": {
      const itemSchema = resolve(schema.items ?? {}, root);
      const items = Array.isArray(value) ? (value as JsonObject[]) : [];
      control = (
        <div className="object-list" data-field={path}>
          {items.map((item, index) => (
            <div className="object-list-item" key={index}>
              <ObjectFields
                path={`${path}/${index}`}
                schema={itemSchema}
                root={root}
                value={item ?? {}}
                onChange={(next) => onChange(items.map((it, i) => (i === index ? next : it)))}
                variables={variables}
                problems={problems}
                templates={templates}
              />
              <button type="button" className="small" onClick={() => onChange(items.filter((_, i) => i !== index))}>
                remove
              </button>
            </div>
          ))}
          <button type="button" className="small" data-add={path} onClick={() => onChange([...items, {}])}>
            + add
          </button>
        </div>
      );
      break;
    }
    case "object":
      if (nullable && (value === undefined || value === null)) {
        control = (
          <button type="button" className="small" data-add={path} onClick={() => onChange({})}>
            + set {label(name, {}).toLowerCase()}
          </button>
        );
      } else {
        control = (
          <div className="nested">
            <ObjectFields
              path={path}
              schema={schema}
              root={root}
              value={(value as JsonObject) ?? {}}
              onChange={onChange}
              variables={variables}
              problems={problems}
              templates={templates}
            />
            {nullable && (
              <button type="button" className="small" onClick={() => onChange(undefined)}>
                clear
              </button>
            )}
          </div>
        );
      }
      break;
    case "string-map":
    case "json-map":
      control = (
        <KeyValueEditor
          field={path}
          value={(value as JsonObject) ?? {}}
          onChange={(next) => onChange(Object.keys(next).length === 0 && !required ? undefined : next)}
          variables={variables}
          loose={kind === "json-map"}
          templates={templates}
        />
      );
      break;
    default:
      control = <JsonEditor id={id} field={path} value={value} onChange={onChange} invalid={invalid} />;
  }

  return (
    <div className={`field field-${kind}`}>
      <label htmlFor={id} title={schema.description}>
        {title}
      </label>
      {control}
      {errors.map((p, i) => (
        <div key={i} className="field-error" data-error-for={path}>
          {p.message}
        </div>
      ))}
    </div>
  );
}

function ObjectFields({
  path,
  schema,
  root,
  value,
  onChange,
  variables,
  problems,
  templates,
}: {
  path: string;
  schema: JsonSchema;
  root: JsonSchema;
  value: JsonObject;
  onChange: (value: JsonObject) => void;
  variables: Variable[];
  problems: FieldProblem[];
  templates: boolean;
}) {
  const required = new Set(schema.required ?? []);
  return (
    <>
      {Object.entries(schema.properties ?? {}).map(([name, property]) => (
        <Field
          key={name}
          name={name}
          path={`${path}/${name}`}
          schema={property}
          root={root}
          value={value[name]}
          onChange={(next) => {
            const copy = { ...value };
            if (next === undefined) delete copy[name];
            else copy[name] = next;
            onChange(copy);
          }}
          variables={variables}
          problems={problems}
          required={required.has(name)}
          templates={templates && !LITERAL_FIELDS.has(name)}
        />
      ))}
    </>
  );
}

function StringList({
  path,
  value,
  onChange,
}: {
  path: string;
  value: string[];
  onChange: (value: Json | undefined) => void;
}) {
  return (
    <div className="string-list" data-field={path}>
      {value.map((item, index) => (
        <div className="kv-row" key={index}>
          <input
            type="text"
            data-field={`${path}/${index}`}
            value={item}
            onChange={(e) => onChange(value.map((v, i) => (i === index ? e.target.value : v)))}
          />
          <button
            type="button"
            className="icon"
            aria-label="remove"
            onClick={() => onChange(value.filter((_, i) => i !== index))}
          >
            ×
          </button>
        </div>
      ))}
      <button type="button" className="small" data-add={path} onClick={() => onChange([...value, ""])}>
        + add
      </button>
    </div>
  );
}
