import { useCallback, useEffect, type Dispatch } from "react";
import { copySelection, type EditorAction, type Graph } from "../../model/editor";

export interface Shortcuts {
  undo: () => void;
  redo: () => void;
  copy: () => void;
  paste: () => void;
}

const CLIPBOARD_KEY = "millrace.clipboard";

/** Copy and paste through localStorage, so nodes can be pasted into another workflow (or tab). */
export function useClipboard(graph: Graph, dispatch: Dispatch<EditorAction>): Pick<Shortcuts, "copy" | "paste"> {
  const copy = useCallback(() => {
    const clip = copySelection(graph);
    if (!clip) return;
    localStorage.setItem(CLIPBOARD_KEY, JSON.stringify(clip));
    dispatch({ type: "copied", count: clip.nodes.length });
  }, [graph, dispatch]);
  const paste = useCallback(() => {
    const raw = localStorage.getItem(CLIPBOARD_KEY);
    if (raw) dispatch({ type: "pasted", clip: JSON.parse(raw) as Graph });
  }, [dispatch]);
  return { copy, paste };
}

/** Ctrl/Cmd+Z undo, Ctrl/Cmd+Shift+Z or Ctrl/Cmd+Y redo, Ctrl/Cmd+C copy, Ctrl/Cmd+V paste; not while
 * typing into a field, where they keep their usual meaning. */
export function useShortcuts({ undo, redo, copy, paste }: Shortcuts): void {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      if (target.closest("input, textarea, select, [contenteditable=true]")) return;
      if (!(event.ctrlKey || event.metaKey)) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) undo();
      else if ((key === "z" && event.shiftKey) || key === "y") redo();
      else if (key === "c") copy();
      else if (key === "v") paste();
      else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redo, copy, paste]);
}
