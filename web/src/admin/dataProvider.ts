// react-admin's data provider over Vigil's admin API (/v1/admin/...). List parameters become
// the API's query (`q` and the other filters it knows, `limit`/`offset` pages, or the audit
// log's `before` cursor), answers become records, and the API's errors become react-admin
// HttpErrors carrying its message (422 items by field, for forms). The bearer token and its
// refresh are the app's own client (api/client.ts): the admin console shares the session.
import { HttpError, type DataProvider, type GetListParams, type GetListResult, type RaRecord } from "ra-core";
import { ApiError, api, raw, send, type Schemas } from "../api/client";
import type { paths } from "../api/schema";
import { fieldErrors } from "../lib/validation";

export type UserRecord = Schemas["AdminUser"];
export type ProfileRecord = Schemas["AdminProfile"];
export type DeviceRecord = Schemas["DeviceOut"];
export type AuditRecord = Schemas["AuditEntry"];

type QueryOf<P extends keyof paths> = paths[P] extends { get: { parameters: { query?: infer Q } } }
  ? NonNullable<Q>
  : never;
type Filters<P extends keyof paths> = Exclude<keyof QueryOf<P>, "limit" | "offset" | "before">;

/** Each listed resource: its API path and the filters react-admin may pass on to it. */
const LISTS: { [R in "users" | "profiles" | "devices"]: { path: keyof paths; filters: string[] } } = {
  users: { path: "/v1/admin/users", filters: ["q"] satisfies Filters<"/v1/admin/users">[] },
  profiles: {
    path: "/v1/admin/profiles",
    filters: ["q", "manager_id"] satisfies Filters<"/v1/admin/profiles">[],
  },
  devices: {
    path: "/v1/admin/devices",
    filters: ["q", "profile_id", "manager_id"] satisfies Filters<"/v1/admin/devices">[],
  },
};
const AUDIT_FILTERS = ["profile_id", "actor_id", "start", "end"] satisfies Filters<"/v1/admin/audit">[];

type QueryValue = string | number | null | undefined;

/** `path?k=v&…`, leaving out empty values. */
export function withQuery(path: string, query: Record<string, QueryValue>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

function pick(filter: Record<string, unknown> | undefined, keys: string[]): Record<string, QueryValue> {
  const out: Record<string, QueryValue> = {};
  for (const key of keys) {
    const value = filter?.[key];
    if (typeof value === "string") out[key] = value.trim();
    else if (typeof value === "number") out[key] = value;
  }
  return out;
}

/** The API's error as react-admin's: its message, its status, its per-field messages. */
export function toHttpError(error: unknown): unknown {
  if (!(error instanceof ApiError)) return error;
  const { "": general, ...fields } = fieldErrors(error.detail);
  const named = Object.entries(fields).map(([field, msg]) => `${field}: ${msg}`);
  return new HttpError(general ?? (named.join("; ") || error.message), error.status, { errors: fields });
}

async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toHttpError(error);
  }
}

function unsupported(what: string): Promise<never> {
  return Promise.reject(new HttpError(`the admin API offers no ${what}`, 405));
}

function paging(params: Partial<GetListParams>): { page: number; perPage: number } {
  return { page: params.pagination?.page ?? 1, perPage: params.pagination?.perPage ?? 25 };
}

/** A page of a list the API does not count: whether there is a next one, and on the last
 * page (every earlier one full) the exact total, so the pagination can say "11-13 of 13". */
function pageOf<T>(data: T[], page: number, perPage: number, hasNextPage: boolean): GetListResult<T & RaRecord> {
  const pageInfo = { hasPreviousPage: page > 1, hasNextPage };
  const total = hasNextPage ? undefined : (page - 1) * perPage + data.length;
  return { data: data as (T & RaRecord)[], pageInfo, total };
}

/** A limit/offset page: one row more than asked tells whether there is a next page. */
async function offsetPage(path: string, filter: Record<string, QueryValue>, params: Partial<GetListParams>) {
  const { page, perPage } = paging(params);
  const url = withQuery(path, { ...filter, limit: perPage + 1, offset: (page - 1) * perPage });
  const rows = await call(() => api<RaRecord[]>(url));
  return pageOf(rows.slice(0, perPage), page, perPage, rows.length > perPage);
}

