"""Serves the browser helpers shipped in the package (``/client/recovery.mjs``), so pages need no CDN."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

ASSETS = {"recovery.mjs": "text/javascript"}


def routes() -> list[web.RouteDef]:
    """GET /client/<name> for each shipped asset, read once at start-up, cacheable for an hour."""
    bodies = {name: resources.files("realtime_sio").joinpath("static", name).read_bytes() for name in ASSETS}

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in bodies:
            raise web.HTTPNotFound()
        return web.Response(
            body=bodies[name],
            content_type=ASSETS[name],
            headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
        )

    return [web.get("/client/{name}", asset)]
