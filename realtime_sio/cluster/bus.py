"""Redis transport: events cross nodes through one pub/sub channel after being recorded in a per-channel Redis Stream.

One Lua script appends the event to the channel's stream (its id is the event's position) and PUBLISHes it, so the
stream order and the pub/sub order are the same and an event is recorded exactly when it is sent. Every node (the
sender too) delivers what arrives on pub/sub, once per position: after its subscriber reconnects, a node replays
from the streams what it missed for the channels it serves, and drops pub/sub duplicates by position.

A channel's position, for a socket joining it, costs no Redis round trip when this node can tell it: the channel's
newest event when this node follows the channel, else just below the millisecond of the newest recorded event (of any
channel) its subscriber has handled (the *watermark*): every event after that reaches this node later, in order, so
the joining socket receives it live. Each node publishes a recorded tick every ``TICK_SECONDS`` so the watermark stays
recent in a quiet cluster; without a recent one (``WATERMARK_MAX_AGE``), or while the subscriber is down, Redis is
asked.

A publish that Redis does not acknowledge raises, so the HTTP routes answer 503 and Laravel's queue retries; an
ephemeral signal (whisper, presence announcement) falls back to this node's own sockets while Redis is down.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime_sio import logs
from realtime_sio.cluster.script_calls import ScriptCalls
from realtime_sio.cluster.subscriber import Subscription
from realtime_sio.metrics import Metrics
from realtime_sio.probes import Health
from realtime_sio.publish.broadcaster import Message, Then
from realtime_sio.publish.history import (
    Cursor,
    Entry,
    Replay,
    Unrecoverable,
    new_epoch,
    parse_position,
)

log = logs.get(__name__)

T = TypeVar("T")

LINK = "cluster_bus"  # this subscriber's name in Health.links

# The history's epoch: read, or created with the caller's candidate when Redis has none (it lost its data).
def _epoch_lua(key: str, candidate: str) -> str:
    return f"""
local epoch = redis.call('GET', {key})
if not epoch then
  epoch = {candidate}
  redis.call('SET', {key}, epoch)
end
"""


# KEYS[1] stream, KEYS[2] once-key or '', KEYS[3] epoch, KEYS[4] the channel's top position;
# ARGV: record(0/1), pubsub channel, maxlen, max age ms, payload, a new epoch (used if none exists), top ttl ms.
# Each entry keeps `p`, the channel's previous top position, so a reader can tell events it no longer has from none.
_PUBLISH = """
if KEYS[2] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[4]) then return 'claimed' end
end
local id = '-'
if ARGV[1] == '1' then""" + _epoch_lua("KEYS[3]", "ARGV[6]") + """
  local prev = redis.call('GET', KEYS[4])
  if not prev then prev = '0-0' end
  local sid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[5], 'p', prev)
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XTRIM', KEYS[1], 'MINID', '~', tostring(now_ms - tonumber(ARGV[4])))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[4], sid, 'PX', ARGV[7])
  id = sid .. '@' .. epoch
end
redis.call('PUBLISH', ARGV[2], id .. ' ' .. ARGV[5])
return id
"""

# KEYS[1] epoch, KEYS[2..n] channels' top positions; ARGV[1] a new epoch (used if none exists). Returns the n-1
# positions. Before a channel's first event (or after its top expired) the position is "now - 1 ms": every later
# event's stream id is above it.
_POSITIONS = _epoch_lua("KEYS[1]", "ARGV[1]") + """
local t = redis.call('TIME')
local before_now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - 1) .. '-0'
local tops = redis.call('MGET', unpack(KEYS, 2))
local out = {}
for i = 1, #KEYS - 1 do
  out[i] = (tops[i] or before_now) .. '@' .. epoch
