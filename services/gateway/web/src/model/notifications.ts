/** Notifications the node runner delivers (email, chat webhook) and the tenant's channel settings. */

export const NOTIFICATION_STATUSES = ["pending", "delivered", "failing", "given_up"] as const;
export const NOTIFICATION_CHANNELS = ["email", "chat"] as const;

export interface NotificationSummary {
  id: string;
  source: string;
  source_id: string;
  reason: string;
  channel: string;
  recipient: string;
  subject: string;
  body: string;
  link: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  updated_at: string;
  delivered_at: string | null;
}

export interface NotificationAttempt {
  attempt: number;
  at: string;
  outcome: string;
  error: string | null;
}

export interface Notification extends NotificationSummary {
  attempt_log: NotificationAttempt[];
}

export interface NotificationSettings {
  email: {
    enabled: boolean;
    smtp_host: string | null;
    smtp_port: number;
    tls: "none" | "starttls" | "tls";
    from_address: string | null;
    credential: string | null;
  };
  chat: { enabled: boolean; has_webhook_url: boolean };
  updated_at: string | null;
}

export interface NotificationSettingsBody {
  email: {
    enabled: boolean;
    smtp_host: string | null;
    smtp_port: number;
    tls: "none" | "starttls" | "tls";
    from_address: string | null;
    credential: string | null;
  };
  chat: { enabled: boolean; webhook_url?: string };
}

/** The list's query string: only the filters set, and the cursor of the page asked for. */
export function notificationQuery(status: string, channel: string, cursor: string | null): string {
  const params = new URLSearchParams({ limit: "50" });
  if (status) params.set("status", status);
  if (channel) params.set("channel", channel);
  if (cursor) params.set("cursor", cursor);
  return `?${params.toString()}`;
}

/** What a row says about its delivery, in words. */
export function deliveryOf(n: NotificationSummary): string {
  if (n.status === "delivered") return `delivered after ${n.attempts} attempt${n.attempts === 1 ? "" : "s"}`;
  if (n.status === "pending") return "waiting for its first attempt";
  const why = n.last_error ?? "no reason recorded";
  if (n.status === "given_up") return `given up after ${n.attempts} attempt${n.attempts === 1 ? "" : "s"}: ${why}`;
  return `failing (attempt ${n.attempts}): ${why}`;
}

/** The settings form's body: empty fields are null; the webhook URL is sent only when typed. */
export function settingsBody(form: {
  emailEnabled: boolean;
  host: string;
  port: string;
  tls: "none" | "starttls" | "tls";
  from: string;
  credential: string;
  chatEnabled: boolean;
  webhookUrl: string;
}): NotificationSettingsBody {
  const text = (value: string) => (value.trim() ? value.trim() : null);
  return {
    email: {
      enabled: form.emailEnabled,
      smtp_host: text(form.host),
      smtp_port: Number(form.port) || 587,
      tls: form.tls,
      from_address: text(form.from),
      credential: text(form.credential),
    },
    chat: form.webhookUrl.trim()
      ? { enabled: form.chatEnabled, webhook_url: form.webhookUrl.trim() }
      : { enabled: form.chatEnabled },
  };
}
