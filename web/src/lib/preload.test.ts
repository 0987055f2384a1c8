import { afterEach, describe, expect, it, vi } from "vitest";

afterEach(() => {
  vi.unstubAllGlobals();
  vi.resetModules();
  sessionStorage.clear();
});

function answering(): ReturnType<typeof vi.fn> {
  const fetch = vi.fn(async (path: string) => new Response(JSON.stringify({ path }), { status: 200 }));
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

describe("preload", () => {
  it("starts the first calls at once and hands each answer out once", async () => {
    sessionStorage.setItem("vigil.tokens", JSON.stringify({ access_token: "a", refresh_token: "r" }));
    const fetch = answering();
    const { preload, getFirst } = await import("./preload");
    preload();
    expect(fetch.mock.calls.map((c) => c[0])).toEqual(["/v1/profiles", "/v1/devices"]);
    expect(await getFirst("/v1/profiles")).toEqual({ path: "/v1/profiles" });
    expect(fetch).toHaveBeenCalledTimes(2);
    await getFirst("/v1/profiles"); // taken: a fresh request
    expect(fetch).toHaveBeenCalledTimes(3);
  });
  it("fetches nothing before sign-in", async () => {
    const fetch = answering();
    const { preload } = await import("./preload");
    preload();
    expect(fetch).not.toHaveBeenCalled();
  });
});
