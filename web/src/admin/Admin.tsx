// The admin console (admin role only; its own chunk, so it adds nothing to the dashboard):
// users (search, disable, enable), profiles, devices (move), the audit log, alert-path
// latency, and shard and database health.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError, get, send, type Schemas } from "../api/client";
import { Field, FormError } from "../components/Field";
import { formatDateTime } from "../lib/time";
import { useApp } from "../state";

const TABS = ["Users", "Profiles", "Devices", "Audit log", "Alert latency", "Health"] as const;
type Tab = (typeof TABS)[number];

export default function Admin() {
  const [tab, setTab] = useState<Tab>("Users");
  return (
    <>
      <h1>Admin console</h1>
      <div role="group" aria-label="Admin sections" className="segmented">
        {TABS.map((t) => (
          <button key={t} type="button" aria-pressed={tab === t} onClick={() => setTab(t)}>
            {t}
          </button>
        ))}
      </div>
      {tab === "Users" && <Users />}
      {tab === "Profiles" && <Profiles />}
      {tab === "Devices" && <Devices />}
      {tab === "Audit log" && <Audit />}
      {tab === "Alert latency" && <Latency />}
      {tab === "Health" && <Health />}
    </>
  );
}

function useSearch<T>(path: string): [T[], string, (q: string) => void, () => void, string] {
  const [q, setQ] = useState("");
  const [rows, setRows] = useState<T[]>([]);
  const [error, setError] = useState("");
  const load = useCallback(() => {
    get<T[]>(`${path}?limit=100${q ? `&q=${encodeURIComponent(q)}` : ""}`)
      .then((r) => (setRows(r), setError("")))
      .catch((e) => setError(String(e.message ?? e)));
  }, [path, q]);
  useEffect(load, [load]);
  return [rows, q, setQ, load, error];
}

function SearchBox({ label, onSearch }: { label: string; onSearch: (q: string) => void }) {
  return (
    <form
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onSearch(String(new FormData(e.currentTarget).get("q")).trim());
      }}
    >
      <Field label={label} name="q" type="search" />
      <button type="submit">Search</button>
    </form>
  );
}

