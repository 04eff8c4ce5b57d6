import { describe, expect, it } from "vitest";
import { PracticeStore, readSaved } from "./store";

/** sessionStorage as a Map (the test's own tab). */
class Tab implements Pick<Storage, "getItem" | "setItem"> {
  items = new Map<string, string>();
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.items.set(key, value);
  }
}

const SESSION = { sessionId: "S1", clientSessionId: null, tutorName: "Emma", topic: "daily", accent: "US", level: "intermediate",
  gender: "female", status: "active", startedAt: "2026-12-01T09:00:00Z", endedAt: null, duration: null, turnCount: 0,
  wordCount: 0, lastMessageAt: null } as const;

describe("the practice store", () => {
  it("keeps the session across screens and tells its listeners", () => {
    const store = new PracticeStore(new Tab() as unknown as Storage);
    let told = 0;
    const stop = store.subscribe(() => { told += 1; });
    store.dispatch({ type: "start" });
    store.dispatch({ type: "started", session: SESSION });
    stop();
    store.dispatch({ type: "draft", text: "x" });
    expect(told).toBe(2);
    expect(store.get()).toMatchObject({ phase: "starting", sessionId: "S1", draft: "x" });
  });

  it("after a reload, offers the open session and gives back the unsent words", () => {
    const tab = new Tab() as unknown as Storage;
    const before = new PracticeStore(tab);
    before.dispatch({ type: "start" });
    before.dispatch({ type: "started", session: SESSION });
    before.dispatch({ type: "tutorSaid", turn: { id: "g", role: "tutor", text: "Hi" } });
    before.dispatch({ type: "draft", text: "Half an answer" });
    before.dispatch({ type: "send", messageId: "m1", text: "Half an answer" }); // then the tab reloads

    const after = new PracticeStore(tab);
    expect(after.get()).toMatchObject({ phase: "idle", draft: "Half an answer", outgoing: { messageId: "m1" } });
    expect(after.resumable()).toMatchObject({ sessionId: "S1", startedAt: "2026-12-01T09:00:00Z" });
    after.forgetResumable();
    expect(after.resumable()).toBeNull();
    expect(readSaved(tab)?.draft).toBe(""); // the draft moved into the answer box; "send" had emptied it
    expect(new PracticeStore(tab).get().draft).toBe("Half an answer"); // ...and the message waiting is kept
  });

  it("offers nothing once the session has ended", () => {
    const tab = new Tab() as unknown as Storage;
    const store = new PracticeStore(tab);
    store.dispatch({ type: "start" });
    store.dispatch({ type: "started", session: SESSION });
    store.dispatch({ type: "end" });
    store.dispatch({ type: "ended" });
    expect(new PracticeStore(tab).resumable()).toBeNull();
  });

  it("survives storage that is broken or holds something else", () => {
    const tab = new Tab();
    tab.setItem("parley.practice", "{not json");
    expect(new PracticeStore(tab as unknown as Storage).get().phase).toBe("idle");
    tab.setItem("parley.practice", JSON.stringify({ sessionId: 7, outgoing: { text: 1 } }));
    expect(readSaved(tab as unknown as Storage)).toEqual({ sessionId: null, startedAt: null, draft: "", outgoing: null });
    const full = { getItem: () => null, setItem: () => { throw new DOMException("full", "QuotaExceededError"); } };
    const store = new PracticeStore(full as unknown as Storage);
    store.dispatch({ type: "draft", text: "still here" });
    expect(store.get().draft).toBe("still here");
  });
});
