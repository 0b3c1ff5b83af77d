"""The cluster bus (cluster/bus.py): its wire format (the channel can be read without decoding the message) and what
one subscriber read hands to delivery."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio.cluster.bus import (
    RedisBus,
    decode,
    encode,
    encode_around,
    peek_channel,
)
from realtime_sio.cluster.script_calls import ScriptCalls
from realtime_sio.probes import Health
from realtime_sio.publish.broadcaster import Message


@pytest.mark.parametrize(
    "channel", ["orders", "private-user.42", "presence-chat.room_1", "#user-terminations", "a=b@c,d.e;f:g-h_9"]
)
def test_peek_reads_the_channel_decode_reads(channel: str) -> None:
    """For every name the channel alphabet allows, the peeked channel is the decoded one."""
    raw = ("1796158477920-0@ab12 " + encode(Message(channel, "E", {"c": "not this", "n": 1}, "sid", None, 1.5))).encode()
    decoded = decode(raw)
    assert decoded is not None and peek_channel(raw) == decoded.channel == channel


@pytest.mark.parametrize(
    "raw",
    [
        "- " + encode(Message("orders", "E", 1)),  # text, not bytes: decode decides
        b'- {"e":"E","c":"orders"}',  # another key first (not this encoder)
        b'- {"c":"ord\\u0065rs","e":"E"}',  # an escape in the name
        b"no-separator",
        b'- {"c":"unterminated',
        b'- {"c":"\xc3\xa9","e":"E"}',  # not ASCII
    ],
)
def test_peek_declines_what_it_cannot_read_for_sure(raw: str | bytes) -> None:
    """Anything but this encoder's plain layout answers None, so the message is fully decoded instead of skipped."""
    assert peek_channel(raw) is None


@pytest.mark.parametrize(
    "message",
    [
        Message("presence-chat.1", "presence:leaving", {"user_id": 7, "user_info": {"n": "é"}}, "s1", None, 1.25, source="presence"),
        Message("orders", "E", [1, "two"], None, None, 0.0),
        Message("presence-a", "client-typing", {"t": True}, "s2", None, 3.0, "u9", source="whisper"),
    ],
)
def test_the_text_around_the_data_is_the_encoded_message(message: Message) -> None:
    """A Redis script that puts a stored member between ``encode_around``'s two parts sends what ``encode`` sends."""
    head, tail = encode_around(message)
    data = json.dumps(message.data, separators=(",", ":"))
    assert head + data + tail == encode(message)
    assert decode("- " + head + data + tail) == message


def test_one_read_is_delivered_in_one_call_in_order_without_duplicates_or_garbage() -> None:
    """The messages one subscriber read brought reach delivery together, in bus order; a position already delivered
    and a message that does not decode are left out (the latter counted as bad input)."""
    batches: list[list[Message]] = []
    metrics = metrics_module.create(CollectorRegistry())
    bus = RedisBus(
        aioredis.Redis(), "p", 10, 60, 60, deliver=lambda messages: batches.append(messages) or len(messages),
        local_channels=list, health=Health(), metrics=metrics, url="redis://127.0.0.1:1",
        calls=ScriptCalls("redis://127.0.0.1:1", 1.0),
    )

    def raw(position: str, channel: str) -> bytes:
        return f"{position} {encode(Message(channel, 'E', {'n': 1}))}".encode()

    bus._receive([raw("5-0@ab", "a"), raw("5-1@ab", "b"), raw("5-0@ab", "a"), b"- not json", raw("6-0@ab", "a")])
    assert [[(m.channel, m.position) for m in batch] for batch in batches] == [
        [("a", "5-0@ab"), ("b", "5-1@ab"), ("a", "6-0@ab")]
    ]
    assert metrics.registry.get_sample_value("realtime_sio_bad_input_total", {"reason": "cluster_message_invalid"}) == 1
