"""The PDF report of a 15-day simulated profile: real pages on A4 and Letter, with the AGP,
daily profiles, metrics table and temperature page (checked through poppler when present)."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from api.reporting.events import EventOut
from api.reporting.pdf import render_report_pdf
from api.reporting.report import ProfileRef, build_report
from api.reporting.sections import KindSeries, glucose_section
from sensor_ingest.simulate.cgm import VirtualCGM
from sensor_ingest.simulate.personas import GlucosePersona

END = datetime(2026, 11, 24, tzinfo=UTC)
START = END - timedelta(days=15)


def simulated_report():
    persona = GlucosePersona(name="Sam", seed=7, nocturnal_low_prob=0.3, tz_offset_s=3600)
    cgm = VirtualCGM(persona)
    ts, mgdl = cgm.readings_between((START - timedelta(days=15)).timestamp(), END.timestamp())
    ok = np.isfinite(mgdl)
    glucose = KindSeries([uuid.uuid4()], 300.0, ts[ok], mgdl[ok])
    # Loaded as the API loads it: this window and the previous one (for the comparison).
    tts = np.arange((START - timedelta(days=15)).timestamp(), END.timestamp(), 300.0)
    fever = 1.8 * np.exp(-(((tts - tts[6320]) / 10_000.0) ** 2))
    temperature = KindSeries([uuid.uuid4()], 300.0, tts, 36.7 + fever)
    now = datetime.now(UTC)
    pid = uuid.uuid4()
    events = [
        EventOut(id=uuid.uuid4(), profile_id=pid, kind="meal", ts=datetime.fromtimestamp(
            e.start_ts, UTC), end_ts=None, details={}, note=None, created_at=now, updated_at=now)
        for e in cgm.events_between(START.timestamp(), END.timestamp())
    ]  # fmt: skip
    ref = ProfileRef(id=pid, name="Sam Example", timezone="Europe/Paris")
    loaded = {"glucose": glucose, "temperature": temperature}
    return build_report(ref, 15, START, END, loaded, events), glucose, temperature


def test_report_metrics_are_the_stats_numbers_and_agp_covers_the_day() -> None:
    report, glucose, _ = simulated_report()
    same = glucose_section(
        glucose.device_ids,
        glucose.ts,
        glucose.values,
        START.timestamp(),
        END.timestamp(),
        300,
        "Europe/Paris",  # the profile's zone: local days for MODD, CONGA, MAGE and ADRR
    )
    assert report.glucose == same
    v = report.glucose.variability
    assert v.gri.zone in {"A", "B", "C", "D", "E"} and 0 <= v.gri.gri <= 100
    assert v.mage_mgdl > 0 and v.modd_mgdl > 0 and v.conga24_mgdl > 0  # 15 days suffice
    assert len(report.daily) in (15, 16)  # local days touched by the window
    assert len(report.agp.minute_of_day) == 96
    assert report.temperature.current.fever_episodes
    assert {t.metric for t in report.targets} >= {"in_70_180_pct", "below_54_pct", "cv_pct"}


def test_pdf_pages_on_a4_and_letter(tmp_path: Path) -> None:
    report, glucose, temperature = simulated_report()
    sizes = {}
    for paper in ("a4", "letter"):
        pdf = render_report_pdf(report, glucose, temperature, paper)
        assert pdf.startswith(b"%PDF")
        boxes = re.findall(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
        # AGP, GRI and variability, two pages of daily profiles, temperature, episodes.
        assert len(boxes) == 6, boxes
        sizes[paper] = {(round(float(w)), round(float(h))) for w, h in boxes}
        (tmp_path / f"{paper}.pdf").write_bytes(pdf)
    assert sizes == {"a4": {(595, 842)}, "letter": {(612, 792)}}

    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "a4.pdf"), "-"], capture_output=True, text=True, check=True
        ).stdout
        for needle in (
            "Ambulatory glucose profile",
            "Time in range 70-180",
            "Coefficient of variation",
            "Glycemia risk index (GRI)",
            "hypoglycaemia component",
            "MAGE",
            "CONGA(24)",
            "Daily glucose profiles",
            "Body temperature",
            "Episodes and data sufficiency",
        ):
            assert needle in text, needle
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "2", str(tmp_path / "a4.pdf"),
             str(tmp_path / "page")],
            check=True,
        )  # fmt: skip
        pngs = sorted(tmp_path.glob("page-*.png"))
        assert len(pngs) == 2
        assert all(p.stat().st_size > 20_000 for p in pngs)  # drawn pages, not blank ones


def test_temperature_curves_show_the_days_of_the_report_only(tmp_path: Path) -> None:
    report, glucose, temperature = simulated_report()
    assert temperature.ts.min() < START.timestamp()  # the previous window is loaded too
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_report_pdf(report, glucose, temperature, "a4"))
    if not shutil.which("pdftotext"):
        return  # `make test` installs poppler-utils; without it the text cannot be read
    page = subprocess.run(
        ["pdftotext", "-f", "5", "-l", "5", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Body temperature" in page
    shown = set(re.findall(r"\b\d{2} [A-Z][a-z]{2}\b", page))  # legend and table dates
    assert shown == {f"{d.date:%d %b}" for d in report.temperature_daily}
