import { useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from "react";
import { useLocation } from "wouter";
import { api, unwrap } from "../shared/api/client";
import { errorKind } from "../shared/api/errors";
import { useI18n } from "../shared/i18n/i18n";
import { useErrorText } from "../shared/ui/ErrorMessage";
import { sendsOnEnter } from "../shared/ui/keys";
import { useTitle } from "../shared/ui/useTitle";
import { useAppSocket } from "../shared/ws/appSocket";
import { Recorder, recordingSupported, type Recording } from "./recorder";
import { canTalk, learnerTurns, messageIdFor, type Failure, type Turn } from "./session";
import { practice, usePractice } from "./store";
import { PcmCapture, StreamingTranscriber, streamUrl } from "./streamingStt";
import { restTransport, type Accent, type Gender, type PracticeTransport } from "./transport";
import { joinedAudioUrl, SentencePlayer, streamTurn, TransportFailed } from "./voiceTurn";

export const settingsQuery = () => ({
  queryKey: ["settings"],
  queryFn: () => unwrap(api().GET("/settings")),
});

/** The batch transport of a turn: the fallback of the streamed one, and the greeting, sessions, speech. */
const transport: PracticeTransport = restTransport;

/** What this tab has learnt about the streamed paths: a stack without the tutorTurn route is not
 * asked again (the REST turn takes over), nor is a streaming transcription that never works. */
const streamed = { turnRoute: true, sttFailures: 0 };
const STT_GIVE_UP_AFTER = 2;

export default function PracticePage() {
  const { t, label, formatDate } = useI18n();
  useTitle(t("practice.title"));
  const [, navigate] = useLocation();
  const state = usePractice();
  const dispatch = practice.dispatch;
  const settings = useQuery(settingsQuery());
  const settingsRef = useRef(settings.data);
  settingsRef.current = settings.data;
  const recorder = useRef<Recorder | null>(null);
  const listening = useRef<{ stt: StreamingTranscriber | null; capture: PcmCapture | null; cancelled: boolean } | null>(null);
  const player = useRef<SentencePlayer | null>(null);
  const socket = useAppSocket();
  const audios = useRef(new Map<string, HTMLAudioElement>());
  const errorText = useErrorText();
  const [resumable, setResumable] = useState(() => practice.resumable());
  const [resuming, setResuming] = useState(false);
  const lastTurn = useRef<HTMLLIElement>(null);

  const fail = useCallback((error: unknown, retry?: Failure["retry"]) => {
    dispatch({ type: "failed", error: { kind: errorKind(error), message: errorText(error), retry } });
  }, [dispatch, errorText]);

  const speak = useCallback(async (turn: Turn) => {
    const s = practice.get().session;
    try {
      const voice = await transport.voice(turn.text, s?.accent as Accent, s?.gender as Gender);
      dispatch({ type: "voiceReady", turnId: turn.id, audio: voice.src, voice });
    } catch (error) {
      fail(error, "voice");
    }
  }, [dispatch, fail]);

  const greet = useCallback(async () => {
    const session = practice.get().session;
    if (!session) return;
    try {
      const greeting = await transport.greet(session);
      dispatch({ type: "tutorSaid", turn: greeting });
      void speak(greeting);
    } catch (error) {
      fail(error, "greet");
    }
  }, [dispatch, speak, fail]);

  const start = useCallback(async () => {
    practice.forgetResumable();
    setResumable(null);
    dispatch({ type: "start" });
    try {
      const session = await transport.start(crypto.randomUUID());
      dispatch({ type: "started", session });
    } catch (error) {
      fail(error, "start");
      return;
    }
    await greet();
  }, [dispatch, greet, fail]);

  const resume = useCallback(async (sessionId: string) => {
    setResuming(true);
    try {
      const { session, turns } = await transport.load(sessionId);
      if (session.status !== "active") {
        practice.forgetResumable();
        setResumable(null);
        return;
      }
      dispatch({ type: "resumed", session, turns });
      setResumable(null);
      // Let the learner hear the tutor's last question again (or be greeted, if that failed before).
      const lastTutor = [...turns].reverse().find((turn) => turn.role === "tutor");
      if (lastTutor) void speak(lastTutor);
      else void greet();
    } catch (error) {
      if (errorKind(error) === "notFound") {
        practice.forgetResumable();
        setResumable(null);
      } else fail(error);
    } finally {
      setResuming(false);
    }
  }, [dispatch, speak, greet, fail]);

  /** The streamed turn over the WebSocket: true when it was answered (or failed for a reason REST
   * would fail for too), false when the WebSocket could not carry it and REST should. */
  const sendStreamed = useCallback(async (sessionId: string, messageId: string, text: string, spoken: boolean) => {
    const autoPlay = settingsRef.current?.autoPlayVoice === true;
    player.current?.stop();
    let voice = new SentencePlayer(autoPlay);
    player.current = voice;
    try {
      const reply = await streamTurn(socket, { sessionId, messageId, text, inputMode: spoken ? "voice" : "text" }, {
        onText: (t) => dispatch({ type: "streamText", text: t }),
        onSentence: (a) => voice.enqueue(a.mp3),
        onTranslation: (tr) => dispatch({ type: "streamTranslation", text: "text" in tr ? tr.text : null,
          unavailable: tr.available === false }),
        onRestart: () => {
          voice.stop();
          voice = new SentencePlayer(autoPlay);
          player.current = voice;
          dispatch({ type: "streamRestart" });
        },
      });
      const audio = joinedAudioUrl(reply.sentences);
      const asked = settingsRef.current?.showTranslation === true;
      const tutor = { ...reply.tutor, audio,
        translationUnavailable: asked && !reply.tutor.translation && practice.get().streaming?.translationUnavailable === true };
      if (audio && (autoPlay || voice.played.length)) practice.autoPlayed.add(tutor.id); // already heard, sentence by sentence
      dispatch({ type: "replied", learner: reply.learner, tutor });
      if (!audio || reply.speechFailed) void speak(tutor); // the voice, in one piece, from POST /speech
      return true;
    } catch (error) {
      voice.stop();
      if (error instanceof TransportFailed) {
        if (error.reason === "routeMissing") streamed.turnRoute = false;
        dispatch({ type: "streamRestart" });
        return false;
      }
      fail(error, "send");
      return true;
    }
  }, [dispatch, socket, speak, fail]);

  const send = useCallback(async (text: string) => {
    const now = practice.get();
    const sessionId = now.sessionId;
    const clean = text.trim();
    if (!sessionId || !clean) return;
    const messageId = messageIdFor(now, clean, () => crypto.randomUUID());
    dispatch({ type: "send", messageId, text: clean });
    // The WebSocket when it is up (a connection that keeps failing would only delay the turn).
    const socketUp = socket.state === "open" || socket.state === "connecting" || socket.state === "closed";
    if (streamed.turnRoute && socketUp
      && await sendStreamed(sessionId, messageId, clean, practice.get().outgoing?.spoken === true)) return;
    try {
      const { learner, tutor } = await transport.reply(sessionId, messageId, clean);
      dispatch({ type: "replied", learner, tutor });
      void speak(tutor);
    } catch (error) {
      fail(error, "send");
    }
  }, [dispatch, speak, fail, sendStreamed, socket]);

  const transcribe = useCallback(async (recording: Recording) => {
    const sessionId = practice.get().sessionId;
    if (!sessionId) return;
    practice.recording = recording;
    try {
      const text = await transport.transcribe(sessionId, recording);
      if (!text) {
        practice.recording = null;
        dispatch({ type: "failed", error: { kind: "invalid", message: t("practice.heardNothing") } });
        return;
      }
      practice.recording = null;
      dispatch({ type: "transcribed", text });
      await send(text);
    } catch (error) {
      fail(error, "transcribe");
    }
  }, [dispatch, send, fail, t]);

  /** Streaming transcription beside the recording: the words appear as they are said. */
  const startListening = useCallback(async (stream: MediaStream) => {
    const live: NonNullable<typeof listening.current> = { stt: null, capture: null, cancelled: false };
    listening.current = live;
    try {
      // The microphone is tapped at once, while the URL is fetched: the first words are not lost.
      const early: Uint8Array[] = [];
      const capture = new PcmCapture();
      live.capture = capture;
      const [url] = await Promise.all([streamUrl("en-US"),
        capture.start(stream, (pcm) => (live.stt ? live.stt.send(pcm) : early.push(pcm)))]);
      if (live.cancelled) return;
      const stt = new StreamingTranscriber({ url, onPartial: (text) => dispatch({ type: "hearing", text }) });
      for (const pcm of early) stt.send(pcm);
      live.stt = stt;
    } catch {
      streamed.sttFailures += 1;
      stopListening(live);
    }
  }, [dispatch]);

  const toggleRecording = useCallback(async () => {
    const now = practice.get();
    if (now.phase === "recording") {
      const r = recorder.current;
      if (!r) return;
      dispatch({ type: "recordStop" });
      const live = listening.current;
      listening.current = null;
      let recording: Recording;
      try {
        recording = await r.stop();
      } catch (error) {
        stopListening(live);
        fail(error, "transcribe");
        return;
      }
      const heard = await finishListening(live);
      if (heard) {
        practice.recording = null;
        dispatch({ type: "transcribed", text: heard });
        await send(heard);
        return;
      }
      await transcribe(recording); // the batch path: the recording, uploaded and transcribed
      return;
    }
    if (!canTalk(now)) return;
    try {
      recorder.current ??= new Recorder();
      await recorder.current.start(() => void toggleRecordingRef.current());
      dispatch({ type: "recordStart" });
      player.current?.stop(); // the learner speaks: the tutor stops
      const stream = recorder.current.mediaStream;
      if (stream && streamed.sttFailures < STT_GIVE_UP_AFTER) void startListening(stream);
    } catch (error) {
      const denied = error instanceof DOMException && (error.name === "NotAllowedError" || error.name === "SecurityError");
      dispatch({ type: "failed", error: { kind: "invalid",
        message: denied ? t("practice.micDenied") : t("practice.micUnavailable") } });
    }
  }, [dispatch, transcribe, send, fail, t]);
  const toggleRecordingRef = useRef(toggleRecording);
  toggleRecordingRef.current = toggleRecording;

  const end = useCallback(async () => {
    const sessionId = practice.get().sessionId;
    if (!sessionId) return;
    dispatch({ type: "end" });
    try {
      await transport.end(sessionId);
      dispatch({ type: "ended" });
      navigate(`/practice/report/${sessionId}`);
      dispatch({ type: "reset" });
    } catch (error) {
      fail(error, "end");
    }
  }, [dispatch, navigate, fail]);

  // A session's turns go over the WebSocket: connect as it starts, not at the first turn.
  useEffect(() => {
    if (state.sessionId && streamed.turnRoute) socket.start();
  }, [state.sessionId, socket]);

  // Leaving the screen stops a recording (the microphone is released); everything else carries on.
  useEffect(() => () => {
    stopListening(listening.current);
    listening.current = null;
    player.current?.stop();
    recorder.current?.cancel();
    practice.dispatch({ type: "recordCancel" });
  }, []);

  // Auto-play the tutor's voice when it arrives, if the learner wants that - once per turn.
  const autoPlay = settings.data?.autoPlayVoice === true;
  const lastTutor = [...state.turns].reverse().find((turn) => turn.role === "tutor");
  useEffect(() => {
    if (!autoPlay || !lastTutor?.audio || practice.autoPlayed.has(lastTutor.id)) return;
    const element = audios.current.get(lastTutor.id);
    if (!element) return;
    practice.autoPlayed.add(lastTutor.id);
    for (const other of audios.current.values()) if (other !== element) other.pause(); // one voice at a time
    element.play().catch(() => undefined); // a browser may refuse without a gesture: the controls stay
  }, [autoPlay, lastTutor?.id, lastTutor?.audio]);

  // The newest turn in view (the composer stays at the bottom of the screen).
  useEffect(() => {
    lastTurn.current?.scrollIntoView?.({ block: "nearest" });
  }, [state.turns.length, state.phase]);

  const retry = () => {
    const kind = state.error?.retry;
    dispatch({ type: "dismiss" });
    if (kind === "start") void start();
    else if (kind === "greet") void greet();
    else if (kind === "send") void send(state.draft);
    else if (kind === "transcribe" && practice.recording) {
      dispatch({ type: "recordStop" });
      void transcribe(practice.recording);
    } else if (kind === "end") void end();
    else if (kind === "voice" && lastTutor) void speak(lastTutor);
  };

  const onDraftKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (!sendsOnEnter(e)) return;
    e.preventDefault();
    if (canTalk(practice.get())) void send(practice.get().draft);
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
        {resumable?.sessionId && (
          <section className="card" aria-labelledby="resume-heading">
            <h2 id="resume-heading">{t("practice.resumeTitle")}</h2>
            <p>{resumable.startedAt ? t("practice.resumeSince", { date: formatDate(resumable.startedAt) }) : t("practice.resumeAny")}</p>
            <button type="button" className="primary" disabled={resuming} onClick={() => void resume(resumable.sessionId!)}>
              {t("practice.resume")}
            </button>
          </section>
        )}
        <section className="card">
          <p>{t("practice.intro")}</p>
          {s && (
            <p className="muted">
              {t("practice.with", { tutor: s.tutorName, topic: label("topic", s.topic),
                accent: label("accent", s.accent), level: label("level", s.level) })}
            </p>
          )}
          <button type="button" className={`big ${resumable ? "" : "primary"}`} onClick={() => void start()}
            disabled={state.phase === "starting" || resuming}>
            {state.phase === "starting" ? t("practice.starting") : resumable ? t("practice.startNew") : t("practice.start")}
          </button>
          {state.phase === "starting" && <p role="status">{t("practice.starting")}</p>}
          {state.draft && <p className="muted small">{t("practice.draftKept")}</p>}
        </section>
        {state.error && (
          <div className="alert" role="alert" data-kind={state.error.kind}>
            <p>{state.error.message}</p>
            <button type="button" onClick={retry}>{t("action.tryAgain")}</button>
          </div>
        )}
      </>
    );
  }

  const busy = state.phase === "transcribing" || state.phase === "waiting" || state.phase === "ending"
    || state.phase === "starting";
  const tutorName = state.session?.tutorName ?? t("practice.tutor");
  return (
    <>
      <h1>{t("practice.title")}</h1>
      <ol className="transcript" aria-label={t("practice.conversation")} aria-live="polite">
        {state.turns.map((turn, i) => (
          <li key={turn.id} className={`turn ${turn.role}`}
            ref={i === state.turns.length - 1 && !(state.outgoing && state.phase === "waiting") ? lastTurn : undefined}>
            <span className="who">
              {turn.role === "tutor" ? tutorName : t("practice.you")}
              {turn.spoken && <span className="spoken"> · {t("practice.spoken")}</span>}
            </span>
            <p lang="en">{turn.text}</p>
            {turn.translation && s?.showTranslation && <p className="translation" lang={s.nativeLanguage}>{turn.translation}</p>}
            {!turn.translation && turn.translationUnavailable && s?.showTranslation
              && <p className="translation muted">{t("practice.translationUnavailable")}</p>}
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
          <li className="turn learner pending" ref={lastTurn}>
            <span className="who">
              {t("practice.you")}{state.outgoing.spoken && <span className="spoken"> · {t("practice.spoken")}</span>}
            </span>
            <p lang="en">{state.outgoing.text}</p>
          </li>
        )}
        {state.streaming && state.phase === "waiting" && (
          <li className="turn tutor pending" aria-busy="true" data-testid="streaming-reply">
            <span className="who">{tutorName}</span>
            <p lang="en">{state.streaming.text}</p>
            {state.streaming.translation && s?.showTranslation
              && <p className="translation" lang={s.nativeLanguage}>{state.streaming.translation}</p>}
            {state.streaming.translationUnavailable && s?.showTranslation
              && <p className="translation muted">{t("practice.translationUnavailable")}</p>}
          </li>
        )}
      </ol>

      {state.voiceNote && (
        <p className="note" role="note">
          {t("practice.voiceNote", { accent: label("accent", state.session?.accent ?? ""),
            asked: t(`genderWord.${state.voiceNote.asked}`), given: t(`genderWord.${state.voiceNote.given}`),
            voice: state.voiceNote.voice })}
        </p>
      )}

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
          <div className="composer-status">
            <p className="status" role="status" aria-live="polite" data-phase={state.phase}>
              {busy && <span className="spinner" aria-hidden="true" />} {status}
            </p>
            {state.phase === "recording" && <RecordingTimer label={t("practice.recordingTime")} />}
          </div>
          {state.live && (state.phase === "recording" || state.phase === "transcribing") && (
            <p className="live-transcript" lang="en" data-testid="live-transcript">
              <span className="muted small">{t("practice.hearing")}</span> {state.live}
            </p>
          )}
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
            <textarea id="draft" rows={2} lang="en" value={state.draft}
              onChange={(e) => dispatch({ type: "draft", text: e.target.value })} onKeyDown={onDraftKey}
              maxLength={4000} />
            <button type="submit" disabled={!canTalk(state) || !state.draft.trim()}>{t("practice.send")}</button>
          </form>
          <div className="row between">
            {learnerTurns(state) < 3
              ? <p className="muted small">{t("practice.reportNeeds", { n: 3 })}</p>
              : <span />}
            <button type="button" className="quiet" onClick={() => void end()}
              disabled={state.phase === "ending" || state.phase === "recording" || !state.sessionId}>
              {t("practice.end")}
            </button>
          </div>
        </div>
      )}
    </>
  );
}

type Listening = { stt: StreamingTranscriber | null; capture: PcmCapture | null; cancelled: boolean } | null;

function stopListening(live: Listening): void {
  if (!live) return;
  live.cancelled = true;
  live.capture?.stop();
  live.stt?.close();
}

/** The streaming transcript of a finished turn, or null when the batch path must do it. */
async function finishListening(live: Listening): Promise<string | null> {
  if (!live?.stt || !live.capture) {
    stopListening(live);
    return null;
  }
  live.capture.stop();
  try {
    const text = (await live.stt.finish()).trim();
    streamed.sttFailures = 0;
    return text || null;
  } catch (error) {
    streamed.sttFailures += 1;
    console.warn("The streaming transcription failed; the recording goes through the batch transcription.", error);
    return null;
  } finally {
    stopListening(live);
  }
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
