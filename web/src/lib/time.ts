// Ages and clocks: "3 min ago", stale after 15 minutes, 24 h or 12 h clock by locale.
export const STALE_AFTER_MS = 15 * 60 * 1000;

export function timeAgo(then: Date, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  if (s < 60) return "just now";
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.floor(h / 24);
  return d === 1 ? "1 day ago" : `${d} days ago`;
}

export function isStale(then: Date, now: Date): boolean {
  return now.getTime() - then.getTime() > STALE_AFTER_MS;
}

export type Clock = "auto" | "24h" | "12h";

export function uses12h(clock: Clock, locale?: string): boolean {
  if (clock !== "auto") return clock === "12h";
  const parts = new Intl.DateTimeFormat(locale, { hour: "numeric" }).resolvedOptions();
  return parts.hour12 === true || parts.hourCycle === "h12" || parts.hourCycle === "h11";
}

export function formatTime(d: Date, clock: Clock, locale?: string): string {
  return d.toLocaleTimeString(locale, {
    hour: "2-digit",
    minute: "2-digit",
    hour12: uses12h(clock, locale),
  });
}

export function formatDateTime(d: Date, clock: Clock, locale?: string): string {
  return `${d.toLocaleDateString(locale, { month: "short", day: "numeric" })} ${formatTime(d, clock, locale)}`;
}

/** A Date as the value of an <input type="datetime-local"> (local time, minutes). */
export function toLocalInput(d: Date): string {
  const pad = (n: number) => n.toString().padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
