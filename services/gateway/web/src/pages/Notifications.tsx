import { useCallback, useEffect, useState } from "react";
import { ApiError, type Api } from "../api/client";
import {
  deliveryOf,
  NOTIFICATION_CHANNELS,
  NOTIFICATION_STATUSES,
  notificationQuery,
  settingsBody,
  type Notification,
  type NotificationSettings,
  type NotificationSummary,
} from "../model/notifications";
import { Link, navigate } from "../router";
import { when } from "../format";

/** What was sent to whom, when, and whether it arrived (or why not); and the tenant's channels. */
export function Notifications({ api, notificationId }: { api: Api; notificationId: string | null }) {
  const [status, setStatus] = useState("");
  const [channel, setChannel] = useState("");
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [items, setItems] = useState<NotificationSummary[] | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1];

  const load = useCallback(async () => {
    try {
      const page = await api.listNotifications(notificationQuery(status, channel, cursor));
      setItems(page.items);
      setNextCursor(page.next_cursor);
      setError(null);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 403 ? "Only admins see notifications." : (err as Error).message,
      );
    }
  }, [api, status, channel, cursor]);

  useEffect(() => {
    void load();
  }, [load]);

  const filter = (set: (value: string) => void) => (value: string) => {
    setCursors([null]);
    set(value);
  };

  return (
    <section className="page">
      <div className="page-head">
        <h1>Notifications</h1>
        <div className="filters">
          <select
            id="nt-status"
            aria-label="status filter"
            value={status}
            onChange={(e) => filter(setStatus)(e.target.value)}
          >
            <option value="">every status</option>
            {NOTIFICATION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <select
            id="nt-channel"
            aria-label="channel filter"
            value={channel}
            onChange={(e) => filter(setChannel)(e.target.value)}
          >
            <option value="">every channel</option>
            {NOTIFICATION_CHANNELS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
          <button type="button" className="small" id="nt-refresh" onClick={() => void load()}>
            Refresh
          </button>
        </div>
      </div>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      {notificationId !== null && (
        <Detail key={notificationId} api={api} notificationId={notificationId} onChanged={() => void load()} />
      )}
      {items === null ? (
        <p className="empty">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty" id="no-notifications">
          No notifications{status ? ` ${status}` : ""}.
        </p>
      ) : (
        <table className="list" id="notifications">
          <thead>
            <tr>
              <th>When</th>
              <th>Channel</th>
              <th>To</th>
              <th>Subject</th>
              <th>Status</th>
              <th>Delivery</th>
            </tr>
          </thead>
          <tbody>
            {items.map((n) => (
              <tr
                key={n.id}
                data-notification-id={n.id}
                className="clickable"
                onClick={() => navigate(`/notifications/${n.id}`)}
              >
                <td>
                  <Link to={`/notifications/${n.id}`}>{when(n.created_at)}</Link>
                </td>
                <td>{n.channel}</td>
                <td>{n.recipient}</td>
                <td>{n.subject}</td>
                <td>
                  <span className={`badge notification-${n.status}`}>{n.status}</span>
                </td>
                <td className="muted">{deliveryOf(n)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="filters">
        {cursors.length > 1 && (
          <button type="button" className="small" onClick={() => setCursors(cursors.slice(0, -1))}>
            Newer
          </button>
        )}
        {nextCursor !== null && (
          <button type="button" className="small" onClick={() => setCursors([...cursors, nextCursor])}>
            Older
          </button>
        )}
      </div>
      <ChannelSettings api={api} />
    </section>
  );
}

function Detail({ api, notificationId, onChanged }: { api: Api; notificationId: string; onChanged: () => void }) {
  const [notification, setNotification] = useState<Notification | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.getNotification(notificationId).then(setNotification, (err: Error) => setError(err.message));
  }, [api, notificationId]);

  if (error)
    return (
      <div className="error" role="alert">
        {error}
      </div>
    );
  if (!notification) return <p className="empty">Loading…</p>;
  return (
    <div className="panel" id="notification-detail">
      <h2>{notification.subject}</h2>
      <p>
        {notification.channel} to <strong>{notification.recipient}</strong> ({notification.reason}),{" "}
        <span className={`badge notification-${notification.status}`}>{notification.status}</span>
        {notification.delivered_at && <> at {when(notification.delivered_at)}</>}
      </p>
      {notification.last_error && <p className="error">{notification.last_error}</p>}
      {notification.link && (
        <p>
          <a href={notification.link}>{notification.link}</a>
        </p>
      )}
      <pre className="json">{notification.body}</pre>
      <table className="list" id="notification-attempts">
        <thead>
          <tr>
            <th>Attempt</th>
            <th>When</th>
            <th>Outcome</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {notification.attempt_log.map((a) => (
            <tr key={a.attempt}>
              <td>{a.attempt}</td>
              <td>{when(a.at)}</td>
              <td>{a.outcome}</td>
              <td className="muted">{a.error ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {notification.status === "given_up" && (
        <button
          type="button"
          id="nt-retry"
          onClick={() =>
            api.retryNotification(notification.id).then(
              (again) => {
                setNotification(again);
                onChanged();
              },
              (err: Error) => setError(err.message),
            )
          }
        >
          Retry
        </button>
      )}
    </div>
  );
}

type Tls = "none" | "starttls" | "tls";

function ChannelSettings({ api }: { api: Api }) {
  const [loaded, setLoaded] = useState<NotificationSettings | null>(null);
  const [emailEnabled, setEmailEnabled] = useState(false);
  const [host, setHost] = useState("");
  const [port, setPort] = useState("587");
  const [tls, setTls] = useState<Tls>("starttls");
  const [from, setFrom] = useState("");
  const [credential, setCredential] = useState("");
  const [chatEnabled, setChatEnabled] = useState(false);
  const [webhookUrl, setWebhookUrl] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const show = useCallback((s: NotificationSettings) => {
    setLoaded(s);
    setEmailEnabled(s.email.enabled);
    setHost(s.email.smtp_host ?? "");
    setPort(String(s.email.smtp_port));
    setTls(s.email.tls);
    setFrom(s.email.from_address ?? "");
    setCredential(s.email.credential ?? "");
    setChatEnabled(s.chat.enabled);
    setWebhookUrl("");
  }, []);

  useEffect(() => {
    api.notificationSettings().then(show, (err: Error) => setError(err.message));
  }, [api, show]);

  const save = async () => {
    try {
      const body = settingsBody({ emailEnabled, host, port, tls, from, credential, chatEnabled, webhookUrl });
      show(await api.saveNotificationSettings(body));
      setError(null);
      setMessage("Saved.");
    } catch (err) {
      setMessage(null);
      const problem = err as ApiError;
      const where = problem.details?.map((d) => `${d.pointer}: ${d.message}`).join("; ");
      setError(where ? `${problem.message} (${where})` : problem.message);
    }
  };

  if (!loaded && !error) return null;
  return (
    <form
      className="panel"
      id="notification-settings"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <h2>Channels</h2>
      <fieldset>
        <legend>
          <label>
            <input
              type="checkbox"
              id="ns-email-enabled"
              checked={emailEnabled}
              onChange={(e) => setEmailEnabled(e.target.checked)}
            />{" "}
            Email
          </label>
        </legend>
        <label>
          SMTP host <input id="ns-host" value={host} onChange={(e) => setHost(e.target.value)} />
        </label>
        <label>
          Port <input id="ns-port" inputMode="numeric" value={port} onChange={(e) => setPort(e.target.value)} />
        </label>
        <label>
          TLS{" "}
          <select id="ns-tls" value={tls} onChange={(e) => setTls(e.target.value as Tls)}>
            <option value="starttls">STARTTLS</option>
            <option value="tls">TLS</option>
            <option value="none">none</option>
          </select>
        </label>
        <label>
          From <input id="ns-from" value={from} onChange={(e) => setFrom(e.target.value)} />
        </label>
        <label>
          Login credential (basic){" "}
          <input
            id="ns-credential"
            placeholder="none"
            value={credential}
            onChange={(e) => setCredential(e.target.value)}
          />
        </label>
      </fieldset>
      <fieldset>
        <legend>
          <label>
            <input
              type="checkbox"
              id="ns-chat-enabled"
              checked={chatEnabled}
              onChange={(e) => setChatEnabled(e.target.checked)}
            />{" "}
            Chat (Slack-compatible incoming webhook)
          </label>
        </legend>
        <label>
          Webhook URL{" "}
          <input
            id="ns-webhook"
            type="password"
            placeholder={loaded?.chat.has_webhook_url ? "stored (type to replace)" : "https://…"}
            value={webhookUrl}
            onChange={(e) => setWebhookUrl(e.target.value)}
          />
        </label>
      </fieldset>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      {message && <p id="ns-saved">{message}</p>}
      <button type="submit" id="ns-save">
        Save channels
      </button>
    </form>
  );
}
