// The live stream (/v1/stream WebSocket): authenticates with a first message (no token in
// URLs or logs), and reconnects by itself with a growing pause.
import { accessToken, raw } from "../api/client";

export type StreamMessage = { type: string; profile_id?: string; [k: string]: unknown };

export function openStream(onMessage: (m: StreamMessage) => void): () => void {
  let socket: WebSocket | null = null;
  let stopped = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const connect = () => {
    const token = accessToken();
    if (stopped || !token) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${proto}//${location.host}/v1/stream`);
    socket.onopen = () => socket?.send(JSON.stringify({ type: "auth", token }));
    socket.onmessage = (e) => {
      const m = JSON.parse(e.data) as StreamMessage;
      if (m.type === "subscribed") attempt = 0;
      onMessage(m);
    };
    socket.onclose = async (e) => {
      if (stopped) return;
      if (e.code === 4401) await raw("/v1/profiles"); // renews the access token if it can
      const pause = Math.min(15_000, 500 * 2 ** attempt++);
      timer = setTimeout(connect, pause);
    };
  };
  connect();
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket?.close();
  };
}
