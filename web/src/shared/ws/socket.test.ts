import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, ProofreadSocket } from "./socket";

/** A WebSocket the test drives: it records what the client sends and lets the test answer. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close() {
    this.readyState = 3;
  }
  // test side
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  say(message: object) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.();
  }
}

const latest = () => FakeSocket.all[FakeSocket.all.length - 1]!;

function make(heartbeatMs = 60_000) {
  let n = 0;
  return new ProofreadSocket({
    url: "wss://ws.example/dev", query: async () => ({ deviceId: "device-0001" }), heartbeatMs, pongTimeoutMs: 5_000,
    backoffBaseMs: 100, backoffMaxMs: 1_000, random: () => 1, newId: () => `id-${++n}`,
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
  });
}

async function settle() {
  await vi.advanceTimersByTimeAsync(0);
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("the proofreading socket", () => {
  it("connects with the credentials in the query and streams an answer", async () => {
    const socket = make();
    const texts: string[] = [];
    let done: unknown = null;
    socket.send({ text: "teh" }, { onText: (t) => texts.push(t), onComplete: (r) => { done = r; }, onError: () => undefined }, "r1");
    await settle();
    expect(latest().url).toBe("wss://ws.example/dev?deviceId=device-0001");
    latest().open();
    expect(latest().sent[0]).toMatchObject({ action: "sendMessage", requestId: "r1", text: "teh", mode: "proofread" });
    latest().say({ type: "accepted", requestId: "r1" });
    latest().say({ type: "delta", requestId: "r1", seq: 1, text: "{\"a\"" });
    latest().say({ type: "delta", requestId: "r1", seq: 1, text: "{\"a\"" }); // a repeat is ignored
    latest().say({ type: "delta", requestId: "r1", seq: 2, text: ": 1}" });
    latest().say({ type: "complete", requestId: "r1", result: { correctedText: "the" } });
    expect(texts).toEqual(["{\"a\"", "{\"a\": 1}"]);
    expect(done).toEqual({ correctedText: "the" });
    expect(socket.inFlight).toBe(0);
  });

  it("reconnects with backoff and resends what was in flight under the same id", async () => {
    const socket = make();
    const states: string[] = [];
    socket.onState((s) => states.push(s));
    let resending = 0;
    let result: unknown = null;
    let replayed = false;
    socket.send({ text: "x" }, { onResending: () => { resending += 1; },
      onComplete: (r, info) => { result = r; replayed = info.replayed; }, onError: () => undefined }, "r9");
    await settle();
    latest().open();
    latest().say({ type: "delta", requestId: "r9", seq: 1, text: "abc" });
    latest().drop();
    expect(resending).toBe(1);
    expect(socket.state).toBe("reconnecting");
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(FakeSocket.all).toHaveLength(1); // backoff: 100 ms for the first attempt
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.all).toHaveLength(2);
    latest().open();
    expect(latest().sent[0]).toMatchObject({ action: "sendMessage", requestId: "r9" });
    latest().say({ type: "complete", requestId: "r9", replayed: true, result: { ok: 1 } });
    expect(result).toEqual({ ok: 1 });
    expect(replayed).toBe(true);
    expect(states).toEqual(["connecting", "open", "reconnecting", "open"]);
  });

  it("takes a resumed answer's text in place of what it had", async () => {
    const socket = make();
    const texts: string[] = [];
    socket.send({ text: "x" }, { onText: (t) => texts.push(t), onComplete: () => undefined, onError: () => undefined }, "r2");
    await settle();
    latest().open();
    latest().say({ type: "delta", requestId: "r2", seq: 1, text: "ab" });
    latest().drop();
    await vi.advanceTimersByTimeAsync(100);
    latest().open();
    latest().say({ type: "resumed", requestId: "r2", text: "abcd", seq: 2 });
    latest().say({ type: "delta", requestId: "r2", seq: 2, text: "cd" }); // already in the resumed text
    latest().say({ type: "delta", requestId: "r2", seq: 3, text: "e" });
    expect(texts).toEqual(["ab", "abcd", "abcde"]);
  });

  it("pings when idle and reconnects when no pong comes back", async () => {
    const socket = make(1_000);
    socket.start();
    await settle();
    latest().open();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(latest().sent.at(-1)).toMatchObject({ action: "ping" });
    latest().say({ type: "pong", requestId: latest().sent.at(-1)!.requestId });
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1); // the next ping, then silence
    await vi.advanceTimersByTimeAsync(5_000);
    expect(socket.state).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(100);
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("joins a result sent in parts", async () => {
    const socket = make();
    let result: unknown = null;
    socket.send({ text: "x" }, { onComplete: (r) => { result = r; }, onError: () => undefined }, "r3");
    await settle();
    latest().open();
    latest().say({ type: "result-part", requestId: "r3", index: 1, count: 2, data: "2}" });
    latest().say({ type: "result-part", requestId: "r3", index: 0, count: 2, data: "{\"n\": " });
    latest().say({ type: "complete", requestId: "r3", result: null, resultParts: 2 });
    expect(result).toEqual({ n: 2 });
  });

  it("passes an error on and forgets the request", async () => {
    const socket = make();
    let error: unknown = null;
    socket.send({ text: "x" }, { onComplete: () => undefined, onError: (e) => { error = e; } }, "r4");
    await settle();
    latest().open();
    latest().say({ type: "error", requestId: "r4", error: { code: "QUOTA_EXCEEDED", message: "quota" } });
    expect(error).toMatchObject({ code: "QUOTA_EXCEEDED" });
    expect(socket.inFlight).toBe(0);
  });

  it("takes an error that comes after the acknowledgement (an unknown prompt) as the request's end", async () => {
    const socket = make();
    const texts: string[] = [];
    let error: unknown = null;
    socket.send({ text: "x", promptId: "gone" }, { onText: (t) => texts.push(t), onComplete: () => undefined,
      onError: (e, info) => { error = { ...e, ...info }; } }, "r5");
    await settle();
    latest().open();
    latest().say({ type: "accepted", requestId: "r5", mode: "proofread" });
    expect(socket.inFlight).toBe(1); // accepted is only the acknowledgement
    latest().say({ type: "error", requestId: "r5", error: { code: "NOT_FOUND", message: "No such prompt." } });
    expect(error).toMatchObject({ code: "NOT_FOUND", replayed: false });
    expect(socket.inFlight).toBe(0);
    latest().say({ type: "delta", requestId: "r5", seq: 1, text: "late" }); // nobody waits for it any more
    expect(texts).toEqual([]);
  });

  it("back after the resume grace: the replayed CONNECTION_CLOSED makes it send again under a new id", async () => {
    const socket = make();
    let resending = 0;
    let result: unknown = null;
    let failed: unknown = null;
    const first = socket.send({ text: "teh end" }, { onResending: () => { resending += 1; },
      onComplete: (r) => { result = r; }, onError: (e) => { failed = e; } });
    await settle();
    latest().open();
    latest().say({ type: "accepted", requestId: first });
    latest().say({ type: "delta", requestId: first, seq: 1, text: "{" });
    latest().drop(); // away for longer than the server waits
    await vi.advanceTimersByTimeAsync(100);
    latest().open();
    expect(latest().sent).toEqual([expect.objectContaining({ action: "sendMessage", requestId: first })]);
    latest().say({ type: "error", requestId: first, replayed: true,
      error: { code: "CONNECTION_CLOSED", message: "The client did not come back within 20 s; nothing was saved." } });
    const again = latest().sent[1]!;
    expect(again).toMatchObject({ action: "sendMessage", text: "teh end" });
    expect(again.requestId, "a failed id only replays its error").not.toBe(first);
    expect(socket.inFlight).toBe(1);
    latest().say({ type: "accepted", requestId: again.requestId });
    latest().say({ type: "complete", requestId: again.requestId, result: { correctedText: "the end" } });
    expect(result).toEqual({ correctedText: "the end" });
    expect(failed).toBeNull();
    expect(resending).toBe(2); // the drop, then the new id
  });

  it("shows CONNECTION_CLOSED once it has sent again under new ids enough times", async () => {
    const socket = make();
    let failed: unknown = null;
    socket.send({ text: "x" }, { onComplete: () => undefined, onError: (e) => { failed = e; } }, "r6");
    await settle();
    latest().open();
    for (let i = 0; i < 3; i++) {
      const id = latest().sent.at(-1)!.requestId;
      latest().say({ type: "error", requestId: id, error: { code: "CONNECTION_CLOSED", message: "gone" } });
    }
    expect(latest().sent.filter((m) => m.action === "sendMessage")).toHaveLength(3); // the first and 2 more
    expect(failed).toMatchObject({ code: "CONNECTION_CLOSED" });
    expect(socket.inFlight).toBe(0);
  });

  it("passes THROTTLED and a replayed error on without sending again", async () => {
    const socket = make();
    const errors: unknown[] = [];
    socket.send({ text: "a" }, { onComplete: () => undefined, onError: (e, info) => errors.push({ ...e, ...info }) }, "r7");
    socket.send({ text: "b" }, { onComplete: () => undefined, onError: (e, info) => errors.push({ ...e, ...info }) }, "r8");
    await settle();
    latest().open();
    latest().say({ type: "error", requestId: "r7", error: { code: "THROTTLED", message: "Too many requests." } });
    latest().say({ type: "error", requestId: "r8", replayed: true, error: { code: "AI_UNAVAILABLE", message: "busy" } });
    expect(errors).toEqual([expect.objectContaining({ code: "THROTTLED", replayed: false }),
      expect.objectContaining({ code: "AI_UNAVAILABLE", replayed: true })]);
    expect(latest().sent).toHaveLength(2);
    expect(socket.inFlight).toBe(0);
  });

  it("cancels a request by the id it was given, even after it took a new one", async () => {
    const socket = make();
    const first = socket.send({ text: "x" }, { onComplete: () => undefined, onError: () => undefined });
    await settle();
    latest().open();
    latest().say({ type: "error", requestId: first, error: { code: "CONNECTION_CLOSED", message: "gone" } });
    expect(socket.inFlight).toBe(1);
    socket.cancel(first);
    expect(socket.inFlight).toBe(0);
  });

  it("backs off exponentially up to the cap", () => {
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, 100, 1_000, () => 1))).toEqual([100, 200, 400, 800, 1_000]);
    expect(backoffDelay(3, 100, 1_000, () => 0)).toBe(400);
  });
});
