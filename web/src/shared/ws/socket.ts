/**
 * The proofreading WebSocket, kept alive for real use:
 *
 * - heartbeat: a `ping` after `heartbeatMs` without traffic (API Gateway closes a connection idle
 *   for 10 minutes); no `pong` within `pongTimeoutMs` means the connection is dead: it is closed
 *   and reopened.
 * - reconnect: after any close the client did not ask for, with exponential backoff and jitter,
 *   and at once when the browser comes back online.
 * - nothing in flight is lost: every `sendMessage` is kept by its `requestId` until `complete` or
 *   `error`, and sent again with the same id on the new connection. The server then either replays
 *   the finished answer (`complete` with `replayed: true`, billed once), continues a running one
 *   (`resumed` with all the text so far, then more `delta`s), or runs it.
 * - `accepted` only acknowledges: errors the answer finds (an unknown prompt, the quota, the model)
 *   arrive after it, and end the request like any other error.
 * - back after the server's resume grace (20 s): the answer was ended, and the resend under the same
 *   id replays that ending, `CONNECTION_CLOSED`. Nothing was saved, so the request is sent once more
 *   under a new id (a failed id only ever replays its error), up to `maxResends` times.
 */

export type SocketState = "connecting" | "open" | "reconnecting" | "closed";

export interface ProofreadPayload {
  mode?: "proofread" | "chat";
  text: string;
  promptId?: string | null;
  conversationId?: string | null;
}

/** Another route's message (e.g. the streamed tutor turn): sent as `{action, requestId, ...body}`. */
export interface ActionPayload {
  action: string;
  body: Record<string, unknown>;
}

export type Payload = ProofreadPayload | ActionPayload;

export interface ErrorPayload {
  code: string;
  message: string;
  details?: unknown[];
}

/** The ending the server replays for an answer whose client was gone past the resume grace. */
export const CONNECTION_CLOSED = "CONNECTION_CLOSED";

export interface RequestHandlers<R> {
  /** The whole streamed text so far (deltas joined in seq order). */
  onText?(text: string): void;
  onAccepted?(): void;
  /** The connection was lost and the request is being sent again. */
  onResending?(): void;
  onComplete(result: R, info: { replayed: boolean }): void;
  onError(error: ErrorPayload, info: { replayed: boolean }): void;
  /** Any other frame of the request (a voice turn's `audio`, `translation`, `speech-error`). */
  onFrame?(message: ServerMessage): void;
}

interface Pending {
  requestId: string;
  /** the id send() returned (the request keeps it as its handle across new ids) */
  origin: string;
  payload: Payload;
  handlers: RequestHandlers<unknown>;
  text: string;
  lastSeq: number;
  parts: string[];
  /** sent on the current connection */
  sent: boolean;
  /** times sent again under a new id after CONNECTION_CLOSED */
  resends: number;
}

export interface SocketOptions {
  url: string;
  /** Query parameters for $connect (the credentials); null = not signed in. */
  query: () => Promise<Record<string, string> | null>;
  heartbeatMs?: number;
  pongTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** New ids a request may take after CONNECTION_CLOSED before the error is shown. */
  maxResends?: number;
  WebSocketImpl?: typeof WebSocket;
  random?: () => number;
  newId?: () => string;
}

export type ServerMessage = {
  type: string;
  requestId?: string;
  seq?: number;
  text?: string;
  index?: number;
  count?: number;
  data?: string;
  result?: unknown;
  /** a voice turn's saved turn (`complete`) */
  turn?: unknown;
  summary?: unknown;
  replayed?: boolean;
  error?: ErrorPayload;
};

