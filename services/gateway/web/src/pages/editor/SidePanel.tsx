import type { ConditionPreset, FieldType } from "../../model/conditions";
import { useReactFlow } from "@xyflow/react";
import { useMemo, type Dispatch } from "react";
import { SchemaForm, type FieldProblem } from "../../components/SchemaForm";
import { when } from "../../format";
import { selectedNode, type EditorAction, type EditorState } from "../../model/editor";
import type { CanvasEdge, CanvasNode } from "../../model/graph";
import { typeLabel } from "../../model/schema";
import type { JsonObject, NodeType, Version, Workflow } from "../../model/types";
import { availableVariables } from "../../model/variables";
import { Link } from "../../router";
import type { PlacedProblems } from "./useValidation";

/** The selected node's form, or the workflow's settings and problems when no one node is selected;
 * the version list while it is shown. */
export function SidePanel(props: {
  state: EditorState;
  problems: PlacedProblems;
  dispatch: Dispatch<EditorAction>;
  onActivate: (version: number) => void;
}) {
  const { state, problems, dispatch, onActivate } = props;
  const { catalog, presets, pipelineFields, readOnly, webhookUrl, settings, versions, workflow } = state;
  const { nodes, edges } = state.history.present;
  const node = selectedNode(state.history.present);
  const flow = useReactFlow();
  return (
    <aside className="side-panel" id="side-panel">
      {node ? (
        <NodePanel
          key={node.id}
          node={node}
          catalog={catalog}
          nodes={nodes}
          edges={edges}
          problems={problems.nodes[node.id] ?? []}
          presets={presets}
          pipelineFields={pipelineFields}
          readOnly={readOnly}
          webhookUrl={webhookUrl}
          onChange={(data) => dispatch({ type: "nodeEdited", id: node.id, data, now: Date.now() })}
          onDelete={() => void flow.deleteElements({ nodes: [{ id: node.id }] })}
        />
      ) : (
        <WorkflowPanel
          settings={settings}
          readOnly={readOnly}
          onChange={(next) => dispatch({ type: "settingsEdited", settings: next })}
          other={problems.other}
          versions={versions}
          workflow={workflow}
          onActivate={onActivate}
        />
      )}
      {node && versions && workflow && <VersionList versions={versions} workflow={workflow} onActivate={onActivate} />}
    </aside>
  );
}

function NodePanel(props: {
  node: CanvasNode;
  catalog: NodeType[];
  nodes: CanvasNode[];
  edges: CanvasEdge[];
  problems: FieldProblem[];
  presets: ConditionPreset[];
  pipelineFields: Record<string, FieldType>;
  readOnly: boolean;
  webhookUrl: string | null;
  onChange: (data: JsonObject) => void;
  onDelete: () => void;
}) {
  const { node, catalog, nodes, edges, problems, presets, pipelineFields, readOnly, onChange, onDelete, webhookUrl } =
    props;
  const type = catalog.find((t) => t.type === node.type);
  const variables = useMemo(
    () => availableVariables(node.id, nodes, edges, pipelineFields),
    [node.id, nodes, edges, pipelineFields],
  );
  if (!type) return <p className="empty">Unknown node type {node.type}</p>;
  return (
    <div className="node-panel" data-panel-node={node.id}>
      <div className="panel-head">
        <h2>{typeLabel(node.type ?? "")}</h2>
        <code className="muted">{node.id}</code>
        {!readOnly && (
          <button type="button" className="small danger" onClick={onDelete}>
            Delete
          </button>
        )}
      </div>
      {node.type === "trigger" && node.data.kind === "webhook" && (
        <p className="hint">
          {webhookUrl ? (
            <>
              POST to <code>{webhookUrl}</code>
            </>
          ) : (
            "Save the workflow to get its webhook address."
          )}
        </p>
      )}
      {node.parentId && (
        <p className="hint">
          Inside the for_each <code>{node.parentId}</code>: templates can read <code>item</code> and <code>index</code>.
        </p>
      )}
      <SchemaForm
        schema={type.schema}
        value={node.data}
        onChange={onChange}
        variables={variables}
        problems={problems}
        templates={node.type !== "trigger"}
        presets={node.type === "trigger" || node.type === "condition" ? presets : undefined}
        readOnly={readOnly}
      />
    </div>
  );
}

const SETTINGS: [string, string, number | undefined][] = [
  ["max_executions_per_hour", "Runs per hour at most", 100],
  ["timeout_minutes", "Run time limit (minutes)", 60],
  ["retry_count", "Retries for nodes without their own policy", 3],
  ["max_concurrent_runs", "Runs in progress at once (empty: no limit)", undefined],
];

function WorkflowPanel(props: {
  settings: JsonObject;
  readOnly: boolean;
  onChange: (settings: JsonObject) => void;
  other: string[];
  versions: Version[] | null;
  workflow: Workflow | null;
  onActivate: (version: number) => void;
}) {
  const { settings, readOnly, onChange, other, versions, workflow, onActivate } = props;
  return (
    <div className="workflow-panel">
      <h2>Workflow</h2>
      <p className="hint">Drag nodes from the palette, connect their handles, select a node to edit it.</p>
      {other.length > 0 && (
        <div className="problem-list" id="workflow-problems">
          {other.map((text, i) => (
            <div key={i} className="field-error">
              {text}
            </div>
          ))}
        </div>
      )}
      <fieldset disabled={readOnly}>
        {SETTINGS.map(([key, text, fallback]) => (
          <div className="field" key={key}>
            <label htmlFor={`setting-${key}`}>{text}</label>
            <input
              id={`setting-${key}`}
              type="number"
              placeholder={fallback === undefined ? "" : String(fallback)}
              value={typeof settings[key] === "number" ? (settings[key] as number) : ""}
              onChange={(e) => {
                const next = { ...settings };
                if (e.target.value === "") delete next[key];
                else next[key] = Number(e.target.value);
                onChange(next);
              }}
            />
          </div>
        ))}
      </fieldset>
      {versions && workflow && <VersionList versions={versions} workflow={workflow} onActivate={onActivate} />}
    </div>
  );
}

function VersionList({
  versions,
  workflow,
  onActivate,
}: {
  versions: Version[];
  workflow: Workflow;
  onActivate: (version: number) => void;
}) {
  return (
    <div className="versions" id="version-list">
      <h3>Versions</h3>
      <ul>
        {versions.map((v) => (
          <li key={v.version} data-version={v.version}>
            <strong>v{v.version}</strong> <span className="muted">{when(v.created_at)}</span>
            {v.active && <span className="badge status-active">active</span>}
            <Link to={`/workflows/${workflow.id}?version=${v.version}`}>View</Link>
            {!v.active && workflow.status !== "archived" && (
              <button type="button" className="small" onClick={() => onActivate(v.version)}>
                Activate
              </button>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
