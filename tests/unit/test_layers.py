"""The package layers of docs/architecture.md hold: every import points down, and protocols do not import each other.

Layers, bottom to top: the shared modules at the package root (settings, errors, metrics, logs...) → ``engine`` →
``auth`` → ``publish`` → ``cluster`` → the protocols (``sio``, ``pusher``: siblings that never import each other) →
``dashboard`` (a view over both protocols' connections) → the composition root (``app``, ``cli``). A module may import
its own package and anything below it.
Read from the source (AST), so a violation fails naming the module, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "realtime_sio"
RANKS = {"engine": 1, "auth": 2, "publish": 3, "cluster": 4, "sio": 5, "pusher": 5, "dashboard": 6}
ROOT_ONLY = {"app", "cli", "__main__"}  # the composition root and the command line: may import everything
TOP = 7


def _layer(module: str) -> tuple[int, str]:
    """(rank, name) of a dotted module inside realtime_sio: its package, or a root module."""
    head = module.split(".")[0]
    if head in RANKS:
        return RANKS[head], head
    if head in ROOT_ONLY:
        return TOP, head
    return 0, head  # a shared root module (settings, errors, metrics, logs, ...)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module under realtime_sio) for every import of the package in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("realtime_sio"):
            rest = node.module.removeprefix("realtime_sio").lstrip(".")
            if rest:
                found.append((node.lineno, rest))
            else:  # from realtime_sio import x, y
                found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.removeprefix("realtime_sio.")) for a in node.names if a.name.startswith("realtime_sio.")]
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        own_rank, own_name = _layer(own)
        for line, target in _imports(path):
            rank, name = _layer(target)
            if name == own_name or target == "__version__":
                continue
            if rank > own_rank or (rank == own_rank and rank in (5,) and name != own_name):
                out.append(f"{path.relative_to(PACKAGE)}:{line} imports {target} (layer {rank} from layer {own_rank})")
            elif own_rank == 0 and rank == 0 and name in ROOT_ONLY:
                out.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    return out


def test_every_import_points_down_and_protocols_do_not_import_each_other() -> None:
    """No package imports a package above it or a sibling protocol (no import cycle between packages)."""
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker ranks sio above publish, sio beside pusher, and reads imports (so it is not vacuous)."""
    assert _layer("sio.fanout") > _layer("publish.broadcaster")
    assert _layer("sio.namespace")[0] == _layer("pusher.hub")[0] < _layer("dashboard.feed")[0]
    probe = tmp_path / "probe.py"
    probe.write_text("from realtime_sio.sio.fanout import LeanManager\nfrom realtime_sio import app\n")
    assert _imports(probe) == [(1, "sio.fanout"), (2, "app")]
