"""realtime_sio's server with a busy loop: every loop iteration also spends ``LOOP_BURN_MS`` ms in a callback.

Used by ``bench/loop_iterations.py`` only: a request's latency divided by the burn is about how many loop iterations
the server needs to answer it, which is what a request waits for on a saturated node. Run as
``python bench/benchkit/loop_burner.py`` with realtime_sio importable and its usual ``REALTIME_SIO_*`` settings.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from realtime_sio import app, cli

BURN_SECONDS = float(os.environ.get("LOOP_BURN_MS", "20")) / 1000


def _with_burner(serve: Any) -> Any:
    async def serve_burning(settings: Any, ready: Any = None) -> None:
        loop = asyncio.get_running_loop()

        def burn() -> None:
            time.sleep(BURN_SECONDS)  # stands for the work of a saturated node
            loop.call_soon(burn)  # once per iteration: callbacks scheduled now run in the next one

        loop.call_soon(burn)
        await serve(settings, ready)

    return serve_burning


if __name__ == "__main__":
    app.serve = _with_burner(app.serve)  # type: ignore[assignment]
    sys.exit(cli.main(["serve"]))
