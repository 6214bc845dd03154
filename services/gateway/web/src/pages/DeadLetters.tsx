import { useCallback, useEffect, useState } from "react";
import { ApiError, type Api } from "../api/client";
import {
  actionsOf,
  DEAD_LETTER_CAUSES,
  DEAD_LETTER_STATES,
  DEAD_LETTER_TOPICS,
  NO_FILTERS,
  outcomeOf,
  queryOf,
  shownValue,
  type DeadLetter,
  type DeadLetterFilters,
  type DeadLetterSummary,
} from "../model/deadLetters";
import { Link, navigate } from "../router";
import { when } from "../format";

/** Dead letters the admin may see (a platform operator: every tenant's): filter, inspect, replay, discard. */
export function DeadLetters({ api, letterId }: { api: Api; letterId: number | null }) {
  const [filters, setFilters] = useState<DeadLetterFilters>(NO_FILTERS);
  const [letters, setLetters] = useState<DeadLetterSummary[] | null>(null);
  const [nextOffset, setNextOffset] = useState<number | null>(null);
  const [offset, setOffset] = useState(0);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const page = await api.listDeadLetters(queryOf(filters, offset));
      setLetters(page.items);
      setNextOffset(page.next_offset);
      setError(null);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 403 ? "Only admins see dead letters." : (err as Error).message,
      );
    }
  }, [api, filters, offset]);

  useEffect(() => {
    void load();
  }, [load]);

  const set = (name: keyof DeadLetterFilters) => (value: string) => {
    setOffset(0);
    setFilters((current) => ({ ...current, [name]: value }));
  };

  return (
    <section className="page">
      <div className="page-head">
        <h1>Dead letters</h1>
        <div className="filters" id="dead-letter-filters">
          <Choice
            id="dl-topic"
            label="topic"
            every="every topic"
            options={DEAD_LETTER_TOPICS}
            value={filters.topic}
            onChange={set("topic")}
          />
          <Choice
            id="dl-state"
            label="state"
            every="every state"
            options={DEAD_LETTER_STATES}
            value={filters.state}
            onChange={set("state")}
          />
          <Choice
            id="dl-cause"
            label="cause"
            every="every cause"
            options={DEAD_LETTER_CAUSES}
            value={filters.cause}
            onChange={set("cause")}
          />
          <input
            id="dl-tenant"
            aria-label="tenant"
            placeholder="tenant"
            value={filters.tenant}
            onChange={(e) => set("tenant")(e.target.value)}
          />
          <input
            id="dl-reason"
            aria-label="reason"
            placeholder="reason contains"
            value={filters.reason}
            onChange={(e) => set("reason")(e.target.value)}
          />
          <input
            id="dl-since"
            aria-label="since"
            type="datetime-local"
            value={filters.since}
            onChange={(e) => set("since")(e.target.value)}
          />
          <input
            id="dl-until"
            aria-label="until"
            type="datetime-local"
            value={filters.until}
            onChange={(e) => set("until")(e.target.value)}
          />
          <button type="button" className="small" id="dl-refresh" onClick={() => void load()}>
            Refresh
          </button>
        </div>
      </div>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      {letterId !== null && <Inspector key={letterId} api={api} letterId={letterId} onChanged={() => void load()} />}
      {letters === null ? (
        <p className="empty">Loading…</p>
      ) : letters.length === 0 ? (
        <p className="empty" id="no-dead-letters">
          No dead letters{filters.state ? ` ${filters.state}` : ""}.
        </p>
      ) : (
        <table className="list" id="dead-letters">
          <thead>
            <tr>
              <th>#</th>
              <th>When</th>
              <th>Topic</th>
              <th>Tenant</th>
              <th>State</th>
              <th>Cause</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {letters.map((l) => (
              <tr
                key={l.id}
                data-letter-id={l.id}
                className="clickable"
                onClick={() => navigate(`/dead-letters/${l.id}`)}
              >
                <td>
                  <Link to={`/dead-letters/${l.id}`}>{l.id}</Link>
                </td>
                <td>{when(l.dead_lettered_at)}</td>
                <td>
                  <code>{l.topic}</code>
                </td>
                <td>{l.tenant_id ?? "—"}</td>
                <td>
                  <span className={`badge letter-${l.state}`}>{l.state}</span>
                </td>
                <td>{l.cause}</td>
                <td className="muted">{l.reason.length > 140 ? `${l.reason.slice(0, 140)}…` : l.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="filters">
        {offset > 0 && (
          <button type="button" className="small" onClick={() => setOffset(Math.max(0, offset - 50))}>
            Newer
          </button>
        )}
        {nextOffset !== null && (
          <button type="button" className="small" onClick={() => setOffset(nextOffset)}>
            Older
          </button>
        )}
      </div>
    </section>
  );
}

function Choice(props: {
  id: string;
  label: string;
  every: string;
  options: readonly string[];
  value: string;
  onChange: (value: string) => void;
}) {
  return (
    <select
      id={props.id}
      aria-label={`${props.label} filter`}
      value={props.value}
      onChange={(e) => props.onChange(e.target.value)}
    >
      <option value="">{props.every}</option>
      {props.options.map((o) => (
        <option key={o} value={o}>
          {o}
        </option>
      ))}
    </select>
  );
}

function Inspector({ api, letterId, onChanged }: { api: Api; letterId: number; onChanged: () => void }) {
  const [letter, setLetter] = useState<DeadLetter | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api
      .getDeadLetter(letterId)
      .then(setLetter)
      .catch((err) => setError((err as Error).message));
  }, [api, letterId]);

  const act = async (action: (id: number) => Promise<DeadLetter>) => {
    setBusy(true);
    try {
      setLetter(await action(letterId));
      setError(null);
      onChanged();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  if (letter === null)
    return error ? (
      <div className="error" role="alert">
        {error}
      </div>
    ) : (
      <p className="empty">Loading…</p>
    );
  const can = actionsOf(letter);
  return (
    <div className="panel" id="dead-letter">
      <div className="panel-head">
        <h2>
          Dead letter {letter.id}{" "}
          <span className={`badge letter-${letter.state}`} id="dead-letter-state">
            {letter.state}
          </span>
        </h2>
        <button
          type="button"
          className="small"
          id="dl-replay"
          disabled={!can.replay || busy}
          onClick={() => void act(api.replayDeadLetter)}
        >
          Replay
        </button>
        <button
          type="button"
          className="small"
          id="dl-discard"
          disabled={!can.discard || busy}
          onClick={() => void act(api.discardDeadLetter)}
        >
          Discard
        </button>
        <button type="button" className="small" onClick={() => navigate("/dead-letters")}>
          Close
        </button>
      </div>
      {error && (
        <div className="error" role="alert" id="dead-letter-error">
          {error}
        </div>
      )}
      <dl className="facts">
        <dt>Reason</dt>
        <dd id="dead-letter-reason">{letter.reason}</dd>
        <dt>Original</dt>
        <dd>
          <code>{letter.topic}</code> partition {letter.source_partition}, offset {letter.source_offset}, key{" "}
          <code>{letter.key ?? "—"}</code>
        </dd>
        <dt>Tenant</dt>
        <dd>{letter.tenant_id ?? "— (names none)"}</dd>
        <dt>Consumer</dt>
        <dd>
          {letter.consumer_group}, {letter.attempts} attempt{letter.attempts === 1 ? "" : "s"}
          {letter.error_type ? `, ${letter.error_type}` : ""}
        </dd>
        <dt>When</dt>
        <dd>{when(letter.dead_lettered_at)}</dd>
        <dt>Outcome</dt>
        <dd id="dead-letter-outcome">{outcomeOf(letter)}</dd>
      </dl>
      <h3>Message ({letter.value_kind})</h3>
      <pre tabIndex={0} className="json" id="dead-letter-value">
        {shownValue(letter)}
      </pre>
      {Object.keys(letter.headers).length > 0 && (
        <>
          <h3>Headers</h3>
          <pre tabIndex={0} className="json">
            {JSON.stringify(letter.headers, null, 2)}
          </pre>
        </>
      )}
      {letter.value_kind === "binary" && (
        <pre tabIndex={0} className="json">
          {letter.value_base64}
        </pre>
      )}
      {letter.trace && (
        <details>
          <summary>Trace</summary>
          <pre tabIndex={0} className="json error">
            {letter.trace}
          </pre>
        </details>
      )}
    </div>
  );
}
