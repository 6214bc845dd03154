/** The generated form's fields, one per schema property, nested for objects and lists. */
import type { ConditionPreset } from "../model/conditions";
import type { Json, JsonObject, JsonSchema } from "../model/types";
import {
  discriminated,
  fieldKind,
  label,
  LITERAL_FIELDS,
  resolve,
  unwrapNullable,
  variantStarter,
} from "../model/schema";
import type { Variable } from "../model/variables";
import { ConditionEditor } from "./ConditionEditor";
import { JsonEditor } from "./JsonEditor";
import { KeyValueEditor } from "./KeyValueEditor";
import { CodeInput } from "./CodeInput";
import { TemplateInput } from "./TemplateInput";
import { EnumChecks, StringList } from "./ListInputs";
import { WorkflowPicker, type WorkflowChoice } from "./WorkflowPicker";

export interface FieldProblem {
  path: string;
  message: string;
}

const LONG_TEXT = new Set(["prompt", "system", "description", "message", "text", "task"]);
const JSON_FIELDS = new Set(["output_schema", "fallback_output"]);

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
  workflows?: WorkflowChoice[];
  readOnly?: boolean;
}

/** What nested fields pass on to theirs. */
type Shared = Pick<FieldProps, "root" | "variables" | "problems" | "templates" | "workflows" | "readOnly">;

export function Field(props: FieldProps) {
  const { name, path, root, value, onChange, variables, problems, required, templates, presets, choices } = props;
  const { schema, nullable } = unwrapNullable(props.schema, root);
  const shared: Shared = { root, variables, problems, templates, workflows: props.workflows, readOnly: props.readOnly };
  const union = discriminated(schema, root);
  const kind = JSON_FIELDS.has(name)
    ? "json"
    : choices
      ? "choice"
      : union && !schema.type
        ? "object"
        : name === "workflow_id" && props.workflows
          ? "workflow"
          : fieldKind(schema);
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
      control = (
        <StringList
          path={path}
          label={title}
          value={Array.isArray(value) ? (value as string[]) : []}
          onChange={onChange}
        />
      );
      break;
    case "enum-list":
      control = (
        <EnumChecks
          path={path}
          label={title}
          options={(schema.items?.enum ?? []).map(String)}
          value={
            Array.isArray(value)
              ? (value as string[])
              : Array.isArray(schema.default)
                ? (schema.default as string[])
                : []
          }
          onChange={onChange}
        />
      );
      break;
    case "workflow":
      control = (
        <div className="workflow-field">
          <WorkflowPicker
            id={`${id}-picker`}
            label="Pick by name"
            value={typeof value === "string" ? value : ""}
            choices={props.workflows ?? []}
            readOnly={Boolean(props.readOnly)}
            onPick={(picked) => onChange(picked === "" && !required ? undefined : picked)}
          />
          <input
            id={id}
            type="text"
            className={invalid ? "invalid mono" : "mono"}
            data-field={path}
            value={typeof value === "string" ? value : ""}
            onChange={(e) => onChange(e.target.value.trim() === "" && !required ? undefined : e.target.value.trim())}
          />
        </div>
      );
      break;
    case "object-list":
      control = (
        <ObjectList
          path={path}
          title={title}
          itemSchema={schema.items ?? {}}
          items={Array.isArray(value) ? (value as JsonObject[]) : []}
          onChange={onChange}
          shared={shared}
        />
      );
      break;
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
              value={(value as JsonObject) ?? {}}
              onChange={onChange}
              {...shared}
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

/** A list of objects: one form per item, with "+ add"; a list of a discriminated union (an agent's
 * tools) adds one item per variant ("+ add records") and each item shows the fields of its own. */
function ObjectList(props: {
  path: string;
  title: string;
  itemSchema: JsonSchema;
  items: JsonObject[];
  onChange: (value: Json | undefined) => void;
  shared: Shared;
}) {
  const { path, title, items, onChange, shared } = props;
  const itemSchema = resolve(props.itemSchema, shared.root);
  const union = discriminated(itemSchema, shared.root);
  const noun = title.replace(/ \*$/, "").toLowerCase();
  return (
    <div className="object-list" data-field={path}>
      {items.map((item, index) => (
        <div className="object-list-item" key={index} role="group" aria-label={`${noun} ${index + 1}`}>
          <ObjectFields
            path={`${path}/${index}`}
            schema={itemSchema}
            value={item ?? {}}
            onChange={(next) => onChange(items.map((it, i) => (i === index ? next : it)))}
            {...shared}
          />
          <button type="button" className="small" onClick={() => onChange(items.filter((_, i) => i !== index))}>
            remove
          </button>
        </div>
      ))}
      {union ? (
        <div className="add-variants">
          {union.variants.map((variant) => (
            <button
              key={variant.key}
              type="button"
              className="small"
              data-add={path}
              data-variant={variant.key}
              title={variant.schema.description}
              onClick={() => onChange([...items, variantStarter(variant, union.property)])}
            >
              + add {variant.key.replace(/_/g, " ")}
            </button>
          ))}
        </div>
      ) : (
        <button type="button" className="small" data-add={path} onClick={() => onChange([...items, {}])}>
          + add
        </button>
      )}
    </div>
  );
}

/** An object's fields; for a discriminated union, a choice of its variant and that variant's fields
 * (choosing another variant starts the object afresh). */
function ObjectFields(
  props: Shared & {
    path: string;
    schema: JsonSchema;
    value: JsonObject;
    onChange: (value: JsonObject) => void;
  },
) {
  const { path, value, onChange, schema: _schema, ...shared } = props;
  const union = discriminated(props.schema, shared.root);
  const variant = union?.variants.find((v) => v.key === value[union.property]) ?? null;
  const schema = variant ? variant.schema : props.schema;
  const required = new Set(schema.required ?? []);
  const id = `field-${path.slice(1).replace(/[^A-Za-z0-9_-]/g, "-")}-${union?.property ?? ""}`;
  return (
    <>
      {union && (
        <div className="field field-enum">
          <label htmlFor={id}>{label(union.property, {})}</label>
          <select
            id={id}
            data-field={`${path}/${union.property}`}
            value={variant?.key ?? ""}
            onChange={(e) => {
              const picked = union.variants.find((v) => v.key === e.target.value);
              if (picked) onChange(variantStarter(picked, union.property));
            }}
          >
            {!variant && <option value="">—</option>}
            {union.variants.map((v) => (
              <option key={v.key} value={v.key} title={v.schema.description}>
                {v.key}
              </option>
            ))}
          </select>
        </div>
      )}
      {(union && !variant ? [] : Object.entries(schema.properties ?? {}))
        .filter(([name]) => name !== union?.property)
        .map(([name, property]) => (
          <Field
            key={name}
            name={name}
            path={`${path}/${name}`}
            schema={property}
            value={value[name]}
            onChange={(next) => {
              const copy = { ...value };
              if (next === undefined) delete copy[name];
              else copy[name] = next;
              onChange(copy);
            }}
            required={required.has(name)}
            {...shared}
            templates={shared.templates && !LITERAL_FIELDS.has(name)}
          />
        ))}
    </>
  );
}
