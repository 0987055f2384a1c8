import { describe, expect, it } from "vitest";
import { formatTime, isStale, timeAgo, uses12h } from "./time";

const now = new Date("2026-11-30T12:00:00Z");
const ago = (s: number) => new Date(now.getTime() - s * 1000);

describe("time ago", () => {
  it("reads like a person would say it", () => {
    expect(timeAgo(ago(20), now)).toBe("just now");
    expect(timeAgo(ago(3 * 60 + 10), now)).toBe("3 min ago");
    expect(timeAgo(ago(2 * 3600 + 5), now)).toBe("2 h ago");
    expect(timeAgo(ago(26 * 3600), now)).toBe("1 day ago");
    expect(timeAgo(ago(-30), now)).toBe("just now");
  });
  it("is stale after 15 minutes, not before", () => {
    expect(isStale(ago(15 * 60), now)).toBe(false);
    expect(isStale(ago(15 * 60 + 1), now)).toBe(true);
  });
  it("uses the locale's clock unless the user chose one", () => {
    expect(uses12h("auto", "en-US")).toBe(true);
    expect(uses12h("auto", "de-DE")).toBe(false);
    expect(uses12h("24h", "en-US")).toBe(false);
    expect(formatTime(new Date(2026, 10, 30, 15, 5), "12h", "en-US")).toMatch(/03:05\sPM/);
    expect(formatTime(new Date(2026, 10, 30, 15, 5), "24h", "en-GB")).toBe("15:05");
  });
});
