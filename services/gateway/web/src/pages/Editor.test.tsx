import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { beforeAll, describe, expect, it, vi } from "vitest";
import type { Api } from "../api/client";
import type { Definition, NodeType, Workflow } from "../model/types";
import catalog from "../test/node-types.json";
import { MeContext } from "../permissions";
import { Editor } from "./Editor";

const EDITOR = { roles: ["editor"], permissions: ["read", "edit_workflows", "edit_records"] };

beforeAll(() => {
  // React Flow measures its nodes and viewport; jsdom has no layout.
  globalThis.ResizeObserver ??= class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
  globalThis.DOMMatrixReadOnly ??= class {
    m22 = 1;
  } as unknown as typeof DOMMatrixReadOnly;
});

const definition: Definition = {
  nodes: [
    { id: "start", type: "trigger", position: { x: 0, y: 0 }, data: { name: "Start", kind: "manual" } },
    { id: "done", type: "end", position: { x: 0, y: 150 }, data: { name: "Done" } },
  ],
  edges: [{ id: "e1", source: "start", target: "done" }],
};

const workflow: Workflow = {
  id: "7b0e4a4e-0000-4000-8000-000000000003",
  name: "Stored",
  status: "draft",
  latest_version: 2,
  active_version: null,
  created_at: "2026-11-22T10:00:00Z",
  updated_at: "2026-11-22T10:00:00Z",
  run_count: 0,
  success_rate: null,
  last_run_at: null,
  definition,
};

function fakeApi() {
  return {
    nodeTypes: vi.fn(async () => catalog as unknown as NodeType[]),
    conditionPresets: vi.fn(async () => []),
    kafkaTopics: vi.fn(async () => ({ items: [] })),
    validate: vi.fn(async () => ({ valid: true, problems: [] })),
    getWorkflow: vi.fn(async () => workflow),
    version: vi.fn(async (_id: string, version: number) => ({
      version,
      created_at: workflow.created_at,
      active: false,
      definition,
    })),
    createWorkflow: vi.fn(async (name: string, definition: Definition) => ({ ...workflow, name, definition })),
    webhook: vi.fn(async () => ({ url: "http://127.0.0.1/hooks/x", method: "POST" })),
    listRuns: vi.fn(async () => ({ items: [], next_offset: null })),
  };
}

const button = (name: string) => screen.getByRole("button", { name }) as HTMLButtonElement;
const nameInput = () => screen.getByLabelText("workflow name") as HTMLInputElement;
const as = (api: ReturnType<typeof fakeApi>) => api as unknown as Api;

describe("the editor page", () => {
  it("adds a node from the palette, edits it, undoes and redoes, and saves a new workflow", async () => {
    const api = fakeApi();
    const { container } = render(
      <MeContext.Provider value={EDITOR}>
        <Editor api={as(api)} workflowId={null} version={null} />
      </MeContext.Provider>,
    );
    await screen.findByText("Triggers");
    expect([...container.querySelectorAll(".palette h3")].map((h) => h.textContent)).toEqual([
      "Triggers",
      "AI",
      "Records",
      "Logic",
      "Flow",
      "External",
      "Human",
    ]);
    expect(button("Undo").disabled).toBe(true);

    fireEvent.click(container.querySelector('[data-palette-type="trigger"]')!);
    await waitFor(() => expect(container.querySelector('[data-panel-node="trigger_1"]')).not.toBeNull());
    expect(button("Undo").disabled).toBe(false);

    fireEvent.click(button("Undo"));
    await waitFor(() => expect(container.querySelector('[data-panel-node="trigger_1"]')).toBeNull());
    screen.getByRole("heading", { name: "Workflow" });
    fireEvent.keyDown(document.body, { key: "y", ctrlKey: true });
    await waitFor(() => expect(container.querySelector('[data-panel-node="trigger_1"]')).not.toBeNull());

    fireEvent.change(nameInput(), { target: { value: "Fresh" } });
    await waitFor(() => expect(container.querySelector("#problem-count")!.textContent).toBe("valid"), {
      timeout: 2000,
    });
    await act(async () => fireEvent.click(container.querySelector("#save")!));
    expect(api.createWorkflow).toHaveBeenCalledTimes(1);
    const [name, saved] = api.createWorkflow.mock.calls[0];
    expect(name).toBe("Fresh");
    expect(saved.nodes.map((n) => [n.id, n.type])).toEqual([["trigger_1", "trigger"]]);
  });

  it("picks the workflow a sub-workflow node runs from the tenant's workflows", async () => {
    const api = {
      ...fakeApi(),
      listWorkflows: vi.fn(async () => ({ items: [{ ...workflow, id: "w-child", name: "Child" }], next_offset: null })),
    };
    const { container } = render(
      <Editor api={as(api as ReturnType<typeof fakeApi>)} workflowId={null} version={null} />,
    );
    await screen.findByText("Flow");
    fireEvent.click(container.querySelector('[data-palette-type="sub_workflow"]')!);
    await waitFor(() => expect(container.querySelector('[data-panel-node="sub_workflow_1"]')).not.toBeNull());
    const picker = (await screen.findByLabelText("Workflow to run")) as HTMLSelectElement;
    await waitFor(() => expect(picker.options.length).toBe(2));
    fireEvent.change(picker, { target: { value: "w-child" } });
    await waitFor(() =>
      expect((container.querySelector('#side-panel [data-field="/workflow_id"]') as HTMLInputElement).value).toBe(
        "w-child",
      ),
    );
  });

  it("opens an old version read only until asked to edit from it", async () => {
    const api = fakeApi();
    const { container } = render(
      <MeContext.Provider value={EDITOR}>
        <Editor api={as(api)} workflowId={workflow.id} version={1} />
      </MeContext.Provider>,
    );
    await screen.findByText(/Viewing version 1/);
    expect(api.version).toHaveBeenCalledWith(workflow.id, 1);
    expect(nameInput().value).toBe("Stored");
    expect(nameInput().disabled).toBe(true);
    expect(container.querySelector("#save")!.textContent).toBe("Save as new version");
    expect(container.querySelector("#activate")!.textContent).toBe("Activate v1");
    fireEvent.click(button("Edit from this version"));
    expect(container.querySelector("#viewing-version")).toBeNull();
    expect(nameInput().disabled).toBe(false);
    expect(container.querySelector("#save")!.textContent).toBe("Save");
  });
});
