"""Browser test fixtures: the page server (the test page's origin and the scenarios' control routes).

Every test here is marked ``browser``. Without Chromium, node or ``tests/browser/node_modules`` the tests skip with
the reason, except under CI (``CI`` set), where a missing tool is a failure: run ``tests/browser/install.sh`` first.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.browser.harness import ARTIFACTS, PageServer, missing_tools
from tests.support import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    reason = missing_tools()
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)
            if reason is not None and not os.environ.get("CI"):
                item.add_marker(pytest.mark.skip(reason=f"browser tests need tools: {reason}"))


@pytest.fixture
async def page_server() -> AsyncIterator[PageServer]:
    """The Echo test page on two free ports (two origins); tests register control actions with ``on``."""
    reason = missing_tools()
    if reason is not None:  # only reached under CI, where skipping would hide a broken install
        pytest.fail(f"browser tests need tools: {reason}")
    server = PageServer(ports=_two_ports())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def artifacts() -> str:
    """``test-artifacts/`` (gitignored), created on demand."""
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS)


def _two_ports() -> list[int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return [first, second]
