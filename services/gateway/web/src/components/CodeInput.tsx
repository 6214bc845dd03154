import { useMemo, useRef, useState } from "react";
import { codeSuggestions, pythonPath, wordBefore } from "../model/nodeTests";
import type { Variable } from "../model/variables";

interface Props {
  value: string;
  onChange: (value: string) => void;
  variables: Variable[];
  field: string;
  id?: string;
  invalid?: boolean;
  readOnly?: boolean;
}

/** The code node's editor: a monospace text area (Tab indents by four spaces) that suggests the
 * context's names and the paths available at this node while a name is typed, inserted as Python. */
export function CodeInput({ value, onChange, variables, field, id, invalid, readOnly }: Props) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [caret, setCaret] = useState<number | null>(null);
  const [active, setActive] = useState(0);
  const word = caret === null ? null : wordBefore(value, caret);
  const matches = useMemo(() => (word ? codeSuggestions(variables, word.partial) : []), [word?.partial, variables]);

  const place = (next: string, at: number) => {
    onChange(next);
    setCaret(null);
    requestAnimationFrame(() => ref.current?.setSelectionRange(at, at));
  };
  const choose = (variable: Variable) => {
    if (!word || caret === null) return;
    const inserted = pythonPath(variable.path);
    place(value.slice(0, word.start) + inserted + value.slice(caret), word.start + inserted.length);
    ref.current?.focus();
  };

  return (
    <div className="template-input code-input">
      <textarea
        ref={ref}
        id={id}
        data-field={field}
        className={invalid ? "code invalid" : "code"}
        aria-invalid={invalid || undefined}
        rows={12}
        spellCheck={false}
        autoComplete="off"
        readOnly={readOnly}
        value={value}
        onChange={(e) => {
          onChange(e.target.value);
          setCaret(e.target.selectionStart);
          setActive(0);
        }}
        onSelect={(e) => setCaret(e.currentTarget.selectionStart)}
        onBlur={() => setTimeout(() => setCaret(null), 150)}
        onKeyDown={(e) => {
          const at = e.currentTarget.selectionStart;
          if (matches.length > 0 && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
            setActive((a) => Math.max(0, Math.min(a + (e.key === "ArrowDown" ? 1 : -1), matches.length - 1)));
            e.preventDefault();
          } else if (matches.length > 0 && e.key === "Enter" && matches[active]) {
            choose(matches[active]);
            e.preventDefault();
          } else if (e.key === "Escape") {
            setCaret(null);
          } else if (e.key === "Tab" && !readOnly) {
            place(value.slice(0, at) + "    " + value.slice(e.currentTarget.selectionEnd), at + 4);
            e.preventDefault();
          }
        }}
      />
      {matches.length > 0 && (
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
              <code>{pythonPath(v.path)}</code> <span>{v.hint}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
