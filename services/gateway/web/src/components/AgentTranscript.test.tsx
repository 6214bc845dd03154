import { render, screen, within } from "@testing-library/react";
import axe from "axe-core";
import { describe, expect, it } from "vitest";
import { agentView, applyAgentEvent, type AgentTranscript as Transcript } from "../model/agentTranscript";
import type { RunEvent } from "../model/types";
import { AgentTranscript } from "./AgentTranscript";

const ev = (type: string, extra: Partial<RunEvent>): RunEvent => ({
  type,
  seq: 0,
  run_id: "r",
  node_id: "agent1",
  attempt: 1,
  ...extra,
});

function transcript(): Transcript {
  const events = [
    ev("agent.turn_requested", { turn: 1 }),
    ev("agent.turn_completed", {
      turn: 1,
      message: {
        role: "assistant",
        content: "Looking for the deals.",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "find_records", arguments: '{"pipeline": "deals"}' } },
        ],
      },
      usage: { prompt_tokens: 50, completion_tokens: 10, total_tokens: 60 },
    }),
    ev("agent.tool_call_finished", {
      turn: 1,
      call_id: "call_1",
      step: "agent1#t1.0",
      tool: "find_records",
      outcome: "succeeded",
      content: '{"count": 1}',
    }),
    ev("agent.turn_requested", { turn: 2 }),
    ev("agent.turn_completed", {
      turn: 2,
      message: {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_2", type: "function", function: { name: "drop_table", arguments: "{}" } }],
      },
      usage: { prompt_tokens: 70, completion_tokens: 5, total_tokens: 75 },
    }),
    ev("agent.tool_call_finished", {
      turn: 2,
      call_id: "call_2",
      step: "agent1#t2.0",
      tool: "drop_table",
      outcome: "refused",
      content: "no tool named drop_table",
    }),
    ev("agent.turn_requested", { turn: 3 }),
  ];
  const folded = events.reduce<Transcript | null>((t, e) => applyAgentEvent(t, e, null), null);
  return agentView(folded, { task: "Mark the open deals" }, null);
}

describe("an agent's transcript in the run view", () => {
  it("shows the task, each turn's text and calls with arguments, outcome and result, and the figures", () => {
    const { container } = render(<AgentTranscript transcript={transcript()} />);
    expect(screen.getByText("Mark the open deals")).toBeTruthy();
    const turns = container.querySelectorAll(".agent-turn");
    expect(turns).toHaveLength(3);
    expect(within(turns[0] as HTMLElement).getByText("Looking for the deals.")).toBeTruthy();
    const found = container.querySelector('[data-call="call_1"]') as HTMLElement;
    expect(found.dataset.outcome).toBe("succeeded");
    expect(found.querySelector(".agent-arguments")!.textContent).toContain('"pipeline": "deals"');
    expect(found.querySelector(".agent-result")!.textContent).toBe('{\n  "count": 1\n}');
    const refused = container.querySelector('[data-call="call_2"]') as HTMLElement;
    expect(within(refused).getByText("refused")).toBeTruthy();
    expect(refused.querySelector(".agent-result.error")!.textContent).toBe("no tool named drop_table");
    expect(within(turns[2] as HTMLElement).getByText("asking the model")).toBeTruthy();
    expect(container.querySelector("#agent-turns")!.textContent).toBe("2");
    expect(container.querySelector("#agent-tool-calls")!.textContent).toBe("2");
    expect(container.querySelector("#agent-usage")!.textContent).toContain("135 tokens");
    expect(container.querySelector("#agent-answer")).toBeNull();
  });

  it("has no accessibility violation axe can see without a layout", async () => {
    const { container } = render(
      <AgentTranscript transcript={{ ...transcript(), answer: "Marked 1 deal.", data: { marked: 1 } }} />,
    );
    expect(screen.getByText("Marked 1 deal.")).toBeTruthy();
    const result = await axe.run(container, { rules: { "color-contrast": { enabled: false } } });
    expect(result.violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  });
});
