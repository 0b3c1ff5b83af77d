"""Unit tests of declarative channel rules (auth/rules.py)."""

from __future__ import annotations

import pytest

from realtime_sio.auth.rules import ChannelRules
from realtime_sio.auth.tokens import ANONYMOUS, Identity
from realtime_sio.settings import DEFAULT_CHANNEL_RULES, ChannelRule

USER = Identity(user_id="42", roles=frozenset({"editor"}), info={"id": 42})
RULES = ChannelRules(DEFAULT_CHANNEL_RULES)


@pytest.mark.parametrize(
    ("identity", "channel", "decision"),
    [
        (USER, "private-user.42", "allow"),
        (USER, "private-user.420", "deny"),
        (USER, "private-user.42.x", "deny"),
        (USER, "private-App.Models.User.42", "allow"),
        (USER, "private-role.editor", "allow"),
        (USER, "private-role.admin", "deny"),
        (USER, "presence-chat.7", "allow"),
        (ANONYMOUS, "presence-chat.7", "deny"),
        (ANONYMOUS, "private-user.42", "deny"),
        (USER, "private-anything", "deny"),
        (USER, "presence-anything", "deny"),
        (ANONYMOUS, "news", "allow"),
    ],
)
def test_default_rules(identity: Identity, channel: str, decision: str) -> None:
    """Default rules: user id, role membership, authenticated presence-chat, deny unknown private/presence."""
    assert RULES.decide(identity, channel) == decision


def test_first_match_wins_and_kinds() -> None:
    """Rules are tried in order; roles/laravel/deny/public kinds behave as documented."""
    rules = ChannelRules((
        ChannelRule("private-admin.*", "roles", roles=("admin", "ops")),
        ChannelRule("private-orders.{id}", "laravel"),
        ChannelRule("closed-*", "deny"),
        ChannelRule("private-{team}.board", "role", param="team"),
    ))
    ops = Identity(user_id="1", roles=frozenset({"ops"}))
    assert rules.decide(ops, "private-admin.logs") == "allow"
    assert rules.decide(USER, "private-admin.logs") == "deny"
    assert rules.decide(USER, "private-orders.9") == "laravel"
    assert rules.decide(USER, "closed-room") == "deny"
    assert rules.decide(USER, "private-editor.board") == "allow"
    assert rules.decide(USER, "private-writers.board") == "deny"


def test_regex_characters_in_patterns_are_literal() -> None:
    """Dots and other regex metacharacters in a pattern match only themselves."""
    rules = ChannelRules((ChannelRule("private-a.b.{id}", "user"),))
    assert rules.decide(USER, "private-aXb.42") == "deny"
    assert rules.decide(USER, "private-a.b.42") == "allow"
