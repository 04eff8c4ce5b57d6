/**
 * The practice session, kept outside the page: a learner who opens Settings or History in the middle
 * of a session comes back to it as it was, and a reply that arrives meanwhile is not lost. What the
 * learner has not sent yet - the answer box, a message waiting for its reply - and the session to
 * continue are also kept in the tab's sessionStorage, so a reload loses nothing either.
 */

import { useSyncExternalStore } from "react";
import type { Recording } from "./recorder";
import { initialSession, sessionReducer, type SessionEvent, type SessionState } from "./session";

const KEY = "parley.practice";

/** What survives a reload. */
export interface Saved {
  /** the session to offer to continue (null once it has ended) */
  sessionId: string | null;
  startedAt: string | null;
  draft: string;
  outgoing: SessionState["outgoing"];
}

function storage(): Storage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null; // storage disabled
  }
}

export function readSaved(from: Storage | null = storage()): Saved | null {
  try {
    const raw = JSON.parse(from?.getItem(KEY) ?? "null") as Partial<Saved> | null;
    if (!raw || typeof raw !== "object") return null;
    const outgoing = raw.outgoing && typeof raw.outgoing.messageId === "string" && typeof raw.outgoing.text === "string"
      ? raw.outgoing : null;
    return {
      sessionId: typeof raw.sessionId === "string" ? raw.sessionId : null,
      startedAt: typeof raw.startedAt === "string" ? raw.startedAt : null,
      draft: typeof raw.draft === "string" ? raw.draft : "",
      outgoing,
    };
  } catch {
    return null;
  }
}

export function toSaved(state: SessionState): Saved {
  const open = state.sessionId !== null && state.phase !== "ended";
  return {
    sessionId: open ? state.sessionId : null,
    startedAt: open ? state.session?.startedAt ?? null : null,
    // A message waiting for its reply is the learner's words too: it goes back into the box on failure.
    draft: state.draft,
    outgoing: state.outgoing,
  };
}

export class PracticeStore {
  private state: SessionState;
  private readonly listeners = new Set<() => void>();
  /** the last recording, kept until its transcript arrives (Try again sends it again) */
  recording: Recording | null = null;
  /** tutor turns whose voice was already played automatically (never twice, e.g. on coming back) */
  readonly autoPlayed = new Set<string>();

  constructor(private readonly store: Storage | null = storage()) {
    const saved = readSaved(store);
    this.state = { ...initialSession, draft: saved?.draft || saved?.outgoing?.text || "", outgoing: saved?.outgoing ?? null };
  }

  readonly get = (): SessionState => this.state;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly dispatch = (event: SessionEvent): void => {
    const next = sessionReducer(this.state, event);
    if (next === this.state) return;
    this.state = next;
    try {
      this.store?.setItem(KEY, JSON.stringify(toSaved(next)));
    } catch {
      /* storage full or disabled: the state is still on the screen */
    }
    for (const listener of this.listeners) listener();
  };

  /** The session a reload left behind, if there is one to continue. */
  resumable(): Saved | null {
    const saved = readSaved(this.store);
    return this.state.phase === "idle" && saved?.sessionId ? saved : null;
  }

  /** Forget the session a reload left behind (the learner starts a new one, or it has ended). */
  forgetResumable(): void {
    const saved = readSaved(this.store);
    if (!saved) return;
    try {
      this.store?.setItem(KEY, JSON.stringify({ ...saved, sessionId: null, startedAt: null }));
    } catch {
      /* nothing to forget then */
    }
    for (const listener of this.listeners) listener();
  }
}

export const practice = new PracticeStore();

export function usePractice(store: PracticeStore = practice): SessionState {
  return useSyncExternalStore(store.subscribe, store.get);
}
