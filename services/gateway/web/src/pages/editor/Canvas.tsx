import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useMemo, type Dispatch } from "react";
import { CanvasContext, type CanvasView } from "../../canvas/context";
import { NODE_TYPES } from "../../canvas/nodeTypes";
import { canConnect, type EditorAction, type Graph } from "../../model/editor";
import type { CanvasEdge, CanvasNode } from "../../model/graph";
import { DRAG_TYPE } from "./Palette";
import type { PlacedProblems } from "./useValidation";

/** The React Flow canvas: nodes with their problems, edges (red with their problem), drops from the
 * palette; every change goes to the editor's reducer. */
export function Canvas(props: {
  graph: Graph;
  problems: PlacedProblems;
  readOnly: boolean;
  dispatch: Dispatch<EditorAction>;
  lastRun?: Record<string, string>;
}) {
  const { graph, problems, readOnly, dispatch, lastRun } = props;
  const flow = useReactFlow();
  const view: CanvasView = useMemo(() => ({ problems: problems.nodes, run: null, lastRun }), [problems, lastRun]);
  const edgesShown = useMemo(
    () =>
      graph.edges.map((e) =>
        problems.edges[e.id] ? { ...e, className: "edge-problem", label: problems.edges[e.id].join("; ") } : e,
      ),
    [graph.edges, problems],
  );
  const isValidConnection = useCallback(
    (connection: Connection | CanvasEdge) => canConnect(graph, connection),
    [graph],
  );
  const onNodesChange = useCallback(
    (changes: NodeChange<CanvasNode>[]) => dispatch({ type: "nodesChanged", changes }),
    [dispatch],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange<CanvasEdge>[]) => dispatch({ type: "edgesChanged", changes }),
    [dispatch],
  );
  const onConnect = useCallback((connection: Connection) => dispatch({ type: "connected", connection }), [dispatch]);
  const onDrop = useCallback(
    (event: React.DragEvent) => {
      event.preventDefault();
      const type = event.dataTransfer.getData(DRAG_TYPE);
      if (!type) return;
      const at = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      dispatch({ type: "nodeAdded", nodeType: type, at });
    },
    [flow, dispatch],
  );

  return (
    <div
      className="canvas"
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = "move";
      }}
      onDrop={onDrop}
    >
      <CanvasContext.Provider value={view}>
        <ReactFlow
          nodes={graph.nodes}
          edges={edgesShown}
          nodeTypes={NODE_TYPES}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onConnect={onConnect}
          isValidConnection={isValidConnection}
          onNodeDragStart={() => dispatch({ type: "dragStarted" })}
          onNodeDragStop={() => dispatch({ type: "dragStopped" })}
          nodesDraggable={!readOnly}
          nodesConnectable={!readOnly}
          deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
          defaultEdgeOptions={{ type: "smoothstep" }}
          defaultViewport={{ x: 0, y: 0, zoom: 1 }}
          proOptions={{ hideAttribution: true }}
        >
          <Background />
          {graph.nodes.length === 0 && !readOnly && (
            <div className="canvas-empty" id="canvas-empty">
              Empty workflow: drag a trigger from the palette (or click it), then the nodes that follow, and connect
              them.
            </div>
          )}
          <MiniMap pannable zoomable nodeColor={(n) => (problems.nodes[n.id]?.length ? "#c62828" : "#9aa5b8")} />
          <Controls />
        </ReactFlow>
      </CanvasContext.Provider>
    </div>
  );
}
