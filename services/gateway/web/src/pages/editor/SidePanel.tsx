import type { ConditionPreset, FieldType } from "../../model/conditions";
import { useReactFlow } from "@xyflow/react";
import { useMemo, type Dispatch } from "react";
import { SchemaForm, type FieldProblem } from "../../components/SchemaForm";
import { when } from "../../format";
import { KeyValueEditor } from "../../components/KeyValueEditor";
import { selectedEdge, selectedNode, type EditorAction, type EditorState } from "../../model/editor";
import { DESCRIPTION_KEY, edgeLabel, ownLabel, type CanvasEdge, type CanvasNode } from "../../model/graph";
import { typeLabel } from "../../model/schema";
import type { JsonObject, NodeType, ScheduleState, Version, Workflow } from "../../model/types";
import { availableVariables, loopItems } from "../../model/variables";
import { topicChoices, type GrantedTopic } from "../../model/kafkaTopics";
import { Link } from "../../router";
import type { PlacedProblems } from "./useValidation";
import { withPinnedFields } from "../../model/nodeTests";
import { NodeTestPanel, type NodeTester } from "./NodeTestPanel";
import { WorkflowPicker, type WorkflowChoice } from "../../components/WorkflowPicker";

export type { WorkflowChoice };

/** The selected node's form, or the workflow's settings and problems when no one node is selected;
 * the version list while it is shown. */
export function SidePanel(props: {
  state: EditorState;
  problems: PlacedProblems;
  dispatch: Dispatch<EditorAction>;
  onActivate: (version: number) => void;
  kafkaTopics?: GrantedTopic[];
  workflowChoices?: WorkflowChoice[];
  tester?: NodeTester | null;
}) {
  const { state, problems, dispatch, onActivate, tester } = props;
  const workflowChoices = props.workflowChoices ?? [];
  const { catalog, presets, pipelineFields, readOnly, webhookUrl, settings, versions, workflow } = state;
  const { nodes, edges } = state.history.present;
  const node = selectedNode(state.history.present);
  const edge = selectedEdge(state.history.present);
  const workflowVariables = settings.variables as JsonObject | undefined;
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
          workflowVariables={workflowVariables}
          schedules={workflow?.schedules ?? null}
          kafkaTopics={props.kafkaTopics ?? []}
          workflowChoices={workflowChoices}
          tester={tester ?? null}
          onChange={(data) => dispatch({ type: "nodeEdited", id: node.id, data, now: Date.now() })}
          onDelete={() => void flow.deleteElements({ nodes: [{ id: node.id }] })}
        />
      ) : edge ? (
        <EdgePanel
          key={edge.id}
          edge={edge}
          readOnly={readOnly}
          onLabel={(label) => dispatch({ type: "edgeLabelled", id: edge.id, label, now: Date.now() })}
        />
      ) : (
        <WorkflowPanel
          settings={settings}
          description={state.description}
          onDescribe={(description) => dispatch({ type: "described", description })}
          readOnly={readOnly}
          onChange={(next) => dispatch({ type: "settingsEdited", settings: next })}
          other={problems.other}
          versions={versions}
          workflow={workflow}
          onActivate={onActivate}
          workflowChoices={workflowChoices}
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
  workflowVariables: JsonObject | undefined;
  schedules: ScheduleState[] | null;
  kafkaTopics: GrantedTopic[];
  workflowChoices: WorkflowChoice[];
  tester: NodeTester | null;
  onChange: (data: JsonObject) => void;
  onDelete: () => void;
}) {
  const { node, catalog, nodes, edges, problems, presets, pipelineFields, readOnly, onChange, onDelete, webhookUrl } =
    props;
  const { workflowVariables, schedules, tester } = props;
  const type = catalog.find((t) => t.type === node.type);
  const pins = tester?.pins;
  const variables = useMemo(
    () =>
      withPinnedFields(
        availableVariables(node.id, nodes, edges, pipelineFields, workflowVariables),
        pins ?? [],
        nodes.find((n) => n.type === "trigger")?.id ?? null,
      ),
    [node.id, nodes, edges, pipelineFields, workflowVariables, pins],
  );
  const { [DESCRIPTION_KEY]: description, ...config } = node.data;
  const topics = topicChoices(props.kafkaTopics, node.type, node.data);
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
      <div className="field">
        <label htmlFor="node-description">Description</label>
        <textarea
          id="node-description"
          rows={2}
          maxLength={2000}
          disabled={readOnly}
          placeholder="What this node is for (shown on the canvas)"
          value={typeof description === "string" ? description : ""}
          onChange={(e) => {
            const next: JsonObject = { ...config };
            if (e.target.value !== "") next[DESCRIPTION_KEY] = e.target.value;
            onChange(next);
          }}
        />
      </div>
      {node.type === "trigger" && node.data.kind === "scheduled" && schedules && schedules.length > 0 && (
        <ScheduleStates schedules={schedules} />
      )}
      {node.type === "sub_workflow" && (
        <WorkflowPicker
          id="sub-workflow-picker"
          label="Workflow to run"
          value={typeof config.workflow_id === "string" ? config.workflow_id : ""}
          choices={props.workflowChoices}
          readOnly={readOnly}
          onPick={(id) =>
            onChange({
              ...config,
              workflow_id: id,
              ...(typeof description === "string" ? { [DESCRIPTION_KEY]: description } : {}),
            })
          }
        />
      )}
      {node.parentId && (
        <p className="hint" id="loop-items">
          Inside the for_each <code>{node.parentId}</code>: templates can read{" "}
          {loopItems(node.id, nodes).map(({ name, loopId }) => (
            <span key={name}>
              <code>{name}</code> ({loopId}),{" "}
            </span>
          ))}
          and <code>index</code>.
        </p>
      )}
      <SchemaForm
        schema={type.schema}
        value={config}
        onChange={(next) =>
          onChange(typeof description === "string" ? { ...next, [DESCRIPTION_KEY]: description } : next)
        }
        variables={variables}
        problems={problems}
        templates={node.type !== "trigger"}
        presets={node.type === "trigger" || node.type === "condition" ? presets : undefined}
        readOnly={readOnly}
        choices={topics ? { topic: topics } : undefined}
        // The sub-workflow node picks its workflow above the form; other workflow ids (an agent's
        // workflow tools) get the same picker beside their field.
        workflows={node.type === "sub_workflow" ? undefined : props.workflowChoices}
      />
      {tester && !readOnly && <NodeTestPanel tester={tester} nodeId={node.id} nodeType={node.type ?? ""} />}
    </div>
  );
}

