import { describe, expect, it } from "vitest";
import { formatGlucose, formatValue, fromDisplay, toDisplay } from "./units";

describe("glucose units", () => {
  it("converts mg/dL to mmol/L and back", () => {
    expect(toDisplay(180, "mmol/L")).toBeCloseTo(9.99, 2);
    expect(fromDisplay(toDisplay(123, "mmol/L"), "mmol/L")).toBeCloseTo(123, 9);
    expect(toDisplay(123, "mg/dL")).toBe(123);
  });
  it("rounds mg/dL to whole numbers and mmol/L to one decimal", () => {
    expect(formatGlucose(112.4, "mg/dL")).toBe("112");
    expect(formatGlucose(70, "mmol/L")).toBe("3.9");
    expect(formatGlucose(54, "mmol/L")).toBe("3.0");
  });
  it("formats temperature in °C whatever the glucose unit", () => {
    expect(formatValue("temperature", 38.04, "mmol/L")).toBe("38.0 °C");
    expect(formatValue("glucose", 100, "mmol/L")).toBe("5.5 mmol/L");
  });
});
