"""The clinical report as a PDF: matplotlib figures (Agg, object API only, so rendering is
safe off the event loop in a worker thread) written page by page with ``PdfPages``.

Page 1: summary metrics against the consensus targets, the time-in-ranges bar and the AGP
percentile chart. Page 2: the glycemia risk index on its grid (hypo component across, hyper
component up, zones A-E, as on the newer AGP report) and the variability panel. Then daily
profiles (eight days a page) with events marked, the episodes and, for temperature patches,
the daily curves and fever episodes."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from algorithms.localtime import DAY_S, local_day_and_second
from algorithms.temperature import FEVER_C

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.table import Table

    from api.reporting.report import Report
    from api.reporting.sections import KindSeries

PAPER_IN = {"a4": (8.27, 11.69), "letter": (8.5, 11.0)}
BANDS = (  # (label, colour, field of Ranges)
    ("Very high  >250", "#e8590c", "above_250_pct"),
    ("High  181-250", "#fab005", "above_180_to_250_pct"),
    ("In range  70-180", "#2b8a3e", "in_70_180_pct"),
    ("Low  54-69", "#e03131", "from_54_below_70_pct"),
    ("Very low  <54", "#862e2e", "below_54_pct"),
)
EVENT_MARKS = {
    "meal": ("M", "#1971c2"),
    "exercise": ("E", "#2f9e44"),
    "insulin": ("I", "#9c36b5"),
    "medication": ("Rx", "#c2255c"),
    "sleep": ("S", "#495057"),
    "note": ("N", "#868e96"),
    "custom": ("C", "#f08c00"),
}
DAYS_PER_PAGE = 8
GRI_ZONE_COLOURS = ("#69db7c", "#d8f5a2", "#ffe066", "#ffa94d", "#ff6b6b")  # A (best) to E
VARIABILITY_ROWS = (  # (label, field of VariabilityMetrics, digits, unit, what it measures)
    ("MAGE", "mage_mgdl", 0, " mg/dL", "mean amplitude of excursions larger than one SD"),
    ("CONGA(24)", "conga24_mgdl", 0, " mg/dL", "SD of changes over 24 hours"),
    ("MODD", "modd_mgdl", 0, " mg/dL", "mean day-to-day difference at the same time"),
    ("MAD", "mad_mgdl", 0, " mg/dL", "median absolute deviation (x 1.4826)"),
    ("IQR", "iqr_mgdl", 0, " mg/dL", "75th - 25th percentile"),
    ("LBGI", "lbgi", 1, "", "low blood glucose index: risk of hypoglycaemia"),
    ("HBGI", "hbgi", 1, "", "high blood glucose index: risk of hyperglycaemia"),
    ("ADRR", "adrr", 1, "", "average daily risk range"),
    ("J-index", "j_index", 1, "", "0.001 x (mean + SD)²"),
    ("eA1c", "ea1c_pct", 1, " %", "estimated A1c from the mean (Nathan 2008)"),
)
# rcParams are process-global: one report renders at a time per process.
_RENDER_LOCK = threading.Lock()
_FONT: Any = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "pdf.fonttype": 3,
}


def _fmt(x: float | None, digits: int = 0, unit: str = "") -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def _header(fig: Figure, report: Report, title: str, page: int) -> None:
    tz = ZoneInfo(report.profile.timezone)
    first = report.start.astimezone(tz)
    last = report.end.astimezone(tz)
    fig.text(0.06, 0.965, title, fontsize=14, weight="bold")
    fig.text(
        0.06,
        0.945,
        f"{report.profile.name}  ·  {first:%d %b %Y %H:%M} - {last:%d %b %Y %H:%M}"
        f" ({report.days} days, {report.profile.timezone})",
        fontsize=9,
    )
    fig.text(
        0.94,
        0.965,
        f"Vigil  ·  page {page}\ngenerated {report.generated_at:%Y-%m-%d %H:%M} UTC",
        fontsize=7,
        ha="right",
        va="top",
        color="#555",
    )


def _table(
    ax: Axes, rows: list[list[str]], widths: list[float] | None, size: float, row_h: float
) -> Table:
    """A table at the axes' top left with grey rules and a bold, shaded header row."""
    table = ax.table(cellText=rows, loc="upper left", cellLoc="left", colWidths=widths)
    table.auto_set_font_size(False)
    table.set_fontsize(size)
    table.scale(1, row_h)
    for (r, _c), cell in table.get_celld().items():
        cell.set_edgecolor("#ced4da")
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e9ecef")
    return table


