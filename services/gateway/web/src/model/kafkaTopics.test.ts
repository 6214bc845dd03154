import { describe, expect, it } from "vitest";
import { topicChoices, type GrantedTopic } from "./kafkaTopics";

const granted: GrantedTopic[] = [
  { topic: "orders", access: ["consume", "produce"] },
  { topic: "payments", access: ["consume"] },
  { topic: "audit", access: ["produce"] },
];

describe("topicChoices", () => {
  it("offers a Kafka trigger the topics granted to consume", () => {
    expect(topicChoices(granted, "trigger", { kind: "kafka" })).toEqual(["orders", "payments"]);
  });

  it("offers a publish node the topics granted to produce", () => {
    expect(topicChoices(granted, "kafka_publish", {})).toEqual(["audit", "orders"]);
  });

  it("keeps a topic no longer granted so the form still shows it", () => {
    expect(topicChoices(granted, "kafka_publish", { topic: "gone" })).toEqual(["audit", "gone", "orders"]);
  });

  it("has no choices for nodes without a topic", () => {
    expect(topicChoices(granted, "trigger", { kind: "webhook" })).toBeNull();
    expect(topicChoices(granted, "http_request", {})).toBeNull();
  });
});
