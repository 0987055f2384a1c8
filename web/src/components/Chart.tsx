// The trend chart, drawn as SVG: the target band, low/high (or fever) lines, the values,
// the events, and a cursor for the pointer or the arrow keys showing value and time.
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from "react";
import { linePath, linearScale, nearestIndex, niceTicks, timeTicks, valueDomain } from "../lib/scale";
import { formatDateTime, formatTime, type Clock } from "../lib/time";
import { formatValue, toDisplay, type GlucoseUnit } from "../lib/units";

export interface ChartEvent {
  id: string;
  kind: string;
  ts: string;
  label: string;
}

export interface ChartProps {
  title: string;
  kind: "glucose" | "temperature";
  times: number[]; // ms since epoch, ascending
  values: number[]; // API units (mg/dL, °C)
  start: number;
  end: number;
  band?: [number, number]; // target range
  lines: { value: number; label: string; className: string }[];
  events: ChartEvent[];
  unit: GlucoseUnit;
  clock: Clock;
  gapMs: number;
}

const M = { top: 12, right: 12, bottom: 28, left: 44 };

/** The figure's width in CSS pixels, so text keeps its size on a phone. */
function useWidth(): [React.RefObject<HTMLElement | null>, number] {
  const ref = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(800);
  useEffect(() => {
    if (!ref.current || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.max(280, Math.round(entry.contentRect.width))));
    observer.observe(ref.current);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

export function Chart(props: ChartProps) {
  const { kind, times, values, unit, clock } = props;
  const show = (v: number) => (kind === "glucose" ? toDisplay(v, unit) : v);
  const [cursor, setCursor] = useState<number | null>(null);
  const [figure, W] = useWidth();
  const H = W < 500 ? 220 : 280;

  const geometry = useMemo(() => {
    const shown = values.map(show);
    const keep = props.lines.map((l) => show(l.value)).concat(props.band ? props.band.map(show) : []);
    const x = linearScale([props.start, props.end], [M.left, W - M.right]);
    const y = linearScale(valueDomain(shown, keep), [H - M.bottom, M.top]);
    return {
      x,
      y,
      shown,
      path: linePath(times, shown, x, y, props.gapMs),
      yTicks: niceTicks(y.domain, 5),
      xTicks: timeTicks(props.start, props.end, W < 500 ? 3 : 6),
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [times, values, unit, props.start, props.end, props.band, props.lines, props.gapMs, W, H]);
  const { x, y, shown, path } = geometry;

  const lo = shown.length ? Math.min(...shown) : null;
  const hi = shown.length ? Math.max(...shown) : null;
  const fmt = (v: number) => formatValue(kind, kind === "glucose" ? v : v, unit);
  const fmtShown = (v: number) => (kind === "glucose" ? (unit === "mg/dL" ? Math.round(v).toString() : v.toFixed(1)) : v.toFixed(1));
  const unitLabel = kind === "glucose" ? unit : "°C";
  const summary =
    times.length === 0
      ? `${props.title}: no readings in this window.`
      : `${props.title}: ${times.length} points from ${formatDateTime(new Date(times[0]), clock)} to ${formatDateTime(
          new Date(times[times.length - 1]),
          clock,
        )}, lowest ${fmtShown(lo!)} ${unitLabel}, highest ${fmtShown(hi!)} ${unitLabel}.`;

  const moveTo = (e: PointerEvent<SVGSVGElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * W;
    const i = nearestIndex(times, x.invert(px));
    setCursor(i < 0 ? null : i);
  };
  const keys = (e: KeyboardEvent<SVGSVGElement>) => {
    if (!times.length) return;
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    e.preventDefault();
    setCursor((c) => Math.min(times.length - 1, Math.max(0, (c ?? times.length - 1) + step)));
  };

  return (
    <figure className="chart" ref={figure}>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={summary}
        data-points={times.length}
        data-start={props.start}
        tabIndex={0}
        onPointerMove={moveTo}
        onPointerLeave={() => setCursor(null)}
        onKeyDown={keys}
        onBlur={() => setCursor(null)}
      >
        {props.band && (
          <rect
            className="band"
            x={M.left}
            width={W - M.left - M.right}
            y={y(show(props.band[1]))}
            height={Math.max(0, y(show(props.band[0])) - y(show(props.band[1])))}
          />
        )}
        {geometry.yTicks.map((t) => (
          <g key={t} className="tick">
            <line x1={M.left} x2={W - M.right} y1={y(t)} y2={y(t)} />
            <text x={M.left - 6} y={y(t) + 4} textAnchor="end">
              {fmtShown(t)}
            </text>
          </g>
        ))}
        {geometry.xTicks
          .filter((t) => t >= props.start && t <= props.end)
          .map((t) => (
            <text key={t} className="tick" x={x(t)} y={H - 8} textAnchor="middle">
              {props.end - props.start > 86_400_000 && new Date(t).getHours() === 0
                ? new Date(t).toLocaleDateString(undefined, { weekday: "short", day: "numeric" })
                : formatTime(new Date(t), clock)}
            </text>
          ))}
        {props.lines.map((l) => (
          <line key={l.label} className={`limit ${l.className}`} x1={M.left} x2={W - M.right} y1={y(show(l.value))} y2={y(show(l.value))}>
            <title>{`${l.label}: ${fmt(l.value)}`}</title>
          </line>
        ))}
        <path className={`series ${kind}`} d={path} />
        {props.events.map((ev) => {
          const ex = x(Date.parse(ev.ts));
          return (
            <g key={ev.id} className={`event ${ev.kind}`} data-event-kind={ev.kind}>
              <title>{ev.label}</title>
              <line x1={ex} x2={ex} y1={M.top} y2={H - M.bottom} />
              <circle cx={ex} cy={M.top + 6} r={6} />
            </g>
          );
        })}
        {cursor !== null && times[cursor] !== undefined && (
          <g className="cursor">
            <line x1={x(times[cursor])} x2={x(times[cursor])} y1={M.top} y2={H - M.bottom} />
            <circle cx={x(times[cursor])} cy={y(shown[cursor])} r={5} />
          </g>
        )}
      </svg>
      <figcaption>
        <span className="readout" aria-live="polite">
          {cursor !== null && times[cursor] !== undefined
            ? `${formatDateTime(new Date(times[cursor]), clock)}: ${fmt(values[cursor])}`
            : "Point at the chart (or focus it and use the arrow keys) for values."}
        </span>
        {props.events.length > 0 && (
          <span className="sr-only">
            Events: {props.events.map((e) => e.label).join("; ")}
          </span>
        )}
      </figcaption>
    </figure>
  );
}
