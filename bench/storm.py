"""Cluster-scale storm (issue 14): N nodes on one Redis, many clients with their own JWTs, one node SIGKILLed while
targeted events flow; realtime_sio against Node socket.io 4.8 with @socket.io/redis-adapter on the same N processes.

    .venv/bin/python bench/storm.py                                  # 100,000 clients over 7 nodes (the lead's run)
    .venv/bin/python bench/storm.py --clients 3000 --nodes 3         # a small check, a few minutes

Prints the table (realtime_sio | node peer | ratio); ``--docs`` writes it into docs/performance.md between
``<!-- storm:begin -->`` and ``<!-- storm:end -->``; every run writes JSON and Markdown to bench/results/.
All traffic stays on 127.0.0.0/8. Every child (redis-server, nodes, load generators) runs in its own process group
and is stopped at the end, on an error, on SIGTERM/Ctrl-C and at the hard deadline (``--max-minutes``).
See bench/README.md ("Cluster storm").
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from benchkit import machine, report, storm_report
from benchkit.procs import install_cleanup, nofile_limits, stop_all
from benchkit.servers import NODE_PEER, REALTIME_SIO, SERVER_NAMES
from benchkit.storm_cluster import DIFFERING_SETTINGS
from benchkit.storm_plan import StormPlan
from benchkit.storm_run import StormContext, run_storm

NPM_FOLDERS = (REPO / "bench" / "peers" / "node-socketio", REPO / "bench" / "loadgen")


def port_note(plan: StormPlan) -> str:
    """How full the fullest survivor's share of the ephemeral port range gets (every client connects from 127.0.0.1)."""
    ports = machine.ephemeral_ports()
    if ports is None:
        return "Ephemeral port range unknown (not Linux?)."
    size = ports[1] - ports[0] + 1
    peak = plan.peak_per_survivor()
    note = (f"Ephemeral ports (net.ipv4.ip_local_port_range) {ports[0]}-{ports[1]}: {size:,}; the fullest survivor "
            f"holds {peak:,} connections from 127.0.0.1 to its one port ({peak / size:.0%} of the range).")
    if peak > size / 2:
        note += (" Past about half, Linux's connect() walks over the ports already taken to that port, in the kernel "
                 "of the load generators (__inet_check_established took 15 % of the machine's CPU in a 100,000 storm "
                 "with the default range): widen it, e.g. `sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"`.")
        say(note)
    return note


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = StormPlan()
    parser = argparse.ArgumentParser(description="Cluster storm: realtime_sio vs Node socket.io + redis-adapter (loopback).")
    parser.add_argument("--clients", type=int, default=d.clients, help=f"socket.io clients in all (default {d.clients:,})")
    parser.add_argument("--nodes", type=int, default=d.nodes, help=f"server processes on one Redis (default {d.nodes})")
    parser.add_argument("--rate", type=int, default=d.rate, help=f"targeted events per second (default {d.rate})")
    parser.add_argument("--seconds", type=float, default=d.seconds, help=f"targeted stream before the kill (default {d.seconds:g})")
    parser.add_argument("--broadcasts", type=int, default=d.broadcasts,
                        help=f"broadcasts to all after a warm-up (default {d.broadcasts}; time to reach all: the median)")
    parser.add_argument("--burst", type=int, default=d.burst,
                        help=f"events to every room at once after them, for the fan-out CPU row (default {d.burst}; "
                             "0: the row comes from the broadcasts)")
    parser.add_argument("--rooms", type=int, default=d.rooms, help=f"public rooms (default {d.rooms})")
    parser.add_argument("--per-worker", type=int, default=d.per_worker, help="clients per load-generator process")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES), help="comma list of: " + ", ".join(SERVER_NAMES))
    parser.add_argument("--python", default=os.environ.get("BENCH_PYTHON", sys.executable), help="Python that runs realtime_sio")
    parser.add_argument("--node", default="node", help="node binary")
    parser.add_argument("--realtime-sio-source", type=Path, default=REPO,
                        help="folder realtime_sio is imported from (default: this checkout; e.g. an older one extracted "
                             "with `git archive`, to check that the storm catches what a fix fixed)")
    parser.add_argument("--skip-npm", action="store_true", help="do not run `npm ci` (node_modules already installed)")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    parser.add_argument("--max-minutes", type=float, default=0, help="hard deadline for the whole run (0 = from the size)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="folder for JSON/Markdown/logs")
    return parser.parse_args(argv)


def say(text: str) -> None:
    print(f"[storm {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def memory_estimate(plan: StormPlan) -> int:
    """Bytes one run needs: load generators (~48 KiB per socket.io-client), the fatter server (~30 KiB per
    connection, the peer), ~100 MiB per node and per load generator, 0.5 GiB for redis-server and the rest."""
    return plan.clients * (48 + 30) * 1024 + (plan.nodes + plan.workers) * 100 * 2**20 + 2**29


def mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _deadline(signum: int, _frame: FrameType | None) -> None:
    say("hard deadline reached: stopping every child process")
    stop_all()
    raise SystemExit(124)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_cleanup()
    plan = StormPlan(clients=args.clients, nodes=args.nodes, rate=args.rate, seconds=args.seconds, rooms=args.rooms,
                     broadcasts=args.broadcasts, burst=args.burst,
                     per_worker=args.per_worker)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not servers or set(servers) - set(SERVER_NAMES):
        raise SystemExit(f"--servers: choose from {SERVER_NAMES}")
    nofile = nofile_limits()
    problems = plan.check(nofile[1])
    if problems:
        raise SystemExit("; ".join(problems))
    minutes = args.max_minutes or 10 + len(servers) * (3 + plan.clients / 6000 + plan.seconds / 60)
    signal.signal(signal.SIGALRM, _deadline)
    signal.alarm(int(minutes * 60))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_") and k != "PEER_REDIS_ADAPTER"}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = args.results / "logs" / f"{stamp}-storm"
    logs.mkdir(parents=True, exist_ok=True)
    command = "python bench/storm.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    say(f"{plan.clients:,} clients over {plan.nodes} nodes, {plan.workers} load generators, kill node {plan.killed}; "
        f"servers {servers}; hard deadline {minutes:.0f} min; logs in {logs}")
    if not args.skip_npm:
        for folder in NPM_FOLDERS:
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
                           cwd=folder, env=env, check=True, timeout=600)
    facts = machine.describe(args.python, args.node, nofile)
    notes = [
        (f"Settings that differ from the defaults — realtime_sio: {', '.join(DIFFERING_SETTINGS[REALTIME_SIO])} "
        f"(log level and everything else default); Node peer: {', '.join(DIFFERING_SETTINGS[NODE_PEER])}."),
        (f"Layout: client i connects to node i mod {plan.nodes} as user u<i> (own HS256 JWT, auto-joined to "
        f"private-user.u<i>), subscribes room.<i mod {plan.rooms}>; every {plan.presence_every}th client of a node also "
        f"joins presence-chat.<k> ({plan.presence_channels} channels; the default rules allow presence-chat.* for "
        "authenticated users). Load generators: "
        f"{plan.workers} Node processes ({max(w.count for w in plan.worker_slices()):,} clients at most each; the "
        f"killed node's clients in {sum(1 for w in plan.worker_slices() if w.homes == 'moving')} of them, apart from "
        "the others, so a loop busy with the reconnect storm does not delay other clients' PONGs; reconnections after "
        f"socket.io-client's backoff, at most {plan.concurrency} handshakes in flight per process; connecting from "
        "127.0.0.1 without binding a source address); publisher: one Node process POSTing /api/v1/events round-robin over live nodes, "
        "retrying a failed publish up to 3 times on the next node."),
        (f"Storm: after {plan.seconds:g} s of targeted events node {plan.killed} is taken out of the publisher's rotation, "
        "then SIGKILLed 0.3 s later; its clients reconnect with socket.io-client's default backoff (1-5 s, jitter 0.5), "
        "each attempt to the next node in a per-client order, presenting auth.positions (the newest position per "
        "channel from each event's 4th argument and from `recovery:position`). 1 in 4 of its presence members do not "
        "come back: they must vanish from presence after the lease; their events are not counted as lost."),
        f"Peak sockets on a survivor after the kill: {plan.peak_per_survivor():,} (RLIMIT_NOFILE {nofile[1]:,}).",
        port_note(plan),
        ("The Node peer has no missed-message recovery: its clients reconnect without positions, events sent to them "
        "while away are lost by design. Its presence channels follow laravel-echo-server's algorithm made cheaper (a JSON "
        "member list per channel in Redis, no liveness query and no reaper: a dead node's members stay listed), so the "
        "ghost/missing probe and the reaping rows are n/a for it."),
        ("Time rows are wall clock on a shared 2-core machine with every process unpinned: read them as orders of "
        "magnitude; the correctness rows (lost, duplicates, resets, ghosts, reaped) are exact."),
        ("Each load generator's longest own loop delay after connecting is listed below (movers first): a load "
        "generator that stalls past the server's 20 s ping timeout loses clients the server rightly closed."),
    ]
    if args.realtime_sio_source.resolve() != REPO:
        notes.append(f"realtime_sio was imported from {args.realtime_sio_source} (not this checkout).")
    if len(servers) > 1:
        notes.append("The two servers ran one after the other (never together), each with its own fresh redis-server.")
    need, available = memory_estimate(plan), mem_available()
    fits = available is None or need < 0.8 * available
    notes.append(f"Memory: one run needs about {need / 2**30:.1f} GiB (load generators ~48 KiB and a server up to "
                 f"~30 KiB per client, measured at 3,000 clients); {available / 2**30 if available else 0:.1f} GiB were "
                 f"available at the start: {'the machine holds one run at a time' if fits else 'the machine may NOT hold a run at this size'}.")
    if not fits:
        say(notes[-1])
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    started = time.monotonic()
    try:
        for kind in servers:
            ctx = StormContext(plan=plan, logs=logs, python=args.python, node_bin=args.node, base_env=env, say=say,
                               source=args.realtime_sio_source.resolve())
            try:
                results[kind] = run_storm(ctx, kind, results)
            except Exception as exc:  # noqa: BLE001 - one server failing must not lose the other's figures
                errors.append(f"{kind}: {type(exc).__name__}: {str(exc)[:800]}")
                say(errors[-1])
    finally:
        signal.alarm(0)
        stop_all()
    say(f"finished in {time.monotonic() - started:.0f} s")
    generated = storm_report.section(results, plan, facts, notes, errors, command)
    print(generated)
    (args.results / f"{stamp}-storm.md").write_text(generated + "\n")
    raw = {"plan": asdict(plan), "machine": facts, "results": results, "notes": notes, "errors": errors}
    (args.results / f"{stamp}-storm.json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
    if args.docs:
        report.update_docs(REPO / "docs" / "performance.md", generated, storm_report.BEGIN, storm_report.END)
        say("updated docs/performance.md")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
