import { useMemo, useRef, useState } from "react";
import { insertVariable, openExpression, type Variable } from "../model/variables";

interface Props {
  value: string;
  onChange: (value: string) => void;
  variables: Variable[];
  multiline?: boolean;
  field: string;
  id?: string;
  invalid?: boolean;
  placeholder?: string;
  /** Condition fields are bare paths (`trigger.x`), not `{{ }}` templates. */
  bare?: boolean;
}

/** A text field that offers the variables available at this node while an expression is open
 * (after `{{`), or at any time for bare paths. */
export function TemplateInput({ value, onChange, variables, multiline, field, id, invalid, placeholder, bare }: Props) {
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const [caret, setCaret] = useState<number | null>(null);
  const [forced, setForced] = useState(false);
  const [active, setActive] = useState(0);

  const open = caret === null ? null : bare ? { start: 0, partial: value } : openExpression(value, caret);
  const matches = useMemo(() => {
    if (!open && !forced) return [];
    const partial = open?.partial ?? "";
    return variables.filter((v) => v.path.startsWith(partial) || (partial && v.path.includes(partial))).slice(0, 12);
  }, [open?.partial, forced, variables]);
  const showing =
    matches.length > 0 && (forced || !!open) && !(bare && matches.length === 1 && matches[0].path === value);

  const choose = (variable: Variable) => {
    const at = caret ?? value.length;
    if (bare) {
      onChange(variable.path);
      setCaret(null);
    } else {
      const next = insertVariable(value, at, variable.path);
      onChange(next.text);
      setCaret(null);
      requestAnimationFrame(() => ref.current?.setSelectionRange(next.caret, next.caret));
    }
    setForced(false);
    ref.current?.focus();
  };

  const common = {
    ref,
    id,
    value,
    placeholder,
    "data-field": field,
    "aria-invalid": invalid || undefined,
    className: invalid ? "invalid" : undefined,
    autoComplete: "off",
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => {
      onChange(e.target.value);
      setCaret(e.target.selectionStart);
      setActive(0);
    },
    onSelect: (e: React.SyntheticEvent<HTMLInputElement | HTMLTextAreaElement>) =>
      setCaret(e.currentTarget.selectionStart),
    onBlur: () =>
      setTimeout(() => {
        setCaret(null);
        setForced(false);
      }, 150),
    onKeyDown: (e: React.KeyboardEvent) => {
      if (!showing) return;
      if (e.key === "ArrowDown") {
        setActive((a) => Math.min(a + 1, matches.length - 1));
        e.preventDefault();
      } else if (e.key === "ArrowUp") {
        setActive((a) => Math.max(a - 1, 0));
        e.preventDefault();
      } else if (e.key === "Enter" || e.key === "Tab") {
        if (matches[active]) {
          choose(matches[active]);
          e.preventDefault();
        }
      } else if (e.key === "Escape") {
        setCaret(null);
        setForced(false);
      }
    },
  };

  return (
    <div className="template-input">
      {multiline ? <textarea rows={4} {...common} /> : <input type="text" {...common} />}
      <button
        type="button"
        className="variables-button"
        title="Insert a variable"
        // The accessible name holds the visible "{x}" too (axe: label-content-name-mismatch).
        aria-label="{x} Insert a variable"
        onMouseDown={(e) => e.preventDefault()}
        onClick={() => {
          setForced((f) => !f);
          setCaret(ref.current?.selectionStart ?? value.length);
          ref.current?.focus();
        }}
      >
        {"{x}"}
      </button>
      {showing && (
        <ul className="suggestions" role="listbox">
          {matches.map((v, i) => (
            <li
              key={v.path}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : undefined}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(v);
              }}
            >
              <code>{v.path}</code> <span>{v.hint}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
