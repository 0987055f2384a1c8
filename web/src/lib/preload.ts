// The dashboard's first API calls, started as soon as the script runs (before React draws
// anything) when a session is already signed in. Without this the profiles list waited for
// the app's first render and the devices list for the profiles: the live value sat three
// round trips behind the script, now two (profiles and devices at once, then the latest).
import { accessToken, get } from "../api/client";

export const FIRST_CALLS = ["/v1/profiles", "/v1/devices"] as const;

const started = new Map<string, Promise<unknown>>();

/** Start the first calls (once each, and only with a session). */
export function preload(): void {
  if (!accessToken()) return;
  for (const path of FIRST_CALLS) {
    if (started.has(path)) continue;
    const answer = get(path);
    answer.catch(() => undefined); // the page that takes it sees the error
    started.set(path, answer);
  }
}

/** The preloaded answer for `path`, taken once (later calls fetch afresh); else a request. */
export function getFirst<T>(path: string): Promise<T> {
  const answer = started.get(path) as Promise<T> | undefined;
  started.delete(path);
  return answer ?? get<T>(path);
}
