"""The generated tables in docs/ match the code (run scripts/gen_docs.py to refresh them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_and_errors_docs_are_current() -> None:
    """docs/configuration.md lists every setting and docs/errors.md every error code, as the code defines them."""
    gen = _generator()
    for path, make in gen.TARGETS.items():
        assert path.read_text() == gen.splice(path, make()), f"{path.name} is stale: run python scripts/gen_docs.py"
