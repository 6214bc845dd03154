import { describe, expect, it } from "vitest";
import { MAX_PRICED_MODELS, money, monthOf, priceRows, pricesFromRows, tokens, usagePath } from "./aiUsage";

describe("the AI usage report's query", () => {
  it("names the month in UTC and the grouping in the report's order", () => {
    expect(monthOf(new Date("2026-01-31T23:30:00-05:00"))).toBe("2026-02");
    expect(monthOf(new Date("2026-09-01T00:00:00Z"))).toBe("2026-09");
    expect(usagePath("2026-03", ["model", "workflow"])).toBe("/ai/usage?month=2026-03&group_by=workflow%2Cmodel");
    expect(usagePath("2026-03", [])).toBe("/ai/usage?month=2026-03");
  });

  it("shows costs as money, fractions of a cent with more digits, and no price as a dash", () => {
    expect(money(50, "EUR")).toBe("€50.00");
    expect(money(0.000125, "USD")).toBe("$0.000125");
    expect(money(0, "USD")).toBe("$0.00");
    expect(money(null, "USD")).toBe("—");
    expect(money(1.5, "XQQ")).toContain("1.5");
    expect(tokens(3005050)).toBe("3,005,050");
  });
});

describe("the model price editor", () => {
  it("reads stored prices as rows by model name and writes them back", () => {
    const rows = priceRows({
      "gpt-small": { prompt_per_million: 0.5, completion_per_million: 1.5 },
      "gpt-big": { prompt_per_million: 10, completion_per_million: 30 },
    });
    expect(rows).toEqual([
      { model: "gpt-big", prompt: "10", completion: "30" },
      { model: "gpt-small", prompt: "0.5", completion: "1.5" },
    ]);
    expect(pricesFromRows([...rows, { model: "", prompt: "", completion: "" }])).toEqual({
      prices: {
        "gpt-big": { prompt_per_million: 10, completion_per_million: 30 },
        "gpt-small": { prompt_per_million: 0.5, completion_per_million: 1.5 },
      },
      problems: [],
    });
    expect(pricesFromRows([])).toEqual({ prices: {}, problems: [] });
  });

  it("says what is wrong with every row it cannot save", () => {
    const { prices, problems } = pricesFromRows([
      { model: " m ", prompt: "-1", completion: "2" },
      { model: "m", prompt: "1", completion: "2" },
      { model: "", prompt: "1", completion: "abc" },
      { model: "x".repeat(201), prompt: "1", completion: "" },
    ]);
    expect(prices).toBeNull();
    expect(problems).toEqual([
      "“m”: the prompt price is not a number of 0 or more",
      "“m” is priced twice",
      "row 3: name the model",
      "row 3: the completion price is not a number of 0 or more",
      `“${"x".repeat(201)}”: a model name has at most 200 characters`,
      `“${"x".repeat(201)}”: the completion price is not a number of 0 or more`,
    ]);
  });

  it("refuses more models than the API takes", () => {
    const rows = Array.from({ length: MAX_PRICED_MODELS + 1 }, (_, n) => ({
      model: `m${n}`,
      prompt: "1",
      completion: "1",
    }));
    expect(pricesFromRows(rows).problems).toEqual([`at most ${MAX_PRICED_MODELS} models can be priced`]);
  });
});
