import { createContext } from "react";
import type { NodeSummary } from "../model/runState";
import type { FieldProblem } from "../components/SchemaForm";

export interface CanvasView {
  problems: Record<string, FieldProblem[]>;
  /** Node states of the run being watched; null while editing. */
  run: Record<string, NodeSummary> | null;
  /** While editing: each node's status in the workflow's latest run, if it ran. */
  lastRun?: Record<string, string>;
}

export const CanvasContext = createContext<CanvasView>({ problems: {}, run: null });
