// The HTTP client: bearer tokens (refreshed once on 401), typed by the generated schema.
import type { components } from "./schema";

export type Schemas = components["schemas"];

export class ApiError extends Error {
  constructor(
    public status: number,
    public detail: unknown,
  ) {
    super(typeof detail === "string" ? detail : `request failed (${status})`);
  }
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

const KEY = "vigil.tokens";
let tokens: Tokens | null = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
const listeners = new Set<() => void>();

export function onSignOut(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function store(t: Tokens | null): void {
  tokens = t;
  if (t) sessionStorage.setItem(KEY, JSON.stringify(t));
  else sessionStorage.removeItem(KEY);
}

export function accessToken(): string | null {
  return tokens?.access_token ?? null;
}

async function tokenRequest(form: Record<string, string>): Promise<Tokens> {
  const res = await fetch("/v1/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, body.detail ?? res.statusText);
  return body as Tokens;
}

export async function signIn(email: string, password: string): Promise<void> {
  store(await tokenRequest({ grant_type: "password", username: email, password }));
}

export async function signOut(): Promise<void> {
  const t = tokens;
  store(null);
  listeners.forEach((fn) => fn());
  if (t) {
    await fetch("/v1/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: t.refresh_token }),
    }).catch(() => undefined);
  }
}

let refreshing: Promise<boolean> | null = null;

async function refresh(): Promise<boolean> {
  if (!tokens) return false;
  refreshing ??= tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token })
    .then((t) => (store(t), true))
    .catch(() => false)
    .finally(() => (refreshing = null));
  return refreshing;
}

export async function raw(path: string, init: RequestInit = {}, retry = true): Promise<Response> {
  const headers = new Headers(init.headers);
  if (tokens) headers.set("Authorization", `Bearer ${tokens.access_token}`);
  if (init.body && typeof init.body === "string") headers.set("Content-Type", "application/json");
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401 && retry && (await refresh())) return raw(path, init, false);
  if (res.status === 401 && tokens) {
    store(null);
    listeners.forEach((fn) => fn());
  }
  return res;
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await raw(path, init);
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body?.detail ?? res.statusText);
  return body as T;
}

export const get = <T>(path: string) => api<T>(path);
export const send = <T>(method: string, path: string, body?: unknown) =>
  api<T>(path, { method, body: body === undefined ? undefined : JSON.stringify(body) });

/** Fetches a file with the bearer token and hands it to the browser as a download. */
export async function download(path: string, filename: string): Promise<void> {
  const res = await raw(path);
  if (!res.ok) throw new ApiError(res.status, (await res.json().catch(() => null))?.detail);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
