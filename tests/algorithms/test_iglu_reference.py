"""Vigil's glucose metrics against the values of iglu 4.3.0, the R package researchers use as
the reference, on real CGM data of nine subjects (iglu's example data).

The data and iglu's values live in ``../shared/data/iglu/`` (GPL-2, not ours to commit); these
tests skip, saying so, only where that folder is absent. Every metric equals iglu's within
floating-point tolerance; no definition differs for these metrics.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from algorithms.glucose_stats import compare_with_previous

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
