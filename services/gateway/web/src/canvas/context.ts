import { createContext } from "react";
import type { NodeSummary } from "../model/runState";
import type { FieldProblem } from "../components/SchemaForm";

export interface CanvasView {
  problems: Record<string, FieldProblem[]>;
  /** Node states of the run being watched; null while editing. */
  run: Record<string, NodeSummary> | null;
}

export const CanvasContext = createContext<CanvasView>({ problems: {}, run: null });
