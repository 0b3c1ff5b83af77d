"""The storm's sizes and who lives where: clients per node and per load-generator process, checked against
the descriptor limit, and the same client layout as ``bench/loadgen/lib/storm_client.js`` (kept in step by the
smoke test, which checks the leaver count both sides compute)."""

from __future__ import annotations

import math
from dataclasses import dataclass

FD_SPARE = 1000  # descriptors a process needs besides its sockets (Redis, logs, HTTP keep-alive, libraries)
MOVERS_PER_WORKER = 5000  # the killed node's clients per load-generator process at most


@dataclass(frozen=True)
class WorkerSlice:
    """One load generator's clients: the global indices in [first, first + span) whose home is the killed node
    (``homes="moving"``) or any other (``"staying"``); ``count`` of them."""

    first: int
    span: int
    homes: str
    count: int


def _spans(clients: int, parts: int) -> list[tuple[int, int]]:
    """[0, clients) cut into ``parts`` contiguous (first, span) pieces of (nearly) equal length."""
    base, extra = divmod(clients, parts)
    out, first = [], 0
    for w in range(parts):
        span = base + (1 if w < extra else 0)
        out.append((first, span))
        first += span
    return out


@dataclass(frozen=True)
class StormPlan:
    """One storm: sizes, rates and durations (the same for every server compared)."""

    clients: int = 100_000
    nodes: int = 7
    rooms: int = 1000
    presence_every: int = 10  # every 10th client of each node also joins a presence channel
    presence_channels: int = 100
    broadcasts: int = 3  # broadcasts to all after a warm-up (time to reach everyone: the median one)
    burst: int = 5  # events to every room at once after the broadcasts (the fan-out CPU row; 0 = from the broadcasts)
    rate: int = 1000  # targeted events per second
    seconds: float = 20.0  # targeted stream before the kill
    after_seconds: float = 5.0  # stream kept flowing after every client is back
    per_worker: int = 15_000  # clients per load-generator process (each socket is a descriptor)
    concurrency: int = 100  # handshakes in flight per load-generator process
    kill_node: int = -1  # -1 = the last node

    @property
    def killed(self) -> int:
        return self.kill_node if self.kill_node >= 0 else self.nodes - 1

    @property
    def workers(self) -> int:
        return len(self.worker_slices())

    def worker_slices(self) -> list[WorkerSlice]:
        """Each load-generator process's clients: the killed node's clients (the *movers*) live in processes of their
        own, at most ``MOVERS_PER_WORKER`` each, apart from everyone else's (the *stayers*, ``per_worker`` each).

        A process whose loop is busy with a reconnect storm answers its other clients' PINGs late; past the server's
        20 s ping timeout the server rightly closes them, and the storm spreads to clients the kill never touched, a
        cascade of the harness (the load generators' loops stalled 18-85 s on 2 cores at 100,000 clients when every
        process held movers). Browsers on machines of their own do not share a loop: neither do movers and stayers.
        """
        movers = self.clients_on(self.killed)
        stayers = self.clients - movers
        parts = {"moving": math.ceil(movers / min(self.per_worker, MOVERS_PER_WORKER)),
                 "staying": max(1, math.ceil(stayers / self.per_worker))}
        return [WorkerSlice(first, span, homes, self._count(first, span, homes))
                for homes, n in parts.items() for first, span in _spans(self.clients, n)]

    def _count(self, first: int, span: int, homes: str) -> int:
        moving = len(range(first + (self.killed - first) % self.nodes, first + span, self.nodes))
        return moving if homes == "moving" else span - moving

    def home(self, i: int) -> int:
        return i % self.nodes

    def is_presence(self, i: int) -> bool:
        return self.presence_every > 0 and (i // self.nodes) % self.presence_every == 0

    def is_leaver(self, i: int) -> bool:
        """1 in 4 presence members of the killed node do not come back (their presence entries must be reaped)."""
        return self.is_presence(i) and self.home(i) == self.killed and (i // self.nodes // self.presence_every) % 4 == 0

    def clients_on(self, node: int) -> int:
        return len(range(node, self.clients, self.nodes))

    def peak_per_survivor(self) -> int:
        """Sockets on the fullest survivor once the killed node's clients have spread over the others."""
        moved = self.clients_on(self.killed)
        return max(self.clients_on(n) for n in range(self.nodes) if n != self.killed) + math.ceil(moved / (self.nodes - 1))

    def check(self, nofile_hard: int) -> list[str]:
        """Problems that make the plan impossible here (empty = fine)."""
        problems = []
        if self.nodes < 2:
            problems.append("--nodes must be at least 2 (one is killed)")
        if not 0 <= self.killed < self.nodes:
            problems.append(f"--kill-node must be below --nodes ({self.nodes})")
        if self.clients < self.nodes:
            problems.append("--clients must be at least --nodes")
        budget = nofile_hard - FD_SPARE
        if self.nodes >= 2 and self.peak_per_survivor() > budget:
            problems.append(
                f"{self.peak_per_survivor():,} sockets on a survivor after the kill exceed RLIMIT_NOFILE {nofile_hard:,} "
                f"less {FD_SPARE} spare: use more --nodes")
        if max(w.count for w in self.worker_slices()) > budget:
            problems.append(f"a load generator would hold more than {budget:,} sockets: lower --per-worker")
        return problems
