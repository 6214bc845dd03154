import type { Json, JsonObject } from "../model/types";
import { parseLoose, showLoose } from "../model/schema";
import type { Variable } from "../model/variables";
import { TemplateInput } from "./TemplateInput";

interface Props {
  value: JsonObject;
  onChange: (value: JsonObject) => void;
  field: string;
  variables: Variable[];
  /** Values are any JSON (typed as JSON when they read as JSON), else text only. */
  loose: boolean;
  templates: boolean;
}

/** An object edited as rows of name and value; row order is kept by rebuilding the object. */
export function KeyValueEditor({ value, onChange, field, variables, loose, templates }: Props) {
  const entries = Object.entries(value ?? {});
  const rebuild = (rows: [string, Json][]) => onChange(Object.fromEntries(rows));
  return (
    <div className="kv-editor" data-field={field}>
      {entries.map(([key, item], index) => (
        <div className="kv-row" key={index}>
          <input
            type="text"
            aria-label="name"
            data-field={`${field}#key${index}`}
            value={key}
            onChange={(e) => {
              const rows = [...entries];
              rows[index] = [e.target.value, item];
              rebuild(rows);
            }}
          />
          {templates ? (
            <TemplateInput
              field={`${field}/${key}`}
              value={loose ? showLoose(item) : String(item ?? "")}
              variables={variables}
              onChange={(text) => {
                const rows = [...entries];
                rows[index] = [key, loose ? parseLoose(text) : text];
                rebuild(rows);
              }}
            />
          ) : (
            <input
              type="text"
              data-field={`${field}/${key}`}
              value={loose ? showLoose(item) : String(item ?? "")}
              onChange={(e) => {
                const rows = [...entries];
                rows[index] = [key, loose ? parseLoose(e.target.value) : e.target.value];
                rebuild(rows);
              }}
            />
          )}
          <button
            type="button"
            className="icon"
            aria-label={`remove ${key}`}
            onClick={() => rebuild(entries.filter((_, i) => i !== index))}
          >
            ×
          </button>
        </div>
      ))}
      <button
        type="button"
        className="small"
        data-add={field}
        onClick={() => {
          let n = entries.length + 1;
          while (`key${n}` in (value ?? {})) n++;
          rebuild([...entries, [`key${n}`, ""]]);
        }}
      >
        + add
      </button>
    </div>
  );
}