const SETTINGS: [string, string, number | undefined][] = [
  ["max_executions_per_hour", "Runs per hour at most", 100],
  ["timeout_minutes", "Run time limit (minutes)", 60],
  ["retry_count", "Retries for nodes without their own policy", 3],
  ["max_concurrent_runs", "Runs in progress at once (empty: no limit)", undefined],
  ["webhook_response_wait_seconds", "Seconds a webhook call waits for a Respond to webhook node", 10],
];

/** Where each schedule of the active version stands: its last and next slot and its runs. */
function ScheduleStates({ schedules }: { schedules: ScheduleState[] }) {
  return (
    <table className="schedule-states" id="schedule-states">
      <thead>
        <tr>
          <th>Schedule</th>
          <th>Last slot</th>
          <th>Next slot</th>
          <th>Runs</th>
        </tr>
      </thead>
      <tbody>
        {schedules.map((s) => (
          <tr key={s.name} data-schedule={s.name}>
            <td title={s.kind === "cron" ? `${s.cron} (${s.timezone})` : `every ${s.every} ${s.unit}`}>{s.name}</td>
            <td>{s.last_slot_at ? when(s.last_slot_at) : "none yet"}</td>
            <td>{s.next_slot_at ? when(s.next_slot_at) : "not active"}</td>
            <td>{s.run_count}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The selected edge: its handle and its own label. */
function EdgePanel(props: { edge: CanvasEdge; readOnly: boolean; onLabel: (label: string) => void }) {
  const { edge, readOnly, onLabel } = props;
  const handle = edgeLabel(edge.sourceHandle);
  return (
    <div className="edge-panel" data-panel-edge={edge.id}>
      <div className="panel-head">
        <h2>Edge</h2>
        <code className="muted">
          {edge.source} → {edge.target}
          {handle ? ` (${handle})` : ""}
        </code>
      </div>
      <div className="field">
        <label htmlFor="edge-label">Label</label>
        <input
          id="edge-label"
          type="text"
          maxLength={200}
          disabled={readOnly}
          placeholder="Shown on the edge"
          value={ownLabel(edge)}
          onChange={(e) => onLabel(e.target.value)}
        />
      </div>
    </div>
  );
}

function WorkflowPanel(props: {
  settings: JsonObject;
  description: string;
  onDescribe: (description: string) => void;
  readOnly: boolean;
  onChange: (settings: JsonObject) => void;
  other: string[];
  versions: Version[] | null;
  workflow: Workflow | null;
  onActivate: (version: number) => void;
  workflowChoices: WorkflowChoice[];
}) {
  const { settings, readOnly, onChange, other, versions, workflow, onActivate, description, onDescribe } = props;
  const variables = (settings.variables as JsonObject | undefined) ?? {};
  return (
    <div className="workflow-panel">
      <h2>Workflow</h2>
      <p className="hint">Drag nodes from the palette, connect their handles, select a node to edit it.</p>
      {workflow?.created_by_name && (
        <p className="owner" id="workflow-owner">
          Created by {workflow.created_by_name}
          {workflow.updated_by_name ? `, last saved by ${workflow.updated_by_name}` : ""}
        </p>
      )}
      <div className="field">
        <label htmlFor="workflow-description">Description</label>
        <textarea
          id="workflow-description"
          rows={2}
          maxLength={2000}
          disabled={readOnly}
          value={description}
          onChange={(e) => onDescribe(e.target.value)}
        />
      </div>
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
        <WorkflowPicker
          id="error-workflow-picker"
          label="Error workflow"
          value={typeof settings.error_workflow_id === "string" ? settings.error_workflow_id : ""}
          choices={props.workflowChoices.filter((w) => w.id !== workflow?.id)}
          readOnly={readOnly}
          onPick={(id) => {
            const next = { ...settings };
            if (id === "") delete next.error_workflow_id;
            else next.error_workflow_id = id;
            onChange(next);
          }}
        />
        <div className="field">
          <label htmlFor="setting-error_workflow_id">
            Error workflow (its id: started when a run fails or times out)
          </label>
          <input
            id="setting-error_workflow_id"
            type="text"
            className="mono"
            placeholder="none"
            value={typeof settings.error_workflow_id === "string" ? settings.error_workflow_id : ""}
            onChange={(e) => {
              const next = { ...settings };
              if (e.target.value.trim() === "") delete next.error_workflow_id;
              else next.error_workflow_id = e.target.value.trim();
              onChange(next);
            }}
          />
        </div>
        <div className="field">
          <label>Variables (templates read them as workflow.vars.&lt;name&gt;)</label>
          <KeyValueEditor
            field="settings/variables"
            value={variables}
            variables={[]}
            loose
            templates={false}
            onChange={(next) => {
              const copy = { ...settings };
              if (Object.keys(next).length === 0) delete copy.variables;
              else copy.variables = next;
              onChange(copy);
            }}
          />
        </div>
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
