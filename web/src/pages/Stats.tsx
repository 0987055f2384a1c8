// Statistics of a period beside the previous one, the time-in-ranges bar, the report PDF
// and clinician links.
import { useEffect, useState } from "react";
import { download, get, send, type Schemas } from "../api/client";
import { FormError } from "../components/Field";
import { Table } from "../components/Table";
import { formatGlucose, type GlucoseUnit } from "../lib/units";
import { canManage, useApp } from "../state";

const PERIODS = [
  ["24h", "24 h"],
  ["7d", "7 days"],
  ["14d", "14 days"],
  ["30d", "30 days"],
] as const;

type Metrics = Schemas["GlucoseMetrics"];
type Row = [string, (m: Metrics) => number | null | undefined, string, (v: number, u: GlucoseUnit) => string];

const pct = (v: number) => `${v.toFixed(1)} %`;
const glucose = (v: number, u: GlucoseUnit) => `${formatGlucose(v, u)} ${u}`;
const ROWS: Row[] = [
  ["Time in range 70–180", (m) => m.ranges.in_70_180_pct, "in_70_180_pct", pct],
  ["Time below 70", (m) => m.ranges.below_70_pct, "below_70_pct", pct],
  ["Time below 54", (m) => m.ranges.below_54_pct, "below_54_pct", pct],
  ["Time above 180", (m) => m.ranges.above_180_pct, "above_180_pct", pct],
  ["Time above 250", (m) => m.ranges.above_250_pct, "above_250_pct", pct],
  ["Mean glucose", (m) => m.mean_mgdl, "mean_mgdl", glucose],
  ["Standard deviation", (m) => m.sd_mgdl, "sd_mgdl", glucose],
  ["Coefficient of variation", (m) => m.cv_pct, "cv_pct", pct],
  ["GMI", (m) => m.gmi_pct, "gmi_pct", pct],
  ["Sensor data", (m) => m.data_sufficiency_pct, "data_sufficiency_pct", pct],
];

const TEMPERATURE_ROWS = [
  ["Mean", "mean_c", " °C"],
  ["Highest", "max_c", " °C"],
  ["Time in fever", "time_in_fever_pct", " %"],
] as const;

// A metric the data do not define shows as a dash.
const shown = (v: number | null | undefined, fmt: (v: number) => string) => (v == null ? "—" : fmt(v));

export function StatsPage() {
  const { profile, prefs } = useApp();
  const [period, setPeriod] = useState("14d");
  const [stats, setStats] = useState<Schemas["Stats"] | null>(null);
  const [error, setError] = useState("");
  const pid = profile!.id;

  useEffect(() => {
    setStats(null);
    get<Schemas["Stats"]>(`/v1/profiles/${pid}/stats?period=${period}`)
      .then((s) => (setStats(s), setError("")))
      .catch((e) => setError(String(e.message ?? e)));
  }, [pid, period]);

  const g = stats?.glucose;
  const t = stats?.temperature;
  // A change of a percentage is in percentage points.
  const signed = (v: number, f: (v: number, u: GlucoseUnit) => string) =>
    `${v > 0 ? "+" : v < 0 ? "−" : "±"}${f === pct ? `${Math.abs(v).toFixed(1)} points` : f(Math.abs(v), prefs.unit)}`;
  return (
    <>
      <h1>Statistics</h1>
      <div role="group" aria-label="Period" className="segmented">
        {PERIODS.map(([p, label]) => (
          <button key={p} type="button" aria-pressed={period === p} onClick={() => setPeriod(p)}>
            {label}
          </button>
        ))}
      </div>
      <FormError message={error} />
      {!stats && !error && <p>Loading …</p>}
      {stats && !g && !t && <p>No readings in this period.</p>}
      {g && (
        <section aria-labelledby="glucose-stats">
          <h2 id="glucose-stats">Glucose</h2>
          <RangesBar ranges={g.current.ranges} />
          <Table
            caption={<caption className="sr-only">Glucose statistics: this period, the previous one and the change</caption>}
            rows={ROWS}
            rowKey={([, , key]) => key}
            columns={[
              { header: "Metric", cell: ([label]) => label, rowHeader: true },
              { header: "This period", cell: ([, pick, , fmt]) => shown(pick(g.current), (v) => fmt(v, prefs.unit)) },
              { header: "Previous", cell: ([, pick, , fmt]) => shown(pick(g.previous), (v) => fmt(v, prefs.unit)) },
              { header: "Change", cell: ([, , key, fmt]) => shown(g.change[key], (v) => signed(v, fmt)) },
            ]}
          />
        </section>
      )}
      {t && (
        <section aria-labelledby="temp-stats">
          <h2 id="temp-stats">Temperature</h2>
          <Table
            rows={TEMPERATURE_ROWS}
            rowKey={([, key]) => key}
            columns={[
              { header: "Metric", cell: ([label]) => label, rowHeader: true },
              { header: "This period", cell: ([, key, unit]) => shown(t.current[key], (v) => `${v.toFixed(1)}${unit}`) },
              { header: "Previous", cell: ([, key, unit]) => shown(t.previous[key], (v) => `${v.toFixed(1)}${unit}`) },
            ]}
          />
        </section>
      )}
      <Report profileId={pid} canShare={canManage(profile)} />
    </>
  );
}

export function RangesBar({ ranges }: { ranges: Schemas["Ranges"] }) {
  const parts: [string, number | null, string][] = [
    ["Very low (below 54)", ranges.below_54_pct, "vlow"],
    ["Low (54–69)", ranges.from_54_below_70_pct, "low"],
    ["In range (70–180)", ranges.in_70_180_pct, "in"],
    ["High (181–250)", ranges.above_180_to_250_pct, "high"],
    ["Very high (above 250)", ranges.above_250_pct, "vhigh"],
  ];
  return (
    <figure className="ranges">
      <div className="ranges-bar" aria-hidden="true">
        {parts.map(([label, v, cls]) => (
          <span key={cls} className={`r-${cls}`} style={{ width: `${v ?? 0}%` }} title={label} />
        ))}
      </div>
      <figcaption>
        <ul className="ranges-legend">
          {parts.map(([label, v, cls]) => (
            <li key={cls}>
              <span className={`swatch r-${cls}`} aria-hidden="true" /> {label}: {v == null ? "—" : `${v.toFixed(1)} %`}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}

function Report({ profileId, canShare }: { profileId: string; canShare: boolean }) {
  const [link, setLink] = useState<string>("");
  const [error, setError] = useState("");
  return (
    <section aria-labelledby="report-title">
      <h2 id="report-title">Report</h2>
      <div className="actions">
        <button
          type="button"
          onClick={() =>
            download(`/v1/profiles/${profileId}/report?days=15&format=pdf`, "vigil-report-15d.pdf").catch((e) => setError(String(e.message ?? e)))
          }
        >
          Download the 15-day report (PDF)
        </button>
        {canShare && (
          <button
            type="button"
            onClick={async () => {
              try {
                const made = await send<Schemas["ReportLinkCreated"]>("POST", `/v1/profiles/${profileId}/report-links`, {
                  days: 15,
                  expires_in_hours: 72,
                });
                setLink(new URL(made.url, location.origin).toString());
              } catch (e) {
                setError(String((e as Error).message ?? e));
              }
            }}
          >
            Create a clinician link
          </button>
        )}
      </div>
      <FormError message={error} />
      {link && (
        <p role="status">
          Clinician link (works for 72 hours without a login): <a href={link}>{link}</a>
        </p>
      )}
    </section>
  );
}
