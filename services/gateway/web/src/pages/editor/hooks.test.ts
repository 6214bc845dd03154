import { act, fireEvent, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, type Api } from "../../api/client";
import type { EditorAction, Graph } from "../../model/editor";
import type { Definition } from "../../model/types";
import { useClipboard, useShortcuts } from "./useShortcuts";
import { useValidation } from "./useValidation";

describe("the editor's keyboard shortcuts", () => {
  const handlers = () => ({ undo: vi.fn(), redo: vi.fn(), copy: vi.fn(), paste: vi.fn() });

  it("undo, redo, copy and paste with Ctrl or Cmd", () => {
    const h = handlers();
    renderHook(() => useShortcuts(h));
    fireEvent.keyDown(document.body, { key: "z", ctrlKey: true });
    fireEvent.keyDown(document.body, { key: "Z", ctrlKey: true, shiftKey: true });
    fireEvent.keyDown(document.body, { key: "y", metaKey: true });
    fireEvent.keyDown(document.body, { key: "c", metaKey: true });
    fireEvent.keyDown(document.body, { key: "v", ctrlKey: true });
    expect(h.undo).toHaveBeenCalledTimes(1);
    expect(h.redo).toHaveBeenCalledTimes(2);
    expect(h.copy).toHaveBeenCalledTimes(1);
    expect(h.paste).toHaveBeenCalledTimes(1);
    // Handled keys do not reach the browser; others do.
    expect(fireEvent.keyDown(document.body, { key: "z", ctrlKey: true })).toBe(false);
    expect(fireEvent.keyDown(document.body, { key: "s", ctrlKey: true })).toBe(true);
  });

  it("leave plain keys and keys typed into fields alone, and stop listening when the page goes", () => {
    const h = handlers();
    const { unmount } = renderHook(() => useShortcuts(h));
    fireEvent.keyDown(document.body, { key: "z" });
    const input = document.body.appendChild(document.createElement("input"));
    fireEvent.keyDown(input, { key: "z", ctrlKey: true });
    input.remove();
    unmount();
    fireEvent.keyDown(document.body, { key: "z", ctrlKey: true });
    expect(h.undo).not.toHaveBeenCalled();
  });
});

describe("the editor's clipboard", () => {
  beforeEach(() => localStorage.clear());

  const graph: Graph = {
    nodes: [
      { id: "a", type: "set", position: { x: 0, y: 0 }, data: {}, selected: true },
      { id: "b", type: "end", position: { x: 0, y: 100 }, data: {} },
    ],
    edges: [{ id: "e", source: "a", target: "b" }],
  };

  it("copies the selection into localStorage and pastes it back, also in another editor", () => {
    const dispatch = vi.fn<(action: EditorAction) => void>();
    const { result } = renderHook(() => useClipboard(graph, dispatch));
    act(() => result.current.copy());
    expect(dispatch).toHaveBeenCalledWith({ type: "copied", count: 1 });
    const other = vi.fn<(action: EditorAction) => void>();
    const elsewhere = renderHook(() => useClipboard({ nodes: [], edges: [] }, other));
    act(() => elsewhere.result.current.paste());
    expect(other).toHaveBeenCalledWith({ type: "pasted", clip: { nodes: [graph.nodes[0]], edges: [] } });
  });

  it("does nothing without a selection or with an empty clipboard", () => {
    const dispatch = vi.fn<(action: EditorAction) => void>();
    const unselected = { ...graph, nodes: graph.nodes.map((n) => ({ ...n, selected: false })) };
    const { result } = renderHook(() => useClipboard(unselected, dispatch));
    act(() => result.current.copy());
    act(() => result.current.paste());
    expect(dispatch).not.toHaveBeenCalled();
    expect(localStorage.length).toBe(0);
  });
});

describe("validation while editing", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const one: Definition = {
    nodes: [{ id: "t", type: "trigger", position: { x: 0, y: 0 }, data: { kind: "manual" } }],
    edges: [],
  };
  const problem = { pointer: "/nodes/0/data/kind", message: "unknown kind" };

  function setup(validate: Api["validate"], definition: Definition, loaded = true) {
    const dispatch = vi.fn<(action: EditorAction) => void>();
    const api = { validate: vi.fn(validate) } as unknown as Api;
    const hook = renderHook(({ definition, problems }) => useValidation(api, definition, loaded, problems, dispatch), {
      initialProps: { definition, problems: [] as (typeof problem)[] },
    });
    return { dispatch, api, hook };
  }

  it("checks the definition once the edits pause, and places the problems on their nodes", async () => {
    const { dispatch, api, hook } = setup(async () => ({ valid: false, problems: [problem] }), one);
    expect(dispatch.mock.calls).toEqual([[{ type: "validationStarted" }]]);
    const two = { ...one, nodes: [...one.nodes, { id: "u", type: "end", position: { x: 0, y: 100 }, data: {} }] };
    hook.rerender({ definition: two, problems: [] });
    await act(() => vi.advanceTimersByTimeAsync(400));
    expect(api.validate).toHaveBeenCalledTimes(1);
    expect(api.validate).toHaveBeenCalledWith(two);
    expect(dispatch).toHaveBeenLastCalledWith({ type: "validationFinished", problems: [problem] });
    hook.rerender({ definition: two, problems: [problem] });
    expect(hook.result.current.nodes.t).toEqual([{ path: "/kind", message: "unknown kind" }]);
  });

  it("takes the problems of a refusal, and keeps the shown ones when the check itself failed", async () => {
    const refused = setup(async () => {
      throw new ApiError(422, "invalid_definition", "invalid", [problem]);
    }, one);
    await act(() => vi.advanceTimersByTimeAsync(400));
    expect(refused.dispatch).toHaveBeenLastCalledWith({ type: "validationFinished", problems: [problem] });
    const down = setup(async () => {
      throw new Error("network down");
    }, one);
    await act(() => vi.advanceTimersByTimeAsync(400));
    expect(down.dispatch).toHaveBeenLastCalledWith({ type: "validationFinished", problems: null });
  });

  it("skips an empty workflow, and waits for a stored one to load", async () => {
    const empty = setup(async () => ({ valid: true, problems: [] }), { nodes: [], edges: [] });
    expect(empty.dispatch.mock.calls).toEqual([[{ type: "validationSkipped" }]]);
    const loading = setup(async () => ({ valid: true, problems: [] }), one, false);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(loading.dispatch).not.toHaveBeenCalled();
    expect(empty.api.validate).not.toHaveBeenCalled();
    expect(loading.api.validate).not.toHaveBeenCalled();
  });
});
