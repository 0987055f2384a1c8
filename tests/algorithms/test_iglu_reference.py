"""Vigil's glucose metrics against the values of iglu 4.3.0, the R package researchers use as
the reference, on real CGM data of nine subjects (iglu's example data).

The data and iglu's values live in ``../shared/data/iglu/`` (GPL-2, not ours to commit); these
tests skip, saying so, only where that folder is absent. Every metric equals iglu's within
floating-point tolerance; the one definition difference (episodes are counted on readings,
not on iglu's interpolated grid) is named and tested at the end.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from algorithms.episodes import find_episodes
from algorithms.glucose_stats import compare_with_previous, glucose_stats
from algorithms.variability import day_grid

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "iglu"
pytestmark = [
    pytest.mark.reference_data,
    pytest.mark.skipif(
        not (DATA / "iglu_reference.json").exists(),
        reason="../shared/data/iglu is absent (iglu's data is not ours to commit)",
    ),
]
REL = 1e-9  # floating-point tolerance (relative, and absolute near zero)


def _load() -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, dict]]:
    series: dict[str, list[tuple[float, float]]] = {}
    with (DATA / "iglu_cgm.csv").open() as f:
        for row in csv.DictReader(f):
            t = datetime.fromisoformat(row["time"].replace("Z", "+00:00")).timestamp()
            series.setdefault(row["id"], []).append((t, float(row["gl"])))
    arrays = {k: tuple(np.array(col) for col in zip(*v, strict=True)) for k, v in series.items()}
    ref = json.loads((DATA / "iglu_reference.json").read_text())["subjects"]
    return arrays, ref


@pytest.fixture(scope="module")
def computed() -> dict[str, tuple[object, dict]]:
    arrays, ref = _load()
    out = {}
    for sid, (ts, g) in arrays.items():
        # The whole recording as one window; iglu's days are UTC days (the data are UTC).
        cmp = compare_with_previous(ts, g, start_s=ts.min(), end_s=ts.max() + 1, tz=0)
        out[sid] = (cmp, ref[sid])
    return out


SUBJECTS = [
    "Subject 1", "Subject 2", "Subject 3", "Subject 4", "Subject 5",
    "1636-70-1005", "2133-018", "2133-024", "2133-039",
]  # fmt: skip

# iglu name in iglu_reference.json "extra" -> Vigil's Variability field (iglu function)
EXTRA = {
    "mage": "mage_mgdl",  # mage(version = "ma"): Fernandes et al. 2022 on the 5-min grid
    "conga": "conga24_mgdl",  # conga(n = 24) on CGMS2DayByDay's grid
    "modd": "modd_mgdl",  # modd(lag = 1) on CGMS2DayByDay's grid
    "lbgi": "lbgi",
    "hbgi": "hbgi",
    "adrr": "adrr",
    "j_index": "j_index",
    "mad": "mad_mgdl",
    "iqr": "iqr_mgdl",
    "ea1c": "ea1c_pct",
}


def _close(mine: float, theirs: float) -> bool:
    return abs(mine - theirs) <= REL * max(1.0, abs(theirs))


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("name", sorted(EXTRA))
def test_variability_metric_equals_iglu(computed, subject: str, name: str) -> None:
    cmp, ref = computed[subject]
    mine = getattr(cmp.variability, EXTRA[name])
    assert _close(mine, ref["extra"][name]), (mine, ref["extra"][name])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_gri_equals_iglu(computed, subject: str) -> None:
    # iglu::gri: 3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High, bands as Klonoff et al. 2022.
    cmp, ref = computed[subject]
    g = cmp.variability.gri
    assert _close(g.gri, ref["extra"]["gri"])
    assert _close(3.0 * g.hypo_component + 1.6 * g.hyper_component, ref["extra"]["gri"])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_consensus_metrics_equal_iglu(computed, subject: str) -> None:
    cmp, ref = computed[subject]
    s = cmp.current
    pairs = {
        "n": s.readings,
        "mean": s.mean_mgdl,
        "sd": s.sd_mgdl,
        "cv_pct": s.cv_pct,
        "gmi_pct": s.gmi_pct,
        "min": s.min_mgdl,
        "max": s.max_mgdl,
        "below_54_pct": s.ranges.below_54_pct,
        "from_54_to_69_pct": s.ranges.from_54_below_70_pct,
        "in_70_180_pct": s.ranges.in_70_180_pct,
        "from_181_to_250_pct": s.ranges.above_180_to_250_pct,
        "above_250_pct": s.ranges.above_250_pct,
        "below_70_pct": s.ranges.below_70_pct,
        "above_180_pct": s.ranges.above_180_pct,
        "in_70_140_pct": s.ranges.in_70_140_pct,
    }
    bad = {k: (v, ref[k]) for k, v in pairs.items() if not _close(float(v), float(ref[k]))}
    assert not bad


# Episodes: one definition difference, named. iglu::episode_calculation counts on its
# interpolated 5-minute grid (CGMS2DayByDay), which fills gaps of up to 45 minutes with a
# straight line; Vigil counts on the readings themselves and bridges at most two missed
# readings (3.5 intervals, see algorithms/episodes.py). Vigil's choice is the right one for a
# clinical report: an interpolated 40-minute stretch is glucose nobody measured, and counting
# it can make or merge an episode. The rule itself is the same: run on iglu's grid, Vigil's
# episode finder gives exactly iglu's counts.
LEVELS = {  # iglu reference key -> (level mg/dL, below)
    "episodes_lv1_hypo_below_70": (70.0, True),
    "episodes_lv2_hypo_below_54": (54.0, True),
    "episodes_lv1_hyper_above_180": (180.0, False),
    "episodes_lv2_hyper_above_250": (250.0, False),
}


@pytest.mark.parametrize("subject", SUBJECTS)
def test_episode_rule_on_iglus_grid_gives_iglus_counts(subject: str) -> None:
    arrays, ref = _load()
    ts, g = arrays[subject]
    grid = day_grid(ts, g, dt_s=300.0)
    v = grid.values.ravel()
    t = grid.day0_s + 300.0 * np.arange(1, v.size + 1)
    ok = np.isfinite(v)  # a missing grid point (gap over 45 min) breaks a run
    t, v = t[ok], v[ok]
    for key, (level, below) in LEVELS.items():
        beyond = v < level if below else v > level
        eps = find_episodes(t, v, beyond, interval_s=300.0, below=below, max_gap_s=300.0)
        assert len(eps) == ref[subject]["extra"][key], key


def test_episode_counts_on_readings_differ_from_iglu_only_through_interpolated_gaps() -> None:
    arrays, ref = _load()
    fields = dict(zip(LEVELS, ("hypo_episodes_below_70", "hypo_episodes_below_54",
                               "hyper_episodes_above_180", "hyper_episodes_above_250"),
                      strict=True))  # fmt: skip
    for subject in SUBJECTS:
        ts, g = arrays[subject]
        s = glucose_stats(ts, g)
        gaps = np.diff(ts)
        bridged_by_iglu = bool(((gaps > 3.5 * 300.0) & (gaps <= 45 * 60.0)).any())
        for key, field in fields.items():
            if len(getattr(s, field)) != ref[subject]["extra"][key]:
                # Only where iglu's grid filled a gap Vigil does not bridge (or moved a
                # crossing by interpolating between readings).
                assert bridged_by_iglu, (subject, key)
