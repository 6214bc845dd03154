import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/types";
import { ModelPrices } from "./ModelPrices";

type AiSettingsOut = Schemas["AiSettingsOut"];

const STORED: AiSettingsOut = {
  base_url: "https://llm.example/v1",
  model: "gpt-small",
  has_api_key: true,
  temperature: 0.7,
  max_tokens: 2048,
  monthly_token_budget: 10_000_000,
  allow_private_endpoint: false,
  model_prices: { "gpt-small": { prompt_per_million: 0.5, completion_per_million: 1.5 } },
  price_currency: "EUR",
  updated_at: "2026-03-01T10:00:00Z",
};

describe("the model price editor", () => {
  it("edits the prices and saves them with the stored settings as they are", async () => {
    const sent: Record<string, unknown>[] = [];
    const put = vi.fn(async (_path: string, body?: unknown) => {
      sent.push(body as Record<string, unknown>);
      return { ...STORED, ...(body as object), updated_at: "2026-03-02T10:00:00Z" } as unknown;
    });
    const saved: AiSettingsOut[] = [];
    render(<ModelPrices api={{ put: put as never }} stored={STORED} onSaved={(s) => saved.push(s)} />);
    expect((screen.getByLabelText("model 1") as HTMLInputElement).value).toBe("gpt-small");
    fireEvent.change(screen.getByLabelText("prompt price 1"), { target: { value: "0.6" } });
    fireEvent.change(screen.getByLabelText("model 2"), { target: { value: "gpt-big" } });
    fireEvent.change(screen.getByLabelText("prompt price 2"), { target: { value: "10" } });
    fireEvent.change(screen.getByLabelText("completion price 2"), { target: { value: "30" } });
    expect(screen.getByLabelText("model 3")).toBeTruthy(); // a fresh row for the next model
    fireEvent.change(screen.getByLabelText(/Currency/), { target: { value: "usd" } });
    fireEvent.click(screen.getByText("Save prices"));
    await screen.findByText(/Prices saved/);
    expect(sent).toEqual([
      {
        base_url: "https://llm.example/v1",
        model: "gpt-small",
        temperature: 0.7,
        max_tokens: 2048,
        monthly_token_budget: 10_000_000,
        allow_private_endpoint: false,
        model_prices: {
          "gpt-small": { prompt_per_million: 0.6, completion_per_million: 1.5 },
          "gpt-big": { prompt_per_million: 10, completion_per_million: 30 },
        },
        price_currency: "USD",
      },
    ]);
    expect(saved).toHaveLength(1);

    fireEvent.click(screen.getByLabelText("remove gpt-big"));
    fireEvent.click(screen.getByLabelText("remove gpt-small"));
    fireEvent.click(screen.getByText("Save prices"));
    await waitFor(() => expect(sent).toHaveLength(2));
    expect(sent[1].model_prices).toEqual({}); // all removed: no model has a price
  });

  it("says what is wrong and sends nothing while a price is not a number", async () => {
    const put = vi.fn();
    render(<ModelPrices api={{ put }} stored={STORED} onSaved={() => undefined} />);
    fireEvent.change(screen.getByLabelText("completion price 1"), { target: { value: "-2" } });
    fireEvent.click(screen.getByText("Save prices"));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "“gpt-small”: the completion price is not a number of 0 or more",
    );
    expect(put).not.toHaveBeenCalled();
  });
});
