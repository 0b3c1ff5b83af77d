"""An Engine.IO socket's send queue that counts the encoded bytes it holds (the slow-reader bound of fan-out)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


def _size(item: Any) -> int:
    if item is None:
        return 0
    encoded = item.encode()
    return len(encoded)


class ByteQueue:
    """An Engine.IO socket's send queue: what python-engineio uses of ``asyncio.Queue``, in one deque.

    ``asyncio.Queue`` allocates four deques (items, getters, putters, its join event's waiters), about 3 KB per
    connection before anything is queued; this one allocates one deque only while it holds items (a lean WebSocket
    writes straight to its connection and rarely queues: ~0.7 KiB per idle socket saved) and a waiter list only while
    a getter waits. It also tracks how many encoded bytes it holds (``bytes``), which is the slow-reader bound.
    """

    __slots__ = ("_finished", "_items", "_unfinished", "_waiters", "bytes")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiters: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        self._finished: asyncio.Future[None] | None = None
        self.bytes = 0

    def qsize(self) -> int:
        return len(self._items) if self._items is not None else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self.bytes += _size(item)
        self._unfinished += 1
        waiters = self._waiters
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        self.bytes -= _size(item)
        return item

    async def get(self) -> Any:
        while not self._items:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        return self.get_nowait()

    def task_done(self) -> None:
        self._unfinished = max(0, self._unfinished - 1)
        if self._unfinished == 0 and self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    async def join(self) -> None:
        if self._unfinished > 0:
            if self._finished is None or self._finished.done():
                self._finished = asyncio.get_running_loop().create_future()
            await self._finished
