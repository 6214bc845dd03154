/** The workflow definition as the gateway stores it (React Flow compatible JSON). */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface DefinitionNode {
  id: string;
  type: string;
  position: { x: number; y: number };
  parentId?: string | null;
  /** What the node is for, shown on the canvas; never rendered. */
  description?: string | null;
  data: JsonObject;
}

export interface DefinitionEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle?: string | null;
  /** Shown on the edge, after its handle; never rendered. */
  label?: string | null;
}

export interface Definition {
  nodes: DefinitionNode[];
  edges: DefinitionEdge[];
  settings?: JsonObject;
}

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: Json[];
  default?: Json;
  properties?: Record<string, JsonSchema>;
  patternProperties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  required?: string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  /** pydantic's discriminated unions: the property that tells the `oneOf` options apart. */
  discriminator?: { propertyName: string; mapping?: Record<string, string> };
  const?: Json;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  /** `python`: the code node's source, edited with the code editor. */
  format?: string;
}

export interface NodeType {
  type: string;
  category: string;
  schema: JsonSchema;
}

export interface Problem {
  pointer: string;
  message: string;
}

export type WorkflowStatus = "draft" | "active" | "paused" | "archived";

export interface WorkflowSummary {
  id: string;
  name: string;
  description?: string;
  created_by_name?: string | null;
  updated_by_name?: string | null;
  status: WorkflowStatus;
  latest_version: number;
  active_version: number | null;
  trigger_type?: string;
  trigger_kind?: string;
  created_at: string;
  updated_at: string;
  run_count: number;
  success_rate: number | null;
  last_run_at: string | null;
  last_run_status?: string | null;
}

/** One of a scheduled trigger's schedules, and where it stands (GET /workflows/{id}). */
export interface ScheduleState {
  name: string;
  kind: "cron" | "interval";
  cron: string | null;
  every: number | null;
  unit: string | null;
  timezone: string;
  last_slot_at: string | null;
  next_slot_at: string | null;
  run_count: number;
}

export interface Workflow extends WorkflowSummary {
  definition: Definition;
  schedules?: ScheduleState[] | null;
}

export interface Version {
  version: number;
  created_at: string;
  active: boolean;
  definition?: Definition | null;
}

export interface NodeExecution {
  node_id: string;
  node_type: string;
  status: string;
  attempts: number;
  input: Json;
  output: Json;
  error: Json;
  scheduled_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
}

export interface RunSummary {
  run_id: string;
  workflow_id: string;
  workflow_version: number;
  status: string;
  error: string | null;
  started_at: string;
  finished_at: string | null;
  /** The run whose sub_workflow node started this one, and that node's instance key. */
  parent_run_id?: string | null;
  parent_node_id?: string | null;
}

/** A run a sub_workflow node of this run started. */
export interface ChildRun {
  run_id: string;
  workflow_id: string;
  status: string;
  parent_node_id: string | null;
  started_at: string;
}

export interface Run extends RunSummary {
  trigger: Json;
  /** A completed run's output (that of its top-level end node that finished last); null otherwise. */
  final_output?: Json;
  nodes: NodeExecution[];
  children?: ChildRun[];
  /** The run this one re-ran (POST /runs/{id}/rerun), if it is a re-run. */
  rerun_of?: string | null;
  /** This run's re-runs, oldest first. */
  reruns?: string[];
}

/** One event of a run's log, as published on runs.events and streamed over SSE. */
export interface RunEvent {
  type: string;
  seq: number;
  run_id: string;
  occurred_at?: string;
  node_id?: string;
  node_type?: string;
  attempt?: number;
  input?: JsonObject;
  output?: JsonObject;
  error?: { type: string; message: string; retryable?: boolean };
  duration_ms?: number;
  taken_handles?: string[] | null;
  retry_at?: string;
  reason?: string;
  failed_node_id?: string | null;
  node_ids?: string[];
  child_run_id?: string;
  mode?: string;
  decision?: string;
  index?: number;
  [key: string]: unknown;
}
