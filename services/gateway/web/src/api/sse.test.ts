// @vitest-environment node
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { followStream, SseParser, StreamRefused } from "./sse";

describe("the SSE parser", () => {
  it("splits messages on blank lines, in any chunking, with ids and event names", () => {
    const text = [
      ': following run\n\nid: 1\nevent: run.started\ndata: {"seq":1}\n\n',
      'id: 2\r\nevent: node.scheduled\r\ndata: {"seq":\r\ndata: 2}\r\n\r\n',
    ].join("");
    for (const size of [1, 2, 5, 7, text.length]) {
      const parser = new SseParser();
      const messages = [];
      for (let i = 0; i < text.length; i += size) messages.push(...parser.push(text.slice(i, i + size)));
      expect(messages).toEqual([
        { id: "1", event: "run.started", data: '{"seq":1}' },
        { id: "2", event: "node.scheduled", data: '{"seq":\n2}' },
      ]);
      expect(parser.lastEventId).toBe("2");
    }
  });

  it("keeps a message without a blank line pending, and skips comments and unknown fields", () => {
    const parser = new SseParser();
    expect(parser.push("retry: 10\nfoo: bar\n:heartbeat\ndata: x\n")).toEqual([]);
    expect(parser.push("\n")).toEqual([{ id: null, event: "message", data: "x" }]);
  });
});

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** A real HTTP server on loopback, answering each request with the next handler. */
async function serve(handlers: Handler[]): Promise<{ url: string; seen: IncomingMessage[]; server: Server }> {
  const seen: IncomingMessage[] = [];
  const server = createServer((request, response) => {
    seen.push(request);
    const handler = handlers.shift();
    if (handler) handler(request, response);
    else response.writeHead(500).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/api/v1/runs/r/events`, seen, server };
}

const events = (response: ServerResponse, text: string) => {
  response.writeHead(200, { "content-type": "text/event-stream" });
  response.end(text);
};

describe("following a stream over HTTP", () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(null));
    server = null;
  });

  it("sends the token, and reconnects after a dropped connection with the last id as Last-Event-ID", async () => {
    const running = await serve([
      (_, r) =>
        events(r, ": hello\n\nid: 1\nevent: run.started\ndata: {}\n\nid: 2\nevent: node.scheduled\ndata: {}\n\n"),
      (_, r) => events(r, "id: 3\nevent: run.completed\ndata: {}\n\n"),
    ]);
    server = running.server;
    const seen: string[] = [];
    let done = false;
    await followStream({
      url: running.url,
      token: "t0k",
      signal: new AbortController().signal,
      reconnectMs: 5,
      onMessage: (m) => {
        seen.push(`${m.id}:${m.event}`);
        if (m.event === "run.completed") done = true;
      },
      finished: () => done,
    });
    expect(seen).toEqual(["1:run.started", "2:node.scheduled", "3:run.completed"]);
    expect(running.seen.map((r) => r.headers.authorization)).toEqual(["Bearer t0k", "Bearer t0k"]);
    expect(running.seen.map((r) => r.headers["last-event-id"] ?? null)).toEqual([null, "2"]);
  });

  it("retries a 503 and gives up with StreamRefused on a 4xx, so the caller can fall back", async () => {
    const running = await serve([(_, r) => r.writeHead(503).end("{}"), (_, r) => r.writeHead(404).end("{}")]);
    server = running.server;
    const failure = followStream({
      url: running.url,
      token: "t",
      signal: new AbortController().signal,
      reconnectMs: 5,
      onMessage: () => {},
      finished: () => false,
    });
    await expect(failure).rejects.toBeInstanceOf(StreamRefused);
    expect(running.seen).toHaveLength(2);
  });
});
