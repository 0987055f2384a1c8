"""Counters of a simulation run, cheap to read at any time for a status line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SimulationStats:
    """Running totals, updated in place by the streaming tasks (single event loop).

    ``sent`` counts readings handed to the API (each batch once, however often it was
    re-sent); ``accepted`` and ``duplicates`` are the API's counts; ``errors`` counts
    batches given up (rejected with a 4xx, or out of attempts); ``retries`` counts re-sent
    requests (back-pressure, token renewal, transient failures).
    """

    devices: int = 0
    batches: int = 0
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    errors: int = 0
    retries: int = 0
    lag_s: float = 0.0

    def status_line(self) -> str:
        """One line for a terminal or a log."""
        return (
            f"devices={self.devices} batches={self.batches} sent={self.sent} "
            f"accepted={self.accepted} duplicates={self.duplicates} errors={self.errors} "
            f"retries={self.retries} lag={self.lag_s:.0f}s"
        )
