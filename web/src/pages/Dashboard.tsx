// The dashboard: the live value (an ARIA live region), the charts and the events.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, type Schemas } from "../api/client";
import { Chart, type ChartEvent } from "../components/Chart";
import { useStream } from "../components/StreamContext";
import { EventsSection, eventLabel } from "../components/Events";
import { alertSettingsPath, chartPath, getFirst, latestPath, latestPreloaded, markFirstScreen } from "../lib/preload";
import { formatValue } from "../lib/units";
import { isStale, timeAgo } from "../lib/time";
import { trendArrow } from "../lib/trend";
import { canManage, useApp } from "../state";

type Device = Schemas["DeviceOut"];
type ChartData = Schemas["Chart"];
type Rule = Schemas["RuleOut"];
interface Live {
  device_id: string;
  kind: string;
  ts: string;
  value: number;
  direction: string | null;
}

export const WINDOWS = [
  ["12h", "12 h"],
  ["24h", "24 h"],
  ["3d", "3 days"],
] as const;

export function useNow(everyMs = 15_000): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

export function DashboardPage() {
  const { profile } = useApp();
  const [devices, setDevices] = useState<Device[]>([]);
  const [live, setLive] = useState<Record<string, Live>>({});
  const [chartTick, setChartTick] = useState(0);
  const pid = profile!.id;

  useEffect(() => {
    let gone = false;
    (async () => {
      const all = (await getFirst<Device[]>("/v1/devices")).filter((d) => d.profile_id === pid);
      if (gone) return;
      setDevices(all);
      await latestPreloaded();
      // Every device's latest value at once (each is one round trip).
      await Promise.all(
        all.map(async (d) => {
          try {
            const l = await getFirst<Schemas["LatestReading"]>(latestPath(d.id));
            if (gone) return;
            setLive((prev) => newer(prev, { device_id: d.id, kind: d.kind, ts: l.ts, value: l.value, direction: l.trend.direction }));
          } catch (e) {
            if (!(e instanceof ApiError && e.status === 404)) throw e;
          }
        }),
      );
    })().catch(() => undefined);
    return () => {
      gone = true;
    };
  }, [pid]);

  useStream((m) => {
    if (m.type === "reading" && m.profile_id === pid) {
      setLive((prev) =>
        newer(prev, {
          device_id: m.device_id as string,
          kind: m.kind as string,
          ts: m.ts as string,
          value: m.value as number,
          direction: (m.direction as string) ?? null,
        }),
      );
      setChartTick((t) => t + 1);
    }
  });

  const kinds = new Set<string>([...devices.map((d) => d.kind as string), ...Object.keys(live)]);
  return (
    <>
      <h1>{profile!.name}</h1>
      <section aria-label="Live values" className="live-row">
        {(kinds.has("glucose") || kinds.size === 0) && <LiveValue kind="glucose" live={live.glucose} />}
        {kinds.has("temperature") && <LiveValue kind="temperature" live={live.temperature} />}
      </section>
      <Charts profileId={pid} refresh={chartTick} kinds={kinds} canEdit={canManage(profile)} />
    </>
  );
}

function newer(prev: Record<string, Live>, l: Live): Record<string, Live> {
  const cur = prev[l.kind];
  if (cur && Date.parse(cur.ts) > Date.parse(l.ts)) return prev;
  return { ...prev, [l.kind]: l };
}

function LiveValue({ kind, live }: { kind: string; live?: Live }) {
  const { prefs } = useApp();
  const now = useNow();
  const name = kind === "glucose" ? "Current value" : "Current temperature";
  if (!live) {
    return (
      <div className="live" role="status" aria-label={name}>
        <span className="live-kind">{kind === "glucose" ? "Glucose" : "Temperature"}</span>
        <span className="live-value">—</span>
        <span className="live-age">No reading yet</span>
      </div>
    );
  }
  const { arrow, words } = trendArrow(live.direction);
  const when = new Date(live.ts);
  const stale = isStale(when, now);
  const value = formatValue(kind, live.value, prefs.unit);
  return (
    <div className={stale ? "live stale" : "live"}>
      <span className="live-kind">{kind === "glucose" ? "Glucose" : "Temperature"}</span>
      <div role="status" aria-label={name} aria-atomic="true" className="live-main">
        <span className="live-value">{value}</span>{" "}
        {kind === "glucose" && (
          <>
            <span className="live-arrow" aria-hidden="true">
              {arrow}
            </span>
            <span className="sr-only">{words}</span>
          </>
        )}
      </div>
      <span className="live-age">
        {kind === "glucose" && <span className="trend-words">{words}, </span>}
        {stale ? <strong>No recent reading: last one {timeAgo(when, now)}</strong> : timeAgo(when, now)}
      </span>
    </div>
  );
}

