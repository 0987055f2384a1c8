// A weekly schedule of quiet periods (the alert settings' per rule, and my own in the
// notification preferences): add, edit and remove each period, with the API's message for
// a period (it overlaps an earlier one) or one of its fields (an empty period's end) shown
// at that period and tied to its inputs.
import { useId } from "react";
import type { Schemas } from "../api/client";
import { Field } from "./Field";
import type { FieldErrors } from "../lib/validation";

export type Quiet = Schemas["QuietPeriodIn"];

export const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;
const EVERY_DAY = [0, 1, 2, 3, 4, 5, 6];

/** A new period: the night, every day (the person edits it from there). */
export const NEW_PERIOD: Quiet = { start: "22:00", end: "07:00", weekdays: EVERY_DAY };

/** The periods with the one at `j` changed (`null`: removed). */
export function withPeriod(periods: Quiet[], j: number, period: Quiet | null): Quiet[] {
  if (period === null) return periods.filter((_, k) => k !== j);
  return j >= periods.length ? [...periods, period] : periods.map((q, k) => (k === j ? period : q));
}

/** The days a period starts on with `day` switched on or off, in week order. */
export function toggleDay(weekdays: number[], day: number, on: boolean): number[] {
  const days = new Set(weekdays);
  if (on) days.add(day);
  else days.delete(day);
  return [...days].sort((a, b) => a - b);
}

interface Props {
  /** What the periods belong to, for the labels ("High", "My"). */
  name: string;
  periods: Quiet[];
  onChange: (periods: Quiet[]) => void;
  /** The form's errors and this list's key in them (e.g. "glucose.3.quiet"). */
  errors: FieldErrors;
  errorKey: string;
  disabled?: boolean;
}

export function QuietPeriods({ name, periods, onChange, errors, errorKey, disabled }: Props) {
  const listError = errors[errorKey];
  const id = useId();
  return (
    <div className="quiet">
      {periods.length === 0 && <p>{name}: no quiet hours.</p>}
      {periods.map((q, j) => (
        <Period
          key={j}
          name={name}
          index={j}
          period={q}
          disabled={disabled}
          errors={errors}
          errorKey={`${errorKey}.${j}`}
          onChange={(p) => onChange(withPeriod(periods, j, p))}
        />
      ))}
      {listError && (
        <span id={`${id}-err`} className="field-error">
          {listError}
        </span>
      )}
      <button
        type="button"
        disabled={disabled}
        aria-describedby={listError ? `${id}-err` : undefined}
        onClick={() => onChange(withPeriod(periods, periods.length, NEW_PERIOD))}
      >
        {`Add a quiet period to ${name}`}
      </button>
    </div>
  );
}

interface PeriodProps {
  name: string;
  index: number;
  period: Quiet;
  onChange: (period: Quiet | null) => void;
  errors: FieldErrors;
  errorKey: string;
  disabled?: boolean;
}

function Period({ name, index, period, onChange, errors, errorKey, disabled }: PeriodProps) {
  const id = useId();
  const title = `${name} quiet period ${index + 1}`;
  const whole = errors[errorKey];
  const days = period.weekdays ?? EVERY_DAY;
  return (
    <fieldset
      className="period"
      aria-describedby={whole ? `${id}-err` : undefined}
      disabled={disabled}
    >
      <legend>{title}</legend>
      {whole && (
        <span id={`${id}-err`} className="field-error">
          {whole}
        </span>
      )}
      <Field
        label={`${title} from`}
        type="time"
        required
        value={period.start}
        error={errors[`${errorKey}.start`]}
        onChange={(e) => onChange({ ...period, start: e.target.value })}
      />
      <Field
        label={`${title} until`}
        type="time"
        required
        value={period.end}
        error={errors[`${errorKey}.end`]}
        onChange={(e) => onChange({ ...period, end: e.target.value })}
      />
      <fieldset className="days" aria-describedby={errors[`${errorKey}.weekdays`] ? `${id}-days-err` : undefined}>
        <legend>{`${title} starts on`}</legend>
        {WEEKDAYS.map((day, d) => (
          <Field
            key={day}
            label={day}
            type="checkbox"
            checked={days.includes(d)}
            onChange={(e) => onChange({ ...period, weekdays: toggleDay(days, d, e.target.checked) })}
          />
        ))}
        {errors[`${errorKey}.weekdays`] && (
          <span id={`${id}-days-err`} className="field-error">
            {errors[`${errorKey}.weekdays`]}
          </span>
        )}
      </fieldset>
      <button type="button" onClick={() => onChange(null)}>
        {`Remove ${title}`}
      </button>
    </fieldset>
  );
}
