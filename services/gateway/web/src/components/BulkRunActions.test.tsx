import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import type { BulkCount, BulkOutcome } from "../model/bulk";
import { BulkRunActions, type BulkApi } from "./BulkRunActions";

type Answer = BulkCount | { results: BulkOutcome[] } | ApiError;

/** The component's one port, answering from a script and recording every body sent. */
function scripted(answers: Answer[]): BulkApi & { sent: Record<string, unknown>[] } {
  const sent: Record<string, unknown>[] = [];
  return {
    sent,
    bulkRuns: async (body) => {
      sent.push(body);
      const answer = answers.shift();
      if (answer === undefined) throw new Error("no more answers");
      if (answer instanceof ApiError) throw answer;
      return answer;
    },
  };
}

const counted = (count: number, token = `t${count}`): BulkCount => ({
  count,
  token,
  expires_at: "2026-12-02T12:05:00Z",
});

describe("bulk run actions", () => {
  it("counts the selected runs, confirms the count, then shows what it did per run", async () => {
    const api = scripted([
      counted(2),
      {
        results: [
          { run_id: "run-aaaa-1", outcome: "cancelled", reason: null },
          {
            run_id: "run-bbbb-2",
            outcome: "skipped",
            reason: "the run is completed; this needs it to be paused or running",
          },
        ],
      },
    ]);
    let done = 0;
    render(<BulkRunActions api={api} selected={["run-aaaa-1", "run-bbbb-2"]} filter={{}} onDone={() => done++} />);
    fireEvent.click(screen.getByText("Cancel selected"));
    await screen.findByRole("dialog", { name: "confirm bulk operation" });
    expect(screen.getByText(/the 2 selected/)).toBeTruthy();
    expect(api.sent[0]).toEqual({ action: "cancel", run_ids: ["run-aaaa-1", "run-bbbb-2"] });

    fireEvent.click(screen.getByText("Cancel 2 runs"));
    await screen.findByText("Cancel: 1 cancelled, 1 skipped.");
    expect(api.sent[1]).toEqual({ action: "cancel", token: "t2" });
    expect(screen.getByText(/this needs it to be paused or running/)).toBeTruthy();
    expect(done).toBe(1);
  });

  it("acts on all runs matching the list's filter, and counts again when they changed meanwhile", async () => {
    const stale = new ApiError(409, "stale_selection", "the filter matches 4 runs now, not the 3 the token confirmed");
    const api = scripted([counted(3), stale, counted(4), { results: [] }]);
    const { container } = render(
      <BulkRunActions api={api} selected={[]} filter={{ workflow_id: "wf", status: "failed" }} />,
    );
    expect((screen.getByText("Retry selected") as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByText("Retry all matching"));
    await screen.findByText("Retry 3 runs");
    expect(api.sent[0]).toEqual({ action: "retry", filter: { workflow_id: "wf", status: "failed" } });

    fireEvent.click(screen.getByText("Retry 3 runs"));
    await screen.findByText("Retry 4 runs");
    expect(screen.getByText(/The runs changed: the filter matches 4 runs now/)).toBeTruthy();
    expect(api.sent.slice(1, 3)).toEqual([
      { action: "retry", token: "t3" },
      { action: "retry", filter: { workflow_id: "wf", status: "failed" } },
    ]);
    fireEvent.click(screen.getByText("Retry 4 runs"));
    await waitFor(() => expect(container.querySelector("#bulk-tally")?.textContent).toBe("Retry: no runs."));
    expect(api.sent[3]).toEqual({ action: "retry", token: "t4" });
  });

  it("shows a refusal and lets nothing be confirmed when no run matches", async () => {
    const tooMany = new ApiError(422, "too_many_runs", "1200 runs match; one bulk operation acts on at most 1000");
    const api = scripted([tooMany, counted(0)]);
    render(<BulkRunActions api={api} selected={[]} filter={{}} />);
    fireEvent.click(screen.getByText("Cancel all matching"));
    expect((await screen.findByRole("alert")).textContent).toMatch(/at most 1000/);
    fireEvent.click(screen.getByText("Cancel all matching"));
    const confirm = (await screen.findByText("Cancel 0 runs")) as HTMLButtonElement;
    expect(confirm.disabled).toBe(true);
    fireEvent.click(screen.getByText("Back"));
    expect(screen.queryByRole("dialog")).toBeNull();
  });
});
