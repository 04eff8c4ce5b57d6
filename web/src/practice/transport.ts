/**
 * How a practice turn reaches the API. Today: REST - the recording to POST /transcriptions, its
 * status polled, the transcript to POST /chat, the reply to POST /speech. A streamed voice turn
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

export interface PracticeTransport {
  start(clientSessionId: string): Promise<Schemas["Session"]>;
  greet(session: Schemas["Session"]): Promise<Turn>;
  transcribe(sessionId: string, recording: Recording, signal?: AbortSignal): Promise<string>;
  reply(sessionId: string, messageId: string, text: string): Promise<{ learner: Turn; tutor: Turn }>;
  voice(text: string, accent?: Accent, gender?: Gender): Promise<string>;
  end(sessionId: string): Promise<void>;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => {
    clearTimeout(timer);
    reject(new DOMException("aborted", "AbortError"));
  }, { once: true });
});

export const restTransport: PracticeTransport = {
  start: (clientSessionId) => unwrap(api().POST("/sessions", { body: { clientSessionId } })),

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
    const started = await unwrap(api().POST("/transcriptions", { body: {
      audio: await toBase64(recording.blob), format: recording.format, sessionId, language: "en-US",
    }, signal }));
    const deadline = Date.now() + 120_000;
    let pause = 400;
    let status = started;
    while (status.status === "queued" || status.status === "running") {
      if (Date.now() > deadline) throw new ApiError(504, "TRANSCRIPTION_TIMEOUT", "Transcription took too long.");
      await sleep(pause, signal);
      pause = Math.min(pause * 1.5, 2_000);
      status = await unwrap(api().GET("/transcriptions/{transcriptionId}", {
        params: { path: { transcriptionId: started.transcriptionId } }, signal,
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
        translation: tutor?.translation ?? null },
    };
  },

  async voice(text, accent, gender) {
    const speech = await unwrap(api().POST("/speech", { body: { text, accent, gender } }));
    return `data:${speech.contentType ?? "audio/mpeg"};base64,${speech.audio}`;
  },

  async end(sessionId) {
    await unwrap(api().POST("/sessions/{sessionId}/end", { params: { path: { sessionId } } }));
  },
};
