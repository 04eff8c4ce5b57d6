import { describe, expect, it } from "vitest";
import { initialSession, learnerTurns, messageIdFor, sessionReducer, type SessionEvent, type SessionState } from "./session";

const run = (events: SessionEvent[], from: SessionState = initialSession) => events.reduce(sessionReducer, from);
const greeting = { id: "g", role: "tutor" as const, text: "Hi! How are you?" };
const started: SessionEvent[] = [{ type: "start" }, { type: "started", sessionId: "S1" }, { type: "tutorSaid", turn: greeting }];

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
});
