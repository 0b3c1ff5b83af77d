"""Unit tests of admission control (admission.py): when a new connection is refused, and with which code."""

from __future__ import annotations

import os

from realtime_sio import errors
from realtime_sio import metrics as metrics_module
from realtime_sio.admission import Admission, decide, open_descriptors
from realtime_sio.probes import Health


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def admission(fds: list[int], clock: Clock, health: Health | None = None) -> Admission:
    return Admission(
        health or Health(), metrics_module.create(process=False), max_lag=0.5, fd_reserve=10,
        clock=clock, count_descriptors=lambda: fds[0], limit=100,
    )


def test_decide_names_the_first_reason() -> None:
    """Draining wins over a descriptor shortage, which wins over a late loop; a healthy node admits."""
    assert decide(True, 9.0, 0.5, 0, 10) == "draining"
    assert decide(False, 9.0, 0.5, 5, 10) == "descriptors"
    assert decide(False, 0.6, 0.5, 50, 10) == "overloaded"
    assert decide(False, 0.6, 0.0, 50, 10) is None  # max_lag 0 turns the lag rule off
    assert decide(False, 0.1, 0.5, 50, 10) is None


def test_a_recent_lag_refuses_with_server_busy_until_it_is_a_second_old() -> None:
    """A loop lag above the limit refuses new connections (retryable server_busy) for one second after it was seen."""
    clock = Clock()
    gate = admission([20], clock)
    gate.observe_lag(0.8)
    refused = gate.refuse()
    assert refused is errors.SERVER_BUSY and refused.retryable and refused.status == 503
    clock.now += 0.5
    gate.observe_lag(0.01)  # a smaller lag does not hide the recent stall
    assert gate.refuse() is errors.SERVER_BUSY
    clock.now += 1.1
    assert gate.refuse() is None


def test_descriptor_budget_counts_admissions_between_samples() -> None:
    """Connections admitted since the last descriptor count are charged against the reserve."""
    clock = Clock()
    fds = [85]
    gate = admission(fds, clock)
    admitted = 0
    while gate.refuse() is None:
        admitted += 1
        assert admitted < 100
    assert admitted == 5  # 100 - 85 - 10 reserved
    clock.now += 1
    fds[0] = 50  # sockets closed meanwhile
    assert gate.refuse() is None


def test_draining_answers_server_draining() -> None:
    """While draining the refusal is server_draining, so clients go to another instance."""
    health = Health(draining=True)
    assert admission([0], Clock(), health).refuse() is errors.SERVER_DRAINING


def test_open_descriptors_counts_this_process_descriptors() -> None:
    """The count follows descriptors opened and closed, holes included (fds are not assumed to be contiguous)."""
    before = open_descriptors()
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(40)]
    try:
        for fd in opened[::2]:
            os.close(fd)
        assert open_descriptors() == before + 20
    finally:
        for fd in opened[1::2]:
            os.close(fd)
    assert open_descriptors() == before
