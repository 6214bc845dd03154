import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/types";
import { AiUsageReport } from "./AiUsageReport";

type Report = Schemas["UsageReportOut"];
type Row = Schemas["UsageRowOut"];

const WORKFLOW = "7b0e4a4e-0000-4000-8000-000000000001";

function row(fields: Partial<Row>): Row {
  return {
    workflow_id: null,
    workflow_name: null,
    node_id: null,
    model: null,
    prompt_tokens: 0,
    completion_tokens: 0,
    total_tokens: 0,
    calls: 1,
    cost: null,
    unpriced_tokens: 0,
    ...fields,
  };
}

function report(fields: Partial<Report>): Report {
  return {
    month: "2026-03",
    group_by: ["workflow", "node", "model"],
    currency: "EUR",
    rows: [],
    truncated: false,
    totals: row({ calls: 0 }),
    monthly_token_budget: null,
    budget_used: 0,
    budget_left: null,
    ...fields,
  };
}

const MARCH = report({
  rows: [
    row({
      workflow_id: WORKFLOW,
      workflow_name: "Enrich",
      node_id: "agent",
      model: "gpt-big",
      prompt_tokens: 2_000_000,
      completion_tokens: 1_000_000,
      total_tokens: 3_000_000,
      cost: 50,
    }),
    row({ node_id: "legacy", model: "local-llm", prompt_tokens: 300, total_tokens: 400, unpriced_tokens: 400 }),
  ],
  totals: row({ prompt_tokens: 2_000_300, total_tokens: 3_000_400, calls: 2, cost: 50, unpriced_tokens: 400 }),
  monthly_token_budget: 10_000_000,
  budget_used: 3_000_400,
  budget_left: 6_999_600,
});

describe("the AI usage report", () => {
  it("shows this month's usage by workflow, node and model with its cost and the budget left", async () => {
    const get = vi.fn(async (_path: string) => MARCH as unknown);
    const { container } = render(<AiUsageReport api={{ get: get as never }} now={new Date("2026-03-14T12:00:00Z")} />);
    await screen.findByText("Enrich");
    expect(get).toHaveBeenCalledWith("/ai/usage?month=2026-03&group_by=workflow%2Cnode%2Cmodel");
    expect(container.querySelector("#ai-usage-tokens")?.textContent).toBe("3,000,400");
    expect(container.querySelector("#ai-budget-left")?.textContent).toBe("6,999,600");
    const rows = container.querySelectorAll("#ai-usage-rows tbody tr");
    expect([...rows[0].querySelectorAll("td")].map((td) => td.textContent)).toEqual([
      "Enrich",
      "agent",
      "gpt-big",
      "1",
      "2,000,000",
      "1,000,000",
      "3,000,000",
      "€50.00",
    ]);
    expect(
      within(rows[0] as HTMLElement)
        .getByText("Enrich")
        .getAttribute("href"),
    ).toBe(`/workflows/${WORKFLOW}`);
    expect(within(rows[1] as HTMLElement).getByText("(not recorded)")).toBeTruthy(); // no workflow
    expect(rows[1].querySelectorAll("td")[7].textContent).toBe("—"); // no price
    expect(container.querySelector("#ai-usage-totals")?.textContent).toContain("€50.00 + unpriced");
    expect(container.querySelector("#ai-unpriced")?.textContent).toContain("400 tokens are of models without a price");
  });

  it("asks for another month and grouping, and says when a month had no calls or no budget", async () => {
    const get = vi.fn(async (path: string) =>
      path.includes("2026-02")
        ? report({ month: "2026-02", group_by: ["model"] })
        : report({ group_by: path.includes("group_by=model") ? ["model"] : ["workflow", "node", "model"] }),
    );
    const { container } = render(<AiUsageReport api={{ get: get as never }} now={new Date("2026-03-14T12:00:00Z")} />);
    await screen.findByText(/No AI calls in 2026-03/);
    expect(container.querySelector("#ai-budget")?.textContent).toContain("no budget set");

    fireEvent.click(screen.getByLabelText("Workflow"));
    fireEvent.click(screen.getByLabelText("Node"));
    await waitFor(() => expect(get).toHaveBeenLastCalledWith("/ai/usage?month=2026-03&group_by=model"));
    fireEvent.click(screen.getByLabelText("Model")); // the last one stays: none would mean all three
    expect((screen.getByLabelText("Model") as HTMLInputElement).checked).toBe(true);

    fireEvent.change(container.querySelector("#ai-usage-month")!, { target: { value: "2026-02" } });
    await screen.findByText(/No AI calls in 2026-02/);
    expect(get).toHaveBeenLastCalledWith("/ai/usage?month=2026-02&group_by=model");
  });
});
