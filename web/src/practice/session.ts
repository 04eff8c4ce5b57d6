/**
 * The state of a practice session, as a reducer: what the learner sees, whatever the transport.
 *
 * Phases: idle → starting → ready ⇄ (recording → transcribing →) waiting → ready … → ending → ended.
 * A failure returns to `ready` with the error shown and the learner's words kept: typed text stays
 * in the draft, a recording stays ready to send again, a transcript goes back into the draft.
 */

import type { Schemas } from "../shared/api/client";
import type { ErrorKind } from "../shared/api/errors";

export type Phase = "idle" | "starting" | "ready" | "recording" | "transcribing" | "waiting" | "ending" | "ended";

export interface Turn {
  id: string;
  role: "tutor" | "learner";
  text: string;
  translation?: string | null;
  /** translation was asked for, and the engine said it has none (offline) */
  translationUnavailable?: boolean;
  /** data: or blob: URL of the tutor's voice */
  audio?: string | null;
  /** a learner turn that was spoken (its text is the transcript) */
  spoken?: boolean;
}

/** The voice that spoke, when it is not of the gender asked for (an accent without such a voice). */
export interface VoiceNote {
  voice: string;
  asked: "female" | "male";
  given: "female" | "male";
}

export interface Failure {
  kind: ErrorKind;
  message: string;
  /** what the learner can do about it */
  retry?: "start" | "greet" | "send" | "transcribe" | "end" | "voice";
}

export interface SessionState {
  phase: Phase;
  sessionId: string | null;
  /** the session as the API answered it (tutor, accent, voice gender, …) */
  session: Schemas["Session"] | null;
  turns: Turn[];
  draft: string;
  /** a learner message sent but not yet answered: its id makes a retry save it once */
  outgoing: { messageId: string; text: string; spoken?: boolean } | null;
  /** the last recording, kept until its transcript arrives */
  hasRecording: boolean;
  /** the transcript of the last recording, until it is sent */
  heard: string | null;
  voiceNote: VoiceNote | null;
  error: Failure | null;
  /** what the streaming transcription has heard so far, while the learner speaks */
  live: string | null;
  /** the tutor's reply as it streams in (before the saved turn arrives) */
  streaming: { text: string; translation: string | null; translationUnavailable: boolean } | null;
}

export const initialSession: SessionState = {
  phase: "idle", sessionId: null, session: null, turns: [], draft: "", outgoing: null, hasRecording: false,
  heard: null, voiceNote: null, error: null, live: null, streaming: null,
};

export type SessionEvent =
  | { type: "start" }
  | { type: "started"; session: Schemas["Session"] }
  | { type: "resumed"; session: Schemas["Session"]; turns: Turn[] }
  | { type: "tutorSaid"; turn: Turn }
  | { type: "voiceReady"; turnId: string; audio: string; voice?: { voice: string; voiceGender: "female" | "male" } }
  | { type: "draft"; text: string }
  | { type: "recordStart" }
  | { type: "recordCancel" }
  | { type: "recordStop" }
  | { type: "hearing"; text: string }
  | { type: "streamText"; text: string }
  | { type: "streamTranslation"; text: string | null; unavailable: boolean }
  | { type: "streamRestart" }
  | { type: "transcribed"; text: string }
  | { type: "send"; messageId: string; text: string }
  | { type: "replied"; learner: Turn; tutor: Turn }
  | { type: "failed"; error: Failure }
  | { type: "dismiss" }
  | { type: "end" }
  | { type: "ended" }
  | { type: "reset" };

export function sessionReducer(state: SessionState, event: SessionEvent): SessionState {
  switch (event.type) {
    case "start":
      return { ...initialSession, phase: "starting", draft: state.draft };
    case "started":
      return { ...state, sessionId: event.session.sessionId, session: event.session };
    case "resumed":
      // A session started before a reload: its turns from the API, and the learner's unsent words kept.
      {
        const answered = !!state.outgoing && event.turns.some((t) => t.id === state.outgoing?.messageId);
        return { ...state, phase: "ready", sessionId: event.session.sessionId, session: event.session,
          turns: event.turns, error: null, outgoing: answered ? null : state.outgoing,
          draft: answered && state.draft === state.outgoing?.text ? "" : state.draft };
      }
    case "tutorSaid":
      return { ...state, phase: state.phase === "starting" ? "ready" : state.phase, error: null,
        turns: [...state.turns, event.turn] };
    case "voiceReady": {
      const asked = state.session?.gender;
      const given = event.voice?.voiceGender;
      const voiceNote = state.voiceNote ?? (event.voice && asked && given && given !== asked
        ? { voice: event.voice.voice, asked, given } : null);
      return { ...state, voiceNote,
        turns: state.turns.map((t) => (t.id === event.turnId ? { ...t, audio: event.audio } : t)) };
    }
    case "draft":
      return { ...state, draft: event.text };
    case "recordStart":
      return { ...state, phase: "recording", error: null, live: null };
    case "hearing":
      return state.phase === "recording" || state.phase === "transcribing" ? { ...state, live: event.text } : state;
    case "streamText":
      return state.phase === "waiting"
        ? { ...state, streaming: { translation: null, translationUnavailable: false, ...state.streaming, text: event.text } }
        : state;
    case "streamTranslation":
      return state.phase === "waiting"
        ? { ...state, streaming: { text: "", ...state.streaming, translation: event.text, translationUnavailable: event.unavailable } }
        : state;
    case "streamRestart":
      return { ...state, streaming: null };
    case "recordCancel":
      return state.phase === "recording" ? { ...state, phase: "ready" } : state;
    case "recordStop":
      return { ...state, phase: "transcribing", hasRecording: true };
    case "transcribed":
      // The transcript is the learner's words now: it goes out as the next message.
      return { ...state, hasRecording: false, heard: event.text, live: null };
    case "send": {
      const spoken = state.heard === event.text
        || (state.outgoing?.text === event.text && state.outgoing.spoken === true);
      return { ...state, phase: "waiting", error: null, draft: "", heard: null, live: null, streaming: null,
        outgoing: { messageId: event.messageId, text: event.text, spoken } };
    }
    case "replied": {
      // A resend of a message the API had already saved answers that message again: shown once.
      const seen = new Set(state.turns.map((t) => t.id));
      const learner = { ...event.learner, spoken: state.outgoing?.spoken === true };
      return { ...state, phase: "ready", outgoing: null, streaming: null,
        turns: [...state.turns, ...[learner, event.tutor].filter((t) => !seen.has(t.id))] };
    }
    case "failed": {
      // Nothing the learner typed or said is lost: an unanswered message goes back into the draft
      // (keeping its id, so sending it again saves it once).
      const keep = state.outgoing && !state.draft ? state.outgoing.text : state.draft;
      return { ...state, phase: state.sessionId ? "ready" : "idle", draft: keep, error: event.error, live: null,
        streaming: null };
    }
    case "dismiss":
      return { ...state, error: null };
    case "end":
      return { ...state, phase: "ending", error: null };
    case "ended":
      return { ...state, phase: "ended" };
    case "reset":
      return initialSession;
    default:
      return state;
  }
}

/** The id for sending `text`: the failed message's own when it is sent again unchanged. */
export function messageIdFor(state: SessionState, text: string, newId: () => string): string {
  return state.outgoing && state.outgoing.text === text ? state.outgoing.messageId : newId();
}

/** Whether the learner can say or type something now. */
export function canTalk(state: SessionState): boolean {
  return state.phase === "ready";
}

export function learnerTurns(state: SessionState): number {
  return state.turns.filter((t) => t.role === "learner").length;
}
