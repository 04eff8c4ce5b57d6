import { useSyncExternalStore } from "react";
import { useApp } from "../context";
import { ProofreadSocket, type SocketState } from "./socket";

let socket: ProofreadSocket | null = null;

/** One connection for the app's lifetime, shared by proofreading and the streamed tutor turn: it
 * outlives a page change, so an answer in flight is kept. */
export function useAppSocket(): ProofreadSocket {
  const { config, auth } = useApp();
  socket ??= new ProofreadSocket({
    url: config.webSocketUrl,
    query: () => auth.socketQuery(),
    heartbeatMs: (config.heartbeatSeconds ?? 300) * 1000,
  });
  return socket;
}

export function useSocketState(s: ProofreadSocket): SocketState {
  return useSyncExternalStore((notify) => s.onState(notify), () => s.state);
}
