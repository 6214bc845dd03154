/** The AI usage report (GET /api/v1/ai/usage) and the tenant's model prices (PUT /api/v1/settings/ai):
 * the query a month and a grouping make, how costs and tokens read, and the price editor's rows turned
 * into the prices the API takes (or the reasons they cannot be). Pure. */

export type Dimension = "workflow" | "node" | "model";
export const DIMENSIONS: Dimension[] = ["workflow", "node", "model"];

/** At most this many priced models (the API refuses more). */
export const MAX_PRICED_MODELS = 200;

export interface ModelPrice {
  prompt_per_million: number;
  completion_per_million: number;
}

/** One row of the price editor, as typed. */
export interface PriceRow {
  model: string;
  prompt: string;
  completion: string;
}

/** `YYYY-MM` of the month (UTC) `now` falls in. */
export function monthOf(now: Date): string {
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** The report's path for a month and the dimensions chosen, in the report's own order. */
export function usagePath(month: string, grouping: Dimension[]): string {
  const params = new URLSearchParams({ month });
  const chosen = DIMENSIONS.filter((d) => grouping.includes(d));
  if (chosen.length > 0) params.set("group_by", chosen.join(","));
  return `/ai/usage?${params.toString()}`;
}

/** A cost as money: cents for most, more digits for the fractions of a cent small calls cost. */
export function money(amount: number | null, currency: string): string {
  if (amount === null) return "—";
  const digits = amount !== 0 && Math.abs(amount) < 0.01 ? 6 : 2;
  try {
    return new Intl.NumberFormat("en", {
      style: "currency",
      currency,
      minimumFractionDigits: 2,
      maximumFractionDigits: digits,
    }).format(amount);
  } catch {
    return `${amount.toFixed(digits)} ${currency}`;
  }
}

export function tokens(count: number): string {
  return count.toLocaleString("en");
}

export function priceRows(prices: Record<string, ModelPrice>): PriceRow[] {
  return Object.entries(prices)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([model, p]) => ({
      model,
      prompt: String(p.prompt_per_million),
      completion: String(p.completion_per_million),
    }));
}

/** The prices the rows say, or every reason they cannot be saved (rows left wholly empty are dropped). */
export function pricesFromRows(
  rows: PriceRow[],
): { prices: Record<string, ModelPrice>; problems: [] } | { prices: null; problems: string[] } {
  const problems: string[] = [];
  const prices: Record<string, ModelPrice> = {};
  const seen = new Set<string>();
  const filled = rows.filter((r) => r.model.trim() || r.prompt.trim() || r.completion.trim());
  filled.forEach((row, index) => {
    const model = row.model.trim();
    const where = model ? `“${model}”` : `row ${index + 1}`;
    if (!model) problems.push(`${where}: name the model`);
    else if (model.length > 200) problems.push(`${where}: a model name has at most 200 characters`);
    else if (seen.has(model)) problems.push(`${where} is priced twice`);
    const prompt = price(row.prompt);
    const completion = price(row.completion);
    if (prompt === null) problems.push(`${where}: the prompt price is not a number of 0 or more`);
    if (completion === null) problems.push(`${where}: the completion price is not a number of 0 or more`);
    if (model && prompt !== null && completion !== null && !seen.has(model)) {
      prices[model] = { prompt_per_million: prompt, completion_per_million: completion };
    }
    seen.add(model);
  });
  if (filled.length > MAX_PRICED_MODELS) problems.push(`at most ${MAX_PRICED_MODELS} models can be priced`);
  return problems.length > 0 ? { prices: null, problems } : { prices, problems: [] };
}

function price(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  const value = Number(trimmed);
  return Number.isFinite(value) && value >= 0 && value <= 1_000_000 ? value : null;
}
