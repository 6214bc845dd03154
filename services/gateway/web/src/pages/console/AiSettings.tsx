import { useEffect, useState } from "react";
import { ApiError, type Api } from "../../api/client";
import type { Schemas } from "../../api/types";
import { when } from "../../format";
import { NotAllowed, can, useMe } from "../../permissions";
import { AiUsageReport } from "./AiUsageReport";
import { ErrorLine, Notice, describe } from "./common";
import { ModelPrices } from "./ModelPrices";

type AiSettingsOut = Schemas["AiSettingsOut"];

/** The tenant's OpenAI-compatible endpoint for AI nodes: the key is write-only (the page only says
 * whether one is stored), the budget caps the month's tokens; a month's usage and cost by workflow,
 * node and model, and the per-model prices the cost comes from. */
export function AiSettings({ api }: { api: Api }) {
  const me = useMe();
  const admin = can(me, "manage_tenant");
  const [stored, setStored] = useState<AiSettingsOut | null>(null);
  const [missing, setMissing] = useState(false);
  // Bumped on every save, so the usage report asks again (prices and the budget changed).
  const [saves, setSaves] = useState(0);
  const [form, setForm] = useState({ base_url: "", model: "", api_key: "", budget: "", allow_private: false });
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const show = (s: AiSettingsOut) => {
    setStored(s);
    setMissing(false);
    setForm({
      base_url: s.base_url,
      model: s.model,
      api_key: "",
      budget: s.monthly_token_budget ? String(s.monthly_token_budget) : "",
      allow_private: s.allow_private_endpoint,
    });
  };

  useEffect(() => {
    if (!admin) return;
    api
      .get<AiSettingsOut>("/settings/ai")
      .then(show)
      .catch((err) => {
        if (err instanceof ApiError && err.status === 404) setMissing(true);
        else setError(describe(err));
      });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, admin]);

  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    const body: Record<string, unknown> = {
      base_url: form.base_url.trim(),
      model: form.model.trim(),
      monthly_token_budget: form.budget ? Number(form.budget) : null,
      allow_private_endpoint: form.allow_private,
    };
    if (form.api_key) body.api_key = form.api_key;
    // Kept as stored: the form does not show them, and the API would put its defaults in their place.
    if (stored) Object.assign(body, { temperature: stored.temperature, max_tokens: stored.max_tokens });
    try {
      show(await api.put<AiSettingsOut>("/settings/ai", body));
      setError(null);
      setNotice("Saved. AI nodes use these settings from their next call.");
      setSaves((n) => n + 1);
    } catch (err) {
      setNotice(null);
      setError(describe(err));
    }
  };

  return (
    <section className="page console-page" id="ai-settings-page">
      <div className="page-head">
        <h1>AI settings</h1>
      </div>
      {!admin && me && <NotAllowed permission="manage_tenant" what="that AI nodes use the tenant's endpoint" />}
      <ErrorLine error={error} />
      <Notice text={notice} />
      {admin && (
        <>
          {missing && (
            <p className="empty" id="no-ai-settings">
              No AI endpoint yet: AI nodes fail until you set one. Enter an OpenAI-compatible API root, a model and a
              key below.
            </p>
          )}
          <form className="card form-grid" id="ai-form" onSubmit={save}>
            <label>
              Endpoint (OpenAI-compatible API root)
              <input
                id="ai-base-url"
                required
                placeholder="https://api.openai.com/v1"
                value={form.base_url}
                onChange={(e) => setForm({ ...form, base_url: e.target.value })}
              />
            </label>
            <label>
              Model
              <input
                id="ai-model"
                required
                value={form.model}
                onChange={(e) => setForm({ ...form, model: e.target.value })}
              />
            </label>
            <label>
              API key
              <input
                id="ai-api-key"
                type="password"
                autoComplete="off"
                placeholder={stored?.has_api_key ? "stored; type to replace it" : "none stored"}
                value={form.api_key}
                onChange={(e) => setForm({ ...form, api_key: e.target.value })}
              />
              <span className="hint" id="ai-key-state">
                {stored?.has_api_key ? "A key is stored (never shown)." : "No key stored."}
              </span>
            </label>
            <label>
              Monthly token budget
              <input
                id="ai-budget"
                type="number"
                min={1}
                placeholder="no limit"
                value={form.budget}
                onChange={(e) => setForm({ ...form, budget: e.target.value })}
              />
            </label>
            <label className="inline">
              <input
                id="ai-allow-private"
                type="checkbox"
                checked={form.allow_private}
                onChange={(e) => setForm({ ...form, allow_private: e.target.checked })}
              />
              The endpoint is on a private or loopback address (the network policy must allow it too)
            </label>
            <div className="actions">
              <button type="submit" className="primary" id="ai-save">
                Save AI settings
              </button>
              {stored && <span className="hint">last saved {when(stored.updated_at)}</span>}
            </div>
          </form>
          <AiUsageReport api={api} version={saves} />
          {stored ? (
            <ModelPrices
              api={api}
              stored={stored}
              onSaved={(saved) => {
                setStored(saved); // the endpoint form keeps what is typed in it
                setSaves((n) => n + 1);
              }}
            />
          ) : (
            <p className="muted">Model prices can be set once the endpoint is saved.</p>
          )}
        </>
      )}
    </section>
  );
}