end
return out
"""
POSITION_BATCH = 256  # channels per position read at most
TICK_CHANNEL = "#tick"  # the recorded tick each node publishes (an internal channel: no socket's room)
TICK_SECONDS = 5.0  # how often each node publishes it
WATERMARK_MAX_AGE = 30.0  # seconds: an older watermark is not handed out as a position (Redis is read instead)
_MAX_SEQUENCE = 2**64 - 1  # a stream id's largest sequence number: "<ms>-<this>" is the last id of millisecond ms
HISTORY_BATCH = 64  # history reads per pipeline at most (each answer may hold up to 2 x history_size events)


def encode(message: Message) -> str:
    """The JSON a message travels as (position travels beside it)."""
    doc = {"c": message.channel, "e": message.event, "d": message.data, "x": message.except_sid, "t": message.accepted_at}
    if message.user_id is not None:
        doc["u"] = message.user_id
    if message.source:
        doc["s"] = message.source
    return json.dumps(doc, separators=(",", ":"))


def encode_around(message: Message) -> tuple[str, str]:
    """``encode(message)`` as the text before and after its data (``message.data`` is ignored): a Redis script that
    holds the data (a presence member's stored JSON) puts it between them."""
    head = '{"c":' + json.dumps(message.channel) + ',"e":' + json.dumps(message.event) + ',"d":'
    rest: dict[str, Any] = {"x": message.except_sid, "t": message.accepted_at}
    if message.user_id is not None:
        rest["u"] = message.user_id
    if message.source:
        rest["s"] = message.source
    return head, "," + json.dumps(rest, separators=(",", ":"))[1:]


def events_channel(prefix: str) -> str:
    """The pub/sub channel every node's subscriber reads: every bus message of the cluster travels on it."""
    return f"{prefix}:events"


_CHANNEL_HEAD = b'{"c":"'


def peek_channel(raw: str | bytes, space: int | None = None) -> str | None:
    """The channel of an encoded message without decoding it (``encode`` writes it first; channel names need no JSON
    escapes); ``None`` when it cannot be read that way (then ``decode`` decides). ``space``: the index of the first
    space in ``raw`` when the caller already looked for it."""
    if not isinstance(raw, bytes):
        return None
    start = (raw.find(b" ") if space is None else space) + 1
    if start == 0 or not raw.startswith(_CHANNEL_HEAD, start):
        return None
    start += len(_CHANNEL_HEAD)
    end = raw.find(b'"', start)
    name = raw[start:end]
    if end < 0 or b"\\" in name:
        return None
    try:
        return name.decode("ascii")
    except UnicodeDecodeError:
        return None


def decode(raw: str | bytes) -> Message | None:
    """``"<position|-> <json>"`` → Message; ``None`` for anything malformed (never raises)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    position, sep, body = text.partition(" ")
    if not sep:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("c"), str) or not isinstance(doc.get("e"), str):
        return None
    accepted = doc.get("t")
    source = doc.get("s")  # absent in messages from nodes that predate it: "" (counted as source "unknown")
    return Message(
        channel=doc["c"],
        event=doc["e"],
        data=doc.get("d"),
        except_sid=doc.get("x") if isinstance(doc.get("x"), str) else None,
        position=None if position == "-" else position,
        accepted_at=float(accepted) if isinstance(accepted, (int, float)) else 0.0,
        user_id=doc.get("u") if isinstance(doc.get("u"), str) else None,
        source=source if isinstance(source, str) and len(source) <= 16 else "",
    )


def _fmt(position: tuple[int, int]) -> str:
    return f"{position[0]}-{position[1]}"


def _fail(waiters: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    """Hand one batched read's error to every waiter still waiting (Recovery retries on Redis trouble)."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(exc)
            waiter.exception()  # retrieved: a waiter cancelled meanwhile must not leave asyncio logging it


async def _for_waiters(waiters: list[asyncio.Future[Any]], read: Awaitable[T]) -> T | None:
    """``await read`` for a batch of waiters: on failure each gets the error (and is cancelled on cancellation) and
    ``None`` is returned."""
    try:
        return await read
    except asyncio.CancelledError:
        for waiter in waiters:
            waiter.cancel()
        raise
    except Exception as exc:  # noqa: BLE001 - handed to the waiters
        _fail(waiters, exc)
        return None


class RedisBus:
    """Transport over Redis pub/sub + Streams; :meth:`run` is the subscriber loop (a background task)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        history_size: int,
        history_seconds: float,
        top_seconds: float,
        deliver: Callable[[list[Message]], int],
        local_channels: Callable[[], Iterable[str]],
        health: Health,
        metrics: Metrics,
        backoff_max: float = 5.0,
        serves: Callable[[str], bool] = lambda channel: True,
        *,
        url: str,
        calls: ScriptCalls,
    ) -> None:
        """``deliver(messages)``: this node's delivery of the events one read brought, in order (publish/delivery.py
        ``deliver_all``). ``serves(channel)``: whether this node has anyone to deliver ``channel``'s events to;
        bus messages of other channels are dropped before they are decoded. ``url``: the Redis the subscriber
        connects to (the same as ``client``'s; cluster/subscriber.py). ``calls``: the node's batched script calls
        (shared with presence, so a loop iteration's publishes and joins share one pipeline)."""
        self._redis = client
        self._calls = calls
        self._url = url
        self._serves = serves
        self._prefix = prefix
        self._events = events_channel(prefix)
        self._size = max(1, history_size)
        self._age_ms = int(history_seconds * 1000)
        self._top_ms = max(self._age_ms, int(top_seconds * 1000))
        self._epoch_key = f"{prefix}:epoch"
        self._record = history_size > 0
        self._deliver = deliver
        self._local_channels = local_channels
        self._health = health
        self._metrics = metrics
        self._backoff_max = backoff_max
        self._script = self._calls.register(_PUBLISH)
        self._positions_script = client.register_script(_POSITIONS)
        # positions read in the same loop iteration go to Redis together (a reconnect storm joins thousands of
        # channels within seconds): reading[channel] = the answer every joiner of that channel awaits
        self._reading: dict[str, asyncio.Future[str]] = {}
        self._read_tasks: set[asyncio.Future[None]] = set()
        # history reads asked for in the same loop iteration share one pipeline, so a reconnect storm's recoveries
        # hold one pooled connection per batch instead of one each (publishes wait behind them otherwise)
        self._histories: list[tuple[str, Cursor, asyncio.Future[tuple[Any, ...]]]] = []
        # last[channel] = newest position this node delivered (dedupe and catch-up after a subscriber outage);
        # top[channel] = the same position as clients see it (with its epoch), the channel's current position
        self._last: dict[str, tuple[int, int]] = {}
        self._top: dict[str, str] = {}
        # the id ("ms-seq@epoch") of the newest recorded bus message this subscriber handled, any channel, served or
        # not (a channel this node has no event of stands just below it); None until one arrives after subscribing
        self._watermark: bytes | None = None
        self._down_since_ms: int | None = None
        self.subscribed = asyncio.Event()

    def _stream(self, channel: str) -> str:
        return f"{self._prefix}:h:{channel}"

    def _top_key(self, channel: str) -> str:
        return f"{self._prefix}:top:{channel}"

    # -- Transport ---------------------------------------------------------------------------------------------
    async def send(
        self, message: Message, record: bool, once_key: str | None = None, *, local_fallback: bool = True
    ) -> str | None | Literal[False]:
        try:
            raw = await self._publish(message, record, once_key)
        except RedisError:
            if record or not local_fallback:
                raise
            # Ephemeral signals still reach this node's own sockets while Redis is away.
            self._deliver([message])
            return None
        return self._result(raw)

    def start_batch(self, batch: list[tuple[Message, str | None]], then: Then) -> None:
        """The publish scripts of ``batch``, written now in one write: Redis runs them in order, each atomically, and
        ``then`` gets the positions (or the first error, e.g. Redis away) in the callback that read the last reply."""

        def finish(replies: list[Any]) -> None:
            for reply in replies:
                if isinstance(reply, BaseException):
                    then(reply)
                    return
            then([self._result(reply) for reply in replies])

        self._calls.call_many_then(self._script, [self._script_call(message, True, once_key) for message, once_key in batch], finish)

    async def _publish(self, message: Message, record: bool, once_key: str | None) -> Any:
        """Run the publish script for one message (written to Redis at once)."""
        return await self._calls.call(self._script, *self._script_call(message, record, once_key))

    def _script_call(self, message: Message, record: bool, once_key: str | None) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the publish script for one message."""
        keys = [self._stream(message.channel), once_key or "", self._epoch_key, self._top_key(message.channel)]
        record_flag = "1" if record and self._record else "0"
        args = [record_flag, self._events, self._size, self._age_ms, encode(message), new_epoch(), self._top_ms]
        return keys, args

    @staticmethod
    def _result(raw: Any) -> str | None | Literal[False]:
        position = raw.decode() if isinstance(raw, bytes) else str(raw)
        if position == "claimed":
            return False  # another node published this one
        return None if position == "-" else position

    async def position(self, channel: str) -> str | None:
        """The channel's current position: from what this node delivered when it follows the channel (no Redis round
        trip), else read from Redis and remembered while the subscriber is live (every later event reaches it)."""
        if not self._record:
            return None
        known = self._top.get(channel)
        if known is not None:
            return known
        quiet = self.quiet_position()
        if quiet is not None:
            return quiet
        position = await asyncio.shield(self._read_position(channel))
        parsed = parse_position(position)
        if parsed is not None and self.subscribed.is_set():
            # Remembered as the channel's position, never as delivered: the pub/sub message of the event it names may
            # still be on its way to this node (a subscribe racing a publish), and _handle must not drop it then.
            current = self._top.get(channel)
            newest = parse_position(current) if current is not None else self._last.get(channel)
            if newest is None or parsed > newest:
                self._top[channel] = position
        return self._top.get(channel, position)

    def quiet_position(self) -> str | None:
        """The position of a channel this node has delivered no event of: the last stream id below the watermark's
        millisecond (``<ms - 1>-18446744073709551615``), with the watermark's epoch.

        Every event this subscriber has not handled yet comes after the watermark on the bus, and bus order is the
        order Redis ran the publish scripts in, so its stream id is in the watermark's millisecond or later (not
        necessarily above the watermark itself: another channel's stream may hand out the same id in that
        millisecond). An event of the channel in that same millisecond that was handled before the socket joined may
        be replayed to it after a reconnect: never one lost.

        None while the subscriber is down, before its first recorded message, or when that is further than
        ``WATERMARK_MAX_AGE`` from this node's clock (a clock that far from Redis's only means Redis is read).
        """
        mark = self._watermark
        if mark is None or not self.subscribed.is_set():
            return None
        at, _, epoch = mark.decode("ascii", "replace").partition("@")
        position = parse_position(at)
        if position is None or not epoch or abs(position[0] - time.time() * 1000) > WATERMARK_MAX_AGE * 1000:
            return None
        return f"{position[0] - 1}-{_MAX_SEQUENCE}@{epoch}"

    def _read_position(self, channel: str) -> asyncio.Future[str]:
        """The channel's position from Redis, read together with the others asked for in this loop iteration."""
        pending = self._reading.get(channel)
        if pending is None:
            loop = asyncio.get_running_loop()
            if not self._reading:
                loop.call_soon(self._flush_positions)
            pending = self._reading[channel] = loop.create_future()
        return pending

    def _flush_positions(self) -> None:
        batch, self._reading = self._reading, {}
        channels = list(batch)
        for start in range(0, len(channels), POSITION_BATCH):
            part = {channel: batch[channel] for channel in channels[start : start + POSITION_BATCH]}
            self._start_read(self._read_positions(part))

    def _start_read(self, read: Coroutine[Any, Any, None]) -> None:
        """Run one batched read; its task is referenced until done (the loop keeps only weak references)."""
        task = asyncio.ensure_future(read)
        self._read_tasks.add(task)
        task.add_done_callback(self._read_tasks.discard)

    async def _read_positions(self, batch: dict[str, asyncio.Future[str]]) -> None:
        """One script call for ``batch``; its answers (or its error) go to every waiter."""
        keys = [self._epoch_key, *(self._top_key(channel) for channel in batch)]
        raw = await _for_waiters(list(batch.values()), self._positions_script(keys=keys, args=[new_epoch()]))
        if raw is None:
            return
        if not isinstance(raw, list) or len(raw) != len(batch):
            _fail(batch.values(), RedisError(f"position script answered {type(raw).__name__} for {len(batch)} channels"))
            return
        for waiter, value in zip(batch.values(), raw, strict=True):
            if not waiter.done():
                waiter.set_result(value.decode() if isinstance(value, bytes) else str(value))

    async def since(self, channel: str, cursor: Cursor) -> Replay:
        """Recorded events of ``channel`` after ``cursor``, or why they cannot be replayed."""
        position = cursor.at
        epoch, top_raw, first, rows = await asyncio.shield(self._read_history(channel, cursor))
        if cursor.epoch is not None and (epoch is None or cursor.epoch != epoch.decode()):
            return Unrecoverable("epoch_changed")  # the history this cursor came from was lost
        top = parse_position(top_raw.decode()) if top_raw is not None else None
        if top is None:
            # No event on the channel for as long as tops are kept: nothing was missed, unless the cursor is older.
            return [] if position[0] >= int(time.time() * 1000) - self._top_ms else Unrecoverable("expired")
        if position >= top:
            return []
        if not first:
            return Unrecoverable("expired")  # events after the cursor aged out of the stream
        first_id = parse_position(first[0][0].decode())
        prev = parse_position(first[0][1].get(b"p", b"0-0").decode())
        if first_id is not None and position < first_id and prev is not None and prev > position:
            return Unrecoverable("trimmed")  # the events between the cursor and the oldest kept one were trimmed
        entries: list[Entry] = []
        suffix = "" if epoch is None else "@" + epoch.decode()
        for entry_id, fields in rows:
            message = decode(entry_id.decode() + suffix + " " + fields[b"m"].decode())
            if message is not None and message.position is not None:
                entries.append(Entry(message.position, message.event, message.data, message.except_sid))
        return entries

    def _read_history(self, channel: str, cursor: Cursor) -> asyncio.Future[tuple[Any, ...]]:
        """(epoch, top, first entry, entries after ``cursor``) of ``channel``, read together with the other history
        reads asked for in this loop iteration."""
        loop = asyncio.get_running_loop()
        if not self._histories:
            loop.call_soon(self._flush_histories)
        future: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        self._histories.append((channel, cursor, future))
        return future

    def _flush_histories(self) -> None:
        batch, self._histories = self._histories, []
        for start in range(0, len(batch), HISTORY_BATCH):
            self._start_read(self._read_histories(batch[start : start + HISTORY_BATCH]))

    async def _read_histories(self, batch: list[tuple[str, Cursor, asyncio.Future[tuple[Any, ...]]]]) -> None:
        """One pipeline for ``batch``: the epoch once, then three reads per request; answers (or the error) go to
        every waiter."""
        waiters = [waiter for _, _, waiter in batch]
        replies = await _for_waiters(waiters, self._history_pipeline(batch))
        if replies is None:
            return
        if len(replies) != 1 + 3 * len(batch):
            _fail(waiters, RedisError(f"history pipeline answered {len(replies)} replies for {len(batch)} reads"))
            return
        epoch = replies[0]
        for i, (_, _, waiter) in enumerate(batch):
            if not waiter.done():
                waiter.set_result((epoch, *replies[1 + 3 * i : 4 + 3 * i]))

    async def _history_pipeline(self, batch: list[tuple[str, Cursor, asyncio.Future[tuple[Any, ...]]]]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._epoch_key)
            for channel, cursor, _ in batch:
                pipe.get(self._top_key(channel))
                pipe.xrange(self._stream(channel), min="-", max="+", count=1)
                pipe.xrange(self._stream(channel), min=f"({_fmt(cursor.at)}", max="+", count=self._size * 2)
            return list(await pipe.execute())

    # -- subscriber --------------------------------------------------------------------------------------------
    def _fresh(self, message: Message) -> bool:
        """Whether ``message`` is to be delivered: not one this node delivered already (catch-up and pub/sub overlap);
        a fresh one becomes its channel's newest position."""
        if message.position is not None:
            position = parse_position(message.position)
            if position is None:
                return False
            last = self._last.get(message.channel)
            if last is not None and position <= last:
                return False
            self._last[message.channel] = position
            self._top[message.channel] = message.position
        return True

    def _handle(self, message: Message) -> None:
        if self._fresh(message):
            self._deliver([message])

    async def _catch_up(self) -> None:
        """Deliver what was recorded while this node's subscriber was away, for the channels it serves."""
        since_ms = self._down_since_ms
        channels = [c for c in self._local_channels() if c in self._last or since_ms is not None]
        replayed = 0
        for channel in channels:
            start = self._last.get(channel) or (max(0, (since_ms or 0) - 1000), 0)
            replay = await self.since(channel, Cursor(start))
            if isinstance(replay, Unrecoverable):
                log.warning("cluster_catch_up_gap", channel=channel, reason=replay.reason)
                continue
            for entry in replay:
                self._handle(Message(channel, entry.event, entry.data, entry.except_sid, entry.position, 0.0))
                replayed += 1
        live = set(self._local_channels())
        for channel in [c for c in self._last.keys() | self._top.keys() if c not in live]:
            self._last.pop(channel, None)  # nobody here listens any more: forget its position
            self._top.pop(channel, None)
        if replayed:
            log.info("cluster_catch_up", events=replayed, channels=len(channels))

    def _mark(self, up: bool) -> None:
        was_up = self._health.links.get(LINK, False)
        self._health.link(LINK, up)  # /ready combines this with the Laravel listener's link
        self._metrics.redis_up.set(1 if self._health.redis == "up" else 0)
        if up:
            if not was_up:
                log.info("redis_connected")
            self._down_since_ms = None
        else:
            if was_up:
                log.warning("redis_unavailable")
                self._down_since_ms = int(time.time() * 1000)
            self.subscribed.clear()
            self._top.clear()  # may be stale (or of a lost epoch) when the subscriber is back: read Redis again
            self._watermark = None  # events published while it is away do not pass it

    def _receive(self, raws: list[bytes]) -> None:
        """What one read of the events channel brought: each message skipped unless this node serves its channel,
        decoded and checked, then all delivered together (publish/delivery.py ``deliver_all``)."""
        fresh = []
        for raw in raws:
            message = self._accept(raw)
            if message is not None:
                fresh.append(message)
        if fresh:
            self._deliver(fresh)

    def _accept(self, raw: bytes) -> Message | None:
        """One bus message → the Message to deliver, or None (a channel nobody here serves, a duplicate, garbage)."""
        space = raw.find(b" ")
        if space > 1:  # a recorded message ("ms-seq@epoch <json>"; "-" for an ephemeral one)
            self._watermark = raw[:space]
        channel = peek_channel(raw, space)
        if channel is not None and not self._serves(channel):
            self._last.pop(channel, None)  # nobody here follows it: a later join reads the position anew
            self._top.pop(channel, None)
            return None
        message = decode(raw)
        if message is None:
            self._metrics.bad_input.labels(reason="cluster_message_invalid").inc()
            return None
        return message if self._fresh(message) else None

    async def _tick(self) -> None:
        """Publish a recorded tick every ``TICK_SECONDS`` while subscribed (the first right after subscribing): every
        node's watermark stays recent in a quiet cluster."""
        while True:
            await self.subscribed.wait()
            try:
                await self.send(Message(TICK_CHANNEL, "tick", None), record=True)
            except RedisError:
                pass  # Redis is away: the subscriber notices and marks the node not ready
            await asyncio.sleep(TICK_SECONDS)

    async def run(self) -> None:
        """Subscribe, catch up, deliver; reconnect with capped backoff on any Redis failure. Never returns."""
        ticker = asyncio.create_task(self._tick()) if self._record else None
        try:
            await self._subscribe_forever()
        finally:
            if ticker is not None:
                ticker.cancel()

    async def _subscribe_forever(self) -> None:
        delay = 0.1
        while True:
            subscription: Subscription | None = None
            self._watermark = None
            try:
                subscription = await Subscription.open(self._url, self._events)
                await self._catch_up()
                self._mark(True)
                self.subscribed.set()
                delay = 0.1
                subscription.start(self._receive)  # each read's messages, delivered in the read callback
                await subscription.ended  # raises why the subscription ended
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: mark down, back off, resubscribe
                self._mark(False)
                log.warning("cluster_subscriber_retry", error=type(exc).__name__, retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                delay = min(self._backoff_max, delay * 2)
            finally:
                if subscription is not None:
                    await subscription.aclose()