def _metrics_table(fig: Figure, report: Report, rect: tuple[float, float, float, float]) -> None:
    ax = fig.add_axes(rect)
    ax.axis("off")
    rows = [["Metric", "Value", "Target", ""]]
    cur = report.glucose.current if report.glucose else None
    if cur is not None:
        rows += [
            ["Readings", f"{cur.readings} of {cur.expected_readings}", "", ""],
            ["Mean glucose", _fmt(cur.mean_mgdl, 0, " mg/dL"), "", ""],
            ["GMI", _fmt(cur.gmi_pct, 1, " %"), "", ""],
            ["SD", _fmt(cur.sd_mgdl, 0, " mg/dL"), "", ""],
        ]
    for t in report.targets:
        ok = "" if t.met is None else ("met" if t.met else "NOT met")
        rows.append([t.label, _fmt(t.value, 1, " %"), t.target, ok])
    table = _table(ax, rows, [0.42, 0.26, 0.18, 0.14], 8.5, 1.45)
    for (r, c), cell in table.get_celld().items():
        if r > 0 and c == 3 and rows[r][3] == "NOT met":
            cell.set_text_props(color="#c92a2a", weight="bold")
        elif r > 0 and c == 3 and rows[r][3] == "met":
            cell.set_text_props(color="#2b8a3e")
    ax.set_title("Summary against the 2019 consensus targets", loc="left", weight="bold")


def _tir_bar(fig: Figure, report: Report, rect: tuple[float, float, float, float]) -> None:
    ax = fig.add_axes(rect)
    ax.set_title("Time in ranges", loc="left", weight="bold")
    ranges = report.glucose.current.ranges if report.glucose else None
    bottom = 0.0
    for _label, colour, field in reversed(BANDS):
        pct = (getattr(ranges, field) if ranges else None) or 0.0
        ax.bar(0, pct, bottom=bottom, color=colour, width=0.6, edgecolor="white")
        bottom += pct
    # Labels at fixed heights (thin bands would overlap), top band first.
    for i, (label, colour, field) in enumerate(BANDS):
        pct = getattr(ranges, field) if ranges else None
        y = 92 - i * 19
        ax.add_patch(Rectangle((0.45, y - 2.5), 0.12, 5, color=colour, clip_on=False))
        ax.text(0.65, y, f"{label}:  {_fmt(pct, 1, ' %')}", va="center", fontsize=8)
    ax.set_xlim(-0.4, 2.2)
    ax.set_ylim(0, 100)
    ax.set_xticks([])
    ax.set_ylabel("% of readings")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def _agp(fig: Figure, report: Report, rect: tuple[float, float, float, float]) -> None:
    ax = fig.add_axes(rect)
    ax.set_title(
        "Ambulatory glucose profile (5th / 25th / median / 75th / 95th percentile by time of day)",
        loc="left",
        weight="bold",
    )
    agp = report.agp
    if agp is not None:
        x = np.asarray(agp.minute_of_day, dtype=float) / 60.0 + agp.bin_min / 120.0
        v = np.array([[np.nan if y is None else y for y in row] for row in agp.values_mgdl])
        ax.fill_between(x, v[:, 0], v[:, 4], color="#a5d8ff", label="5-95 %", lw=0)
        ax.fill_between(x, v[:, 1], v[:, 3], color="#4dabf7", label="25-75 %", lw=0)
        ax.plot(x, v[:, 2], color="#0b3d91", lw=2, label="median")
    ax.axhspan(70, 180, color="#2b8a3e", alpha=0.07)
    for level, style in ((54, ":"), (70, "-"), (180, "-"), (250, ":")):
        ax.axhline(level, color="#2b8a3e" if level in (70, 180) else "#999", lw=0.8, ls=style)
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.set_ylim(40, 350)
    ax.set_ylabel("mg/dL")
    ax.set_xlabel("local time of day")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper right", fontsize=7, frameon=False, ncol=3)


