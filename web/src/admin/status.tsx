// The console's two custom pages: the alert path's latency (receipt to firing, and to each
// delivery channel) and the health of the shards and the database (refreshed every 10 s).
import { useQuery } from "@tanstack/react-query";
import { useDataProvider } from "react-admin";
import type { Schemas } from "../api/client";
import { FormError } from "../components/Field";
import { Table } from "../components/Table";
import type { AdminDataProvider } from "./dataProvider";

const ms = (v: number | null) => (v == null ? "—" : `${Math.round(v)} ms`);

export function LatencyPage() {
  const data = useDataProvider<AdminDataProvider>();
  const { data: latency, error } = useQuery({ queryKey: ["alert-latency"], queryFn: () => data.alertLatency() });
  const rows: [string, Schemas["Latency"]][] = latency
    ? [["Receipt to firing", latency.fired], ...latency.delivered.map((c) => [`Receipt to ${c.channel}`, c] as [string, Schemas["Latency"]])]
    : [];
  return (
    <section aria-label="Alert latency">
      <FormError message={error?.message} />
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

export function HealthPage() {
  const data = useDataProvider<AdminDataProvider>();
  const { data: ready, error } = useQuery({
    queryKey: ["health"],
    queryFn: () => data.health(),
    refetchInterval: 10_000,
  });
  return (
    <section aria-label="Health">
      {!ready ? (
        <p>{error ? "Vigil does not answer." : "Asking Vigil …"}</p>
      ) : (
        <>
          <dl className="health">
            <dt>Status</dt>
            <dd>{ready.status}</dd>
            <dt>Database</dt>
            <dd>{ready.database ? "answering" : "not answering"}</dd>
            <dt>Shards</dt>
            <dd>
              {ready.shards} of {ready.shard_count} answering, on {ready.nodes} node(s)
            </dd>
          </dl>
          <Table
            rows={ready.shard_states ?? []}
            rowKey={(s) => String(s.index)}
            columns={[
              { header: "Shard", cell: (s) => s.index, rowHeader: true },
              { header: "Answering", cell: (s) => (s.answered ? "yes" : "no") },
              // Ray's node ids are 56 hex digits; the first 12 tell nodes apart on a phone too.
              { header: "Node", cell: (s) => (s.node ? <span title={s.node}>{s.node.slice(0, 12)}</span> : "—"), className: "mono" },
              { header: "Devices", cell: (s) => s.devices ?? "—" },
              { header: "Rows buffered", cell: (s) => s.buffered_rows ?? "—" },
            ]}
          />
        </>
      )}
    </section>
  );
}
