import { useEffect, useState } from "react";
import type { Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { DIMENSIONS, type Dimension, money, monthOf, tokens, usagePath } from "../../model/aiUsage";
import { Link } from "../../router";
import { ErrorLine, describe } from "./common";

type Report = Schemas["UsageReportOut"];
type Row = Schemas["UsageRowOut"];

const LABELS: Record<Dimension, string> = { workflow: "Workflow", node: "Node", model: "Model" };

/** A month's AI usage by workflow, node and model with its cost, and the budget left. `version` changes
 * when the prices or the budget were saved, so the report is asked again. */
export function AiUsageReport({ api, now, version = 0 }: { api: Pick<Api, "get">; now?: Date; version?: number }) {
  const [month, setMonth] = useState(() => monthOf(now ?? new Date()));
  const [grouping, setGrouping] = useState<Dimension[]>(DIMENSIONS);
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!/^\d{4}-\d{2}$/.test(month)) return;
    let current = true;
    api
      .get<Report>(usagePath(month, grouping))
      .then((answer) => {
        if (!current) return;
        setReport(answer);
        setError(null);
      })
      .catch((err) => current && setError(describe(err)));
    return () => {
      current = false;
    };
  }, [api, month, grouping, version]);

  // At least one dimension stays chosen: the report groups by all three when asked for none.
  const toggle = (dimension: Dimension) =>
    setGrouping((chosen) =>
      chosen.includes(dimension)
        ? chosen.length > 1
          ? chosen.filter((d) => d !== dimension)
          : chosen
        : DIMENSIONS.filter((d) => d === dimension || chosen.includes(d)),
    );

  const shown = report ? (report.group_by as Dimension[]) : [];
  return (
    <div className="card" id="ai-usage">
      <h2>Usage and cost</h2>
      <div className="filters wrap">
        <label className="inline">
          Month
          <input type="month" id="ai-usage-month" value={month} onChange={(e) => setMonth(e.target.value)} />
        </label>
        <fieldset className="roles" id="ai-usage-grouping">
          <legend>Group by</legend>
          {DIMENSIONS.map((d) => (
            <label className="inline" key={d}>
              <input type="checkbox" checked={grouping.includes(d)} onChange={() => toggle(d)} />
              {LABELS[d]}
            </label>
          ))}
        </fieldset>
      </div>
      <ErrorLine error={error} />
      {report && (
        <>
          <p id="ai-budget">
            <strong id="ai-usage-tokens">{tokens(report.budget_used)}</strong> tokens counted against the budget in{" "}
            {report.month}
            {report.monthly_token_budget !== null && report.budget_left !== null ? (
              <>
                : <strong id="ai-budget-left">{tokens(report.budget_left)}</strong> of{" "}
                {tokens(report.monthly_token_budget)} left
              </>
            ) : (
              ", no budget set"
            )}
            .
          </p>
          {report.rows.length === 0 ? (
            <p className="empty" id="ai-usage-empty">
              No AI calls in {report.month}.
            </p>
          ) : (
            <table className="list" id="ai-usage-rows">
              <thead>
                <tr>
                  {shown.map((d) => (
                    <th key={d}>{LABELS[d]}</th>
                  ))}
                  <th>Calls</th>
                  <th>Prompt tokens</th>
                  <th>Completion tokens</th>
                  <th>Total tokens</th>
                  <th>Cost ({report.currency})</th>
                </tr>
              </thead>
              <tbody>
                {report.rows.map((row, index) => (
                  <tr key={index}>
                    {shown.map((d) => (
                      <td key={d}>{cell(row, d)}</td>
                    ))}
                    <Figures row={row} currency={report.currency} />
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr id="ai-usage-totals">
                  {shown.length > 0 && <th colSpan={shown.length}>Total</th>}
                  <Figures row={report.totals} currency={report.currency} />
                </tr>
              </tfoot>
            </table>
          )}
          {report.truncated && <p className="hint">Only the {report.rows.length} largest groups are shown.</p>}
          {report.totals.unpriced_tokens > 0 && (
            <p className="hint" id="ai-unpriced">
              {tokens(report.totals.unpriced_tokens)} tokens are of models without a price and are not in the cost: set
              their prices below.
            </p>
          )}
        </>
      )}
    </div>
  );
}

function cell(row: Row, dimension: Dimension) {
  if (dimension === "model") return row.model;
  if (dimension === "node") return <code>{row.node_id}</code>;
  if (row.workflow_id === null) return <span className="muted">(not recorded)</span>;
  return <Link to={`/workflows/${row.workflow_id}`}>{row.workflow_name ?? row.workflow_id.slice(0, 8)}</Link>;
}

function Figures({ row, currency }: { row: Row; currency: string }) {
  return (
    <>
      <td>{tokens(row.calls)}</td>
      <td>{tokens(row.prompt_tokens)}</td>
      <td>{tokens(row.completion_tokens)}</td>
      <td>{tokens(row.total_tokens)}</td>
      <td title={row.cost === null ? "no price for this model" : undefined}>
        {money(row.cost ?? null, currency)}
        {row.cost !== null && row.unpriced_tokens > 0 && <span className="muted"> + unpriced</span>}
      </td>
    </>
  );
}