def _gri_grid(fig: Figure, report: Report, rect: tuple[float, float, float, float]) -> None:
    """The GRI grid: hypo component across, hyper component up, zones coloured by GRI."""
    ax = fig.add_axes(rect)
    ax.set_title("Glycemia risk index (GRI)", loc="left", weight="bold")
    g = report.glucose.variability.gri if report.glucose else None
    hypo = g.hypo_component if g and g.hypo_component is not None else None
    hyper = g.hyper_component if g and g.hyper_component is not None else None
    xmax = max(30.0, 1.1 * (hypo or 0.0))
    ymax = max(60.0, 1.1 * (hyper or 0.0))
    x, y = np.meshgrid(np.linspace(0, xmax, 200), np.linspace(0, ymax, 200))
    ax.contourf(x, y, 3.0 * x + 1.6 * y, levels=[0, 20, 40, 60, 80, 1e9],
                colors=GRI_ZONE_COLOURS)  # fmt: skip
    for k, zone in enumerate("ABCDE"):
        level = 20.0 * k + 15.0  # each zone's letter on the diagonal hyper = 2 x hypo
        ax.text(level / 6.2, level / 3.1, zone, fontsize=11, weight="bold", color="#333",
                ha="center", va="center")  # fmt: skip
    if g is not None and hypo is not None and hyper is not None:
        ax.plot([hypo], [hyper], "o", ms=9, mfc="#0b3d91", mec="white", mew=1.5)
        ax.annotate(f"GRI {g.gri:.0f} (zone {g.zone})", (hypo, hyper), xytext=(12, -4),
                    textcoords="offset points", fontsize=9, weight="bold",
                    bbox={"boxstyle": "round", "fc": "white", "ec": "#0b3d91"})  # fmt: skip
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, ymax)
    ax.set_xlabel("hypoglycaemia component (%):  %<54 + 0.8 x %54-69")
    ax.set_ylabel("hyperglycaemia component (%):  %>250 + 0.5 x %181-250")


def _variability_page(pdf: PdfPages, report: Report, size: tuple[float, float], page: int) -> int:
    fig = Figure(figsize=size)
    _header(fig, report, "Glycaemic risk and variability", page)
    _gri_grid(fig, report, (0.10, 0.50, 0.55, 0.38))
    v = report.glucose.variability if report.glucose else None
    g = v.gri if v else None
    fig.text(
        0.70,
        0.87,
        f"GRI  {_fmt(g.gri if g else None)}   zone {g.zone if g and g.zone else '-'}\n"
        f"hypo component  {_fmt(g.hypo_component if g else None, 1, ' %')}\n"
        f"hyper component  {_fmt(g.hyper_component if g else None, 1, ' %')}\n\n"
        "GRI = 3.0 x hypo + 1.6 x hyper\n(0-100, Klonoff et al. 2022).\n"
        "Zones: A 0-20, B 21-40, C 41-60,\nD 61-80, E 81-100 (A lowest risk).",
        fontsize=8.5,
        va="top",
        linespacing=1.6,
    )
    ax = fig.add_axes((0.06, 0.05, 0.88, 0.36))
    ax.axis("off")
    rows = [["Variability and risk", "Value", "What it measures"]]
    for label, field, digits, unit, text in VARIABILITY_ROWS:
        rows.append([label, _fmt(getattr(v, field) if v else None, digits, unit), text])
    _table(ax, rows, [0.2, 0.18, 0.62], 8.5, 1.45)
    fig.text(
        0.06,
        0.025,
        "Definitions of the iglu R package (Broll et al. 2021); '-' where the period has too"
        " little data for the metric (MODD and CONGA need more than a day).",
        fontsize=7,
        color="#555",
    )
    pdf.savefig(fig)
    return page + 1


