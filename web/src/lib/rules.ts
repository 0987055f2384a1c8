// The alert rules by their API name, as people read them.
export const RULE_NAMES: Record<string, string> = {
  urgent_low: "Urgent low",
  urgent_low_soon: "Urgent low soon",
  low: "Low",
  high: "High",
  rise: "Rising fast",
  fall: "Falling fast",
  signal_loss: "Signal loss",
  sensor_problem: "Sensor problem",
  fever: "Fever",
  high_fever: "High fever",
  hypothermia: "Hypothermia",
};

export const RULES = Object.keys(RULE_NAMES);

export const ruleName = (r: string) => RULE_NAMES[r] ?? r;

/** The rules chosen with `rule` switched on or off; `null` (all rules) when every one is. */
export function toggleRule(chosen: string[] | null, rule: string, on: boolean): string[] | null {
  const set = new Set(chosen ?? RULES);
  if (on) set.add(rule);
  else set.delete(rule);
  const out = RULES.filter((r) => set.has(r));
  return out.length === RULES.length ? null : out;
}
