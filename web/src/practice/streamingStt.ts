/**
 * Streaming speech-to-text while the learner speaks: the microphone, resampled to 16 kHz 16-bit
 * PCM, goes to Amazon Transcribe's streaming WebSocket (the presigned URL of
 * `GET /transcriptions/stream-url`; the local stack runs an emulator of it) in event stream
 * `AudioEvent` frames, and its `TranscriptEvent`s come back: partial results while an utterance
 * goes on (shown live), then each utterance's final result. An empty `AudioEvent` ends the stream;
 * the server sends what is left and closes.
 *
 * Any failure (no URL, the quota, the socket, an exception message) rejects `finish()`: the page
 * then falls back to the recording and the batch transcription.
 */

import { api, unwrap } from "../shared/api/client";
import { ApiError } from "../shared/api/errors";
import { audioEvent, decodeMessage, EventStreamError } from "./eventstream";

export const STREAM_RATE = 16_000;
/** Audio goes out in frames of about this long (Transcribe recommends 50-200 ms). */
const FRAME_SECONDS = 0.1;

/**
 * Float samples at the microphone's rate → signed 16-bit little-endian PCM at 16 kHz. Each output
 * sample is the mean of the input samples it covers (a box filter: enough against aliasing for
 * speech), and the position carries over between calls, so chunk boundaries leave no seams.
 */
export class Downsampler {
  private readonly step: number;
  private position = 0;
  private sum = 0;
  private count = 0;

  constructor(readonly inputRate: number, readonly outputRate = STREAM_RATE) {
    if (inputRate < outputRate) throw new Error(`cannot resample ${inputRate} Hz up to ${outputRate} Hz`);
    this.step = inputRate / outputRate;
  }

  push(input: Float32Array): Int16Array {
    const out = new Int16Array(Math.ceil((input.length + this.count) / this.step) + 1);
    let n = 0;
    for (let i = 0; i < input.length; i++) {
      this.sum += input[i]!;
      this.count += 1;
      this.position += 1;
      if (this.position >= this.step) {
        this.position -= this.step;
        const mean = Math.max(-1, Math.min(1, this.sum / this.count));
        out[n++] = mean < 0 ? Math.round(mean * 0x8000) : Math.round(mean * 0x7fff);
        this.sum = 0;
        this.count = 0;
      }
    }
    return out.slice(0, n);
  }
}

export function pcmBytes(samples: Int16Array): Uint8Array {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  samples.forEach((s, i) => view.setInt16(i * 2, s, true));
  return bytes;
}

interface Result {
  ResultId: string;
  IsPartial: boolean;
  Alternatives?: { Transcript?: string }[];
}

/** The transcript so far from TranscriptEvents: finals in order, then the utterance still going on. */
export class TranscriptBuilder {
  private finals: { id: string; text: string }[] = [];
  private partial: { id: string; text: string } | null = null;

  add(event: { Transcript?: { Results?: Result[] } }): void {
    for (const result of event.Transcript?.Results ?? []) {
      const text = (result.Alternatives?.[0]?.Transcript ?? "").trim();
      if (result.IsPartial) this.partial = { id: result.ResultId, text };
      else {
        const known = this.finals.find((f) => f.id === result.ResultId);
        if (known) known.text = text;
        else if (text) this.finals.push({ id: result.ResultId, text });
        if (this.partial?.id === result.ResultId) this.partial = null;
      }
    }
  }

  /** What the learner said, as far as it is final. */
  get final(): string {
    return this.finals.map((f) => f.text).filter(Boolean).join(" ");
  }

  /** Everything heard so far, the current utterance's partial result included. */
  get live(): string {
    return [this.final, this.partial?.text ?? ""].filter(Boolean).join(" ");
  }
}

export class StreamFailed extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface StreamingOptions {
  url: string;
  onPartial?(text: string): void;
  WebSocketImpl?: typeof WebSocket;
  /** how long finish() waits for the last results after the end of the audio */
  finishTimeoutMs?: number;
}

/** One stream: send() PCM as it comes, finish() for the transcript. */
export class StreamingTranscriber {
  private readonly ws: WebSocket;
  private readonly transcript = new TranscriptBuilder();
  private readonly opened: Promise<void>;
  private readonly closed: Promise<void>;
  private failure: StreamFailed | null = null;
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private ending = false;

