import { describe, expect, it } from "vitest";
import { RULES, toggleRule } from "./rules";

describe("toggleRule", () => {
  it("turns 'all rules' into every rule but one, in the API's order", () => {
    const out = toggleRule(null, "high", false);
    expect(out).toEqual(RULES.filter((r) => r !== "high"));
  });
  it("gives null back once every rule is chosen again", () => {
    expect(toggleRule(RULES.filter((r) => r !== "low"), "low", true)).toBeNull();
  });
  it("adds a rule to a choice, keeping the rules' order", () => {
    expect(toggleRule(["high"], "low", true)).toEqual(["low", "high"]);
  });
});
