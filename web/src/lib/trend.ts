// Trend arrows: the API's direction (Nightscout names) as an arrow and as words.
export type Direction =
  | "DoubleUp"
  | "SingleUp"
  | "FortyFiveUp"
  | "Flat"
  | "FortyFiveDown"
  | "SingleDown"
  | "DoubleDown"
  | "NOT COMPUTABLE";

const ARROWS: Record<Direction, [string, string]> = {
  DoubleUp: ["⇈", "rising quickly"],
  SingleUp: ["↑", "rising"],
  FortyFiveUp: ["↗", "rising slowly"],
  Flat: ["→", "steady"],
  FortyFiveDown: ["↘", "falling slowly"],
  SingleDown: ["↓", "falling"],
  DoubleDown: ["⇊", "falling quickly"],
  "NOT COMPUTABLE": ["?", "trend unknown"],
};

export function trendArrow(direction: string | null | undefined): { arrow: string; words: string } {
  const known = direction && direction in ARROWS ? (direction as Direction) : "NOT COMPUTABLE";
  const [arrow, words] = ARROWS[known];
  return { arrow, words };
}
