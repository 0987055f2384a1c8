// One live-stream connection for the whole app; pages listen for the messages they need.
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { openStream, type StreamMessage } from "../lib/stream";

type Listener = (m: StreamMessage) => void;
interface Stream {
  listen: (fn: Listener) => () => void;
  connected: boolean;
}

const StreamContext = createContext<Stream>({ listen: () => () => undefined, connected: false });

export function StreamProvider({
  children,
  onRevoked,
  subscription,
}: {
  children: ReactNode;
  onRevoked: () => void;
  // The visible profiles: a new one (an accepted invitation) reconnects; null while they
  // load (one connection once they are known, not one opened and dropped at once).
  subscription: string | null;
}) {
  const listeners = useRef(new Set<Listener>());
  const revoked = useRef(onRevoked);
  revoked.current = onRevoked;
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (subscription === null) return;
    return openStream((m) => {
      if (m.type === "subscribed") setConnected(true);
      if (m.type === "revoked") revoked.current();
      listeners.current.forEach((fn) => fn(m));
    });
  }, [subscription]);
  const value = useRef<Stream>({
    listen: (fn) => {
      listeners.current.add(fn);
      return () => listeners.current.delete(fn);
    },
    connected: false,
  });
  return (
    <StreamContext.Provider value={{ ...value.current, connected }}>{children}</StreamContext.Provider>
  );
}

/** Calls `fn` for each stream message; the latest `fn` is used without reconnecting. */
export function useStream(fn: Listener): boolean {
  const { listen, connected } = useContext(StreamContext);
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => listen((m) => ref.current(m)), [listen]);
  return connected;
}
