"""DeviceAlerts: the stream algorithm and evaluator as a device actor runs them (no Ray, no DB)."""

from __future__ import annotations

import uuid

import numpy as np

from actors.alerting import DeviceAlerts, effective_rules
from algorithms.rules import RuleKind
from storage.alerts import AlertContext, OpenAlert

NOW = 1_800_000_000.0  # a Friday, 08:00 UTC


def falling(alerts: DeviceAlerts, start: float, n: int, first: float, per_min: float):
    """Feed one reading a minute along a line, as a live sensor would; returns all ops."""
    ops = []
    for i in range(n):
        t = start + 60 * i
        got, _ = alerts.on_readings(np.array([t]), np.array([first + per_min * i]), t, t)
        ops += got
    return ops


def test_falling_glucose_fires_urgent_low_soon_before_urgent_low() -> None:
    a = DeviceAlerts("glucose")
    ops = falling(a, NOW, 40, 140, -3)
    fired = [o.rule for o in ops if o.type == "fired"]
    assert "urgent_low_soon" in fired and "urgent_low" in fired
    assert fired.index("urgent_low_soon") < fired.index("urgent_low")
    urgent = next(o for o in ops if o.type == "fired" and o.rule == "urgent_low")
    assert urgent.value is not None and urgent.value <= 55 and urgent.severity == "urgent"


def test_acknowledged_alert_is_not_repeated_and_a_new_episode_fires_again() -> None:
    stored = {"glucose": [{"kind": "urgent_low", "realert_s": 120}]}
    a = DeviceAlerts("glucose", AlertContext(rules=stored))
    ops = falling(a, NOW, 30, 100, -3)
    assert any(o.rule == "urgent_low" and o.type == "fired" for o in ops)
    t = NOW + 30 * 60
    more = []
    for i in range(6):  # flat at 40 mg/dL: repeats every 2 minutes
        got, _ = a.on_readings(np.array([t + 60 * i]), np.array([40.0]), t + 60 * i, t + 60 * i)
        more += got
    assert [o.type for o in more if o.rule == "urgent_low"].count("repeated") >= 2
    a.acknowledge("urgent_low")
    t += 360
    quiet = []
    for i in range(6):
        got, _ = a.on_readings(np.array([t + 60 * i]), np.array([40.0]), t + 60 * i, t + 60 * i)
        quiet += got
    assert not [o for o in quiet if o.rule == "urgent_low"]


def test_state_from_the_database_neither_repeats_nor_forgets_an_alert() -> None:
    a = DeviceAlerts("glucose")
    ops = falling(a, NOW, 30, 100, -3)
    urgent = next(o for o in ops if o.type == "fired" and o.rule == "urgent_low")
    t = NOW + 30 * 60
    ctx = AlertContext(
        state=a.state_dict(),
        open_alerts=(OpenAlert(urgent.alert_id, "urgent_low", False, None),),
    )
    b = DeviceAlerts("glucose", ctx)
    after, _ = b.on_readings(np.array([t]), np.array([45.0]), t, t)
    assert not [o for o in after if o.type == "fired"]
    recovered = falling(b, t + 60, 25, 50, 4)
    cleared = [o for o in recovered if o.type == "cleared" and o.rule == "urgent_low"]
    assert [o.alert_id for o in cleared] == [urgent.alert_id]


def test_quiet_hours_hold_back_high_but_never_urgent_low() -> None:
    all_day = [{"start_min": 0, "end_min": 1440}]
    stored = {
        "glucose": [
            {"kind": "high", "threshold": 180, "quiet": all_day},
            {"kind": "low", "enabled": False},
            {"kind": "urgent_low_soon", "enabled": False},
        ]
    }
    a = DeviceAlerts("glucose", AlertContext(rules=stored))
    high = falling(a, NOW, 20, 200, 0)
    assert not high
    b = DeviceAlerts("glucose", AlertContext(rules=stored))
    low = falling(b, NOW, 20, 50, 0)
    assert [o.rule for o in low if o.type == "fired"] == ["urgent_low"]


def test_settings_override_defaults_and_urgent_low_is_always_there() -> None:
    rules = {
        r.kind: r
        for r in effective_rules({"glucose": [{"kind": "high", "threshold": 200}]}, "glucose")
    }
    assert rules[RuleKind.HIGH].threshold == 200
    assert rules[RuleKind.LOW].threshold == 70
    assert rules[RuleKind.URGENT_LOW].enabled


def test_signal_loss_from_the_clock_tick() -> None:
    a = DeviceAlerts("glucose")
    falling(a, NOW, 5, 120, 0)
    assert not a.tick(NOW + 10 * 60)
    ops = a.tick(NOW + 30 * 60)
    assert [(o.rule, o.type) for o in ops] == [("signal_loss", "fired")]
    assert isinstance(ops[0].alert_id, uuid.UUID)


def test_temperature_fever_fires_after_it_has_held() -> None:
    a = DeviceAlerts("temperature")
    ops = falling(a, NOW, 60, 38.2, 0)  # axilla skin 38.2 -> core 38.7 for an hour
    assert [o.rule for o in ops if o.type == "fired"] == ["fever"]


def test_the_body_site_sets_the_skin_to_core_offset() -> None:
    """Skin at 35.6 °C is a fever on the wrist (+3.0) but not in the armpit (+0.5); the site
    comes from the stored context on load and from a batch that names it."""
    loaded = DeviceAlerts("temperature", AlertContext(body_site="wrist"))
    told = DeviceAlerts("temperature")
    told.use_body_site("wrist")
    armpit = DeviceAlerts("temperature")
    for alerts in (loaded, told):
        ops = falling(alerts, NOW, 45, 35.6, 0)
        assert [(o.rule, o.value) for o in ops if o.type == "fired"] == [("fever", 38.6)]
    assert not [o for o in falling(armpit, NOW, 45, 35.6, 0) if o.type == "fired"]
