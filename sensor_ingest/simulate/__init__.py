"""Virtual sensors that stream into Vigil through its HTTP API, like a phone app would.

Pure generators (:class:`VirtualCGM`, :class:`VirtualTemperaturePatch`) compute readings as
a function of absolute time from a persona; :func:`run_simulation` signs up, registers
devices and streams them on a simulated clock.
"""

from sensor_ingest.simulate.cgm import VirtualCGM
from sensor_ingest.simulate.client import (
    ApiError,
    Device,
    DeviceRequest,
    VigilSession,
    ensure_account,
    ensure_devices,
    list_devices,
    post_readings,
)
from sensor_ingest.simulate.clock import SimulatedClock
from sensor_ingest.simulate.fleet import make_fleet, sensor_for
from sensor_ingest.simulate.personas import GlucosePersona, Persona, TemperaturePersona
from sensor_ingest.simulate.runner import Simulation, SimulationConfig, run_simulation
from sensor_ingest.simulate.sensor import VirtualSensor
from sensor_ingest.simulate.stats import SimulationStats
from sensor_ingest.simulate.temperature import VirtualTemperaturePatch

__all__ = [
    "ApiError",
    "Device",
    "DeviceRequest",
    "GlucosePersona",
    "Persona",
    "SimulatedClock",
    "Simulation",
    "SimulationConfig",
    "SimulationStats",
    "TemperaturePersona",
    "VigilSession",
    "VirtualCGM",
    "VirtualSensor",
    "VirtualTemperaturePatch",
    "ensure_account",
    "ensure_devices",
    "list_devices",
    "make_fleet",
    "post_readings",
    "run_simulation",
    "sensor_for",
]
