import { useEffect, useState } from "react";
import type { Json } from "../model/types";

interface Props {
  value: Json | undefined;
  onChange: (value: Json | undefined) => void;
  field: string;
  id?: string;
  invalid?: boolean;
  rows?: number;
}

/** A JSON value as text; the value changes only when the text parses. Empty text clears it. */
export function JsonEditor({ value, onChange, field, id, invalid, rows = 5 }: Props) {
  const shown = value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // Follow outside changes (undo, another node) unless the text is mid-edit and unparsable.
    if (error === null) setText(shown);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shown]);
  return (
    <div className="json-editor">
      <textarea
        id={id}
        rows={rows}
        data-field={field}
        className={invalid || error ? "invalid mono" : "mono"}
        value={text}
        spellCheck={false}
        onChange={(e) => {
          const next = e.target.value;
          setText(next);
          if (next.trim() === "") {
            setError(null);
            onChange(undefined);
            return;
          }
          try {
            const parsed = JSON.parse(next) as Json;
            setError(null);
            onChange(parsed);
          } catch (e) {
            setError((e as Error).message);
          }
        }}
      />
      {error && <div className="field-error">not valid JSON: {error}</div>}
    </div>
  );
}
