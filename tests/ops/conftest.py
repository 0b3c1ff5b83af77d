"""Fixtures of the operations tests: the Helm binary, located once per session."""

from __future__ import annotations

import pytest

from tests.ops.helm_tool import helm_binary


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a working helm binary; the test fails with install instructions when there is none."""
    return helm_binary()
