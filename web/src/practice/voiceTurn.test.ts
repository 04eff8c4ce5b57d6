import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../shared/api/errors";
import { ProofreadSocket } from "../shared/ws/socket";
import { SentenceAssembler, SentencePlayer, streamTurn, TransportFailed, type SentenceAudio } from "./voiceTurn";

/** A WebSocket the test plays the server of (the protocol's frames, as the tutorTurn route sends them). */
class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) { FakeSocket.all.push(this); }
  send(data: string) { this.sent.push(JSON.parse(data) as Record<string, unknown>); }
  close() { this.readyState = 3; }
  open() { this.readyState = 1; this.onopen?.(); }
  say(message: object) { this.onmessage?.({ data: JSON.stringify(message) }); }
  drop() { this.readyState = 3; this.onclose?.(); }
}
const latest = () => FakeSocket.all[FakeSocket.all.length - 1]!;
const b64 = (bytes: number[]) => btoa(String.fromCharCode(...bytes));

function socket() {
  let n = 0;
  return new ProofreadSocket({ url: "wss://ws.example/dev", query: async () => ({ deviceId: "device-0001" }),
    backoffBaseMs: 100, backoffMaxMs: 1_000, random: () => 1, newId: () => `t-${++n}`,
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket });
}
const REQUEST = { sessionId: "01SESSION", messageId: "msg-0000-0042", text: "I went hiking last weekend.", inputMode: "voice" as const };
const TURN = {
  reply: "That sounds fun! Where did you go hiking?", engine: "offline", model: "m", fallbackFrom: null, replayed: false,
  sessionId: "01SESSION", usage: null,
  message: { messageId: "msg-0000-0042", role: "user", content: "I went hiking last weekend.", turnNumber: 1, translation: null },
  replyMessage: { messageId: "r-msg-0000-0042", role: "assistant", content: "That sounds fun! Where did you go hiking?", turnNumber: 1,
    translation: "재미있었겠네요! 어디로 하이킹 갔어요?" },
};

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("the streamed tutor turn", () => {
  it("sends one tutorTurn; text, each sentence's audio (the base64 of its parts joined) in order, translation, then the saved turn", async () => {
    const s = socket();
    const texts: string[] = [];
    const heard: SentenceAudio[] = [];
    const translations: unknown[] = [];
    const done = streamTurn(s, REQUEST, { onText: (t) => texts.push(t), onSentence: (a) => heard.push(a),
      onTranslation: (t) => translations.push(t) });
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    expect(latest().sent).toEqual([{ action: "tutorTurn", requestId: "t-1", sessionId: "01SESSION", messageId: "msg-0000-0042",
      text: "I went hiking last weekend.", inputMode: "voice" }]);
    const ws = latest();
    ws.say({ type: "accepted", requestId: "t-1", messageId: "msg-0000-0042" });
    ws.say({ type: "text", requestId: "t-1", seq: 1, text: "That sounds fun! " });
    ws.say({ type: "audio", requestId: "t-1", sentence: 0, part: 1, parts: 2, text: "That sounds fun!", voice: "Joanna", data: b64([1, 2, 3, 4]).slice(4) });
    expect(heard, "not whole yet").toHaveLength(0);
    ws.say({ type: "audio", requestId: "t-1", sentence: 0, part: 0, parts: 2, text: "That sounds fun!", voice: "Joanna", data: b64([1, 2, 3, 4]).slice(0, 4) });
    expect(heard.map((a) => [a.index, [...a.mp3]])).toEqual([[0, [1, 2, 3, 4]]]);
    ws.say({ type: "text", requestId: "t-1", seq: 2, text: "Where did you go hiking?" });
    ws.say({ type: "text", requestId: "t-1", seq: 2, text: "Where did you go hiking?" }); // a repeat
    ws.say({ type: "audio", requestId: "t-1", sentence: 1, part: 0, parts: 1, text: "Where did you go hiking?", voice: "Joanna", data: b64([5]) });
    ws.say({ type: "translation", requestId: "t-1", language: "ko", text: "재미있었겠네요! 어디로 하이킹 갔어요?" });
    ws.say({ type: "complete", requestId: "t-1", turn: TURN });
    const reply = await done;
    expect(texts).toEqual(["That sounds fun! ", "That sounds fun! Where did you go hiking?"]);
    expect(translations).toEqual([{ type: "translation", requestId: "t-1", language: "ko", text: "재미있었겠네요! 어디로 하이킹 갔어요?" }]);
    expect(reply.sentences.map((m) => [...m])).toEqual([[1, 2, 3, 4], [5]]);
    expect(reply.voice).toBe("Joanna");
    expect(reply.learner).toEqual({ id: "msg-0000-0042", role: "learner", text: "I went hiking last weekend." });
    expect(reply.tutor).toMatchObject({ id: "r-msg-0000-0042", role: "tutor", translation: "재미있었겠네요! 어디로 하이킹 갔어요?" });
    expect(reply.replayed).toBe(false);
  });

  it("a saved turn too large for one frame arrives in turn-part frames", async () => {
    const s = socket();
    const done = streamTurn(s, REQUEST);
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    const data = JSON.stringify({ ...TURN, replayed: true });
    latest().say({ type: "accepted", requestId: "t-1" });
    latest().say({ type: "turn-part", requestId: "t-1", index: 1, count: 2, data: data.slice(40) });
    latest().say({ type: "turn-part", requestId: "t-1", index: 0, count: 2, data: data.slice(0, 40) });
    latest().say({ type: "complete", requestId: "t-1", turn: null, turnParts: 2, replayed: true });
    const reply = await done;
    expect(reply.replayed).toBe(true);
    expect(reply.tutor.text).toBe(TURN.reply);
  });

  it("a dropped connection sends the same turn again and starts the text and audio over (the server replays it)", async () => {
    const s = socket();
    let restarts = 0;
    const heard: number[] = [];
    const done = streamTurn(s, REQUEST, { onRestart: () => restarts++, onSentence: (a) => heard.push(a.index) });
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    latest().say({ type: "accepted", requestId: "t-1" });
    latest().say({ type: "audio", requestId: "t-1", sentence: 0, part: 0, parts: 1, data: b64([1]) });
    latest().drop();
    expect(restarts).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    latest().open();
    expect(latest().sent[0]).toMatchObject({ action: "tutorTurn", requestId: "t-1", messageId: "msg-0000-0042" });
    latest().say({ type: "text", requestId: "t-1", seq: 1, text: TURN.reply });
    latest().say({ type: "audio", requestId: "t-1", sentence: 0, part: 0, parts: 1, data: b64([1]) });
    latest().say({ type: "complete", requestId: "t-1", turn: { ...TURN, replayed: true }, replayed: true });
    const reply = await done;
    expect(heard, "the replayed sentence is heard again after the restart").toEqual([0, 0]);
    expect(reply.sentences).toHaveLength(1);
    expect(reply.replayed).toBe(true);
  });

  it("an API error ends the turn as the REST error would (QUOTA_EXCEEDED is a 429, nothing to fall back to)", async () => {
    const s = socket();
    const done = streamTurn(s, REQUEST);
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    latest().say({ type: "error", requestId: "t-1", error: { code: "QUOTA_EXCEEDED", message: "Monthly quota reached.", details: [] } });
    await expect(done).rejects.toSatisfy((e) => e instanceof ApiError && e.status === 429 && e.code === "QUOTA_EXCEEDED");
  });

  it("a stack without the route: TransportFailed(routeMissing), for the REST path", async () => {
    const s = socket();
    const done = streamTurn(s, REQUEST);
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    latest().say({ type: "error", requestId: "t-1", error: { code: "VALIDATION_ERROR", message: "The message is not valid; see details.",
      details: [{ field: "", message: "Input tag 'tutorTurn' found using 'action' does not match any of the expected tags", type: "union_tag_invalid" }] } });
    await expect(done).rejects.toMatchObject({ name: "TransportFailed", reason: "routeMissing" });
    expect(s.inFlight).toBe(0);
  });

  it("no acknowledgement in time, or silence mid-turn: TransportFailed, and the request is forgotten", async () => {
    const s = socket();
    const first = streamTurn(s, REQUEST, {}, { acceptMs: 1_000, stallMs: 5_000 });
    const firstDone = expect(first).rejects.toMatchObject({ reason: "noAck" });
    await vi.advanceTimersByTimeAsync(1_001); // never opens
    await firstDone;
    expect(s.inFlight).toBe(0);
    const second = streamTurn(s, REQUEST, {}, { acceptMs: 1_000, stallMs: 5_000 });
    const secondDone = expect(second).rejects.toBeInstanceOf(TransportFailed);
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    latest().say({ type: "accepted", requestId: "t-2" });
    await vi.advanceTimersByTimeAsync(4_000);
    latest().say({ type: "text", requestId: "t-2", seq: 1, text: "Th" }); // still alive
    await vi.advanceTimersByTimeAsync(4_000);
    expect(s.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(1_001);
    await secondDone;
    expect(s.inFlight).toBe(0);
  });

  it("speech failing mid-turn is reported and the text still completes", async () => {
    const s = socket();
    const errors: unknown[] = [];
    const done = streamTurn(s, REQUEST, { onSpeechError: (e) => errors.push(e) });
    await vi.advanceTimersByTimeAsync(0);
    latest().open();
    latest().say({ type: "accepted", requestId: "t-1" });
    latest().say({ type: "speech-error", requestId: "t-1", sentence: 0, error: { code: "QUOTA_EXCEEDED", message: "m" } });
    latest().say({ type: "complete", requestId: "t-1", turn: TURN });
    expect((await done).speechFailed).toBe(true);
    expect(errors).toEqual([{ code: "QUOTA_EXCEEDED", message: "m" }]);
  });
});

describe("sentence audio", () => {
  it("is handed on in sentence order, whatever order the sentences complete in", () => {
    const order: number[] = [];
    const a = new SentenceAssembler((s) => order.push(s.index));
    a.add({ type: "audio", sentence: 1, part: 0, parts: 1, data: b64([2]) });
    a.add({ type: "audio", sentence: 2, part: 0, parts: 1, data: b64([3]) });
    expect(order).toEqual([]);
    a.add({ type: "audio", sentence: 0, part: 0, parts: 1, data: b64([1]) });
    expect(order).toEqual([0, 1, 2]);
    a.add({ type: "audio", sentence: 0, part: 0, parts: 1, data: b64([1]) }); // a repeat
    expect(order).toEqual([0, 1, 2]);
  });

  class FakeAudio extends EventTarget {
    static made: FakeAudio[] = [];
    playing = false;
    constructor(readonly src: string) { super(); FakeAudio.made.push(this); }
    play() { this.playing = true; return Promise.resolve(); }
    pause() { this.playing = false; }
    end() { this.playing = false; this.dispatchEvent(new Event("ended")); }
  }
  const player = (autoPlay: boolean) => {
    let n = 0;
    FakeAudio.made = [];
    return new SentencePlayer(autoPlay, (src) => new FakeAudio(src) as unknown as HTMLAudioElement, () => `blob:${n++}`);
  };

  it("plays one sentence after another, each when the one before has ended", () => {
    const p = player(true);
    p.enqueue(new Uint8Array([1]));
    p.enqueue(new Uint8Array([2]));
    expect(FakeAudio.made.map((a) => [a.src, a.playing])).toEqual([["blob:0", true]]);
    FakeAudio.made[0]!.end();
    expect(FakeAudio.made.map((a) => [a.src, a.playing])).toEqual([["blob:0", false], ["blob:1", true]]);
    FakeAudio.made[1]!.end();
    p.enqueue(new Uint8Array([3])); // arrives after the queue ran dry: plays at once
    expect(FakeAudio.made.at(-1)).toMatchObject({ src: "blob:2", playing: true });
    expect(p.played).toEqual(["blob:0", "blob:1", "blob:2"]);
  });

  it("auto-play off plays nothing; stop() silences it at once", () => {
    const off = player(false);
    off.enqueue(new Uint8Array([1]));
    expect(FakeAudio.made).toHaveLength(0);
    const on = player(true);
    on.enqueue(new Uint8Array([1]));
    on.enqueue(new Uint8Array([2]));
    on.stop();
    expect(FakeAudio.made[0]!.playing).toBe(false);
    FakeAudio.made[0]!.end();
    expect(FakeAudio.made).toHaveLength(1);
    expect(on.busy).toBe(false);
  });
});
