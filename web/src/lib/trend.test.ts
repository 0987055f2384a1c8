import { describe, expect, it } from "vitest";
import { trendArrow } from "./trend";

describe("trend arrow", () => {
  it("maps each direction to an arrow and words", () => {
    expect(trendArrow("DoubleUp")).toEqual({ arrow: "⇈", words: "rising quickly" });
    expect(trendArrow("Flat").words).toBe("steady");
    expect(trendArrow("FortyFiveDown").arrow).toBe("↘");
    expect(trendArrow("SingleDown").words).toBe("falling");
  });
  it("says unknown for missing or unrecognised directions", () => {
    expect(trendArrow(null).words).toBe("trend unknown");
    expect(trendArrow("Sideways").arrow).toBe("?");
  });
});