/** The audit log pages by cursor (`before` an entry id): page n starts where n-1 ended. */
function auditPages() {
  const cursors = new Map<string, number>(); // `${filters} ${perPage} ${page}` -> before
  return async (params: Partial<GetListParams>): Promise<GetListResult<AuditRecord & RaRecord>> => {
    const { page, perPage } = paging(params);
    const filter = pick(params.filter, AUDIT_FILTERS);
    const key = (n: number) => `${JSON.stringify(filter)} ${perPage} ${n}`;
    const before = page > 1 ? cursors.get(key(page)) : undefined;
    if (page > 1 && before === undefined) throw new HttpError("open the audit log's pages in order", 400);
    const url = withQuery("/v1/admin/audit", { ...filter, limit: perPage, before });
    const body = await call(() => api<Schemas["AuditPage"]>(url));
    if (body.next_before !== null) cursors.set(key(page + 1), body.next_before);
    return pageOf(body.items, page, perPage, body.next_before !== null);
  };
}

export interface AdminDataProvider extends DataProvider {
  alertLatency: () => Promise<Schemas["AlertLatency"]>;
  /** Readiness answers 503 with the same body when something is down: both are shown. */
  health: () => Promise<Schemas["Readiness"]>;
}

async function changeUser(id: string, disabled: boolean): Promise<UserRecord> {
  return call(() => send<UserRecord>("POST", `/v1/admin/users/${id}/${disabled ? "disable" : "enable"}`));
}

async function moveDevice(id: string, profile_id: string): Promise<DeviceRecord> {
  const body: Schemas["DeviceMove"] = { profile_id: profile_id.trim() };
  return call(() => send<DeviceRecord>("POST", `/v1/admin/devices/${id}/move`, body));
}

export function adminDataProvider(): AdminDataProvider {
  const audit = auditPages();
  const getList = async (resource: string, params: Partial<GetListParams>) => {
    if (resource === "audit") return audit(params);
    const list = LISTS[resource as keyof typeof LISTS];
    if (!list) return unsupported(`list of ${resource}`);
    return offsetPage(list.path, pick(params.filter, list.filters), params);
  };
  const getUser = (id: string) => call(() => api<Schemas["AdminUserDetail"]>(`/v1/admin/users/${id}`));
  return {
    getList: (resource, params) => getList(resource, params) as never,
    getOne: async (resource, { id }) =>
      resource === "users" ? { data: (await getUser(String(id))) as never } : unsupported(`single ${resource}`),
    getMany: async (resource, { ids }) =>
      resource === "users"
        ? { data: (await Promise.all(ids.map((id) => getUser(String(id))))) as never }
        : unsupported(`lookup of ${resource} by id`),
    getManyReference: (resource, { target, id, ...params }) =>
      getList(resource, { ...params, filter: { ...params.filter, [target]: id } }) as never,
    update: async (resource, { id, data }) => {
      if (resource === "users" && typeof data.disabled === "boolean") {
        return { data: (await changeUser(String(id), data.disabled)) as never };
      }
      if (resource === "devices" && typeof data.profile_id === "string") {
        return { data: (await moveDevice(String(id), data.profile_id)) as never };
      }
      return unsupported(`change of ${resource} like this`);
    },
    updateMany: () => unsupported("bulk change"),
    create: (resource) => unsupported(`creation of ${resource}`),
    delete: (resource) => unsupported(`deletion of ${resource}`),
    deleteMany: (resource) => unsupported(`deletion of ${resource}`),
    alertLatency: () => call(() => api<Schemas["AlertLatency"]>("/v1/admin/alert-latency")),
    health: async () => {
      const res = await raw("/readyz");
      const body = await res.json().catch(() => null);
      if (!body) throw new HttpError("Vigil does not answer", res.status);
      return body as Schemas["Readiness"];
    },
  };
}
