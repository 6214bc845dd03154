/** Server-Sent Events over fetch(), so the request can carry an Authorization header (EventSource
 * cannot). `SseParser` is the pure part: text in, messages out, per the HTML standard's rules. */

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;
  private sawData = false;
  /** The last `id:` seen, kept across messages as the standard's "last event ID". */
  lastEventId: string | null = null;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone trailing \r may be the first half of \r\n: wait for the next chunk.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === "") {
      if (!this.sawData) {
        this.event = "";
        return null;
      }
      const message = { id: this.id, event: this.event || "message", data: this.data.join("\n") };
      this.data = [];
      this.event = "";
      this.sawData = false;
      return message;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.data.push(value);
      this.sawData = true;
    } else if (field === "event") {
      this.event = value;
    } else if (field === "id" && !value.includes("\0")) {
      this.id = value;
      this.lastEventId = value;
    }
    return null;
  }
}

export class StreamRefused extends Error {
  constructor(readonly status: number) {
    super(`the event stream answered ${status}`);
  }
}

export interface StreamOptions {
  url: string;
  token: string;
  signal: AbortSignal;
  onMessage: (message: SseMessage) => void;
  /** Stop reconnecting when this says the stream is done (e.g. the run reached its end). */
  finished: () => boolean;
  lastEventId?: string | null;
  reconnectMs?: number;
  onState?: (state: "open" | "reconnecting" | "closed") => void;
}

/** Follow a stream until `finished()` or the signal aborts, reconnecting with Last-Event-ID after a
 * dropped connection. A 4xx answer rejects with StreamRefused (the caller decides what then). */
export async function followStream(options: StreamOptions): Promise<void> {
  let lastEventId = options.lastEventId ?? null;
  const wait = options.reconnectMs ?? 1000;
  while (!options.signal.aborted) {
    const headers: Record<string, string> = { Authorization: `Bearer ${options.token}`, Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    try {
      const response = await fetch(options.url, { headers, signal: options.signal, cache: "no-store" });
      if (response.status >= 400 && response.status < 500) throw new StreamRefused(response.status);
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      options.onState?.("open");
      const parser = new SseParser();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          if (message.id !== null) lastEventId = message.id;
          options.onMessage(message);
        }
      }
    } catch (error) {
      if (error instanceof StreamRefused) throw error;
      if (options.signal.aborted) return;
    }
    if (options.finished()) {
      options.onState?.("closed");
      return;
    }
    options.onState?.("reconnecting");
    await sleep(wait, options.signal);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
