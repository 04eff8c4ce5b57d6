import { useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useReducer, useRef, useState, type KeyboardEvent } from "react";
import { useLocation } from "wouter";
import { api, unwrap, type Schemas } from "../shared/api/client";
import { errorKind } from "../shared/api/errors";
import { useI18n } from "../shared/i18n/i18n";
import { useErrorText } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";
import { Recorder, recordingSupported, type Recording } from "./recorder";
import { canTalk, initialSession, learnerTurns, messageIdFor, sessionReducer, type Failure, type Turn } from "./session";
import { restTransport, type Accent, type Gender, type PracticeTransport } from "./transport";

export const settingsQuery = () => ({
  queryKey: ["settings"],
  queryFn: () => unwrap(api().GET("/settings")),
});

/** The transport of a turn (REST today; a streamed voice turn can take its place). */
const transport: PracticeTransport = restTransport;

export default function PracticePage() {
  const { t, label } = useI18n();
  useTitle(t("practice.title"));
  const [, navigate] = useLocation();
  const [state, dispatch] = useReducer(sessionReducer, initialSession);
  const settings = useQuery(settingsQuery());
  const recorder = useRef<Recorder | null>(null);
  const lastRecording = useRef<Recording | null>(null);
  const sessionRef = useRef<Schemas["Session"] | null>(null);
  const audios = useRef(new Map<string, HTMLAudioElement>());
  const errorText = useErrorText();
  const draftRef = useRef<HTMLTextAreaElement>(null);

  const fail = useCallback((error: unknown, retry?: Failure["retry"]) => {
    dispatch({ type: "failed", error: { kind: errorKind(error), message: errorText(error), retry } });
  }, [errorText]);

  const speak = useCallback(async (turn: Turn) => {
    const s = sessionRef.current;
    try {
      const audio = await transport.voice(turn.text, s?.accent as Accent, s?.gender as Gender);
      dispatch({ type: "voiceReady", turnId: turn.id, audio });
    } catch (error) {
      fail(error, "voice");
    }
  }, [fail]);

  const greet = useCallback(async () => {
    const session = sessionRef.current;
    if (!session) return;
    try {
      const greeting = await transport.greet(session);
      dispatch({ type: "tutorSaid", turn: greeting });
      void speak(greeting);
    } catch (error) {
      fail(error, "greet");
    }
  }, [speak, fail]);

  const start = useCallback(async () => {
    dispatch({ type: "start" });
    try {
      const session = await transport.start(crypto.randomUUID());
      sessionRef.current = session;
      dispatch({ type: "started", sessionId: session.sessionId });
    } catch (error) {
      fail(error, "start");
      return;
    }
    await greet();
  }, [greet, fail]);

  const send = useCallback(async (text: string) => {
    const sessionId = sessionRef.current?.sessionId;
    const clean = text.trim();
    if (!sessionId || !clean) return;
    const messageId = messageIdFor(state, clean, () => crypto.randomUUID());
    dispatch({ type: "send", messageId, text: clean });
    try {
      const { learner, tutor } = await transport.reply(sessionId, messageId, clean);
      dispatch({ type: "replied", learner, tutor });
      void speak(tutor);
    } catch (error) {
      fail(error, "send");
    }
  }, [state, speak, fail]);

  const transcribe = useCallback(async (recording: Recording) => {
    const sessionId = sessionRef.current?.sessionId;
    if (!sessionId) return;
    lastRecording.current = recording;
    try {
      const text = await transport.transcribe(sessionId, recording);
      if (!text) {
        dispatch({ type: "failed", error: { kind: "invalid", message: t("practice.heardNothing") } });
        return;
      }
      lastRecording.current = null;
      dispatch({ type: "transcribed", text });
      await send(text);
    } catch (error) {
      fail(error, "transcribe");
    }
  }, [send, fail, t]);

  const toggleRecording = useCallback(async () => {
    if (state.phase === "recording") {
      const r = recorder.current;
      if (!r) return;
      dispatch({ type: "recordStop" });
      try {
        await transcribe(await r.stop());
      } catch (error) {
        fail(error, "transcribe");
      }
      return;
    }
    if (!canTalk(state)) return;
    try {
      recorder.current ??= new Recorder();
      await recorder.current.start(() => void toggleRecordingRef.current());
      dispatch({ type: "recordStart" });
    } catch (error) {
      const denied = error instanceof DOMException && (error.name === "NotAllowedError" || error.name === "SecurityError");
      dispatch({ type: "failed", error: { kind: "invalid",
        message: denied ? t("practice.micDenied") : t("practice.micUnavailable") } });
    }
  }, [state, transcribe, fail, t]);
  const toggleRecordingRef = useRef(toggleRecording);
  toggleRecordingRef.current = toggleRecording;

  const end = useCallback(async () => {
    const sessionId = sessionRef.current?.sessionId;
    if (!sessionId) return;
    dispatch({ type: "end" });
    try {
      await transport.end(sessionId);
      dispatch({ type: "ended" });
      navigate(`/practice/report/${sessionId}`);
    } catch (error) {
      fail(error, "end");
    }
  }, [navigate, fail]);

  useEffect(() => () => recorder.current?.cancel(), []);

  // Auto-play the tutor's voice when it arrives, if the learner wants that.
  const autoPlay = settings.data?.autoPlayVoice ?? true;
  const lastTutor = [...state.turns].reverse().find((turn) => turn.role === "tutor");
  useEffect(() => {
    if (!autoPlay || !lastTutor?.audio) return;
    const element = audios.current.get(lastTutor.id);
    for (const other of audios.current.values()) if (other !== element) other.pause(); // one voice at a time
    element?.play().catch(() => undefined); // a browser may refuse without a gesture: the controls stay
  }, [autoPlay, lastTutor?.id, lastTutor?.audio]);

  const retry = () => {
    const kind = state.error?.retry;
    dispatch({ type: "dismiss" });
    if (kind === "start") void start();
    else if (kind === "greet") void greet();
    else if (kind === "send") void send(state.draft);
    else if (kind === "transcribe" && lastRecording.current) {
      dispatch({ type: "recordStop" });
      void transcribe(lastRecording.current);
    } else if (kind === "end") void end();
    else if (kind === "voice" && lastTutor) void speak(lastTutor);
  };

  const onDraftKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    // Enter sends, Shift+Enter is a new line; never while an IME (Korean input) is composing.
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (canTalk(state)) void send(state.draft);
    }
  };

  const s = settings.data;
  const status = {
    idle: "", starting: t("practice.starting"), ready: t("practice.yourTurn"), recording: t("practice.recording"),
    transcribing: t("practice.transcribing"), waiting: t("practice.waiting"), ending: t("practice.ending"),
    ended: "",
  }[state.phase];

  if (state.phase === "idle" || (state.phase === "starting" && !state.sessionId)) {
    return (
      <>
        <h1>{t("practice.title")}</h1>
        <section className="card">
          <p>{t("practice.intro")}</p>
          {s && (
            <p className="muted">
              {t("practice.with", { tutor: s.tutorName, topic: label("topic", s.topic),
                accent: label("accent", s.accent), level: label("level", s.level) })}
            </p>
          )}
          <button type="button" className="primary big" onClick={() => void start()}
            disabled={state.phase === "starting"}>
            {state.phase === "starting" ? t("practice.starting") : t("practice.start")}
          </button>
          {state.phase === "starting" && <p role="status">{t("practice.starting")}</p>}
        </section>
        {state.error && (
          <div className="alert" role="alert">
            <p>{state.error.message}</p>
            <button type="button" onClick={retry}>{t("action.tryAgain")}</button>
          </div>
        )}
      </>
    );
  }

  const busy = state.phase === "transcribing" || state.phase === "waiting" || state.phase === "ending"
    || state.phase === "starting";
  return (
    <>
      <h1>{t("practice.title")}</h1>
      <ol className="transcript" aria-label={t("practice.conversation")} aria-live="polite">
        {state.turns.map((turn) => (
          <li key={turn.id} className={`turn ${turn.role}`}>
            <span className="who">{turn.role === "tutor" ? (sessionRef.current?.tutorName ?? t("practice.tutor")) : t("practice.you")}</span>
            <p lang="en">{turn.text}</p>
            {turn.translation && s?.showTranslation && <p className="translation">{turn.translation}</p>}
            {turn.audio && (
              <audio controls preload="auto" src={turn.audio} aria-label={t("practice.tutorVoice")}
                ref={(el) => {
                  if (el) audios.current.set(turn.id, el);
                  else audios.current.delete(turn.id);
                }} />
            )}
          </li>
        ))}
        {state.outgoing && state.phase === "waiting" && (
          <li className="turn learner pending">
            <span className="who">{t("practice.you")}</span>
            <p lang="en">{state.outgoing.text}</p>
          </li>
        )}
      </ol>

      <p className="status" role="status" aria-live="polite" data-phase={state.phase}>
        {busy && <span className="spinner" aria-hidden="true" />} {status}
      </p>
      {state.phase === "recording" && <RecordingTimer label={t("practice.recordingTime")} />}

      {state.error && (
        <div className="alert" role="alert" data-kind={state.error.kind}>
          <p>{state.error.message}</p>
          <div className="row">
            {state.error.retry && <button type="button" onClick={retry}>{t("action.tryAgain")}</button>}
            <button type="button" className="quiet" onClick={() => dispatch({ type: "dismiss" })}>{t("action.dismiss")}</button>
          </div>
        </div>
      )}

      {state.phase !== "ended" && (
        <div className="composer">
          {recordingSupported() && (
            <button type="button" className={`talk big ${state.phase === "recording" ? "on" : ""}`}
              aria-pressed={state.phase === "recording"}
              disabled={!(canTalk(state) || state.phase === "recording")}
              onClick={() => void toggleRecording()}>
              {state.phase === "recording" ? t("practice.stopTalking") : t("practice.talk")}
            </button>
          )}
          <form onSubmit={(e) => { e.preventDefault(); void send(state.draft); }}>
            <label htmlFor="draft">{t("practice.typeInstead")}</label>
            <textarea id="draft" ref={draftRef} rows={2} lang="en" value={state.draft}
              onChange={(e) => dispatch({ type: "draft", text: e.target.value })} onKeyDown={onDraftKey}
              maxLength={4000} />
            <button type="submit" disabled={!canTalk(state) || !state.draft.trim()}>{t("practice.send")}</button>
          </form>
          <button type="button" className="quiet" onClick={() => void end()}
            disabled={state.phase === "ending" || state.phase === "recording" || !state.sessionId}>
            {t("practice.end")}
          </button>
          {learnerTurns(state) < 3 && <p className="muted small">{t("practice.reportNeeds", { n: 3 })}</p>}
        </div>
      )}
    </>
  );
}

/** How long the learner has been speaking (m:ss), so a recording is never a mystery. */
function RecordingTimer({ label }: { label: string }) {
  const [started] = useState(() => performance.now());
  const [now, setNow] = useState(started);
  useEffect(() => {
    const timer = setInterval(() => setNow(performance.now()), 250);
    return () => clearInterval(timer);
  }, []);
  const seconds = Math.floor((now - started) / 1000);
  return (
    <p className="timer" role="timer" aria-label={label}>
      <span className="rec" aria-hidden="true" /> {Math.floor(seconds / 60)}:{String(seconds % 60).padStart(2, "0")}
    </p>
  );
}
