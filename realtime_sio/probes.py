"""Operational routes: ``/health`` (liveness), ``/ready`` (readiness: not draining, Redis reachable), ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from realtime_sio.metrics import Metrics

RedisState = Literal["disabled", "up", "down"]


@dataclass
class Health:
    """Mutable process state the probes report; owned by the composition root."""

    draining: bool = False
    redis: RedisState = "disabled"
    # links[name] = up? Each Redis consumer (cluster bus, Laravel listener) reports its own connection through
    # link(); redis is "up" only while all of them are, so one reconnecting link cannot mask another that is down.
    links: dict[str, bool] = field(default_factory=dict)

    def link(self, name: str, up: bool) -> bool:
        """Record one Redis link's state; returns True when this changed the overall ``redis`` state."""
        self.links[name] = up
        state: RedisState = "up" if all(self.links.values()) else "down"
        changed = state != self.redis
        self.redis = state
        return changed

    def ready(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        if self.redis == "down":
            return False, "redis_down"
        return True, "ready"


def routes(health: Health, metrics: Metrics) -> list[web.RouteDef]:
    """The three probe routes, bound to the given state and registry."""

    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        ok, status = health.ready()
        body = {"status": status, "redis": health.redis, "draining": health.draining}
        return web.json_response(body, status=200 if ok else 503)

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    return [web.get("/health", live), web.get("/ready", ready), web.get("/metrics", scrape)]
