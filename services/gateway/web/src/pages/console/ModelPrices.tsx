import { useState } from "react";
import type { Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { type PriceRow, priceRows, pricesFromRows } from "../../model/aiUsage";
import { ErrorLine, Notice, describe } from "./common";

type AiSettingsOut = Schemas["AiSettingsOut"];

const EMPTY: PriceRow = { model: "", prompt: "", completion: "" };

/** What the tenant pays per model, per million prompt and completion tokens: the usage report's cost
 * comes from these. Saved with the stored AI settings as they are (the key is kept). */
export function ModelPrices({
  api,
  stored,
  onSaved,
}: {
  api: Pick<Api, "put">;
  stored: AiSettingsOut;
  onSaved: (saved: AiSettingsOut) => void;
}) {
  const [rows, setRows] = useState<PriceRow[]>(() => [...priceRows(stored.model_prices), EMPTY]);
  const [currency, setCurrency] = useState(stored.price_currency);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const edit = (index: number, change: Partial<PriceRow>) =>
    setRows((all) => {
      const next = all.map((row, i) => (i === index ? { ...row, ...change } : row));
      // A row to type the next model into, always.
      return next[next.length - 1].model || next[next.length - 1].prompt || next[next.length - 1].completion
        ? [...next, EMPTY]
        : next;
    });

  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    setNotice(null);
    const checked = pricesFromRows(rows);
    if (checked.prices === null) {
      setError(checked.problems.join("; "));
      return;
    }
    try {
      const saved = await api.put<AiSettingsOut>("/settings/ai", {
        base_url: stored.base_url,
        model: stored.model,
        temperature: stored.temperature,
        max_tokens: stored.max_tokens,
        monthly_token_budget: stored.monthly_token_budget,
        allow_private_endpoint: stored.allow_private_endpoint,
        model_prices: checked.prices,
        price_currency: currency.trim().toUpperCase(),
      });
      setRows([...priceRows(saved.model_prices), EMPTY]);
      setCurrency(saved.price_currency);
      setError(null);
      setNotice("Prices saved. The report prices every call of the month with them.");
      onSaved(saved);
    } catch (err) {
      setError(describe(err));
    }
  };

  return (
    <form className="card" id="ai-prices" onSubmit={save}>
      <h2>Model prices</h2>
      <p className="hint">
        Per million tokens, by the model's name as the endpoint reports it. A model without a price has no cost in the
        report.
      </p>
      <label className="inline">
        Currency
        <input
          id="ai-price-currency"
          required
          maxLength={3}
          pattern="[A-Za-z]{3}"
          size={4}
          value={currency}
          onChange={(e) => setCurrency(e.target.value)}
        />
      </label>
      <table className="list" id="ai-price-rows">
        <thead>
          <tr>
            <th>Model</th>
            <th>Prompt, per million</th>
            <th>Completion, per million</th>
            <th>
              <span className="visually-hidden">Remove</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row, index) => (
            <tr key={index}>
              <td>
                <input
                  aria-label={`model ${index + 1}`}
                  value={row.model}
                  onChange={(e) => edit(index, { model: e.target.value })}
                />
              </td>
              <td>
                <input
                  aria-label={`prompt price ${index + 1}`}
                  inputMode="decimal"
                  value={row.prompt}
                  onChange={(e) => edit(index, { prompt: e.target.value })}
                />
              </td>
              <td>
                <input
                  aria-label={`completion price ${index + 1}`}
                  inputMode="decimal"
                  value={row.completion}
                  onChange={(e) => edit(index, { completion: e.target.value })}
                />
              </td>
              <td>
                {index < rows.length - 1 && (
                  <button
                    type="button"
                    aria-label={`remove ${row.model || `row ${index + 1}`}`}
                    onClick={() => setRows((all) => all.filter((_, i) => i !== index))}
                  >
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorLine error={error} />
      <Notice text={notice} />
      <div className="actions">
        <button type="submit" className="primary" id="ai-prices-save">
          Save prices
        </button>
      </div>
    </form>
  );
}
