import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const PROFILES = [{ id: "p1" }, { id: "p2" }];
const DEVICES = [
  { id: "d1", profile_id: "p1" },
  { id: "d2", profile_id: "p2" },
  { id: "d3", profile_id: "p2" },
];

beforeEach(() => history.replaceState(null, "", "/"));
afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
  vi.resetModules();
  sessionStorage.clear();
  localStorage.clear();
});

function signedIn(): void {
  sessionStorage.setItem("vigil.tokens", JSON.stringify({ access_token: "a", refresh_token: "r" }));
}

/** A server answering the profiles and devices lists, and `{path}` for anything else. */
function answering(): ReturnType<typeof vi.fn> {
  const body = (path: string) =>
    path === "/v1/profiles" ? PROFILES : path === "/v1/devices" ? DEVICES : { path };
  const fetch = vi.fn(async (path: string) => new Response(JSON.stringify(body(path)), { status: 200 }));
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

const paths = (fetch: ReturnType<typeof vi.fn>) => fetch.mock.calls.map((c) => c[0] as string);

describe("preload", () => {
  it("starts the first calls at once and hands each answer out once", async () => {
    signedIn();
    const fetch = answering();
    const { preload, getFirst, latestPreloaded } = await import("./preload");
    preload();
    expect(paths(fetch)).toEqual(["/v1/profiles", "/v1/devices"]);
    await latestPreloaded(); // the chained calls are started
    const before = fetch.mock.calls.length;
    expect(await getFirst("/v1/profiles")).toEqual(PROFILES);
    expect(fetch).toHaveBeenCalledTimes(before);
    await getFirst("/v1/profiles"); // taken: a fresh request
    expect(fetch).toHaveBeenCalledTimes(before + 1);
  });

  it("fetches nothing before sign-in, and nothing waits for a first screen", async () => {
    const fetch = answering();
    const { preload, afterFirstScreen } = await import("./preload");
    preload();
    const ran = await new Promise<boolean>((resolve) => afterFirstScreen(() => resolve(true)));
    expect(ran).toBe(true);
    expect(fetch).not.toHaveBeenCalled();
  });

  it("chains the chosen profile's chart, alert settings and its devices' latest values", async () => {
    signedIn();
    localStorage.setItem("vigil.profile", "p2");
    const fetch = answering();
    const { preload, getFirst, latestPreloaded, chartPath, alertSettingsPath, latestPath } = await import("./preload");
    preload();
    await latestPreloaded();
    expect(paths(fetch).slice(2).sort()).toEqual(
      [chartPath("p2", "24h"), alertSettingsPath("p2"), latestPath("d2"), latestPath("d3")].sort(),
    );
    const calls = fetch.mock.calls.length;
    expect(await getFirst(chartPath("p2", "24h"))).toEqual({ path: chartPath("p2", "24h") });
    expect(await getFirst(latestPath("d3"))).toEqual({ path: latestPath("d3") });
    expect(fetch).toHaveBeenCalledTimes(calls); // both were the preloaded answers
  });

  it("hands out no answer older than FRESH_MS", async () => {
    signedIn();
    vi.useFakeTimers({ toFake: ["Date"] });
    const fetch = answering();
    const { preload, getFirst, FRESH_MS } = await import("./preload");
    preload();
    vi.setSystemTime(Date.now() + FRESH_MS + 1);
    await getFirst("/v1/devices");
    expect(paths(fetch).filter((p) => p === "/v1/devices")).toHaveLength(2);
  });

  it("holds the calls the first screen does not need until the chart is drawn", async () => {
    signedIn();
    answering();
    const { preload, afterFirstScreen, markFirstScreen, latestPreloaded } = await import("./preload");
    preload();
    await latestPreloaded();
    const ran: string[] = [];
    afterFirstScreen(() => ran.push("events"));
    await Promise.resolve();
    expect(ran).toEqual([]);
    markFirstScreen();
    await Promise.resolve();
    expect(ran).toEqual(["events"]);
  });

  it("on another page than the dashboard fetches no chart and holds nothing back", async () => {
    signedIn();
    history.replaceState(null, "", "/stats");
    const fetch = answering();
    const { preload, afterFirstScreen } = await import("./preload");
    preload();
    await new Promise<void>((resolve) => afterFirstScreen(resolve));
    expect(paths(fetch)).toEqual(["/v1/profiles", "/v1/devices"]);
  });
});
