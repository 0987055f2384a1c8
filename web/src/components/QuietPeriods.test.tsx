import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { NEW_PERIOD, QuietPeriods, toggleDay, withPeriod } from "./QuietPeriods";

afterEach(cleanup);

const NIGHT = { start: "22:00", end: "07:00", weekdays: [0, 1, 2, 3, 4, 5, 6] };
const NOON = { start: "12:00", end: "13:00", weekdays: [5, 6] };

describe("quiet periods", () => {
  it("adds, replaces and removes one period", () => {
    expect(withPeriod([NIGHT], 1, NOON)).toEqual([NIGHT, NOON]);
    expect(withPeriod([NIGHT, NOON], 0, NOON)).toEqual([NOON, NOON]);
    expect(withPeriod([NIGHT, NOON], 0, null)).toEqual([NOON]);
  });
  it("keeps the days in week order", () => {
    expect(toggleDay([4, 0], 2, true)).toEqual([0, 2, 4]);
    expect(toggleDay([0, 2, 4], 2, false)).toEqual([0, 4]);
  });
  it("shows the API's message at the period and at the field it names", () => {
    const errors = { "q.1": "quiet period 1 overlaps an earlier one", "q.0.end": "quiet period 0 is empty" };
    render(<QuietPeriods name="High" periods={[NIGHT, NOON]} onChange={() => undefined} errors={errors} errorKey="q" />);
    const end = screen.getByLabelText("High quiet period 1 until");
    expect(end.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(end.getAttribute("aria-describedby")!)?.textContent).toBe("quiet period 0 is empty");
    const second = screen.getByRole("group", { name: "High quiet period 2" });
    expect(document.getElementById(second.getAttribute("aria-describedby")!)?.textContent).toContain("overlaps");
  });
  it("adds a night period from its button", () => {
    const onChange = vi.fn();
    render(<QuietPeriods name="Low" periods={[]} onChange={onChange} errors={{}} errorKey="q" />);
    fireEvent.click(screen.getByRole("button", { name: "Add a quiet period to Low" }));
    expect(onChange).toHaveBeenCalledWith([NEW_PERIOD]);
  });
});
