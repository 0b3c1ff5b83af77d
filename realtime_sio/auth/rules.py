"""Declarative channel rules: decide whether an :class:`Identity` may join a channel. Pure; never emits or awaits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from realtime_sio.auth.tokens import Identity
from realtime_sio.channels import kind_of
from realtime_sio.settings import ChannelRule

Decision = Literal["allow", "deny", "laravel"]


@dataclass(frozen=True)
class _Compiled:
    rule: ChannelRule
    regex: re.Pattern[str]
    param: str | None


def _compile(rule: ChannelRule) -> _Compiled:
    parts: list[str] = []
    first_param: str | None = None
    for token in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\}|\*)", rule.pattern):
        if token == "*":
            parts.append(".*")
        elif token.startswith("{") and token.endswith("}"):
            name = token[1:-1]
            first_param = first_param or name
            # Laravel's routes/channels.php placeholders match one dot-free segment.
            parts.append(f"(?P<{name}>[^.]+)")
        else:
            parts.append(re.escape(token))
    return _Compiled(rule, re.compile("".join(parts)), rule.param or first_param)


class ChannelRules:
    """First matching rule wins; private-/presence- channels with no matching rule are denied."""

    def __init__(self, rules: tuple[ChannelRule, ...]) -> None:
        self._rules = tuple(_compile(r) for r in rules)

    def decide(self, identity: Identity, channel: str) -> Decision:
        """Return ``allow``, ``deny`` or ``laravel`` (ask the app's /broadcasting/auth)."""
        for compiled in self._rules:
            match = compiled.regex.fullmatch(channel)
            if match is None:
                continue
            return _apply(compiled, match, identity)
        return "allow" if kind_of(channel) == "public" else "deny"


def _apply(compiled: _Compiled, match: re.Match[str], identity: Identity) -> Decision:
    rule = compiled.rule
    value = match.group(compiled.param) if compiled.param else None
    granted: bool
    if rule.allow == "public":
        granted = True
    elif rule.allow == "laravel":
        return "laravel"
    elif rule.allow == "deny":
        granted = False
    elif rule.allow == "authenticated":
        granted = identity.authenticated
    elif rule.allow == "user":
        granted = identity.authenticated and value == identity.user_id
    elif rule.allow == "role":
        granted = identity.authenticated and value is not None and value in identity.roles
    else:  # "roles"
        granted = identity.authenticated and not identity.roles.isdisjoint(rule.roles)
    return "allow" if granted else "deny"