def _daily_pages(
    pdf: PdfPages, report: Report, g: KindSeries, size: tuple[float, float], page: int
) -> int:
    tz = report.profile.timezone
    days_ts, secs = local_day_and_second(g.ts, tz)
    ev_ts = np.array([e.ts.timestamp() for e in report.events], dtype=float)
    ev_day, ev_sec = local_day_and_second(ev_ts, tz)
    days = report.daily
    for first in range(0, len(days), DAYS_PER_PAGE):
        fig = Figure(figsize=size)
        _header(fig, report, "Daily glucose profiles", page)
        chunk = days[first : first + DAYS_PER_PAGE]
        top, height, gap = 0.9, 0.19, 0.028
        for i, day in enumerate(chunk):
            col, row = i % 2, i // 2
            ax = fig.add_axes(
                (0.08 + col * 0.46, top - (row + 1) * (height + gap) + gap, 0.40, height - 0.03)
            )
            mask = days_ts == day.local_day
            ax.axhspan(70, 180, color="#2b8a3e", alpha=0.08)
            ax.plot(secs[mask] / 3600.0, g.values[mask], color="#0b3d91", lw=1)
            emask = ev_day == day.local_day
            for k in np.flatnonzero(emask):
                event = report.events[int(k)]
                letter, colour = EVENT_MARKS[event.kind]
                ax.axvline(ev_sec[k] / 3600.0, color=colour, lw=0.7, alpha=0.6)
                ax.text(
                    ev_sec[k] / 3600.0,
                    335,
                    letter,
                    color=colour,
                    fontsize=7,
                    ha="center",
                    va="top",
                    weight="bold",
                )
            ax.set_xlim(0, 24)
            ax.set_ylim(40, 350)
            ax.set_xticks(range(0, 25, 6), ["0", "6", "12", "18", "24"])
            ax.set_yticks([70, 180, 250])
            ax.grid(alpha=0.2)
            ax.set_title(
                f"{day.date:%a %d %b}   mean {_fmt(day.mean_mgdl)}   in range "
                f"{day.in_70_180_pct:.0f} %   low {day.below_70_pct:.0f} %",
                loc="left",
            )
        fig.text(
            0.08,
            0.03,
            "mg/dL by local hour; green band 70-180 mg/dL.  Events: "
            + "   ".join(f"{v[0]} {k}" for k, v in EVENT_MARKS.items()),
            fontsize=7,
            color="#555",
        )
        pdf.savefig(fig)
        page += 1
    return page


def _episode_rows(report: Report) -> list[list]:
    tz = ZoneInfo(report.profile.timezone)
    rows = []
    if report.glucose is not None:
        cur = report.glucose.current
        for label, eps in (
            ("Hypo <54", cur.hypo_episodes_below_54),
            ("Hypo <70", cur.hypo_episodes_below_70),
            ("Hyper >250", cur.hyper_episodes_above_250),
        ):
            for e in eps:
                rows.append(
                    [
                        label,
                        f"{e.start.astimezone(tz):%a %d %b %H:%M}",
                        f"{e.duration_min:.0f} min",
                        f"{e.extreme_value:.0f} mg/dL",
                        e.start,
                    ]
                )
    if report.temperature is not None:
        for e in report.temperature.current.fever_episodes:
            rows.append(
                [
                    "Fever ≥38 °C",
                    f"{e.start.astimezone(tz):%a %d %b %H:%M}",
                    f"{e.duration_min:.0f} min",
                    f"{e.extreme_value:.1f} °C",
                    e.start,
                ]
            )
    return sorted(rows, key=lambda r: (r[4], r[0]))


def _episodes_page(pdf: PdfPages, report: Report, size: tuple[float, float], page: int) -> int:
    rows = _episode_rows(report)
    fig = Figure(figsize=size)
    _header(fig, report, "Episodes and data sufficiency", page)
    lines = []
    if report.glucose is not None:
        cur = report.glucose.current
        suff = cur.data_sufficiency_pct
        lines.append(
            f"Glucose data sufficiency: {_fmt(suff, 0, ' %')} of expected readings "
            f"({cur.readings} of {cur.expected_readings});\nthe consensus asks for at least 70 %"
            f" of 14 days: {'sufficient' if report.sufficient else 'NOT sufficient'}."
        )
        lines.append(
            "Episodes by the 2019 consensus: at least 15 minutes beyond the level, ended by"
            " 15 minutes back\n(counted in sensor intervals, so timestamp jitter does not change"
            " it; up to two missed readings do not break an episode)."
        )
    if report.temperature is not None:
        t = report.temperature.current
        lines.append(
            f"Temperature: {t.readings} readings, max {_fmt(t.max_c, 1, ' °C')},"
            f" time at or above {t.fever_c:.1f} °C {_fmt(t.time_in_fever_pct, 1, ' %')}."
        )
    fig.text(0.06, 0.90, "\n".join(lines), fontsize=8.5, va="top", linespacing=1.6)
    ax = fig.add_axes((0.06, 0.05, 0.88, 0.74))
    ax.axis("off")
    shown = [r[:4] for r in rows[:40]]
    if shown:
        header = ["Episode", "Start (local)", "Duration", "Extreme"]
        _table(ax, [header, *shown], [0.2, 0.35, 0.2, 0.25], 8, 1.3)
    else:
        ax.text(0, 1, "No episodes in this period.", va="top", fontsize=9)
    if len(rows) > len(shown):
        ax.text(0, 0, f"… and {len(rows) - len(shown)} more (see the JSON report).", fontsize=8)
    pdf.savefig(fig)
    return page + 1


