// The dashboard's first API calls, started as soon as the script runs (before React draws
// anything) when a session is already signed in, and chained here rather than behind React's
// renders: the profiles and devices at once; as soon as the profiles answer, the chosen
// profile's 24 h chart and alert settings; as soon as the devices answer too, their latest
// values. The first screen is then two API round trips behind the script, with nothing
// waiting for a render in between.
//
// Calls the first screen does not need (the events list, the admin check) wait for it
// (`afterFirstScreen`), so on a busy server they do not queue beside the chart.
import { accessToken, get } from "../api/client";

export const FIRST_CALLS = ["/v1/profiles", "/v1/devices"] as const;
/** A preloaded answer older than this is not handed out (a fresh request is made). */
export const FRESH_MS = 10_000;
/** The first screen counts as drawn after this long even if no chart arrived (an error). */
export const FIRST_SCREEN_MS = 3_000;

interface ProfileRef {
  id: string;
}
interface DeviceRef {
  id: string;
  profile_id: string;
}

const started = new Map<string, { answer: Promise<unknown>; at: number }>();
let latestStarted: Promise<void> = Promise.resolve();
let firstScreenDone: () => void = () => undefined;
const firstScreen = new Promise<void>((resolve) => (firstScreenDone = resolve));

/** The profile shown: the one chosen last time on this browser, else the first. */
export function chooseProfile<P extends ProfileRef>(profiles: P[], selected: string | null): P | null {
  return profiles.find((p) => p.id === selected) ?? profiles[0] ?? null;
}

export const chartPath = (profileId: string, window: string) => `/v1/profiles/${profileId}/chart?window=${window}`;
export const alertSettingsPath = (profileId: string) => `/v1/profiles/${profileId}/alert-settings`;
export const latestPath = (deviceId: string) => `/v1/devices/${deviceId}/latest`;

function start<T>(path: string): Promise<T> {
  const answer = get<T>(path);
  answer.catch(() => undefined); // the page that takes it sees the error
  started.set(path, { answer, at: Date.now() });
  return answer;
}

/** Start the first calls (once each, and only with a session); on the dashboard, chain the
 * chart, alert settings and latest values of the profile it will show. */
export function preload(): void {
  if (!accessToken()) {
    markFirstScreen();
    return;
  }
  if (started.size > 0) return;
  const profiles = start<ProfileRef[]>(FIRST_CALLS[0]);
  const devices = start<DeviceRef[]>(FIRST_CALLS[1]);
  if (location.pathname !== "/") {
    markFirstScreen(); // another page: nothing below is waited for
    return;
  }
  const shown = profiles.then((list) => chooseProfile(list, localStorage.getItem("vigil.profile")));
  shown
    .then((p) => {
      if (!p) return markFirstScreen();
      start(chartPath(p.id, "24h"));
      start(alertSettingsPath(p.id));
    })
    .catch(markFirstScreen);
  latestStarted = Promise.all([shown, devices])
    .then(([p, list]) => list.filter((d) => p && d.profile_id === p.id).forEach((d) => start(latestPath(d.id))))
    .catch(() => undefined);
  setTimeout(markFirstScreen, FIRST_SCREEN_MS);
}

/** The preloaded answer for `path`, taken once while fresh (later calls fetch afresh); else a
 * request. */
export function getFirst<T>(path: string): Promise<T> {
  const early = started.get(path);
  started.delete(path);
  return early && Date.now() - early.at < FRESH_MS ? (early.answer as Promise<T>) : get<T>(path);
}

/** Settles once the latest values are preloaded (or will not be): the dashboard waits for it
 * before taking them, whichever of the profiles and devices answered last. */
export function latestPreloaded(): Promise<void> {
  return latestStarted;
}

/** The dashboard's first chart is drawn (or the app shows another page first). */
export function markFirstScreen(): void {
  firstScreenDone();
}

/** Runs `fn` once the first screen is drawn (at once when it already is). */
export function afterFirstScreen(fn: () => void): void {
  firstScreen.then(fn).catch(() => undefined);
}
