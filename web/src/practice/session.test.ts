import { describe, expect, it } from "vitest";
import { initialSession, learnerTurns, messageIdFor, sessionReducer, type SessionEvent, type SessionState } from "./session";

const run = (events: SessionEvent[], from: SessionState = initialSession) => events.reduce(sessionReducer, from);
const greeting = { id: "g", role: "tutor" as const, text: "Hi! How are you?" };
const SESSION = { sessionId: "S1", clientSessionId: null, tutorName: "Emma", topic: "daily", accent: "IN", level: "intermediate",
  gender: "male", status: "active", startedAt: "2026-12-01T09:00:00Z", endedAt: null, duration: null, turnCount: 0,
  wordCount: 0, lastMessageAt: null } as const;
const started: SessionEvent[] = [{ type: "start" }, { type: "started", session: SESSION }, { type: "tutorSaid", turn: greeting }];

describe("a practice session", () => {
  it("starts, greets, and is ready for the learner", () => {
    const s = run(started);
    expect(s.phase).toBe("ready");
    expect(s.sessionId).toBe("S1");
    expect(s.turns).toEqual([greeting]);
  });

  it("goes through recording, transcribing and waiting to the next turn", () => {
    let s = run([...started, { type: "recordStart" }]);
    expect(s.phase).toBe("recording");
    s = run([{ type: "recordStop" }], s);
    expect(s).toMatchObject({ phase: "transcribing", hasRecording: true });
    s = run([{ type: "transcribed", text: "I like tea" }, { type: "send", messageId: "m1", text: "I like tea" }], s);
    expect(s).toMatchObject({ phase: "waiting", hasRecording: false, outgoing: { messageId: "m1" } });
    s = run([{ type: "replied", learner: { id: "m1", role: "learner", text: "I like tea" },
      tutor: { id: "r1", role: "tutor", text: "Why?" } }], s);
    expect(s.phase).toBe("ready");
    expect(learnerTurns(s)).toBe(1);
    expect(s.outgoing).toBeNull();
  });

  it("keeps the learner's words when a turn fails, and resends them under the same id", () => {
    let s = run([...started, { type: "draft", text: "My typed answer" }, { type: "send", messageId: "m7", text: "My typed answer" }]);
    expect(s.draft).toBe("");
    s = run([{ type: "failed", error: { kind: "unavailable", message: "busy", retry: "send" } }], s);
    expect(s).toMatchObject({ phase: "ready", draft: "My typed answer", error: { kind: "unavailable" } });
    expect(messageIdFor(s, "My typed answer", () => "new")).toBe("m7");
    expect(messageIdFor(s, "Something else", () => "new")).toBe("new");
  });

  it("keeps a failed recording for another try", () => {
    const s = run([...started, { type: "recordStart" }, { type: "recordStop" },
      { type: "failed", error: { kind: "network", message: "offline", retry: "transcribe" } }]);
    expect(s).toMatchObject({ phase: "ready", hasRecording: true });
  });

  it("goes back to idle when the session could not start", () => {
    const s = run([{ type: "start" }, { type: "failed", error: { kind: "quota", message: "quota" } }]);
    expect(s.phase).toBe("idle");
  });

  it("attaches the tutor's voice to its turn", () => {
    const s = run([...started, { type: "voiceReady", turnId: "g", audio: "data:audio/mpeg;base64,AA" }]);
    expect(s.turns[0]!.audio).toBe("data:audio/mpeg;base64,AA");
  });

  it("marks a turn that was spoken, and only that one", () => {
    let s = run([...started, { type: "recordStart" }, { type: "recordStop" }, { type: "transcribed", text: "I like tea" },
      { type: "send", messageId: "m1", text: "I like tea" }]);
    expect(s.outgoing).toMatchObject({ spoken: true });
    s = run([{ type: "replied", learner: { id: "m1", role: "learner", text: "I like tea" }, tutor: { id: "r1", role: "tutor", text: "Why?" } },
      { type: "draft", text: "Typed" }, { type: "send", messageId: "m2", text: "Typed" },
      { type: "replied", learner: { id: "m2", role: "learner", text: "Typed" }, tutor: { id: "r2", role: "tutor", text: "Ok" } }], s);
    expect(s.turns.filter((t) => t.role === "learner").map((t) => t.spoken)).toEqual([true, false]);
  });

  it("keeps a spoken turn spoken when it is sent again after a failure", () => {
    const s = run([...started, { type: "recordStart" }, { type: "recordStop" }, { type: "transcribed", text: "Hello" },
      { type: "send", messageId: "m1", text: "Hello" }, { type: "failed", error: { kind: "network", message: "x", retry: "send" } },
      { type: "send", messageId: "m1", text: "Hello" }]);
    expect(s.outgoing).toMatchObject({ messageId: "m1", spoken: true });
  });

  it("says once when the voice is not of the gender asked for (an accent without such a voice)", () => {
    let s = run([...started, { type: "voiceReady", turnId: "g", audio: "data:,", voice: { voice: "Kajal", voiceGender: "female" } }]);
    expect(s.voiceNote).toEqual({ voice: "Kajal", asked: "male", given: "female" });
    s = run([{ type: "voiceReady", turnId: "g", audio: "data:,", voice: { voice: "Kajal", voiceGender: "female" } }], s);
    expect(s.voiceNote).toEqual({ voice: "Kajal", asked: "male", given: "female" });
    const usual = run([{ type: "start" }, { type: "started", session: { ...SESSION, accent: "US", gender: "female" } },
      { type: "tutorSaid", turn: greeting }, { type: "voiceReady", turnId: "g", audio: "data:,", voice: { voice: "Joanna", voiceGender: "female" } }]);
    expect(usual.voiceNote).toBeNull();
  });

  it("continues a session from its turns, keeping the unsent words (and dropping them once answered)", () => {
    const waiting = { ...initialSession, draft: "Not sent yet", outgoing: { messageId: "m9", text: "Not sent yet" } };
    const turns = [greeting, { id: "m8", role: "learner" as const, text: "Earlier" }];
    const kept = run([{ type: "resumed", session: SESSION, turns }], waiting);
    expect(kept).toMatchObject({ phase: "ready", sessionId: "S1", draft: "Not sent yet", outgoing: { messageId: "m9" } });
    const answered = run([{ type: "resumed", session: SESSION,
      turns: [...turns, { id: "m9", role: "learner", text: "Not sent yet" }, { id: "r9", role: "tutor", text: "Nice" }] }], waiting);
    expect(answered).toMatchObject({ draft: "", outgoing: null });
  });

  it("shows a message the API had already saved once, when a resend answers it again", () => {
    const reply: SessionEvent = { type: "replied", learner: { id: "m1", role: "learner", text: "Hi" }, tutor: { id: "r1", role: "tutor", text: "Yo" } };
    const s = run([...started, { type: "send", messageId: "m1", text: "Hi" }, reply, { type: "send", messageId: "m1", text: "Hi" }, reply]);
    expect(s.turns.map((t) => t.id)).toEqual(["g", "m1", "r1"]);
  });

  it("goes back to the learner's turn when a recording is abandoned (leaving the screen)", () => {
    expect(run([...started, { type: "recordStart" }, { type: "recordCancel" }]).phase).toBe("ready");
    expect(run([...started, { type: "recordCancel" }]).phase).toBe("ready");
  });
});

