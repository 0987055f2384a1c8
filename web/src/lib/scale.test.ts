import { describe, expect, it } from "vitest";
import { linePath, linearScale, nearestIndex, niceTicks, timeTicks, valueDomain } from "./scale";

describe("chart scaling", () => {
  it("maps the domain onto the range and back", () => {
    const y = linearScale([40, 400], [300, 0]);
    expect(y(40)).toBe(300);
    expect(y(400)).toBe(0);
    expect(y(220)).toBe(150);
    expect(y.invert(150)).toBe(220);
  });
  it("keeps the target lines in view and pads the values", () => {
    expect(valueDomain([100, 120], [70, 180], 0)).toEqual([70, 180]);
    const [lo, hi] = valueDomain([50, 250], [70, 180], 0.1);
    expect(lo).toBeCloseTo(30);
    expect(hi).toBeCloseTo(270);
    expect(valueDomain([], [])).toEqual([0, 1]);
  });
  it("picks round ticks", () => {
    expect(niceTicks([0, 100], 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks([35.2, 39.9], 5)).toEqual([36, 37, 38, 39]);
  });
  it("finds the nearest point", () => {
    expect(nearestIndex([0, 10, 20, 30], 14)).toBe(1);
    expect(nearestIndex([0, 10, 20, 30], 16)).toBe(2);
    expect(nearestIndex([0, 10], 99)).toBe(1);
    expect(nearestIndex([], 5)).toBe(-1);
  });
  it("breaks the line at gaps", () => {
    const x = linearScale([0, 100], [0, 100]);
    expect(linePath([0, 10, 50], [1, 2, 3], x, x, 20)).toBe("M0.0,1.0L10.0,2.0M50.0,3.0");
  });
});

describe("time ticks", () => {
  it("fall on whole hours, in order, at a step a clock reader expects", () => {
    const start = new Date(2026, 10, 27, 10, 17).getTime();
    const end = start + 72 * 3_600_000;
    const ticks = timeTicks(start, end, 6);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    expect(ticks.length).toBeLessThanOrEqual(6);
    for (const [i, t] of ticks.entries()) {
      const d = new Date(t);
      expect(d.getMinutes()).toBe(0);
      expect(d.getHours() % 12).toBe(0); // 3 days: midnight and noon
      if (i > 0) expect(t).toBeGreaterThan(ticks[i - 1]);
    }
    const day = timeTicks(start, start + 12 * 3_600_000, 6);
    expect(day.map((t) => new Date(t).getHours())).toEqual([12, 14, 16, 18, 20, 22]);
  });
});
