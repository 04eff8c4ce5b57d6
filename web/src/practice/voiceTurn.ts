/**
 * The streamed tutor turn over the WebSocket (route `tutorTurn`): the learner's final words go out
 * as one message; back come the reply's text as it is written, each sentence's speech (MP3, in
 * `parts` when larger than a frame) as soon as the sentence is complete, the translation when the
 * learner asked for it, and `complete` with the saved turn - the `POST /chat` answer.
 *
 * The turn is idempotent by `messageId`: when the connection drops the socket sends it again (the
 * server replays a saved turn without calling the model), and when the WebSocket cannot carry it
 * at all - no acknowledgement in time, the route missing, silence mid-turn - `TransportFailed`
 * tells the page to take the REST path with the same `messageId`, which saves it once.
 */

import type { Schemas } from "../shared/api/client";
import { fromSocketError } from "../shared/api/errors";
import type { Payload, RequestHandlers, ServerMessage } from "../shared/ws/socket";
import type { Turn } from "./session";

export interface TurnRequest {
  sessionId: string;
  messageId: string;
  text: string;
  inputMode: "voice" | "text";
}

export interface SentenceAudio {
  /** the sentence's number in the reply, from 0 */
  index: number;
  text: string;
  voice: string | null;
  mp3: Uint8Array;
}

export type TranslationFrame =
  | { available?: true; language: string; text: string }
  | { available: false; reason?: string };

export interface TurnHandlers {
  /** the reply so far */
  onText?(text: string): void;
  /** each sentence's speech, whole, in sentence order */
  onSentence?(audio: SentenceAudio): void;
  onTranslation?(translation: TranslationFrame): void;
  /** speech failed mid-turn: the text goes on, the voice does not */
  onSpeechError?(error: { code: string; message?: string }): void;
  /** the connection dropped and the turn is being sent again: text and speech start over */
  onRestart?(): void;
}

export interface StreamedReply {
  learner: Turn;
  tutor: Turn;
  replayed: boolean;
  /** the sentences' MP3 in order (together, the reply's whole voice) */
  sentences: Uint8Array[];
  voice: string | null;
  speechFailed: boolean;
}

/** The WebSocket could not carry the turn: take the REST path (same messageId). */
export class TransportFailed extends Error {
  constructor(readonly reason: "noAck" | "routeMissing" | "stalled" | "closed", message: string) {
    super(message);
    this.name = "TransportFailed";
  }
}

export interface TurnSocket {
  send<R>(payload: Payload, handlers: RequestHandlers<R>, requestId?: string): string;
  cancel(requestId: string): void;
}

export interface TurnOptions {
  /** no `accepted` within this long: the WebSocket is not working */
  acceptMs?: number;
  /** nothing at all for this long after `accepted`: give up on the WebSocket */
  stallMs?: number;
}