  constructor(private readonly o: StreamingOptions) {
    const Impl = o.WebSocketImpl ?? globalThis.WebSocket;
    this.ws = new Impl(o.url);
    this.ws.binaryType = "arraybuffer";
    let isOpen = false;
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => {
        isOpen = true;
        resolve();
      }, { once: true });
      this.ws.addEventListener("close", () => {
        if (!isOpen) reject(this.fail("CONNECTION_FAILED", "The streaming transcription did not connect."));
        else if (!this.ending) this.fail("CLOSED", "The streaming transcription stopped before the end of the turn.");
      }, { once: true });
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => this.ws.addEventListener("close", () => resolve(), { once: true }));
    this.ws.addEventListener("message", (event: MessageEvent) => this.receive(event.data));
  }

  /** Whether the stream still works (no exception, not closed early). */
  get ok(): boolean {
    return this.failure === null;
  }

  get heard(): string {
    return this.transcript.live;
  }

  /** 16 kHz PCM bytes; sent in frames of about 100 ms. */
  send(pcm: Uint8Array): void {
    if (this.ending || this.failure) return;
    this.buffered.push(pcm);
    this.bufferedBytes += pcm.length;
    if (this.bufferedBytes >= STREAM_RATE * 2 * FRAME_SECONDS) this.flush();
  }

  private flush(): void {
    if (!this.bufferedBytes || this.ws.readyState !== 1) return;
    const frame = new Uint8Array(this.bufferedBytes);
    let at = 0;
    for (const chunk of this.buffered) {
      frame.set(chunk, at);
      at += chunk.length;
    }
    this.buffered = [];
    this.bufferedBytes = 0;
    this.ws.send(audioEvent(frame));
  }

  /** End the audio and wait for the last results: the final transcript (may be empty). */
  async finish(): Promise<string> {
    this.ending = true;
    await this.opened;
    this.flush();
    if (this.ws.readyState === 1) this.ws.send(audioEvent(new Uint8Array(0)));
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Transcribe's last result comes about 0.3 s after the end of the audio; the local emulator
    // decodes the whole utterance again (seconds on a busy machine). Past this, the recording's
    // batch transcription is the faster way.
    const timeout = new Promise<"timeout">((resolve) => { timer = setTimeout(() => resolve("timeout"), this.o.finishTimeoutMs ?? 15_000); });
    const outcome = await Promise.race([this.closed, timeout]);
    clearTimeout(timer);
    if (this.failure) throw this.failure;
    if (outcome === "timeout") {
      this.close();
      throw new StreamFailed("TIMEOUT", "The streaming transcription did not finish in time.");
    }
    return this.transcript.final;
  }

  close(): void {
    if (this.ws.readyState <= 1) this.ws.close();
  }

  private fail(code: string, message: string): StreamFailed {
    this.failure ??= new StreamFailed(code, message);
    return this.failure;
  }

  private receive(data: unknown): void {
    if (!(data instanceof ArrayBuffer)) {
      this.fail("BAD_FRAME", "The streaming transcription sent text, not an event stream message.");
      return;
    }
    try {
      const message = decodeMessage(new Uint8Array(data));
      const payload = JSON.parse(new TextDecoder().decode(message.payload)) as Record<string, unknown>;
      if (message.headers[":message-type"] === "exception") {
        this.fail(String(message.headers[":exception-type"] ?? "Exception"), String(payload.Message ?? "The transcription failed."));
        return;
      }
      if (message.headers[":event-type"] === "TranscriptEvent") {
        this.transcript.add(payload);
        this.o.onPartial?.(this.transcript.live);
      }
    } catch (error) {
      this.fail("BAD_FRAME", error instanceof EventStreamError ? error.message : "A streaming transcription frame could not be read.");
    }
  }
}

/** A presigned URL for 16 kHz PCM (metered against the month's quota when it is handed out). */
export async function streamUrl(languageCode = "en-US"): Promise<string> {
  const answer = await unwrap(api().GET("/transcriptions/stream-url", { params: { query: { languageCode, sampleRate: STREAM_RATE } } }));
  if (answer.mediaEncoding && answer.mediaEncoding !== "pcm") {
    throw new ApiError(500, "UNSUPPORTED_STREAM", `The stream URL is for ${answer.mediaEncoding}, not PCM.`);
  }
  return answer.url;
}

/** The AudioWorklet module (web/public/pcm-tap.js: a file of the app's own origin, as the
 * deployed Content-Security-Policy's script-src 'self' requires). */
const WORKLET_URL = "pcm-tap.js";

/**
 * The microphone's samples from a MediaStream, through an AudioWorklet (a ScriptProcessor where
 * worklets are missing), resampled to 16 kHz PCM for `onPcm`. stop() releases the audio graph
 * (the stream itself belongs to the recorder).
 */
export class PcmCapture {
  private context: AudioContext | null = null;
  private teardown: (() => void) | null = null;

  async start(stream: MediaStream, onPcm: (pcm: Uint8Array) => void): Promise<void> {
    const context = new AudioContext();
    this.context = context;
    const stopped = () => this.context !== context; // stop() came while the worklet was loading
    const source = context.createMediaStreamSource(stream);
    const down = new Downsampler(context.sampleRate);
    const deliver = (samples: Float32Array) => onPcm(pcmBytes(down.push(samples)));
    try {
      await context.audioWorklet.addModule(`${import.meta.env.BASE_URL}${WORKLET_URL}`);
      if (stopped()) return;
      const node = new AudioWorkletNode(context, "parley-pcm-tap", { numberOfInputs: 1, numberOfOutputs: 0 });
      node.port.onmessage = (event: MessageEvent<Float32Array>) => deliver(event.data);
      source.connect(node);
      this.teardown = () => {
        node.port.onmessage = null;
        source.disconnect();
      };
    } catch {
      if (stopped()) return;
      const node = context.createScriptProcessor(4096, 1, 1);
      node.onaudioprocess = (event) => deliver(event.inputBuffer.getChannelData(0));
      source.connect(node);
      node.connect(context.destination); // a ScriptProcessor only runs when connected
      this.teardown = () => {
        node.onaudioprocess = null;
        source.disconnect();
        node.disconnect();
      };
    }
    if (context.state === "suspended" && !stopped()) await context.resume();
  }

  stop(): void {
    this.teardown?.();
    this.teardown = null;
    void this.context?.close().catch(() => undefined);
    this.context = null;
  }
}
