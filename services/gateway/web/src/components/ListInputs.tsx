import type { Json } from "../model/types";

/** The item's accessible name: the field's label (without the required mark) and the item's number. */
const itemLabel = (label: string, index: number) => `${label.replace(/ \*$/, "")} ${index + 1}`;

/** A list of strings: one text box per item, with "+ add" and a remove button each. */
export function StringList({
  path,
  label,
  value,
  onChange,
}: {
  path: string;
  label: string;
  value: string[];
  onChange: (value: Json | undefined) => void;
}) {
  return (
    <div className="string-list" data-field={path}>
      {value.map((item, index) => (
        <div className="kv-row" key={index}>
          <input
            type="text"
            aria-label={itemLabel(label, index)}
            data-field={`${path}/${index}`}
            value={item}
            onChange={(e) => onChange(value.map((v, i) => (i === index ? e.target.value : v)))}
          />
          <button
            type="button"
            className="icon"
            aria-label={`remove ${itemLabel(label, index)}`}
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

/** A list whose items come from a fixed set (an agent's record actions, an HTTP tool's methods): one
 * checkbox per option, kept in the options' order; `value` is the list or, while unset, its default. */
export function EnumChecks({
  path,
  label,
  options,
  value,
  onChange,
}: {
  path: string;
  label: string;
  options: string[];
  value: string[];
  onChange: (value: Json | undefined) => void;
}) {
  return (
    <div className="enum-checks" data-field={path} role="group" aria-label={label.replace(/ \*$/, "")}>
      {options.map((option) => (
        <label key={option} className="check">
          <input
            type="checkbox"
            data-option={option}
            checked={value.includes(option)}
            onChange={(e) => onChange(options.filter((o) => (o === option ? e.target.checked : value.includes(o))))}
          />
          {option}
        </label>
      ))}
    </div>
  );
}
