import { HttpError } from "ra-core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

type Answer = { status?: number; body: unknown };

/** A server answering each request with the next of `answers`; records what it was asked. */
function server(...answers: Answer[]) {
  const fetch = vi.fn(async (_path: string, _init?: RequestInit) => {
    const { status = 200, body } = answers.shift() ?? { body: null };
    return new Response(JSON.stringify(body), { status });
  });
  vi.stubGlobal("fetch", fetch);
  return {
    paths: () => fetch.mock.calls.map((c) => c[0]),
    init: (i: number) => fetch.mock.calls[i][1] as RequestInit,
  };
}

async function provider() {
  const { adminDataProvider } = await import("./dataProvider");
  return adminDataProvider();
}

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `u${i}` }));

beforeEach(() => {
  sessionStorage.setItem("vigil.tokens", JSON.stringify({ access_token: "the-token", refresh_token: "r" }));
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.resetModules();
  sessionStorage.clear();
});

describe("the admin data provider: lists", () => {
  it("turns a page and the search into limit, offset and q, one row more to see a next page", async () => {
    const api = server({ body: rows(11) });
    const data = await provider();
    const page = await data.getList("users", {
      pagination: { page: 2, perPage: 10 },
      sort: { field: "id", order: "ASC" },
      filter: { q: "  ada " },
    });
    expect(api.paths()).toEqual(["/v1/admin/users?q=ada&limit=11&offset=10"]);
    expect(page.data.map((r) => r.id)).toEqual(rows(10).map((r) => r.id));
    expect(page.pageInfo).toEqual({ hasPreviousPage: true, hasNextPage: true });
    expect(page.total).toBeUndefined(); // the API does not count
    expect(new Headers(api.init(0).headers).get("Authorization")).toBe("Bearer the-token");
  });

  it("passes on only the filters the API knows, and knows the last page", async () => {
    const api = server({ body: rows(3) });
    const data = await provider();
    const page = await data.getList("devices", {
      pagination: { page: 1, perPage: 5 },
      sort: { field: "id", order: "ASC" },
      filter: { q: "G7", profile_id: "p1", sneaky: "x", manager_id: "" },
    });
    expect(api.paths()).toEqual(["/v1/admin/devices?q=G7&profile_id=p1&limit=6&offset=0"]);
    expect(page.data).toHaveLength(3);
    expect(page.pageInfo).toEqual({ hasPreviousPage: false, hasNextPage: false });
    expect(page.total).toBe(3); // the last page: the total is known
  });

  it("lists a profile's devices as a reference (the target becomes a filter)", async () => {
    const api = server({ body: [] });
    const data = await provider();
    await data.getManyReference("devices", {
      target: "profile_id",
      id: "p9",
      pagination: { page: 1, perPage: 25 },
      sort: { field: "id", order: "ASC" },
      filter: {},
    });
    expect(api.paths()).toEqual(["/v1/admin/devices?profile_id=p9&limit=26&offset=0"]);
  });

  it("pages the audit log by its cursor, in order", async () => {
    const entry = (id: number) => ({ id, at: "2026-01-01T00:00:00Z" });
    const api = server(
      { body: { items: [entry(9), entry(8)], next_before: 8 } },
      { body: { items: [entry(7)], next_before: null } },
    );
    const data = await provider();
    const params = (page: number) => ({
      pagination: { page, perPage: 2 },
      sort: { field: "id", order: "DESC" as const },
      filter: { profile_id: "p1" },
    });
    const first = await data.getList("audit", params(1));
    const second = await data.getList("audit", params(2));
    expect(api.paths()).toEqual([
      "/v1/admin/audit?profile_id=p1&limit=2",
      "/v1/admin/audit?profile_id=p1&limit=2&before=8",
    ]);
    expect(first.pageInfo).toEqual({ hasPreviousPage: false, hasNextPage: true });
    expect(second.data.map((e) => e.id)).toEqual([7]);
    expect(second.pageInfo).toEqual({ hasPreviousPage: true, hasNextPage: false });
    expect([first.total, second.total]).toEqual([undefined, 3]);
    await expect(data.getList("audit", params(3))).rejects.toMatchObject({ status: 400 });
  });
});

describe("the admin data provider: changes and errors", () => {
  it("disables and enables a user, and moves a device, with the API's own calls", async () => {
    const api = server({ body: { id: "u1", disabled_at: "x" } }, { body: { id: "u1" } }, { body: { id: "d1" } });
    const data = await provider();
    const done = await data.update("users", { id: "u1", data: { disabled: true }, previousData: { id: "u1" } });
    await data.update("users", { id: "u1", data: { disabled: false }, previousData: { id: "u1" } });
    await data.update("devices", { id: "d1", data: { profile_id: " p2 " }, previousData: { id: "d1" } });
    expect(done.data).toEqual({ id: "u1", disabled_at: "x" });
    expect(api.paths()).toEqual([
      "/v1/admin/users/u1/disable",
      "/v1/admin/users/u1/enable",
      "/v1/admin/devices/d1/move",
    ]);
    expect(api.init(0).method).toBe("POST");
    expect(JSON.parse(String(api.init(2).body))).toEqual({ profile_id: "p2" });
  });

  it("turns the API's message into a react-admin HttpError with its status", async () => {
    server({ status: 409, body: { detail: "you cannot disable your own account" } });
    const data = await provider();
    const failed = data.update("users", { id: "me", data: { disabled: true }, previousData: { id: "me" } });
    await expect(failed).rejects.toBeInstanceOf(HttpError);
    await expect(failed).rejects.toMatchObject({ status: 409, message: "you cannot disable your own account" });
  });

  it("names the field of a validation error, for the message and for forms", async () => {
    const detail = [{ loc: ["body", "profile_id"], msg: "Input should be a valid UUID", type: "uuid_parsing" }];
    server({ status: 422, body: { detail } });
    const data = await provider();
    const failed = data.update("devices", { id: "d1", data: { profile_id: "nope" }, previousData: { id: "d1" } });
    await expect(failed).rejects.toMatchObject({
      status: 422,
      message: "profile_id: Input should be a valid UUID",
      body: { errors: { profile_id: "Input should be a valid UUID" } },
    });
  });

  it("refuses what the admin API does not offer, without asking it", async () => {
    const api = server();
    const data = await provider();
    await expect(data.delete("users", { id: "u1" })).rejects.toMatchObject({ status: 405 });
    await expect(data.getList("alerts", { pagination: { page: 1, perPage: 5 } })).rejects.toMatchObject({
      status: 405,
    });
    expect(api.paths()).toEqual([]);
  });

  it("shows the health body even when Vigil answers 503", async () => {
    const down = { status: "not ready", database: false, shards: 1, shard_count: 2, shard_states: [], nodes: 1 };
    server({ status: 503, body: down });
    const data = await provider();
    expect(await data.health()).toEqual(down);
  });
});
