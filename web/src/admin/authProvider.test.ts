import { afterEach, describe, expect, it, vi } from "vitest";

afterEach(() => {
  vi.unstubAllGlobals();
  vi.resetModules();
  sessionStorage.clear();
});

async function provider(signedIn: boolean) {
  if (signedIn) {
    sessionStorage.setItem("vigil.tokens", JSON.stringify({ access_token: "a", refresh_token: "r" }));
  }
  const { sessionAuthProvider } = await import("./authProvider");
  const client = await import("../api/client");
  return { auth: sessionAuthProvider("ops@example.org"), client };
}

describe("the admin auth provider: the dashboard's session", () => {
  it("lets the signed-in admin in as who they are", async () => {
    const { auth } = await provider(true);
    await expect(auth.checkAuth({})).resolves.toBeUndefined();
    await expect(auth.getIdentity!()).resolves.toEqual({ id: "ops@example.org", fullName: "ops@example.org" });
  });

  it("sends no one in without the session (the app shows its sign-in page)", async () => {
    const { auth } = await provider(false);
    await expect(auth.checkAuth({})).rejects.toThrow();
  });

  it("ends the session on a 401 only; a 403 or 409 stays a message on the page", async () => {
    const { auth } = await provider(true);
    await expect(auth.checkError({ status: 401 })).rejects.toThrow();
    await expect(auth.checkError({ status: 403 })).resolves.toBeUndefined();
    await expect(auth.checkError({ status: 409 })).resolves.toBeUndefined();
  });

  it("logs out through the app's client, which tells the app and revokes the refresh token", async () => {
    const fetch = vi.fn(async (_path: string, _init?: RequestInit) => new Response(null, { status: 204 }));
    vi.stubGlobal("fetch", fetch);
    const { auth, client } = await provider(true);
    const signedOut = vi.fn();
    client.onSignOut(signedOut);
    await expect(auth.logout({})).resolves.toBe(false); // no redirect: the app shows sign-in
    expect(client.accessToken()).toBeNull();
    expect(signedOut).toHaveBeenCalledOnce();
    expect(fetch.mock.calls.map((c) => c[0])).toEqual(["/v1/auth/logout"]);
  });
});
