import { describe, expect, it } from "vitest";
import { deliveryOf, notificationQuery, settingsBody, type NotificationSummary } from "./notifications";

const row = (changes: Partial<NotificationSummary>): NotificationSummary => ({
  id: "n1",
  source: "task",
  source_id: "t1",
  reason: "task",
  channel: "email",
  recipient: "ada@acme.test",
  subject: "New task: x",
  body: "",
  link: null,
  status: "pending",
  attempts: 0,
  last_error: null,
  next_attempt_at: null,
  created_at: "2026-12-02T12:00:00Z",
  updated_at: "2026-12-02T12:00:00Z",
  delivered_at: null,
  ...changes,
});

describe("notifications", () => {
  it("asks only for the filters set", () => {
    expect(notificationQuery("", "", null)).toBe("?limit=50");
    expect(notificationQuery("failing", "chat", "abc")).toBe("?limit=50&status=failing&channel=chat&cursor=abc");
  });

  it("says why a delivery is failing or given up", () => {
    expect(deliveryOf(row({ status: "delivered", attempts: 1 }))).toBe("delivered after 1 attempt");
    expect(deliveryOf(row({ status: "failing", attempts: 3, last_error: "refused" }))).toBe(
      "failing (attempt 3): refused",
    );
    expect(deliveryOf(row({ status: "given_up", attempts: 8, last_error: "gone" }))).toBe(
      "given up after 8 attempts: gone",
    );
  });

  it("sends empty fields as null and the webhook URL only when typed", () => {
    const body = settingsBody({
      emailEnabled: true,
      host: " mail.acme.test ",
      port: "25",
      tls: "none",
      from: "",
      credential: "",
      chatEnabled: true,
      webhookUrl: "",
    });
    expect(body.email).toEqual({
      enabled: true,
      smtp_host: "mail.acme.test",
      smtp_port: 25,
      tls: "none",
      from_address: null,
      credential: null,
    });
    expect(body.chat).toEqual({ enabled: true });
  });
});
