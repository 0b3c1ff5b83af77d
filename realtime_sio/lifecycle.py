"""One ordered lifecycle for every background part: started in the order added, stopped in the reverse order.

A part may have a ``start`` (awaited at start-up, e.g. opening an HTTP session), a ``run`` (a coroutine kept running
as a named background task: a listener, a heartbeat, a sampler) and a ``stop`` (awaited at shutdown, e.g. closing
Redis). :meth:`Lifecycle.stop` first cancels every running task (newest first) and waits for them, then awaits each
``stop`` newest first, so a listener is gone before the client it reads from closes. Each step is bounded by the
caller's deadline and a failing step does not stop the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from realtime_sio import logs

log = logs.get(__name__)


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    start: Callable[[], Awaitable[None]] | None = None
    run: Callable[[], Coroutine[Any, Any, None]] | None = None
    stop: Callable[[], Awaitable[Any]] | None = None


class Lifecycle:
    """The parts of one server instance, in start order."""

    def __init__(self) -> None:
        self._parts: list[Part] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    def add(
        self,
        name: str,
        *,
        start: Callable[[], Awaitable[None]] | None = None,
        run: Callable[[], Coroutine[Any, Any, None]] | None = None,
        stop: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        if self._started:
            raise RuntimeError(f"part {name!r} added after start")
        if any(part.name == name for part in self._parts):
            raise ValueError(f"part {name!r} added twice")
        self._parts.append(Part(name, start, run, stop))

    @property
    def names(self) -> list[str]:
        """Part names in start order."""
        return [part.name for part in self._parts]

    async def start(self) -> None:
        """Start every part in order: its ``start`` is awaited, then its ``run`` becomes a background task."""
        self._started = True
        loop = asyncio.get_running_loop()
        for part in self._parts:
            if part.start is not None:
                await part.start()
            if part.run is not None:
                self._tasks.append(loop.create_task(part.run(), name=part.name))

    async def stop(self, timeout: float) -> None:
        """Cancel the running tasks, then stop the parts in reverse order; the whole within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        tasks, self._tasks = self._tasks, []
        for task in reversed(tasks):
            task.cancel()
        if tasks:
            await _bounded("background", asyncio.gather(*tasks, return_exceptions=True), deadline)
        for part in reversed(self._parts):
            if part.stop is not None:
                await _bounded(part.name, part.stop(), deadline)


async def _bounded(name: str, step: Awaitable[Any], deadline: float) -> None:
    remaining = max(0.1, deadline - asyncio.get_running_loop().time())
    try:
        await asyncio.wait_for(step, remaining)
    except (TimeoutError, Exception) as exc:  # noqa: BLE001 - shutdown continues whatever one step does
        log.warning("shutdown_step_failed", step=name, error=type(exc).__name__)
