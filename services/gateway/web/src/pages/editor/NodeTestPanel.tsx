import { useCallback, useEffect, useState } from "react";
import type { Api } from "../../api/client";
import { TESTED_IN_PLACE, type NodeTestResult, type Pin } from "../../model/nodeTests";
import type { Definition, JsonObject } from "../../model/types";

export interface NodeTester {
  pins: Pin[];
  test: (nodeId: string, executeSideEffects: boolean) => Promise<NodeTestResult>;
  pin: (nodeId: string, output: JsonObject) => Promise<void>;
  unpin: (nodeId: string) => Promise<void>;
}

/** Testing nodes of the workflow being edited (its unsaved draft) and its pinned sample outputs;
 * null until the workflow is saved once (a test and a pin belong to a saved workflow). */
export function useNodeTester(api: Api, workflowId: string | null, definition: Definition): NodeTester | null {
  const [pins, setPins] = useState<Pin[]>([]);
  const reload = useCallback(async () => {
    if (workflowId) setPins(await api.pins(workflowId));
  }, [api, workflowId]);
  useEffect(() => {
    void reload().catch(() => setPins([]));
  }, [reload]);
  if (!workflowId) return null;
  return {
    pins,
    test: (nodeId, executeSideEffects) =>
      api.testNode(workflowId, nodeId, { definition, execute_side_effects: executeSideEffects }),
    pin: async (nodeId, output) => {
      await api.pin(workflowId, nodeId, output);
      await reload();
    },
    unpin: async (nodeId) => {
      await api.unpin(workflowId, nodeId);
      await reload();
    },
  };
}

/** The side panel's "Test node": the node's output (or error) on the pinned or given sample data,
 * without a run, and "Pin" to keep an output as the node's sample data. */
export function NodeTestPanel({ tester, nodeId, nodeType }: { tester: NodeTester; nodeId: string; nodeType: string }) {
  const [result, setResult] = useState<NodeTestResult | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [pinText, setPinText] = useState<string | null>(null);
  const pinned = tester.pins.find((p) => p.node_id === nodeId);
  const sideEffects = nodeType !== "trigger" && !TESTED_IN_PLACE.has(nodeType);

  const run = async () => {
    if (
      sideEffects &&
      !window.confirm(`Testing this ${nodeType} node runs it for real (it calls out, writes or sends). Go on?`)
    )
      return;
    setBusy(true);
    setProblem(null);
    try {
      setResult(await tester.test(nodeId, sideEffects));
    } catch (error) {
      setResult(null);
      setProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };
  const savePin = async (output: JsonObject) => {
    try {
      await tester.pin(nodeId, output);
      setPinText(null);
      setProblem(null);
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    }
  };

  return (
    <section className="node-test" id="node-test">
      <h3>Sample data</h3>
      {pinned ? (
        <div className="pinned">
          <p className="hint">Pinned output (tests of later nodes use it; runs never do):</p>
          <pre id="pinned-output">{JSON.stringify(pinned.output, null, 2)}</pre>
          <button type="button" className="small" onClick={() => void tester.unpin(nodeId)}>
            Unpin
          </button>
        </div>
      ) : (
        <p className="hint">Nothing pinned for this node.</p>
      )}
      {pinText === null ? (
        <button
          type="button"
          className="small"
          id="pin-edit"
          onClick={() => setPinText(pinned ? JSON.stringify(pinned.output, null, 2) : "{}")}
        >
          {pinned ? "Edit pinned output" : "Pin sample output"}
        </button>
      ) : (
        <div className="field">
          <label htmlFor="pin-text">Sample output (JSON object)</label>
          <textarea
            id="pin-text"
            className="code"
            rows={6}
            value={pinText}
            onChange={(e) => setPinText(e.target.value)}
          />
          <button
            type="button"
            className="small"
            id="pin-save"
            onClick={() => {
              try {
                const parsed = JSON.parse(pinText) as unknown;
                if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
                void savePin(parsed as JsonObject);
              } catch {
                setProblem("The sample output must be a JSON object.");
              }
            }}
          >
            Pin
          </button>
          <button type="button" className="small" onClick={() => setPinText(null)}>
            Cancel
          </button>
        </div>
      )}
      {nodeType !== "trigger" && (
        <p>
          <button type="button" id="test-node" disabled={busy} onClick={() => void run()}>
            {busy ? "Testing…" : "Test node"}
          </button>
        </p>
      )}
      {problem && (
        <p className="error" role="alert" id="node-test-problem">
          {problem}
        </p>
      )}
      {result && (
        <div className="node-test-result" id="node-test-result" data-status={result.status}>
          {result.status === "succeeded" ? (
            <>
              <p>Output{result.handle ? ` (leaves by ${result.handle})` : ""}:</p>
              <pre id="node-test-output">{JSON.stringify(result.output, null, 2)}</pre>
              {result.notes.map((note) => (
                <p className="hint" key={note}>
                  {note}
                </p>
              ))}
              <button type="button" className="small" id="pin-result" onClick={() => void savePin(result.output ?? {})}>
                Pin this output
              </button>
            </>
          ) : (
            <p className="error" id="node-test-error">
              <code>{result.error?.type}</code> {result.error?.message}
            </p>
          )}
        </div>
      )}
    </section>
  );
}
