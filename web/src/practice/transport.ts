/**
 * How a practice turn reaches the API. Today: REST - the recording to POST /transcriptions (or,
 * when it is large, to storage through the presigned upload form of POST /transcriptions/upload-url),
 * its status polled, the transcript to POST /chat, the reply to POST /speech. A streamed voice turn
 * over the WebSocket can replace this object without touching the page or the session state.
 */

import { api, unwrap, type Schemas } from "../shared/api/client";
import { ApiError } from "../shared/api/errors";
import type { Recording } from "./recorder";
import { toBase64 } from "./recorder";
import type { Turn } from "./session";

/** What the tutor is asked to open the conversation with (as the original tutor app did). */
export const OPENING_MESSAGE = "Hello, let's start our English practice session.";

export type Accent = NonNullable<Schemas["SpeechRequest"]["accent"]>;
export type Gender = NonNullable<Schemas["SpeechRequest"]["gender"]>;

/** The tutor's voice for a text: a playable URL, and the voice that really spoke. */
export interface Voice {
  /** data: URL of the MP3 */
  src: string;
  voice: string;
  voiceGender: Gender;
  /** Why the voice differs from the one asked for (an accent with no voice of that gender). */
  voiceNote: string | null;
}

export interface PracticeTransport {
  start(clientSessionId: string): Promise<Schemas["Session"]>;
  /** A session started earlier (say, before a reload), with its turns so far. */
  load(sessionId: string): Promise<{ session: Schemas["Session"]; turns: Turn[] }>;
  greet(session: Schemas["Session"]): Promise<Turn>;
  transcribe(sessionId: string, recording: Recording, signal?: AbortSignal): Promise<string>;
  reply(sessionId: string, messageId: string, text: string): Promise<{ learner: Turn; tutor: Turn }>;
  voice(text: string, accent?: Accent, gender?: Gender): Promise<Voice>;
  end(sessionId: string): Promise<void>;
}

/** Recordings up to this size go inline (base64 in the JSON body; the API takes 4 MB of audio in a
 * 6 MB body); larger ones are posted to storage through the presigned upload form. */
export const INLINE_MAX_BYTES = 3 * 1024 * 1024;

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => {
    clearTimeout(timer);
    reject(new DOMException("aborted", "AbortError"));
  }, { once: true });
});

export const restTransport: PracticeTransport = {
  start: (clientSessionId) => unwrap(api().POST("/sessions", { body: { clientSessionId } })),

  async load(sessionId) {
    const detail = await unwrap(api().GET("/sessions/{sessionId}", { params: { path: { sessionId } } }));
    const { messages, ...session } = detail;
    return { session, turns: messages.map((m): Turn => ({ id: m.messageId, role: m.role === "assistant" ? "tutor" : "learner",
      text: m.content, translation: m.translation })) };
  },

  async greet(session) {
    // The greeting is asked without a history and saved as the session's turn 0 under a fixed id,
    // so asking again (a retry, a reload) saves it once.
    const answer = await unwrap(api().POST("/chat", { body: {
      message: OPENING_MESSAGE, messages: [],
      settings: { accent: session.accent, level: session.level, topic: session.topic, tutorName: session.tutorName },
    } })) as Schemas["ChatReply"];
    const messageId = `greeting-${session.sessionId}`.slice(0, 64);
    const saved = await unwrap(api().POST("/sessions/{sessionId}/messages", {
      params: { path: { sessionId: session.sessionId } },
      body: { role: "assistant", content: answer.reply, turnNumber: 0, messageId },
    }));
    return { id: saved.messageId, role: "tutor", text: saved.content, translation: saved.translation };
  },

  async transcribe(sessionId, recording, signal) {
    type Status = Pick<Schemas["TranscriptionOut"], "transcriptionId" | "status"> & Partial<Schemas["TranscriptionOut"]>;
    let status: Status = recording.blob.size <= INLINE_MAX_BYTES
      ? await unwrap(api().POST("/transcriptions", { body: {
        audio: await toBase64(recording.blob), format: recording.format, sessionId, language: "en-US",
      }, signal }))
      : await uploadRecording(sessionId, recording, signal);
    const deadline = Date.now() + 120_000;
    let pause = 400;
    while (status.status === "queued" || status.status === "running") {
      if (Date.now() > deadline) throw new ApiError(504, "TRANSCRIPTION_TIMEOUT", "Transcription took too long.");
      await sleep(pause, signal);
      pause = Math.min(pause * 1.5, 2_000);
      status = await unwrap(api().GET("/transcriptions/{transcriptionId}", {
        params: { path: { transcriptionId: status.transcriptionId } }, signal,
      }));
    }
    if (status.status !== "completed") {
      throw new ApiError(422, status.reason?.code ?? "TRANSCRIPTION_FAILED",
        status.reason?.message ?? "The recording could not be transcribed.");
    }
    return (status.text ?? "").trim();
  },

  async reply(sessionId, messageId, text) {
    const answer = await unwrap(api().POST("/chat", { body: { sessionId, messageId, message: text } })) as
      Schemas["ChatReply"];
    const learner = answer.message;
    const tutor = answer.replyMessage;
    return {
      learner: { id: learner?.messageId ?? messageId, role: "learner", text: learner?.content ?? text },
      tutor: { id: tutor?.messageId ?? `reply-${messageId}`, role: "tutor", text: tutor?.content ?? answer.reply,
        translation: tutor?.translation ?? null, translationUnavailable: translationUnavailable(answer) },
    };
  },

  async voice(text, accent, gender) {
    const speech = await unwrap(api().POST("/speech", { body: { text, accent, gender } }));
    return { src: `data:${speech.contentType ?? "audio/mpeg"};base64,${speech.audio}`, voice: speech.voice,
      voiceGender: speech.voiceGender, voiceNote: speech.voiceNote ?? null };
  },

  async end(sessionId) {
    await unwrap(api().POST("/sessions/{sessionId}/end", { params: { path: { sessionId } } }));
  },
};

/** Whether the answer says its translation could not be made (an API that translates answers
 * `translation: {available: false, reason}` then; one that does not, nothing). */
export function translationUnavailable(answer: unknown): boolean {
  const translation = (answer as { translation?: { available?: unknown } | null }).translation;
  return typeof translation === "object" && translation !== null && translation.available === false;
}

/**
 * A large recording, straight to storage: POST /transcriptions/upload-url for a presigned POST
 * policy signed for the recording's size and type, then the form - every field as given, in order,
 * the recording last - to the storage URL. Its arrival starts the transcription.
 */
export async function uploadRecording(sessionId: string, recording: Recording, signal?: AbortSignal,
                                      fetcher: typeof fetch = fetch): Promise<{ transcriptionId: string; status: "queued" }> {
  const target = await unwrap(api().POST("/transcriptions/upload-url", { body: {
    format: recording.format, sizeBytes: recording.blob.size, sessionId, language: "en-US",
  }, signal }));
  const form = new FormData();
  for (const [name, value] of Object.entries(target.fields)) form.append(name, value);
  form.append(target.fileField ?? "file", recording.blob, `recording.${recording.format}`);
  let answer: Response;
  try {
    answer = await fetcher(target.uploadUrl, { method: target.method ?? "POST", body: form, signal });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw ApiError.network(error);
  }
  if (!answer.ok) {
    throw new ApiError(answer.status, "UPLOAD_FAILED", `The recording could not be uploaded (storage answered ${answer.status}).`);
  }
  return { transcriptionId: target.transcriptionId, status: "queued" };
}
