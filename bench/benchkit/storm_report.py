"""The storm's table (realtime_sio | node peer | ratio) and its generated section of docs/performance.md
(between ``<!-- storm:begin -->`` and ``<!-- storm:end -->``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .report import Row, fmt, ratio_cell
from .servers import NODE_PEER, REALTIME_SIO
from .storm_plan import StormPlan

BEGIN, END = "<!-- storm:begin -->", "<!-- storm:end -->"

# results[server] = the metrics run_storm returned (missing = not run or failed)
Results = Mapping[str, Mapping[str, Any]]


def rows_for(plan: StormPlan) -> list[Row]:
    p = plan
    return [
        Row("connected", f"Clients up (connected + subscribed) of {p.clients:,}", "higher"),
        Row("connect_failed", "  never connected", "lower", count=True),
        Row("connect_s", "  time until all are up (s)", "lower"),
        Row("connect_error_count", "  connect attempts refused or failed, then retried (e.g. 503 server_busy)", "info"),
        Row("loadgen_cpu_pct_connect", "  load generators' CPU while connecting (% of one core, summed)", "info"),
        Row("cpu_ms_per_connect", "Server CPU per client connect (handshake, JWT, auto-join, subscribes; all nodes, ms)", "lower"),
        Row("presence_joined", "  presence joins answered with presence:subscribed while connecting (both servers)", "info"),
        Row("kib_per_conn", "Memory per idle connection, RSS summed over nodes (KiB)", "lower"),
        Row("rss_node_max_mib", "  largest node RSS with every client connected (MiB)", "lower"),
        Row("loadgen_rss_mib", "  load generators' RSS with every client connected (MiB, summed)", "info"),
        Row("redis_b_per_conn", "Redis used_memory per connection (bytes)", "info"),
        Row("bcast_ms", f"Broadcast to all: one event to each of {p.rooms:,} rooms, until the last client has it "
            f"(ms; median of {p.broadcasts} rounds after a warm-up)",
            "lower"),
        Row("bcast_missing", "  clients that never got it", "lower", count=True),
        Row("us_per_delivery", "Server CPU per fan-out delivery, idle CPU subtracted (µs; "
            + (f"a burst of {p.burst} events to every room at once, 3 s after the last receipt included)" if p.burst else
               "the broadcasts after a warm-up, 3 s after each included)"), "lower"),
        Row("us_per_delivery_rounds", "  the same over the broadcasts after the warm-up, 3 s after each included (µs)",
            "lower"),
        Row("steady_p50", f"Targeted events ({p.rate:,}/s to private-user.<id>) before the kill: p50 (ms)", "lower"),
        Row("steady_p99", "  p99 (ms)", "lower"),
        Row("steady_max", "  max (ms)", "lower"),
        Row("server_us_per_event", "  server CPU per targeted event (POST, publish, bus, delivery; all nodes, idle "
            "CPU subtracted, µs)", "lower"),
        Row("post_steady_p50", "  POST /api/v1/events answered, p50 (ms)", "lower"),
        Row("post_steady_p99", "  POST answered, p99 (ms)", "lower"),
        Row("moved", f"Storm: clients disconnected by the SIGKILL of node {p.killed}", "info"),
        Row("survivor_ms_per_reconnect", "  survivors' CPU per moved client, the stream's CPU rate before the kill "
            "subtracted (ms)", "lower"),
        Row("back_p50_s", "  time until half of them are back and re-subscribed (s)", "lower"),
        Row("back_p99_s", "  … 99 % of them (s)", "lower"),
        Row("back_s", "  … every one of them (s)", "lower"),
        Row("still_down", "  clients not back at the deadline", "lower", count=True),
        Row("storm_connect_error_count", "  reconnect attempts refused or failed, then retried", "info"),
        Row("events_expected", "  targeted events accepted (HTTP 200), to clients that stay or come back", "info"),
        Row("lost", "  events lost (accepted, never received)", "lower", count=True),
        Row("lost_moved", "    of which to clients of the killed node", "lower", count=True),
        Row("lost_after_reset", "    of which to clients told recovery:reset on that channel (history aged out)", "lower", count=True),
        Row("lost_unannounced", "    of which lost without a reset (silently)", "lower", count=True),
        Row("duplicates", "  duplicate deliveries", "lower", count=True),
        Row("subscribe_failures", "  clients with a subscription still refused after 3 retries", "lower", count=True),
        Row("resets", "  recovery resets", "lower", count=True),
        Row("false_resets", "    false resets (history existed)", "lower", count=True),
        Row("recovered", "  events delivered by recovery replay", "info"),
        Row("storm_p50", "  live latency from the kill until all are back: p50 (ms)", "lower"),
        Row("storm_p99", "  p99 (ms)", "lower"),
        Row("storm_max", "  max (ms)", "lower"),
        Row("post_storm_p50", "  POST /api/v1/events answered during the storm, p50 (ms)", "lower"),
        Row("post_storm_p99", "  POST answered during the storm, p99 (ms)", "lower"),
        Row("post_storm_max", "  POST answered during the storm, max (ms)", "lower"),
        Row("publish_failed", "  publishes that failed after 3 retries", "lower", count=True),
        Row("presence_ghosts", "Presence after the lease: ghost members (not connected)", "lower", count=True),
        Row("presence_missing", "  live members missing", "lower", count=True),
        Row("false_leavings", "  users announced as leaving (presence:leaving) whose clients never went down", "lower",
            count=True),
        Row("presence_probe_refused", "  probe subscribes refused (then retried, up to 3 times)", "lower", count=True),
        Row("loop_stalls", "Event-loop stalls logged by the nodes (event_loop_stalled, whole run)", "lower", count=True),
        Row("pool_waits", "Survivors' Redis pool: commands that queued for a connection (whole run)", "lower", count=True),
        Row("pool_wait_s", "  total time queued (s)", "lower"),
        Row("pool_exhausted", "  commands that found none within REDIS_POOL_TIMEOUT", "lower", count=True),
        Row("admission_refused", "Survivors' handshakes refused by admission control (503 server_busy)", "info"),
        Row("live_nodes_reaped", "Live nodes reaped as dead", "lower", count=True),
        Row("survivors_exited", "Surviving nodes that exited (crashed) during the storm", "lower", count=True),
        Row("dead_node_reaped", "  killed node reaped", "info"),
    ]


def _value(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    if metrics is None:
        return None
    value = metrics.get(key)
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else None


def _cell(metrics: Mapping[str, Any] | None, row: Row) -> str:
    """Booleans as yes/no, whole numbers with thousands separators, the rest as the bench table does."""
    raw = metrics.get(row.key) if metrics is not None else None
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    if isinstance(raw, int):
        return f"{raw:,}"
    return fmt(_value(metrics, row.key), row.count)


def table(results: Results, plan: StormPlan) -> str:
    lines = ["| Metric | realtime_sio | node peer | ratio |", "|---|---:|---:|---|"]
    for row in rows_for(plan):
        ours_m, peer_m = results.get(REALTIME_SIO), results.get(NODE_PEER)
        ours, peer = _value(ours_m, row.key), _value(peer_m, row.key)
        comparable = not isinstance((ours_m or {}).get(row.key), bool) and (row.count or (ours or 0) > 0 < (peer or 0))
        ratio = ratio_cell(ours, peer, row) if comparable else "—"
        lines.append(f"| {row.label} | {_cell(ours_m, row)} | {_cell(peer_m, row)} | {ratio} |")
    return "\n".join(lines)


def details(results: Results) -> list[str]:
    """One line per server with what does not fit the table: error texts, reset codes, disconnect reasons."""
    out = []
    for server, m in results.items():
        parts = [f"node RSS with every client connected (MiB) {m.get('rss_nodes_mib')}",
                 f"connect errors while connecting {m.get('connect_errors') or {}}",
                 f"connect errors during the storm {m.get('storm_connect_errors') or {}}",
                 f"disconnect reasons {m.get('disconnect_reasons') or {}}",
                 f"broadcast rounds, warm-up first, each against the idle rate before the warm-up {m.get('bcast_rounds') or []}",
                 f"the burst {m.get('burst')}",
                 f"idle CPU before the broadcasts and after the burst (% of a core) {m.get('bcast_idle_pct')}",
                 f"CPU in cores during the stream before the kill {m.get('stream_cores') or {}}",
                 f"CPU seconds from the kill until all were back {m.get('storm_cpu_s') or {}}",
                 f"the same per moved client above the stream's rate (ms) {m.get('storm_cpu_ms_per_mover') or {}}",
                 f"load generators' longest own loop delay after connecting, each (ms) {m.get('loadgen_loop_max_ms')}",
                 f"subscribe refusals (retried) {m.get('subscribe_refusals') or {}}", f"reset codes {m.get('reset_codes') or {}}",
                 f"publish retries {m.get('publish_statuses') or {}}",
                 f"presence probe refusals (retried) {m.get('presence_probe_refusals') or {}}", f"reconnect attempts {m.get('reconnect_attempts')}",
                 f"leavers {m.get('leavers')}", f"node warnings {m.get('node_warnings') or {}}",
                 f"survivors' /metrics {m.get('survivor_metrics') or {}}", f"lost sample (seq) {m.get('lost_sample')}",
                 f"duplicate sample [seq, first receipt replayed, this one replayed, moved] {m.get('duplicate_sample') or []}"]
        out.append(f"{server}: " + "; ".join(parts))
    return out


def section(results: Results, plan: StormPlan, machine: Mapping[str, Any], notes: Sequence[str],
            errors: Sequence[str], command: str) -> str:
    m = machine
    out = [
        BEGIN,
        f"### Results: {plan.clients:,} clients over {plan.nodes} nodes, node {plan.killed} SIGKILLed mid-stream",
        "",
        (f"`{command}` — measured {m.get('date')} on {m.get('cpu_model')} ({m.get('cores')} cores, "
        f"{m.get('memory_gib')} GiB), Linux {m.get('kernel')}; RLIMIT_NOFILE {m.get('nofile')}; ephemeral ports "
        f"{m.get('ephemeral_ports')}; commit `{m.get('git')}`. "
        "Nothing pinned: nodes, redis-server and the load generators share the cores."),
        "",
        (f"Versions: Python {m.get('python')}, python-socketio {m.get('python-socketio')}, redis-py {m.get('redis-py')}; "
        f"Node {m.get('node')}, socket.io {m.get('socket.io')}, @socket.io/redis-adapter {m.get('redis-adapter')}, "
        f"socket.io-client {m.get('socket.io-client')}; redis-server {m.get('redis-server')}."),
        "",
        "Ratio = realtime_sio ÷ node peer; the verdict is for realtime_sio (≈ means within 10 %).",
        "",
        table(results, plan),
        "",
        "Notes:",
        *[f"- {n}" for n in notes],
        *[f"- {d}" for d in details(results)],
        *[f"- **error**: {e}" for e in errors],
        "",
        END,
    ]
    return "\n".join(out)
