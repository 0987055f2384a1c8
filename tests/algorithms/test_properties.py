"""Property-based tests (hypothesis) of the statistics and the alert evaluator."""

from __future__ import annotations

import itertools
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.evaluator import AlertInputs, EvaluatorState, EventType, evaluate
from algorithms.glucose_stats import (
    agp_profile,
    compare_with_previous,
    glucose_stats,
    range_percents,
)
from algorithms.rules import QuietPeriod, Rule, RuleKind, default_rules
from algorithms.temperature_stats import temperature_stats

MONDAY = 1_704_067_200.0

readings = st.dictionaries(
    st.integers(min_value=0, max_value=3 * 288 - 1).map(lambda k: MONDAY + 300.0 * k),
    st.floats(min_value=39, max_value=401, allow_nan=False),
    min_size=1,
    max_size=300,
)


def _canon(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


@settings(max_examples=60, deadline=None)
@given(readings, st.randoms(use_true_random=False), st.integers(0, 50))
def test_stats_invariant_to_order_and_duplicates(data, rnd, n_dup) -> None:
    ts = np.array(list(data.keys()))
    g = np.array(list(data.values()))
    dup = [rnd.randrange(ts.size) for _ in range(n_dup)]
    ts2 = np.concatenate((ts, ts[dup]))
    g2 = np.concatenate((g, g[dup]))
    perm = list(range(ts2.size))
    rnd.shuffle(perm)
    ts2, g2 = ts2[perm], g2[perm]
    window = {"start_s": MONDAY, "end_s": MONDAY + 3 * 86400.0}
    a = glucose_stats(ts, g, **window)
    b = glucose_stats(ts2, g2, **window)
    assert _canon(a.to_dict()) == _canon(b.to_dict())
    assert a.readings == ts.size
    # The variability and risk metrics too (GRI, MAGE, CONGA, MODD, LBGI/HBGI, ADRR, ...).
    va = compare_with_previous(ts, g, **window, tz="Europe/Paris").variability
    vb = compare_with_previous(ts2, g2, **window, tz="Europe/Paris").variability
    assert _canon(va.to_dict()) == _canon(vb.to_dict())
    pa, pb = agp_profile(ts, g, tz=3600), agp_profile(ts2, g2, tz=3600)
    np.testing.assert_array_equal(pa.values_mgdl, pb.values_mgdl)
    ta = temperature_stats(ts, g / 10.0)
    tb = temperature_stats(ts2, g2 / 10.0)
    assert _canon(ta.to_dict()) == _canon(tb.to_dict())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=20, max_value=600, allow_nan=False), min_size=1))
def test_range_percentages_sum_to_100(values) -> None:
    r = range_percents(np.array(values))
    bands = [
        r.below_54_pct,
        r.from_54_below_70_pct,
        r.in_70_180_pct,
        r.above_180_to_250_pct,
        r.above_250_pct,
    ]
    assert abs(sum(bands) - 100.0) < 1e-9
    assert abs(r.below_70_pct + r.in_70_180_pct + r.above_180_pct - 100.0) < 1e-9
    assert all(0.0 <= b <= 100.0 for b in bands)


glucose_walk = st.lists(st.floats(min_value=-25, max_value=25), min_size=2, max_size=150).map(
    lambda steps: np.clip(120 + np.cumsum(steps), 30, 450)
)


def _split(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    points = sorted({0, n, *[c % n for c in cuts]})
    return list(itertools.pairwise(points))


@settings(max_examples=80, deadline=None)
@given(
    glucose_walk,
    st.lists(st.integers(0, 10_000), max_size=8),
    st.sampled_from([300.0, 600.0, 1800.0, 3600.0]),
    st.floats(min_value=0, max_value=20),
)
def test_evaluator_never_notifies_twice_without_clear_or_realert(g, cuts, realert, hyst) -> None:
    rules = [
        Rule(RuleKind.LOW, realert_s=realert, hysteresis=hyst),
        Rule(RuleKind.HIGH, threshold=180, realert_s=realert, hysteresis=hyst),
        Rule(RuleKind.URGENT_LOW, realert_s=realert),
        Rule(RuleKind.URGENT_LOW_SOON, realert_s=realert),
        Rule(RuleKind.FALL, enabled=True, realert_s=realert),
    ]
    ts = MONDAY + np.arange(g.size) * 300.0
    rate = np.concatenate(([np.nan], np.diff(g) / 5.0))
    pred = g + 20 * np.nan_to_num(rate)
    state, events = EvaluatorState(), []
    for a, b in _split(g.size, cuts):
        inputs = AlertInputs(
            ts[a:b],
            glucose_mgdl=g[a:b],
            glucose_rate_mgdl_per_min=rate[a:b],
            glucose_pred_20_mgdl=pred[a:b],
        )
        state, ev = evaluate(rules, state, inputs, now_s=float(ts[b - 1]))
        state = EvaluatorState.from_dict(json.loads(json.dumps(state.to_dict())))
        events += ev
    for rule in rules:
        open_, last = False, None
        for e in (e for e in events if e.rule is rule.kind):
            if e.type is EventType.FIRED:
                assert not open_, "fired twice without a clear"
                open_, last = True, e.ts_s
            elif e.type is EventType.REPEATED:
                assert open_ and last is not None and e.ts_s - last >= rule.realert_s
                last = e.ts_s
            else:
                assert open_, "cleared without having fired"
                open_, last = False, None


@settings(max_examples=60, deadline=None)
@given(
    glucose_walk,
    st.lists(
        st.tuples(
            st.integers(0, 1439), st.integers(0, 1440), st.sets(st.integers(0, 6), min_size=1)
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([0, 3600, -18000, "Europe/Paris", "America/New_York"]),
    st.integers(0, 7 * 288),
)
def test_quiet_hours_never_suppress_urgent_rules(g, periods, tz, offset) -> None:
    quiet = tuple(QuietPeriod(s, e, tuple(sorted(d))) for s, e, d in periods)
    loud = default_rules("glucose")
    silenced = tuple(Rule(r.kind, quiet=quiet) for r in loud)
    ts = MONDAY + (offset + np.arange(g.size)) * 300.0
    pred = g - 20.0
    inputs = AlertInputs(ts, glucose_mgdl=g, glucose_pred_20_mgdl=pred)
    _, ev_loud = evaluate(
        loud, EvaluatorState(), inputs, now_s=float(ts[-1]), tz=tz, max_alert_age_s=1e12
    )
    _, ev_quiet = evaluate(
        silenced, EvaluatorState(), inputs, now_s=float(ts[-1]), tz=tz, max_alert_age_s=1e12
    )
    urgent = (RuleKind.URGENT_LOW, RuleKind.URGENT_LOW_SOON)
    a = [(e.rule, e.type, e.ts_s) for e in ev_loud if e.rule in urgent]
    b = [(e.rule, e.type, e.ts_s) for e in ev_quiet if e.rule in urgent]
    assert a == b
    if (g <= 55).any():
        assert any(e.rule is RuleKind.URGENT_LOW and e.type is EventType.FIRED for e in ev_quiet)
