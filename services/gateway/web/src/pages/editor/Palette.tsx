import { useReactFlow } from "@xyflow/react";
import { useMemo } from "react";
import { typeLabel } from "../../model/schema";
import type { NodeType } from "../../model/types";

const PALETTE_ORDER = ["Triggers", "AI", "Records", "Logic", "Flow", "External", "Human"];
/** The drag data a palette item carries: the node type. */
export const DRAG_TYPE = "application/x-millrace-node";

/** The node types by category: drag one onto the canvas, or click it to add it in the middle. */
export function Palette(props: {
  catalog: NodeType[];
  readOnly: boolean;
  onAdd: (type: string, at: { x: number; y: number }) => void;
}) {
  const { catalog, readOnly, onAdd } = props;
  const flow = useReactFlow();
  const groups = useMemo(() => {
    const byCategory = new Map<string, NodeType[]>();
    for (const t of catalog) byCategory.set(t.category, [...(byCategory.get(t.category) ?? []), t]);
    return PALETTE_ORDER.filter((c) => byCategory.has(c)).map((c) => [c, byCategory.get(c)!] as const);
  }, [catalog]);
  return (
    // Focusable: with every node type the palette scrolls, and keyboard users must be able to scroll it.
    <aside className="palette" aria-label="node palette" tabIndex={0}>
      {groups.map(([category, types]) => (
        <div key={category} className="palette-group">
          <h3>{category}</h3>
          {types.map((t) => (
            <div
              key={t.type}
              className={`palette-item wf-${t.type}`}
              data-palette-type={t.type}
              draggable={!readOnly}
              title="Drag onto the canvas, or click to add"
              onDragStart={(e) => {
                e.dataTransfer.setData(DRAG_TYPE, t.type);
                e.dataTransfer.effectAllowed = "move";
              }}
              onClick={() => {
                const center = flow.screenToFlowPosition({ x: window.innerWidth / 2, y: window.innerHeight / 2 });
                onAdd(t.type, center);
              }}
            >
              {typeLabel(t.type)}
            </div>
          ))}
        </div>
      ))}
    </aside>
  );
}
