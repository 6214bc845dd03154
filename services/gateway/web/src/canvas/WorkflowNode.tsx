import { Handle, Position, useUpdateNodeInternals, type NodeProps } from "@xyflow/react";
import { useContext, useEffect, useRef } from "react";
import { DESCRIPTION_KEY } from "../model/graph";
import { hasTarget, sourceHandles } from "../model/handles";
import { STATUS_LABEL } from "../model/runState";
import { typeLabel } from "../model/schema";
import type { JsonObject } from "../model/types";
import { CanvasContext } from "./context";

/** A glyph per node type (family), so a canvas reads at a glance. */
const ICONS: Record<string, string> = {
  trigger: "⚡",
  condition: "◇",
  switch: "⑂",
  set: "✎",
  end: "■",
  http_request: "⇄",
  webhook_out: "↗",
  approval: "✓",
  task_notify: "✉",
  wait_delay: "⏱",
  for_each: "↻",
  ai_prompt: "✦",
  ai_analysis: "✦",
  ai_classification: "✦",
  ai_agent: "✧",
  record_create: "＋",
  record_update: "✎",
  record_delete: "✕",
  record_find: "⌕",
};

export function nodeIcon(type: string | undefined): string {
  if (!type) return "●";
  return ICONS[type] ?? (type.startsWith("ai_") ? "✦" : type.startsWith("record_") ? "▤" : "●");
}

/** One workflow node on the canvas: its type, name, problems, run state, and one source handle
 * per outcome it can take. */
export function WorkflowNode({ id, type, data, selected }: NodeProps) {
  const view = useContext(CanvasContext);
  const config = data as JsonObject;
  const problems = view.problems[id] ?? [];
  const run = view.run?.[id];
  const handles = sourceHandles(type, config);
  const handleKey = handles.map((h) => h.id ?? "").join("|");
  const updateNodeInternals = useUpdateNodeInternals();
  const measuredKey = useRef(handleKey);
  // Handles come and go with the config (switch cases, error edges): React Flow must measure them again.
  useEffect(() => {
    if (measuredKey.current === handleKey) return;
    measuredKey.current = handleKey;
    updateNodeInternals(id);
  }, [id, handleKey, updateNodeInternals]);
  const isGroup = type === "for_each";
  const classes = [
    "wf-node",
    `wf-${type}`,
    isGroup ? "wf-group" : "",
    selected ? "selected" : "",
    problems.length ? "has-problems" : "",
    run ? `run-${run.status}` : "",
  ].join(" ");
  const counts =
    run && run.instances.length > 1
      ? Object.entries(run.counts)
          .map(([status, count]) => `${count} ${status}`)
          .join(", ")
      : null;
  return (
    <div className={classes} data-node-id={id} data-status={run?.status ?? undefined}>
      {hasTarget(type) && <Handle type="target" position={Position.Top} />}
      <div className="wf-node-head">
        <span className="wf-node-type">
          <span className="wf-node-icon" aria-hidden="true">
            {nodeIcon(type)}
          </span>
          {typeLabel(type)}
        </span>
        {problems.length > 0 && (
          <span className="wf-node-problems" title={problems.map((p) => `${p.path || "/"}: ${p.message}`).join("\n")}>
            {problems.length} problem{problems.length > 1 ? "s" : ""}
          </span>
        )}
      </div>
      <div className="wf-node-name">{String(config.name ?? id)}</div>
      {typeof config[DESCRIPTION_KEY] === "string" && (
        <div className="wf-node-description" data-testid={`description-${id}`} title={String(config[DESCRIPTION_KEY])}>
          {config[DESCRIPTION_KEY]}
        </div>
      )}
      {!run && view.lastRun?.[id] && (
        <div className={`wf-node-last run-${view.lastRun[id]}`} data-testid={`last-${id}`} title="in the latest run">
          last run: {view.lastRun[id]}
        </div>
      )}
      {run && (
        <div className="wf-node-state" data-testid={`state-${id}`}>
          {STATUS_LABEL[run.status]}
          {run.attempt > 1 || run.status === "retrying" ? ` · attempt ${run.attempt}` : ""}
          {counts ? ` · ${counts}` : ""}
        </div>
      )}
      {handles.map((handle, index) => {
        const left = `${((index + 1) / (handles.length + 1)) * 100}%`;
        return (
          <div key={handle.id ?? "out"}>
            <Handle
              type="source"
              position={Position.Bottom}
              id={handle.id}
              style={{ left }}
              className={handle.id ? `handle-${handle.id.replace(/[^A-Za-z0-9_-]/g, "_")}` : undefined}
            />
            {handle.label && (
              <span className="handle-label" style={{ left }}>
                {handle.label}
              </span>
            )}
          </div>
        );
      })}
    </div>
  );
}
