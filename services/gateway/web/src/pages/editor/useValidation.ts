import { useEffect, useMemo, type Dispatch } from "react";
import { ApiError, type Api } from "../../api/client";
import type { EditorAction } from "../../model/editor";
import { problemsByNode } from "../../model/schema";
import type { Definition, Problem } from "../../model/types";

/** Problems placed where they show: on a node (by field), on an edge, or about the whole workflow. */
export type PlacedProblems = ReturnType<typeof problemsByNode>;

const DEBOUNCE_MS = 400;

/** Validate as the user edits (debounced), so problems show on nodes and fields before saving. */
export function useValidation(
  api: Api,
  definition: Definition,
  loaded: boolean,
  problems: Problem[],
  dispatch: Dispatch<EditorAction>,
): PlacedProblems {
  useEffect(() => {
    if (!loaded) return;
    if (definition.nodes.length === 0) {
      dispatch({ type: "validationSkipped" });
      return;
    }
    dispatch({ type: "validationStarted" });
    const timer = setTimeout(async () => {
      let found: Problem[] | null = null;
      try {
        found = (await api.validate(definition)).problems;
      } catch (err) {
        if (err instanceof ApiError && err.details.length) found = err.details;
      }
      dispatch({ type: "validationFinished", problems: found });
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [api, definition, loaded, dispatch]);

  return useMemo(
    () =>
      problemsByNode(
        problems,
        definition.nodes.map((n) => n.id),
        definition.edges.map((e) => e.id),
      ),
    [problems, definition],
  );
}
