import { describe, expect, it } from "vitest";
import { audioEvent, crc32, decodeMessage, encodeMessage, EventStreamError } from "./eventstream";
import { Downsampler, pcmBytes, StreamingTranscriber, TranscriptBuilder } from "./streamingStt";

const hex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

// Made by the local stack's encoder (local_stack/eventstream.py), the emulator's side of the wire.
const PY_AUDIO_1234 = "0000006c000000585c509ce30d3a6d6573736167652d747970650700056576656e740b3a6576656e742d7479706507000a417564696f4576656e740d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d010203044c67b50e";
const PY_EXCEPTION = "000000820000006194b16d550d3a6d6573736167652d74797065070009657863657074696f6e0f3a657863657074696f6e2d7479706507001342616452657175657374457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b224d657373616765223a20226e6f227d62b1956a";

describe("event stream messages", () => {
  it("CRC32 is zlib's", () => expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926));
  it("an AudioEvent is byte for byte what the emulator's encoder makes", () =>
    expect(toHex(audioEvent(Uint8Array.from([1, 2, 3, 4])))).toBe(PY_AUDIO_1234));
  it("decodes the emulator's exception", () => {
    const m = decodeMessage(hex(PY_EXCEPTION));
    expect(m.headers).toEqual({ ":message-type": "exception", ":exception-type": "BadRequestException", ":content-type": "application/json" });
    expect(JSON.parse(new TextDecoder().decode(m.payload))).toEqual({ Message: "no" });
  });
  it("round-trips booleans and bytes", () => {
    const m = decodeMessage(encodeMessage({ a: true, b: false, c: Uint8Array.from([9]) }, Uint8Array.from([7])));
    expect(m.headers).toEqual({ a: true, b: false, c: Uint8Array.from([9]) });
    expect([...m.payload]).toEqual([7]);
  });
  it("refuses a damaged or cut message", () => {
    const bad = hex(PY_AUDIO_1234);
    bad[bad.length - 6] = bad[bad.length - 6]! ^ 1;
    expect(() => decodeMessage(bad)).toThrow(/message checksum/);
    expect(() => decodeMessage(hex(PY_AUDIO_1234).slice(0, 40))).toThrow(EventStreamError);
    expect(() => decodeMessage(new Uint8Array(5))).toThrow(/at least 16 bytes/);
  });
});

describe("16 kHz PCM from the microphone", () => {
  it("48 kHz → 16 kHz: a third of the samples, the mean of each three, across chunk boundaries", () => {
    const d = new Downsampler(48_000);
    const a = d.push(Float32Array.from([0.5, 0.5, 0.5, 1, 1]));
    const b = d.push(Float32Array.from([1, -1, -1, -1]));
    expect([...a, ...b]).toEqual([Math.round(0.5 * 0x7fff), 0x7fff, -0x8000]);
  });
  it("44.1 kHz keeps time: one second in, 16,000 samples out (to a sample)", () => {
    const d = new Downsampler(44_100);
    let n = 0;
    for (let i = 0; i < 10; i++) n += d.push(new Float32Array(4410)).length;
    expect(Math.abs(n - 16_000)).toBeLessThanOrEqual(1);
  });
  it("clips and writes little-endian 16-bit", () => {
    const d = new Downsampler(16_000);
    expect([...pcmBytes(d.push(Float32Array.from([2, -2, 0.25])))]).toEqual([0xff, 0x7f, 0x00, 0x80, 0x00, 0x20]);
  });
  it("never resamples up", () => expect(() => new Downsampler(8_000)).toThrow());
});

const result = (id: string, text: string, partial: boolean) =>
  ({ Transcript: { Results: [{ ResultId: id, IsPartial: partial, Alternatives: [{ Transcript: text }] }] } });