def _temperature_page(
    pdf: PdfPages, report: Report, t: KindSeries, size: tuple[float, float], page: int
) -> int:
    fig = Figure(figsize=size)
    _header(fig, report, "Body temperature", page)
    # The series holds the previous window too (for the comparison): plot the report's own.
    mine = (t.ts >= report.start.timestamp()) & (t.ts < report.end.timestamp())
    ts, values = t.ts[mine], t.values[mine]
    days, secs = local_day_and_second(ts, report.profile.timezone)
    ax = fig.add_axes((0.09, 0.50, 0.84, 0.38))
    ax.set_title("Daily curves by local time of day", loc="left", weight="bold")
    unique = np.unique(days)
    cmap = matplotlib.colormaps["viridis"]
    for i, day in enumerate(unique):
        m = days == day
        label = datetime.fromtimestamp(float(day) * DAY_S, UTC).strftime("%d %b")
        ax.plot(
            secs[m] / 3600.0,
            values[m],
            lw=0.9,
            color=cmap(i / max(1, unique.size - 1)),
            label=label,
        )
    cur = report.temperature.current if report.temperature else None
    fever = cur.fever_c if cur else FEVER_C
    ax.axhline(fever, color="#e03131", lw=1, ls="--", label=f"fever {fever:.1f} °C")
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.set_ylabel("°C")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=6, ncol=6, loc="upper left", frameon=False)
    ax2 = fig.add_axes((0.09, 0.08, 0.84, 0.32))
    ax2.axis("off")
    rows = [["Day", "Readings", "Min °C", "Mean °C", "Max °C", "≥ fever"]]
    for d in report.temperature_daily:
        rows.append(
            [
                f"{d.date:%a %d %b}",
                str(d.readings),
                _fmt(d.min_c, 1),
                _fmt(d.mean_c, 1),
                _fmt(d.max_c, 1),
                _fmt(d.time_in_fever_pct, 0, " %"),
            ]
        )
    table = ax2.table(cellText=rows, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    ax2.set_title("Daily summary", loc="left", weight="bold")
    pdf.savefig(fig)
    return page + 1


def render_report_pdf(
    report: Report,
    glucose: KindSeries | None,
    temperature: KindSeries | None,
    paper: str = "a4",
) -> bytes:
    """The report as PDF bytes. CPU-bound: call it in a worker thread."""
    size = PAPER_IN[paper]
    buf = io.BytesIO()
    with (
        _RENDER_LOCK,
        matplotlib.rc_context(_FONT),
        PdfPages(buf, metadata={"Title": "Vigil report", "CreationDate": None}) as pdf,
    ):
        page = 1
        if report.glucose is not None and glucose is not None:
            fig = Figure(figsize=size)
            _header(fig, report, "Glucose report (AGP)", page)
            _metrics_table(fig, report, (0.06, 0.56, 0.56, 0.34))
            _tir_bar(fig, report, (0.70, 0.58, 0.08, 0.31))
            _agp(fig, report, (0.09, 0.08, 0.85, 0.40))
            pdf.savefig(fig)
            page = _variability_page(pdf, report, size, page + 1)
            page = _daily_pages(pdf, report, glucose, size, page)
        if report.temperature is not None and temperature is not None:
            page = _temperature_page(pdf, report, temperature, size, page)
        page = _episodes_page(pdf, report, size, page)
    return buf.getvalue()
