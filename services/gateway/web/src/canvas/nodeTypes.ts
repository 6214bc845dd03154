import type { NodeTypes } from "@xyflow/react";
import { WorkflowNode } from "./WorkflowNode";
import { TYPE_LABELS } from "../model/schema";

/** Every workflow node type is drawn by the same component, which reads the type for its handles. */
export const NODE_TYPES: NodeTypes = Object.fromEntries(Object.keys(TYPE_LABELS).map((type) => [type, WorkflowNode]));
