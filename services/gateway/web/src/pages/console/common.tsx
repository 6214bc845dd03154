import { useCallback, useEffect, useState } from "react";
import { ApiError } from "../../api/client";

/** What an API error says to a person: the problem's detail, and each field's reason. */
export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    const fields = error.details.map((d) => `${d.pointer}: ${d.message}`).join("; ");
    return fields ? `${error.message} (${fields})` : error.message;
  }
  return (error as Error).message;
}

/** Loads once and again on `reload()`; `error` holds what the last attempt said. */
export function useLoaded<T>(load: () => Promise<T>, deps: unknown[]) {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  const reload = useCallback(async () => {
    try {
      setValue(await run());
      setError(null);
    } catch (err) {
      setError(describe(err));
    }
  }, [run]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { value, error, setError, reload };
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? (
    <div className="error" role="alert">
      {error}
    </div>
  ) : null;
}

export function Notice({ text }: { text: string | null }) {
  return text ? (
    <div className="notice" role="status">
      {text}
    </div>
  ) : null;
}
