"""Benchmark realtime_sio against a Node socket.io 4 peer and print (and publish) the comparison table.

    python bench/run.py --quick     # a check: one run of each scenario at 1-2k connections, under two minutes
    python bench/run.py             # the full profile (1k/10k/100k idle, 10k-client latency and fan-out), 3 runs

Run it with the Python that has realtime_sio's dependencies (e.g. ``.venv/bin/python bench/run.py``). The full
profile rewrites the generated section of docs/performance.md (``--docs`` makes ``--quick`` do it too); every run
writes JSON and Markdown to bench/results/. All traffic stays on 127.0.0.0/8; every child process is stopped at the
end, on error and on Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import machine, report
from benchkit import tls as bench_tls
from benchkit.procs import install_cleanup, nofile_limits, stop_all
from benchkit.profiles import PROFILES, with_runs
from benchkit.redis_server import start_redis
from benchkit.scenarios import SCENARIOS, Context
from benchkit.servers import (
    NODE_PEER,
    REALTIME_SIO,
    SERVER_NAMES,
    ServerSpec,
    node_peer_spec,
    realtime_sio_spec,
)

REPO = Path(__file__).resolve().parents[1]
NPM_FOLDERS = (REPO / "bench" / "peers" / "node-socketio", REPO / "bench" / "loadgen")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="realtime_sio vs Node socket.io benchmark (loopback only).")
    parser.add_argument("--quick", action="store_true", help="small, single-run profile (< 2 min)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="profile by name (overrides --quick)")
    parser.add_argument("--runs", type=int, help="runs per figure (median); default 1 quick, 3 full")
    parser.add_argument("--idle-steps", help="comma list of idle connection counts, overriding the profile's (e.g. 1000,19000)")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES), help="comma list of: " + ", ".join(SERVER_NAMES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of: " + ", ".join(SCENARIOS))
    parser.add_argument("--python", default=os.environ.get("BENCH_PYTHON", sys.executable), help="Python that runs realtime_sio")
    parser.add_argument("--node", default="node", help="node binary")
    parser.add_argument("--skip-npm", action="store_true", help="do not run `npm ci` (node_modules already installed)")
    parser.add_argument("--tls", action="store_true", help="both servers serve HTTPS/WSS with a bench CA's certificate")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to separate cores")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="an extra environment variable for both servers, e.g. REALTIME_SIO_DELIVERY_ESTIMATE=false (repeatable)",
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", action="store_true", default=None, help="write docs/performance.md (default for full)")
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="never write docs/performance.md")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="folder for JSON/Markdown/logs")
    return parser.parse_args(argv)


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def npm_ci(node_env: dict[str, str]) -> None:
    """``npm ci`` in the peer and load-generator folders (locked dependencies, registry or npm cache only)."""
    for folder in NPM_FOLDERS:
        say(f"npm ci in {folder.relative_to(REPO)}")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
            cwd=folder, env=node_env, check=True, timeout=600,
        )


def per_address_limit() -> int:
    """Connections per loopback source address: the ephemeral port range less a safety margin."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return max(1000, high - low + 1 - 2000)


def clean_env() -> dict[str, str]:
    """This environment without REALTIME_SIO_* variables, so the caller's settings cannot skew the servers."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}


def specs(args: argparse.Namespace, extra_env: dict[str, str] | None = None) -> list[ServerSpec]:
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(wanted) - set(SERVER_NAMES)
    if unknown:
        raise SystemExit(f"unknown --servers {sorted(unknown)}; choose from {SERVER_NAMES}")
    made = {REALTIME_SIO: realtime_sio_spec(args.python, extra_env), NODE_PEER: node_peer_spec(args.node, extra_env)}
    return [made[name] for name in wanted]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_cleanup()
    profile = with_runs(PROFILES[args.profile or ("quick" if args.quick else "full")], args.runs)
    if args.idle_steps:
        try:
            steps = tuple(sorted(int(n) for n in args.idle_steps.split(",") if n.strip()))
        except ValueError:
            raise SystemExit(f"--idle-steps must be integers, got {args.idle_steps!r}") from None
        if not steps or steps[0] < 1:
            raise SystemExit("--idle-steps needs at least one positive count")
        profile = replace(profile, idle_steps=steps)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(scenarios) - set(SCENARIOS):
        raise SystemExit(f"unknown --scenarios {sorted(set(scenarios) - set(SCENARIOS))}; choose from {list(SCENARIOS)}")
    nofile = nofile_limits()
    env = clean_env()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = args.results / "logs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    server_env: dict[str, str] = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--server-env expects NAME=VALUE, got {item!r}")
        server_env[name] = value
    if args.tls:  # the same figures, every connection over TLS (wss://, and the HTTP emitter over https://)
        tls = bench_tls.make(logs)
        server_env = tls.server_env()
        env.update(tls.client_env())
        profile = replace(profile, name=f"{profile.name}-tls")
    servers = specs(args, server_env)
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    server_core, loadgen_core = (0, 1) if pin else (None, None)
    say(f"profile {profile.name}, {profile.runs} run(s), servers {[s.name for s in servers]}, scenarios {scenarios}")
    say(f"RLIMIT_NOFILE {nofile}; logs in {logs}")

    if not args.skip_npm:
        npm_ci(env)
    facts = machine.describe(args.python, args.node, nofile)
    redis_proc = None
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
    errors: list[str] = []
    notes: list[str] = []
    started = time.monotonic()
    try:
        redis_url = None
        if "redis" in scenarios:
            redis_proc, redis_url = start_redis(logs / "redis-server.log", loadgen_core)
        for run in range(1, profile.runs + 1):
            ctx = Context(
                profile=profile, logs=logs, run=run, server_core=server_core, loadgen_core=loadgen_core,
                nofile_hard=nofile[1], per_address_limit=per_address_limit(), base_env=env,
                redis_url=redis_url, node=args.node, notes=notes,
            )
            order = servers if run % 2 else list(reversed(servers))  # alternate who goes first, to spread drift
            for spec in order:
                metrics: dict[str, Any] = {}
                for name in scenarios:
                    say(f"run {run}/{profile.runs}: {spec.name} {name}")
                    try:
                        metrics.update(SCENARIOS[name](ctx, spec))
                    except Exception as exc:  # noqa: BLE001 - one failed scenario must not lose the others' figures
                        errors.append(f"run {run}, {spec.name}, {name}: {type(exc).__name__}: {str(exc)[:600]}")
                        say(errors[-1])
                runs[spec.name].append(metrics)
    finally:
        if redis_proc is not None:
            redis_proc.stop()
        stop_all()

    say(f"finished in {time.monotonic() - started:.0f} s")
    generated = report.section(runs, profile, facts, notes, errors)
    print(generated)
    (args.results / f"{stamp}-{profile.name}.md").write_text(generated + "\n")
    raw = {"profile": profile.__dict__, "machine": facts, "runs": runs, "notes": notes, "errors": errors}
    (args.results / f"{stamp}-{profile.name}.json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
    write_docs = args.docs if args.docs is not None else profile.name == "full"
    if write_docs:
        report.update_docs(REPO / "docs" / "performance.md", generated)
        say("updated docs/performance.md")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
