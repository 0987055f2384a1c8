// Glucose units: the API speaks mg/dL; each user picks mg/dL or mmol/L for display.
export type GlucoseUnit = "mg/dL" | "mmol/L";

export const MGDL_PER_MMOL = 18.0182;

export function toDisplay(mgdl: number, unit: GlucoseUnit): number {
  return unit === "mg/dL" ? mgdl : mgdl / MGDL_PER_MMOL;
}

export function fromDisplay(value: number, unit: GlucoseUnit): number {
  return unit === "mg/dL" ? value : value * MGDL_PER_MMOL;
}

/** "112" in mg/dL (whole numbers), "6.2" in mmol/L (one decimal). */
export function formatGlucose(mgdl: number, unit: GlucoseUnit): string {
  const v = toDisplay(mgdl, unit);
  return unit === "mg/dL" ? Math.round(v).toString() : v.toFixed(1);
}

export function formatTemperature(celsius: number): string {
  return celsius.toFixed(1);
}

/** A sensor value with its unit, for text and screen readers. */
export function formatValue(kind: string, value: number, unit: GlucoseUnit): string {
  return kind === "temperature"
    ? `${formatTemperature(value)} °C`
    : `${formatGlucose(value, unit)} ${unit}`;
}
