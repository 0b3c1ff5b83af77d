"""Pusher protocol 7 messages: parsing what clients send, encoding what the server sends (pusher/messages.py)."""

from __future__ import annotations

import json

from realtime_sio.pusher import messages


def test_parse_accepts_objects_with_an_event() -> None:
    """A JSON object with a string event parses; channel and data are optional."""
    inbound = messages.parse('{"event":"pusher:subscribe","data":{"channel":"a"}}')
    assert inbound == messages.Inbound("pusher:subscribe", None, {"channel": "a"})
    assert messages.parse('{"event":"client-x","channel":"private-a","data":1}') == messages.Inbound("client-x", "private-a", 1)


def test_parse_refuses_anything_else() -> None:
    """Binary frames, bad JSON, non-objects, missing/empty/overlong/non-string events are None (→ 4200)."""
    for raw in (b"{}", "{nope", "[1]", '"s"', "{}", '{"event":""}', '{"event":5}', json.dumps({"event": "x" * 201})):
        assert messages.parse(raw) is None, raw


def test_subscribe_data() -> None:
    """channel is required; auth and channel_data must be strings; a JSON-string data object is accepted too."""
    assert messages.subscribe({"channel": "a"}) == messages.Subscribe("a", None, None)
    assert messages.subscribe('{"channel":"a","auth":"k:s"}') == messages.Subscribe("a", "k:s", None)
    for bad in (None, "x", {"channel": 1}, {"channel": "a", "auth": 1}, {"channel": "a", "channel_data": {"user_id": 1}}):
        assert messages.subscribe(bad) is None


def test_presence_data() -> None:
    """user_id (string or integer, at most 128 characters) is required; user_info is optional."""
    assert messages.presence_data('{"user_id":10,"user_info":{"name":"Mr. Pusher"}}') == messages.PresenceData(10, {"name": "Mr. Pusher"})
    assert messages.presence_data('{"user_id":"u"}') == messages.PresenceData("u", None)
    for bad in (None, "nope", "[]", "{}", '{"user_id":true}', '{"user_id":""}', json.dumps({"user_id": "x" * 129})):
        assert messages.presence_data(bad) is None


def test_server_messages_carry_json_string_data() -> None:
    """Server events and internal events carry data as a JSON string; errors carry an object, as Pusher sends them."""
    established = json.loads(messages.connection_established("1.2", 30))
    assert json.loads(established["data"]) == {"socket_id": "1.2", "activity_timeout": 30}
    assert json.loads(messages.event("E", "c", {"a": 1})) == {"event": "E", "channel": "c", "data": '{"a":1}'}
    assert json.loads(messages.error(messages.UNKNOWN_APP)) == {
        "event": "pusher:error",
        "data": {"code": 4001, "message": "Application does not exist"},
    }
    succeeded = json.loads(messages.subscription_succeeded("presence-a", [(1, {"n": "A"}), ("2", None)]))
    assert json.loads(succeeded["data"]) == {"presence": {"ids": [1, "2"], "hash": {"1": {"n": "A"}, "2": None}, "count": 2}}
    assert json.loads(json.loads(messages.subscription_succeeded("a"))["data"]) == {}


def test_client_events_keep_data_as_sent() -> None:
    """Whispers are relayed with their data untouched and the sender's user_id on presence channels."""
    assert json.loads(messages.client_event("client-t", "private-a", {"x": 1})) == {"event": "client-t", "channel": "private-a", "data": {"x": 1}}
    assert json.loads(messages.client_event("client-t", "presence-a", "s", "7"))["user_id"] == "7"


def test_error_codes_are_pusher_codes() -> None:
    """Every error is in Pusher's ranges, with a reason label of its own kind."""
    for error in messages.ERRORS:
        assert 4000 <= error.code <= 4399 and error.reason.startswith("pusher_")


def test_signin_data() -> None:
    """pusher:signin needs a string auth and a user_data JSON string whose id is a non-empty string (as pusher-js
    requires); the exact user_data string is kept, since the signature covers it."""
    user_data = '{"id":"12345", "name":"Ada"}'
    assert messages.signin({"auth": "k:s", "user_data": user_data}) == messages.Signin("k:s", user_data, "12345")
    for bad in (
        None,
        {"auth": "k:s"},
        {"auth": 1, "user_data": user_data},
        {"auth": "k:s", "user_data": {"id": "1"}},
        {"auth": "k:s", "user_data": '{"id":1}'},
        {"auth": "k:s", "user_data": '{"id":""}'},
        {"auth": "k:s", "user_data": "[1]"},
        {"auth": "k:s", "user_data": "nope"},
    ):
        assert messages.signin(bad) is None, bad


def test_signin_success_echoes_user_data_as_a_string() -> None:
    """pusher:signin_success: data is a JSON string holding user_data, itself the signed JSON string."""
    doc = json.loads(messages.signin_success('{"id":"7"}'))
    assert doc["event"] == "pusher:signin_success"
    assert json.loads(doc["data"]) == {"user_data": '{"id":"7"}'}
