// Chart scaling: data to pixels, nice ticks, and the nearest point to the pointer.
export interface Scale {
  (v: number): number;
  invert(px: number): number;
  domain: [number, number];
}

export function linearScale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  const f = ((v: number) => r0 + ((v - d0) / span) * (r1 - r0)) as Scale;
  f.invert = (px: number) => d0 + ((px - r0) / (r1 - r0 || 1)) * span;
  f.domain = [d0, d1];
  return f;
}

/** The value axis: always shows the given lines (target range, thresholds), padded. */
export function valueDomain(values: number[], keep: number[], pad = 0.05): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values.concat(keep)) {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) return [lo - 1, hi + 1];
  const margin = (hi - lo) * pad;
  return [lo - margin, hi + margin];
}

/** About `count` round tick values covering the domain (1, 2, 5 × 10^n steps). */
export function niceTicks(domain: [number, number], count = 5): number[] {
  const [lo, hi] = domain;
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Number(t.toFixed(10)));
  }
  return ticks;
}

/** Index of the time closest to `t` in ascending `times` (binary search); -1 when empty. */
export function nearestIndex(times: number[], t: number): number {
  if (times.length === 0) return -1;
  let lo = 0;
  let hi = times.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < t) lo = mid;
    else hi = mid;
  }
  return Math.abs(times[lo] - t) <= Math.abs(times[hi] - t) ? lo : hi;
}

/** An SVG path through the points; a gap longer than `maxGap` (ms) breaks the line. */
export function linePath(
  times: number[],
  values: number[],
  x: Scale,
  y: Scale,
  maxGap = Infinity,
): string {
  const parts: string[] = [];
  for (let i = 0; i < times.length; i++) {
    const cmd = i === 0 || times[i] - times[i - 1] > maxGap ? "M" : "L";
    parts.push(`${cmd}${x(times[i]).toFixed(1)},${y(values[i]).toFixed(1)}`);
  }
  return parts.join("");
}

const HOUR = 3_600_000;

/** Time ticks on whole local hours, every 1, 2, 3, 6, 12 or 24 h: about `count` of them. */
export function timeTicks(start: number, end: number, count = 6): number[] {
  const step = [1, 2, 3, 6, 12, 24].find((h) => (end - start) / (h * HOUR) <= count) ?? 24;
  const first = new Date(start);
  first.setMinutes(0, 0, 0);
  while (first.getTime() < start || first.getHours() % step !== 0) {
    first.setTime(first.getTime() + HOUR);
  }
  const ticks: number[] = [];
  for (let t = first.getTime(); t <= end; t += step * HOUR) ticks.push(t);
  return ticks;
}