function Charts({ profileId, refresh, kinds, canEdit }: { profileId: string; refresh: number; kinds: Set<string>; canEdit: boolean }) {
  const { prefs } = useApp();
  const [window, setWindow] = useState<string>("24h");
  const [chart, setChart] = useState<ChartData | null>(null);
  const [rules, setRules] = useState<Schemas["AlertSettingsOut"] | null>(null);
  const [error, setError] = useState("");

  const load = useCallback(async () => {
    try {
      setChart(await getFirst<ChartData>(chartPath(profileId, window)));
      setError("");
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      markFirstScreen();
    }
  }, [profileId, window]);
  useEffect(() => {
    if (chart) markFirstScreen(); // drawn: the calls that waited for it may start
  }, [chart]);

  useEffect(() => {
    load();
  }, [load]);
  // Live readings redraw the chart: one reload at most every 2 s.
  const pending = useRef(false);
  useEffect(() => {
    if (refresh === 0 || pending.current) return;
    pending.current = true;
    setTimeout(() => {
      pending.current = false;
      load();
    }, 2000);
  }, [refresh, load]);
  useEffect(() => {
    getFirst<Schemas["AlertSettingsOut"]>(alertSettingsPath(profileId))
      .then(setRules)
      .catch(() => setRules(null));
  }, [profileId]);

  const threshold = (list: Rule[] | undefined, kind: string, fallback: number) =>
    list?.find((r) => r.kind === kind)?.threshold ?? fallback;
  const events: ChartEvent[] = (chart?.events ?? []).map((e: Schemas["EventOut"]) => ({
    id: e.id,
    kind: e.kind,
    ts: e.ts,
    label: eventLabel(e, prefs.clock),
  }));
  const series = (kind: string) => chart?.series.filter((s: Schemas["ChartSeries"]) => s.kind === kind) ?? [];
  const start = chart ? Date.parse(chart.start) : Date.now() - 86_400_000;
  const end = chart ? Date.parse(chart.end) : Date.now();

  return (
    <section aria-labelledby="chart-title">
      <div className="row">
        <h2 id="chart-title">Chart</h2>
        <div role="group" aria-label="Chart window" className="segmented">
          {WINDOWS.map(([w, label]) => (
            <button key={w} type="button" aria-pressed={window === w} onClick={() => setWindow(w)}>
              {label}
            </button>
          ))}
        </div>
      </div>
      {error && <p role="alert">{error}</p>}
      {(kinds.has("glucose") || kinds.size === 0) &&
        (series("glucose").length ? series("glucose") : [null]).slice(0, 1).map((s) => (
          <Chart
            key="glucose"
            title={`Glucose, ${window}`}
            kind="glucose"
            times={s ? s.ts.map((t: string) => Date.parse(t)) : []}
            values={s ? (s.mean as number[]) : []}
            start={start}
            end={end}
            band={[70, 180]}
            lines={[
              { value: threshold(rules?.glucose, "low", 70), label: "Low", className: "low" },
              { value: threshold(rules?.glucose, "high", 180), label: "High", className: "high" },
            ]}
            events={events}
            unit={prefs.unit}
            clock={prefs.clock}
            gapMs={Math.max(3, 3 * ((s?.interval_s ?? 300) / 60)) * 60_000 + (chart?.bucket_s ?? 0) * 2000}
          />
        ))}
      {kinds.has("temperature") &&
        (series("temperature").length ? series("temperature") : [null]).slice(0, 1).map((s) => (
          <Chart
            key="temperature"
            title={`Temperature, ${window}`}
            kind="temperature"
            times={s ? s.ts.map((t: string) => Date.parse(t)) : []}
            values={s ? (s.mean as number[]) : []}
            start={start}
            end={end}
            lines={[{ value: threshold(rules?.temperature, "fever", 38), label: "Fever", className: "fever" }]}
            events={events}
            unit={prefs.unit}
            clock={prefs.clock}
            gapMs={15 * 60_000 + (chart?.bucket_s ?? 0) * 2000}
          />
        ))}
      <EventsSection profileId={profileId} canEdit={canEdit} onChange={load} />
    </section>
  );
}
