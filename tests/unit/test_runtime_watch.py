"""Unit tests of the runtime stall watchers (runtime_watch.py) on a fresh registry."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio import runtime_watch


def _count(metrics: metrics_module.Metrics, generation: str) -> float:
    value = metrics.registry.get_sample_value("realtime_sio_gc_pause_seconds_count", {"generation": generation})
    return float(value or 0.0)


def test_gc_collections_are_timed() -> None:
    """A full gc.collect() is observed in realtime_sio_gc_pause_seconds{generation="2"}."""
    metrics = metrics_module.create(CollectorRegistry(), process=False)
    before = len(gc.callbacks)
    runtime_watch.install_gc_timing(metrics)
    try:
        gc.collect()
        assert _count(metrics, "2") >= 1
    finally:
        del gc.callbacks[before:]