describe("the streamed turn in the session", () => {
  it("shows what is heard while the learner speaks, then clears it when the words are sent", () => {
    let s = run([...started, { type: "recordStart" }, { type: "hearing", text: "I went" }, { type: "hearing", text: "I went to the market" }]);
    expect(s.live).toBe("I went to the market");
    s = run([{ type: "recordStop" }, { type: "transcribed", text: "I went to the market." }], s);
    expect(s.live).toBeNull();
    s = run([{ type: "send", messageId: "m1", text: "I went to the market." }, { type: "hearing", text: "late" }], s);
    expect(s.live, "nothing heard once the words are sent").toBeNull();
  });

  it("builds the reply as it streams, starts over on a resend, and gives way to the saved turn", () => {
    let s = run([...started, { type: "send", messageId: "m1", text: "Hello" }, { type: "streamText", text: "That sounds " },
      { type: "streamText", text: "That sounds fun!" }, { type: "streamTranslation", text: "재미있겠네요!", unavailable: false }]);
    expect(s.streaming).toEqual({ text: "That sounds fun!", translation: "재미있겠네요!", translationUnavailable: false });
    s = run([{ type: "streamRestart" }], s);
    expect(s.streaming).toBeNull();
    s = run([{ type: "streamText", text: "That sounds fun!" }, { type: "streamTranslation", text: null, unavailable: true }], s);
    expect(s.streaming).toMatchObject({ translationUnavailable: true });
    s = run([{ type: "replied", learner: { id: "m1", role: "learner", text: "Hello" },
      tutor: { id: "r1", role: "tutor", text: "That sounds fun!", translationUnavailable: true } }], s);
    expect(s.streaming).toBeNull();
    expect(s.turns.at(-1)).toMatchObject({ id: "r1", translationUnavailable: true });
  });

  it("a failed streamed turn drops the partial reply and keeps the learner's words", () => {
    const s = run([...started, { type: "send", messageId: "m1", text: "Hello" }, { type: "streamText", text: "Tha" },
      { type: "failed", error: { kind: "quota", message: "quota" } }]);
    expect(s).toMatchObject({ streaming: null, draft: "Hello", phase: "ready" });
  });
});