describe("the transcript from TranscriptEvents", () => {
  it("partials replace each other, finals add up, and a final replaces its own partial", () => {
    const t = new TranscriptBuilder();
    t.add(result("a", "I went", true));
    expect(t.live).toBe("I went");
    t.add(result("a", "I went to the", true));
    expect([t.final, t.live]).toEqual(["", "I went to the"]);
    t.add(result("a", "I went to the market.", false));
    t.add(result("b", "and bought", true));
    expect([t.final, t.live]).toEqual(["I went to the market.", "I went to the market. and bought"]);
    t.add(result("b", "And bought apples.", false));
    expect(t.final).toBe("I went to the market. And bought apples.");
  });
});

/** A WebSocket the test plays the server of. */
class FakeSocket extends EventTarget {
  static last: FakeSocket;
  readyState = 0;
  binaryType = "blob";
  sent: Uint8Array[] = [];
  constructor(readonly url: string) {
    super();
    FakeSocket.last = this;
  }
  send(data: Uint8Array) { this.sent.push(data); }
  close() { this.serverClose(); }
  open() { this.readyState = 1; this.dispatchEvent(new Event("open")); }
  serverSend(bytes: Uint8Array) {
    this.dispatchEvent(new MessageEvent("message", { data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }));
  }
  serverClose() { if (this.readyState === 3) return; this.readyState = 3; this.dispatchEvent(new Event("close")); }
}
const transcriptEvent = (payload: unknown) => encodeMessage({ ":message-type": "event", ":event-type": "TranscriptEvent", ":content-type": "application/json" }, json(payload));
const impl = FakeSocket as unknown as typeof WebSocket;

describe("a streaming transcription", () => {
  it("sends ~100 ms AudioEvents, shows partials, ends with an empty AudioEvent and returns the finals", async () => {
    const partials: string[] = [];
    const s = new StreamingTranscriber({ url: "ws://x", onPartial: (t) => partials.push(t), WebSocketImpl: impl });
    const ws = FakeSocket.last;
    ws.open();
    s.send(new Uint8Array(1600));
    expect(ws.sent).toHaveLength(0);
    s.send(new Uint8Array(1600)); // 3,200 bytes = 100 ms at 16 kHz
    expect(ws.sent).toHaveLength(1);
    expect(decodeMessage(ws.sent[0]!).payload.length).toBe(3200);
    ws.serverSend(transcriptEvent(result("r1", "I went to", true)));
    s.send(new Uint8Array(10));
    const done = s.finish();
    await Promise.resolve();
    expect(ws.sent.map((f) => decodeMessage(f).payload.length)).toEqual([3200, 10, 0]);
    ws.serverSend(transcriptEvent(result("r1", "I went to the market.", false)));
    ws.serverClose();
    await expect(done).resolves.toBe("I went to the market.");
    expect(partials).toEqual(["I went to", "I went to the market."]);
  });
  it("an exception message fails the stream (the page falls back to the recording)", async () => {
    const s = new StreamingTranscriber({ url: "ws://x", WebSocketImpl: impl });
    const ws = FakeSocket.last;
    ws.open();
    ws.serverSend(hex(PY_EXCEPTION));
    ws.serverClose();
    expect(s.ok).toBe(false);
    await expect(s.finish()).rejects.toMatchObject({ code: "BadRequestException", message: "no" });
  });
  it("a socket that never opens, or closes early, fails it", async () => {
    const s = new StreamingTranscriber({ url: "ws://x", WebSocketImpl: impl });
    FakeSocket.last.serverClose();
    await expect(s.finish()).rejects.toMatchObject({ code: "CONNECTION_FAILED" });
    const t = new StreamingTranscriber({ url: "ws://x", WebSocketImpl: impl });
    FakeSocket.last.open();
    FakeSocket.last.serverClose();
    await expect(t.finish()).rejects.toMatchObject({ code: "CLOSED" });
  });
  it("no final results in time: a timeout, not a wait forever", async () => {
    const s = new StreamingTranscriber({ url: "ws://x", WebSocketImpl: impl, finishTimeoutMs: 5 });
    FakeSocket.last.open();
    await expect(s.finish()).rejects.toMatchObject({ code: "TIMEOUT" });
  });
});
