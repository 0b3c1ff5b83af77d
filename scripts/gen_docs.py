"""Regenerate the tables in docs/configuration.md and docs/errors.md from the code (settings.OPTIONS, errors.CATALOGUE).

Run `python scripts/gen_docs.py` after changing a setting or an error code; tests/unit/test_docs.py fails when the
committed docs and the code disagree.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime_sio.errors import CATALOGUE
from realtime_sio.pusher.messages import ERRORS as PUSHER_ERRORS
from realtime_sio.settings import GROUPS, OPTIONS, Settings

BEGIN, END = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"


def _default(attr: str, secret: bool) -> str:
    if secret:
        return "(unset)"
    group, _, name = attr.rpartition(".")
    obj = GROUPS[group] if group else Settings
    value = next(f.default for f in fields(obj) if f.name == name)
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value) or "(empty)"
    return "(unset)" if value is None else f"`{value}`"


def configuration_table() -> str:
    rows = ["| Variable | Flag | Default | Accepts | Meaning |", "|---|---|---|---|---|"]
    for o in OPTIONS:
        rows.append(f"| `{o.env}` | `{o.flag}` | {_default(o.attr, o.secret)} | {o.accepts} | {o.help}{' (secret)' if o.secret else ''} |")
    return "\n".join(rows)


def errors_table() -> str:
    rows = ["| Code | Status | Retryable | Message |", "|---|---|---|---|"]
    for e in CATALOGUE:
        rows.append(f"| `{e.code}` | {e.status} | {'yes' if e.retryable else 'no'} | {e.message} |")
    rows += ["", "Pusher protocol (`/app/{key}`): `pusher:error` codes and the reason label of `realtime_sio_bad_input_total`.", ""]
    rows += ["| Code | Client action | Message | Reason label |", "|---|---|---|---|"]
    for p in PUSHER_ERRORS:
        rows.append(f"| {p.code} | {_pusher_action(p.code)} | {p.message} | `{p.reason}` |")
    return "\n".join(rows)


def _pusher_action(code: int) -> str:
    """What pusher-js does when a connection is closed with ``code`` (Pusher's close-code classes)."""
    if code < 4100:
        return "does not reconnect"
    if code < 4200:
        return "reconnects after a back-off"
    if code < 4300:
        return "reconnects at once"
    return "stays connected (the request is refused)"


def splice(path: Path, table: str) -> str:
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


TARGETS = {ROOT / "docs" / "configuration.md": configuration_table, ROOT / "docs" / "errors.md": errors_table}

if __name__ == "__main__":
    for path, make in TARGETS.items():
        path.write_text(splice(path, make()))
        print(f"updated {path.relative_to(ROOT)}")