/** The delay before reconnect attempt n (0-based): base * 2^n, capped, with jitter in [50 %, 100 %]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling * (0.5 + random() / 2));
}

export class ProofreadSocket {
  state: SocketState = "closed";
  private ws: WebSocket | null = null;
  private pending = new Map<string, Pending>();
  private listeners = new Set<(state: SocketState) => void>();
  private attempt = 0;
  private wanted = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly o: Required<Omit<SocketOptions, "WebSocketImpl">> & { WebSocketImpl: typeof WebSocket };
  private readonly onOnline = () => {
    if (this.wanted && this.state === "reconnecting") {
      this.clearReconnect();
      void this.connect();
    }
  };

  constructor(options: SocketOptions) {
    this.o = {
      heartbeatMs: 300_000,
      pongTimeoutMs: 15_000,
      backoffBaseMs: 500,
      backoffMaxMs: 30_000,
      maxResends: 2,
      random: Math.random,
      newId: () => crypto.randomUUID(),
      WebSocketImpl: globalThis.WebSocket,
      ...options,
    } as ProofreadSocket["o"];
  }

  onState(listener: (state: SocketState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Open the connection and keep it open until close(). */
  start(): void {
    if (this.wanted) return;
    this.wanted = true;
    if (typeof window !== "undefined") window.addEventListener("online", this.onOnline);
    void this.connect();
  }

  close(): void {
    this.wanted = false;
    if (typeof window !== "undefined") window.removeEventListener("online", this.onOnline);
    this.clearReconnect();
    this.clearHeartbeat();
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
    this.setState("closed");
  }

  /** Send a request; it survives reconnects until it completes or fails. Returns its requestId. */
  send<R>(payload: Payload, handlers: RequestHandlers<R>, requestId = this.o.newId()): string {
    this.pending.set(requestId, {
      requestId, origin: requestId, payload, handlers: handlers as RequestHandlers<unknown>, text: "", lastSeq: 0, parts: [], sent: false,
      resends: 0,
    });
    this.start();
    this.flush();
    return requestId;
  }

  /** Forget a request (the page no longer wants its answer), by the id send() returned. */
  cancel(requestId: string): void {
    for (const [id, p] of this.pending) if (p.origin === requestId) this.pending.delete(id);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  // -- connection ----------------------------------------------------------------------------
  private setState(state: SocketState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }

  private async connect(): Promise<void> {
    if (!this.wanted) return;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let query: Record<string, string> | null;
    try {
      query = await this.o.query();
    } catch {
      query = null;
    }
    if (!this.wanted) return;
    if (!query) {
      for (const p of this.pending.values()) {
        p.handlers.onError({ code: "SIGN_IN_REQUIRED", message: "Sign in to continue." }, { replayed: false });
      }
      this.pending.clear();
      this.scheduleReconnect();
      return;
    }
    const url = `${this.o.url}${this.o.url.includes("?") ? "&" : "?"}${new URLSearchParams(query)}`;
    let ws: WebSocket;
    try {
      ws = new this.o.WebSocketImpl(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.setState("open");
      for (const p of this.pending.values()) p.sent = false;
      this.flush();
      this.armHeartbeat();
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.armHeartbeat();
      this.clearPongTimer();
      try {
        this.dispatch(JSON.parse(String(event.data)) as ServerMessage);
      } catch {
        /* not JSON: nothing of ours */
      }
    };
    ws.onclose = () => this.lost(ws);
    ws.onerror = () => {
      /* onclose follows and reconnects */
    };
  }

  /** The connection is gone (closed, or silent past the pong timeout): resend on the next one. */
  private lost(ws: WebSocket): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.clearHeartbeat();
    for (const p of this.pending.values()) {
      if (p.sent) p.handlers.onResending?.();
      p.sent = false;
    }
    if (this.wanted) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.wanted) return;
    this.setState("reconnecting");
    this.clearReconnect();
    const delay = backoffDelay(this.attempt, this.o.backoffBaseMs, this.o.backoffMaxMs, this.o.random);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
  }

  private clearReconnect(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private flush(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return;
    for (const p of this.pending.values()) {
      if (p.sent) continue;
      p.sent = true;
      // A resend starts the text again unless the server resumes it (a `resumed` message).
      p.text = "";
      p.lastSeq = 0;
      p.parts = [];
      const payload = p.payload;
      ws.send(JSON.stringify("action" in payload
        ? { action: payload.action, requestId: p.requestId, ...payload.body }
        : { action: "sendMessage", requestId: p.requestId, mode: payload.mode ?? "proofread", text: payload.text,
          promptId: payload.promptId ?? null, conversationId: payload.conversationId ?? null }));
    }
    this.armHeartbeat();
  }

  // -- heartbeat -----------------------------------------------------------------------------
  private armHeartbeat(): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => this.ping(), this.o.heartbeatMs);
  }

  private ping(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1 || this.pongTimer) return;
    ws.send(JSON.stringify({ action: "ping", requestId: `ping-${this.o.newId()}` }));
    // The next heartbeat is armed by whatever arrives next; silence past the timeout means the
    // connection is dead without having closed: drop it and reconnect.
    this.pongTimer = setTimeout(() => {
      this.pongTimer = null;
      this.lost(ws);
      ws.close();
    }, this.o.pongTimeoutMs);
  }

  private clearPongTimer(): void {
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  private clearHeartbeat(): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.clearPongTimer();
  }

  // -- messages ------------------------------------------------------------------------------
  private dispatch(m: ServerMessage): void {
    const p = m.requestId ? this.pending.get(m.requestId) : undefined;
    if (!p) return; // pong, or a request nobody waits for any more
    switch (m.type) {
      case "accepted":
        p.handlers.onAccepted?.();
        break;
      case "delta":
      case "text": // a voice turn's reply text, numbered as deltas are
        if (typeof m.seq === "number" && m.seq <= p.lastSeq) break; // already have it
        p.lastSeq = m.seq ?? p.lastSeq + 1;
        p.text += m.text ?? "";
        p.handlers.onText?.(p.text);
        break;
      case "resumed":
        p.text = m.text ?? "";
        p.lastSeq = m.seq ?? 0;
        p.handlers.onText?.(p.text);
        break;
      case "retrying":
        p.text = "";
        p.lastSeq = 0;
        p.handlers.onText?.("");
        break;
      case "result-part":
      case "turn-part":
        if (typeof m.index === "number") p.parts[m.index] = m.data ?? "";
        break;
      case "complete": {
        this.pending.delete(p.requestId);
        let result = m.result ?? m.turn;
        if (result == null && p.parts.length) {
          try {
            result = JSON.parse(p.parts.join(""));
          } catch {
            p.handlers.onError({ code: "BAD_RESULT", message: "The answer arrived incomplete." }, { replayed: false });
            return;
          }
        }
        p.handlers.onComplete(result, { replayed: m.replayed === true });
        break;
      }
      case "error": {
        this.pending.delete(p.requestId);
        const error = m.error ?? { code: "INTERNAL_ERROR", message: "Something went wrong." };
        if (error.code === CONNECTION_CLOSED && p.resends < this.o.maxResends) {
          // Ended while we were away: nothing was saved, and this id only replays that ending.
          const again: Pending = { ...p, requestId: this.o.newId(), resends: p.resends + 1, sent: false, text: "",
            lastSeq: 0, parts: [] };
          this.pending.set(again.requestId, again);
          p.handlers.onResending?.();
          this.flush();
          break;
        }
        p.handlers.onError(error, { replayed: m.replayed === true });
        break;
      }
      default:
        p.handlers.onFrame?.(m);
        break;
    }
  }
}