function fromBase64(data: string): Uint8Array {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Sentence audio from `audio` frames: the parts of a sentence joined in order (base64 text, then
 * decoded), and sentences handed on in their order, each as soon as it and all before it are whole.
 */
export class SentenceAssembler {
  private readonly parts = new Map<number, { parts: string[]; count: number; text: string; voice: string | null }>();
  private next = 0;
  readonly done: SentenceAudio[] = [];

  constructor(private readonly onSentence: (audio: SentenceAudio) => void = () => undefined) {}

  add(frame: ServerMessage & { sentence?: number; part?: number; parts?: number; voice?: string }): void {
    const index = frame.sentence;
    if (typeof index !== "number" || index < this.next) return; // a repeat
    const entry = this.parts.get(index) ?? { parts: [], count: frame.parts ?? 1, text: frame.text ?? "", voice: frame.voice ?? null };
    entry.parts[frame.part ?? 0] = frame.data ?? "";
    this.parts.set(index, entry);
    for (let e = this.parts.get(this.next); e && this.whole(e); e = this.parts.get(this.next)) {
      this.parts.delete(this.next);
      const audio = { index: this.next, text: e.text, voice: e.voice, mp3: fromBase64(e.parts.join("")) };
      this.done.push(audio);
      this.next += 1;
      this.onSentence(audio);
    }
  }

  private whole(e: { parts: string[]; count: number }): boolean {
    for (let i = 0; i < e.count; i++) if (typeof e.parts[i] !== "string") return false;
    return true;
  }

  reset(): void {
    this.parts.clear();
    this.next = 0;
    this.done.length = 0;
  }
}

/** Whether an error before `accepted` says the server has no `tutorTurn` route (an older stack). */
export function routeMissing(error: { code: string; details?: unknown[] }): boolean {
  if (error.code === "ROUTE_NOT_FOUND") return true;
  return error.code === "VALIDATION_ERROR" && (error.details ?? []).some((d) => {
    const detail = d as { field?: unknown; type?: unknown };
    return detail.type === "union_tag_invalid" || detail.field === "action";
  });
}

/** The saved turn in `complete` (the POST /chat answer) as the page's turns. */
export function turnsOf(answer: Schemas["ChatReply"], request: TurnRequest): { learner: Turn; tutor: Turn } {
  const learner = answer.message;
  const tutor = answer.replyMessage;
  return {
    learner: { id: learner?.messageId ?? request.messageId, role: "learner", text: learner?.content ?? request.text },
    tutor: { id: tutor?.messageId ?? `reply-${request.messageId}`, role: "tutor", text: tutor?.content ?? answer.reply,
      translation: tutor?.translation ?? null },
  };
}

export function streamTurn(socket: TurnSocket, request: TurnRequest, handlers: TurnHandlers = {},
                           options: TurnOptions = {}): Promise<StreamedReply> {
  const acceptMs = options.acceptMs ?? 8_000;
  const stallMs = options.stallMs ?? 20_000;
  return new Promise<StreamedReply>((resolve, reject) => {
    const sentences = new SentenceAssembler((audio) => handlers.onSentence?.(audio));
    let accepted = false;
    let speechFailed = false;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const reason = accepted ? "stalled" : "noAck";
        finish(() => reject(new TransportFailed(reason, accepted
          ? "The streamed turn went silent." : "The streamed turn was not acknowledged.")));
      }, accepted ? stallMs : acceptMs);
    };
    const finish = (then: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.cancel(id);
      then();
    };
    const id = socket.send<Schemas["ChatReply"]>({ action: "tutorTurn", body: {
      sessionId: request.sessionId, messageId: request.messageId, text: request.text, inputMode: request.inputMode,
    } }, {
      onAccepted() {
        accepted = true;
        arm();
      },
      onText(text) {
        arm();
        handlers.onText?.(text);
      },
      onResending() {
        accepted = false;
        speechFailed = false;
        sentences.reset();
        arm();
        handlers.onRestart?.();
      },
      onFrame(m) {
        arm();
        if (m.type === "audio") sentences.add(m);
        else if (m.type === "translation") handlers.onTranslation?.(m as unknown as TranslationFrame);
        else if (m.type === "speech-error") {
          speechFailed = true;
          handlers.onSpeechError?.(m.error ?? { code: "SPEECH_FAILED" });
        }
      },
      onComplete(answer, info) {
        finish(() => {
          const { learner, tutor } = turnsOf(answer, request);
          const done = sentences.done;
          resolve({ learner, tutor, replayed: info.replayed || answer.replayed === true, sentences: done.map((s) => s.mp3),
            voice: done.find((s) => s.voice)?.voice ?? null, speechFailed });
        });
      },
      onError(error) {
        finish(() => reject(!accepted && routeMissing(error)
          ? new TransportFailed("routeMissing", "This API has no streamed tutor turn.")
          : fromSocketError(error)));
      },
    });
    arm();
  });
}

/**
 * Plays sentence audio in order as it arrives: each sentence starts when the one before it ends.
 * With auto-play off it plays nothing (the whole reply's player is there for the learner).
 */
export class SentencePlayer {
  private queue: string[] = [];
  private current: HTMLAudioElement | null = null;
  private stopped = false;
  readonly played: string[] = [];

  constructor(private readonly autoPlay: boolean,
              private readonly createAudio: (src: string) => HTMLAudioElement = (src) => new Audio(src),
              private readonly urlOf: (mp3: Uint8Array) => string = (mp3) =>
                URL.createObjectURL(new Blob([mp3 as BlobPart], { type: "audio/mpeg" }))) {}

  enqueue(mp3: Uint8Array): void {
    if (!this.autoPlay || this.stopped) return;
    this.queue.push(this.urlOf(mp3));
    if (!this.current) this.playNext();
  }

  /** Stop at once (the learner talks again, leaves, or the turn starts over). */
  stop(): void {
    this.stopped = true;
    this.current?.pause();
    this.current = null;
    this.queue = [];
  }

  /** Whether anything is still playing or waiting to. */
  get busy(): boolean {
    return this.current !== null;
  }

  private playNext(): void {
    const src = this.queue.shift();
    if (!src || this.stopped) {
      this.current = null;
      return;
    }
    const audio = this.createAudio(src);
    this.current = audio;
    const next = () => {
      if (this.current !== audio) return;
      this.current = null;
      this.playNext();
    };
    audio.addEventListener("ended", next, { once: true });
    audio.addEventListener("error", next, { once: true });
    this.played.push(src);
    audio.play().catch(next); // refused (no gesture yet): the reply's own player stays
  }
}

/** The whole reply's voice, for its player: the sentences' MP3 one after another (MP3 frames join). */
export function joinedAudioUrl(sentences: Uint8Array[]): string | null {
  if (!sentences.length) return null;
  return URL.createObjectURL(new Blob(sentences as BlobPart[], { type: "audio/mpeg" }));
}
