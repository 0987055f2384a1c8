"""Generate CGM traces with the UVA/Padova T1D simulator (``simglucose``) once, offline.

The committed ``simglucose_traces.npz`` is what the tests read; this script documents how it
was made and regenerates it (``pip install 'simglucose>=0.2.11,<0.3'`` first — it pulls
pandas, scipy, matplotlib and gym, which is why the tests do not depend on it)::

    .venv/bin/python tests/data/make_simglucose_traces.py

Each run is one virtual patient for ``DAYS`` days with a random meal scenario and the
simulator's basal-bolus controller; ``insulin_factor`` scales that controller's insulin so
that some runs have hypoglycaemia (factor > 1) and some do not (factor < 1).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("simglucose_traces.npz")
DAYS = 3
START = datetime(2024, 1, 1, 0, 0, 0)
# (patient, sensor, seed, insulin_factor)
RUNS = [
    ("adult#001", "GuardianRT", 1, 1.15),
    ("adult#002", "GuardianRT", 2, 1.3),
    ("adult#003", "GuardianRT", 3, 1.2),
    ("adult#004", "GuardianRT", 4, 1.25),
    ("adult#005", "GuardianRT", 5, 1.35),
    ("adolescent#001", "GuardianRT", 6, 1.2),
    ("adolescent#002", "GuardianRT", 7, 1.15),
    ("adolescent#003", "GuardianRT", 8, 1.3),
    ("child#001", "GuardianRT", 9, 1.2),
    ("child#002", "GuardianRT", 10, 1.1),
    ("adult#006", "Navigator", 11, 1.25),
    ("adolescent#004", "Navigator", 12, 1.2),
    ("adult#007", "GuardianRT", 13, 0.8),
    ("adult#008", "GuardianRT", 14, 0.8),
    ("adolescent#005", "GuardianRT", 15, 0.8),
    ("adult#009", "Navigator", 16, 0.8),
]


def main() -> int:
    from simglucose.actuator.pump import InsulinPump
    from simglucose.controller.basal_bolus_ctrller import BBController
    from simglucose.controller.base import Action
    from simglucose.patient.t1dpatient import T1DPatient
    from simglucose.sensor.cgm import CGMSensor
    from simglucose.simulation.env import T1DSimEnv
    from simglucose.simulation.scenario_gen import RandomScenario
    from simglucose.simulation.sim_engine import SimObj

    class ScaledBB(BBController):
        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = factor

        def policy(self, observation, reward, done, **kwargs):  # type: ignore[no-untyped-def]
            a = super().policy(observation, reward, done, **kwargs)
            return Action(basal=a.basal * self.factor, bolus=a.bolus * self.factor)

    arrays: dict[str, np.ndarray] = {}
    names = []
    for i, (patient, sensor, seed, factor) in enumerate(RUNS):
        env = T1DSimEnv(
            T1DPatient.withName(patient),
            CGMSensor.withName(sensor, seed=seed),
            InsulinPump.withName("Insulet"),
            RandomScenario(start_time=START, seed=seed),
        )
        run = SimObj(env, ScaledBB(factor), timedelta(days=DAYS), animate=False, path=None)
        run.simulate()
        res = run.results()
        t0 = START.timestamp()
        ts = np.array([(t.to_pydatetime().timestamp() - t0) for t in res.index], dtype=np.int64)
        arrays[f"ts_s_{i}"] = ts
        arrays[f"bg_{i}"] = np.round(res["BG"].to_numpy(dtype=np.float64), 1).astype(np.float32)
        arrays[f"cgm_{i}"] = np.round(res["CGM"].to_numpy(dtype=np.float64), 1).astype(np.float32)
        names.append(f"{patient}|{sensor}|{seed}|{factor}")
        print(names[-1], len(ts), float(res["BG"].min()), file=sys.stderr)
    arrays["runs"] = np.array(names)
    np.savez_compressed(OUT, **arrays)
    print(OUT, OUT.stat().st_size, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
