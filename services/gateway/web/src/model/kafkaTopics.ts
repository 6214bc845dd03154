/** The tenant's granted Kafka topics (GET /api/v1/kafka/topics), as the choices of a node's `topic`:
 * a Kafka trigger reads topics granted to `consume`, a publish node writes those granted to `produce`. */

export type TopicAccess = "consume" | "produce";

export interface GrantedTopic {
  topic: string;
  access: TopicAccess[];
}

/** What the node's `topic` field may be set to; null when the node has no topic field. The current
 * value stays a choice even when it is no longer granted, so the form shows it (and saving says why). */
export function topicChoices(
  granted: GrantedTopic[],
  nodeType: string | undefined,
  data: { kind?: unknown; topic?: unknown },
): string[] | null {
  let access: TopicAccess;
  if (nodeType === "kafka_publish") access = "produce";
  else if (nodeType === "trigger" && data.kind === "kafka") access = "consume";
  else return null;
  const choices = granted.filter((g) => g.access.includes(access)).map((g) => g.topic);
  if (typeof data.topic === "string" && data.topic !== "" && !choices.includes(data.topic)) choices.push(data.topic);
  return choices.sort();
}