function Users() {
  const { prefs } = useApp();
  const [users, , setQ, reload, error] = useSearch<Schemas["AdminUser"]>("/v1/admin/users");
  const [actionError, setActionError] = useState("");
  const act = async (u: Schemas["AdminUser"], what: "disable" | "enable") => {
    try {
      await send("POST", `/v1/admin/users/${u.id}/${what}`);
      setActionError("");
      reload();
    } catch (e) {
      setActionError(String((e as Error).message));
    }
  };
  return (
    <section aria-label="Users">
      <SearchBox label="Search users by email or name" onSearch={setQ} />
      <FormError message={error || actionError} />
      <table>
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Name</th>
            <th scope="col">Since</th>
            <th scope="col">Profiles</th>
            <th scope="col">Devices</th>
            <th scope="col">Status</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id}>
              <td>{u.email}</td>
              <td>{u.name}</td>
              <td>{formatDateTime(new Date(u.created_at), prefs.clock)}</td>
              <td>{u.profile_count}</td>
              <td>{u.device_count}</td>
              <td>{u.disabled_at ? "disabled" : u.is_admin ? "admin" : "active"}</td>
              <td>
                {u.disabled_at ? (
                  <button type="button" aria-label={`Enable ${u.email}`} onClick={() => act(u, "enable")}>
                    Enable
                  </button>
                ) : (
                  <button type="button" aria-label={`Disable ${u.email}`} onClick={() => act(u, "disable")}>
                    Disable
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Profiles() {
  const [profiles, , setQ, , error] = useSearch<Schemas["AdminProfile"]>("/v1/admin/profiles");
  return (
    <section aria-label="Profiles">
      <SearchBox label="Search profiles by name or manager" onSearch={setQ} />
      <FormError message={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Kind</th>
            <th scope="col">Manager</th>
            <th scope="col">Time zone</th>
            <th scope="col">Devices</th>
            <th scope="col">Id</th>
          </tr>
        </thead>
        <tbody>
          {profiles.map((p) => (
            <tr key={p.id}>
              <td>{p.name}</td>
              <td>{p.kind}</td>
              <td>{p.manager_email}</td>
              <td>{p.timezone}</td>
              <td>{p.device_count}</td>
              <td className="mono">{p.id}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Devices() {
  const [devices, , setQ, reload, error] = useSearch<Schemas["DeviceOut"]>("/v1/admin/devices");
  const [moving, setMoving] = useState<string | null>(null);
  const [moveError, setMoveError] = useState<Record<string, string>>({});
  const move = async (e: FormEvent<HTMLFormElement>, id: string) => {
    e.preventDefault();
    const profile_id = String(new FormData(e.currentTarget).get("profile_id")).trim();
    try {
      await send("POST", `/v1/admin/devices/${id}/move`, { profile_id });
      setMoving(null);
      setMoveError({});
      reload();
    } catch (err) {
      const d = err instanceof ApiError ? err.detail : String(err);
      setMoveError({ [id]: typeof d === "string" ? d : (d as { msg: string }[]).map((x) => x.msg).join("; ") });
    }
  };
  return (
    <section aria-label="Devices">
      <SearchBox label="Search devices by serial or model" onSearch={setQ} />
      <FormError message={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Serial</th>
            <th scope="col">Kind</th>
            <th scope="col">Profile</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => (
            <tr key={d.id}>
              <td>{d.serial}</td>
              <td>{d.kind}</td>
              <td className="mono">{d.profile_id}</td>
              <td>
                {moving === d.id ? (
                  <form onSubmit={(e) => move(e, d.id)}>
                    <Field label={`New profile id for ${d.serial}`} name="profile_id" required error={moveError[d.id]} />
                    <button type="submit">Move</button>
                  </form>
                ) : (
                  <button type="button" aria-label={`Move ${d.serial} to another profile`} onClick={() => setMoving(d.id)}>
                    Move
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Audit() {
  const { prefs } = useApp();
  const [page, setPage] = useState<Schemas["AuditPage"] | null>(null);
  useEffect(() => {
    get<Schemas["AuditPage"]>("/v1/admin/audit?limit=100").then(setPage).catch(() => setPage(null));
  }, []);
  return (
    <section aria-label="Audit log">
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Profile</th>
            <th scope="col">What</th>
            <th scope="col">From</th>
          </tr>
        </thead>
        <tbody>
          {(page?.items ?? []).map((a) => (
            <tr key={a.id}>
              <td>{formatDateTime(new Date(a.at), prefs.clock)}</td>
              <td>{a.actor_email ?? a.actor_kind}</td>
              <td className="mono">{a.profile_id}</td>
              <td>{a.action}</td>
              <td>{a.client_addr ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Latency() {
  const [data, setData] = useState<Schemas["AlertLatency"] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    get<Schemas["AlertLatency"]>("/v1/admin/alert-latency").then(setData).catch((e) => setError(String(e.message)));
  }, []);
  const ms = (v: number | null) => (v == null ? "—" : `${Math.round(v)} ms`);
  const rows: [string, Schemas["Latency"]][] = data
    ? [["Receipt to firing", data.fired], ...data.delivered.map((c: Schemas["ChannelLatency"]) => [`Receipt to ${c.channel}`, c] as [string, Schemas["Latency"]])]
    : [];
  return (
    <section aria-label="Alert latency">
      <FormError message={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Path</th>
            <th scope="col">Alerts</th>
            <th scope="col">p50</th>
            <th scope="col">p95</th>
            <th scope="col">p99</th>
            <th scope="col">max</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([label, l]) => (
            <tr key={label}>
              <th scope="row">{label}</th>
              <td>{l.count}</td>
              <td>{ms(l.p50_ms)}</td>
              <td>{ms(l.p95_ms)}</td>
              <td>{ms(l.p99_ms)}</td>
              <td>{ms(l.max_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Health() {
  const [ready, setReady] = useState<Schemas["Readiness"] | null>(null);
  const load = useCallback(async () => {
    const res = await fetch("/readyz");
    setReady((await res.json()) as Schemas["Readiness"]);
  }, []);
  useEffect(() => {
    load().catch(() => setReady(null));
    const t = setInterval(() => load().catch(() => undefined), 10_000);
    return () => clearInterval(t);
  }, [load]);
  return (
    <section aria-label="Health">
      {!ready ? (
        <p>Vigil does not answer.</p>
      ) : (
        <dl className="health">
          <dt>Status</dt>
          <dd>{ready.status}</dd>
          <dt>Database</dt>
          <dd>{ready.database ? "answering" : "not answering"}</dd>
          <dt>Shards</dt>
          <dd>
            {ready.shards} of {ready.shard_count} answering
          </dd>
        </dl>
      )}
    </section>
  );
}
