/** A workflow of the tenant a node or setting may name (a sub-workflow node, an agent's workflow tool,
 * the error workflow). */
export interface WorkflowChoice {
  id: string;
  name: string;
}

/** Pick a workflow of the tenant by name; the id field beside it (the form's) takes any id. */
export function WorkflowPicker(props: {
  id: string;
  label: string;
  value: string;
  choices: WorkflowChoice[];
  readOnly: boolean;
  onPick: (id: string) => void;
}) {
  const { id, label, value, choices, readOnly, onPick } = props;
  const known = choices.some((c) => c.id === value);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} disabled={readOnly} value={known ? value : ""} onChange={(e) => onPick(e.target.value)}>
        <option value="">{value && !known ? "(by id, below)" : "choose a workflow"}</option>
        {choices.map((c) => (
          <option key={c.id} value={c.id}>
            {c.name}
          </option>
        ))}
      </select>
    </div>
  );
}
