// The admin console (admin role only; its own chunk, so it adds nothing to the dashboard):
// users (search, disable, enable), profiles, devices (move), the audit log, alert-path
// latency, and shard and database health.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError, get, send, type Schemas } from "../api/client";
import { auditColumns } from "../components/auditColumns";
import { Field, FormError } from "../components/Field";
import { Table } from "../components/Table";
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
      <Table
        rows={users}
        rowKey={(u) => u.id}
        columns={[
          { header: "Email", cell: (u) => u.email },
          { header: "Name", cell: (u) => u.name },
          { header: "Since", cell: (u) => formatDateTime(new Date(u.created_at), prefs.clock) },
          { header: "Profiles", cell: (u) => u.profile_count },
          { header: "Devices", cell: (u) => u.device_count },
          { header: "Status", cell: (u) => (u.disabled_at ? "disabled" : u.is_admin ? "admin" : "active") },
          {
            header: "Action",
            cell: (u) =>
              u.disabled_at ? (
                <button type="button" aria-label={`Enable ${u.email}`} onClick={() => act(u, "enable")}>
                  Enable
                </button>
              ) : (
                <button type="button" aria-label={`Disable ${u.email}`} onClick={() => act(u, "disable")}>
                  Disable
                </button>
              ),
          },
        ]}
      />
    </section>
  );
}

function Profiles() {
  const [profiles, , setQ, , error] = useSearch<Schemas["AdminProfile"]>("/v1/admin/profiles");
  return (
    <section aria-label="Profiles">
      <SearchBox label="Search profiles by name or manager" onSearch={setQ} />
      <FormError message={error} />
      <Table
        rows={profiles}
        rowKey={(p) => p.id}
        columns={[
          { header: "Name", cell: (p) => p.name },
          { header: "Kind", cell: (p) => p.kind },
          { header: "Manager", cell: (p) => p.manager_email },
          { header: "Time zone", cell: (p) => p.timezone },
          { header: "Devices", cell: (p) => p.device_count },
          { header: "Id", cell: (p) => p.id, className: "mono" },
        ]}
      />
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
      <Table
        rows={devices}
        rowKey={(d) => d.id}
        columns={[
          { header: "Serial", cell: (d) => d.serial },
          { header: "Kind", cell: (d) => d.kind },
          { header: "Profile", cell: (d) => d.profile_id, className: "mono" },
          {
            header: "Action",
            cell: (d) =>
              moving === d.id ? (
                <form onSubmit={(e) => move(e, d.id)}>
                  <Field label={`New profile id for ${d.serial}`} name="profile_id" required error={moveError[d.id]} />
                  <button type="submit">Move</button>
                </form>
              ) : (
                <button type="button" aria-label={`Move ${d.serial} to another profile`} onClick={() => setMoving(d.id)}>
                  Move
                </button>
              ),
          },
        ]}
      />
    </section>
  );
}

function Audit() {
  const { prefs } = useApp();
  const [page, setPage] = useState<Schemas["AuditPage"] | null>(null);
  const audit = auditColumns(prefs.clock);
  useEffect(() => {
    get<Schemas["AuditPage"]>("/v1/admin/audit?limit=100").then(setPage).catch(() => setPage(null));
  }, []);
  return (
    <section aria-label="Audit log">
      <Table
        rows={page?.items ?? []}
        rowKey={(a) => String(a.id)}
        columns={[
          audit.when,
          audit.who,
          { header: "Profile", cell: (a) => a.profile_id, className: "mono" },
          audit.what,
          { header: "From", cell: (a) => a.client_addr ?? "" },
        ]}
      />
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
      <Table
        rows={rows}
        rowKey={([label]) => label}
        columns={[
          { header: "Path", cell: ([label]) => label, rowHeader: true },
          { header: "Alerts", cell: ([, l]) => l.count },
          { header: "p50", cell: ([, l]) => ms(l.p50_ms) },
          { header: "p95", cell: ([, l]) => ms(l.p95_ms) },
          { header: "p99", cell: ([, l]) => ms(l.p99_ms) },
          { header: "max", cell: ([, l]) => ms(l.max_ms) },
        ]}
      />
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
