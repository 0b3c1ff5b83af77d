"""Only engine/upstream.py touches python-engineio's, python-socketio's or aiohttp's private names.

The seam module is pinned to the versions it was written against (setup.cfg) and its symbols are checked by
tests/unit/test_upstream_contract.py; every other module must use the libraries' public API, so an upgrade can only
break in one place. These checks read the source (AST), so they fail naming the module, line and name.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import engineio
import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

PACKAGE = Path(__file__).resolve().parents[2] / "realtime_sio"
SEAM = PACKAGE / "engine" / "upstream.py"
LIBRARIES = ("engineio", "socketio", "aiohttp")


def _upstream_private_names() -> set[str]:
    """Single-underscore names on the upstream classes realtime_sio builds on (class and instance attributes)."""
    quiet = logging.getLogger("tests.seam_boundary")  # a Logger, not a bool: no library handler gets attached
    eio = engineio.AsyncServer(async_mode="aiohttp", logger=quiet)
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=quiet, engineio_logger=quiet)
    objects: list[object] = [
        eio, sio, sio.manager, AsyncSocket(eio, "sid"), engineio.AsyncServer, socketio.AsyncServer, socketio.AsyncManager,
        AsyncSocket, eio_aiohttp.WebSocket, socketio.AsyncNamespace,
        web.TCPSite, web.BaseSite, web.AppRunner, web.Application, web.Request, web.StreamResponse,
        web.WebSocketResponse,
    ]
    names: set[str] = set()
    for obj in objects:
        names.update(n for n in dir(obj) if n.startswith("_") and not n.startswith("__"))
        names.update(n for n in getattr(obj, "__dict__", {}) if n.startswith("_") and not n.startswith("__"))
    return names


UPSTREAM_PRIVATE = _upstream_private_names()


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != SEAM)


def _own_names(tree: ast.AST) -> set[str]:
    """Private names the module defines itself (``self._x = ...``, methods, ``__slots__`` entries, class attributes)."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and ast.unparse(node.value) == "self":
            own.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            own.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("_"):
            own.add(node.value)  # __slots__ entries
    return own


def _upstream_bases(tree: ast.AST) -> list[tuple[ast.ClassDef, str]]:
    """Classes whose bases name an upstream library (``socketio.AsyncServer``, ``eio_aiohttp.WebSocket``...)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                text = ast.unparse(base)
                # upstream classes, and the seam's subclasses of them (their private methods are upstream's)
                if text.split(".")[0] in ("socketio", "engineio", "eio_aiohttp", "AsyncSocket", "aiohttp", "web", "upstream",
                                          "HookedServer", "LeanSocket", "RoutedSite"):
                    found.append((node, text))
    return found


def test_no_private_library_module_is_imported_outside_the_seam() -> None:
    """No module but the seam imports a private module of engineio, socketio or aiohttp (``aiohttp._websocket``)."""
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] in LIBRARIES and any(p.startswith("_") for p in parts[1:]):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {name}")
    assert not offenders, "private library names outside engine/upstream.py:\n" + "\n".join(offenders)


def test_no_upstream_private_attribute_is_used_outside_the_seam() -> None:
    """No module but the seam reads or writes a single-underscore attribute that belongs to engineio/socketio."""
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        own = _own_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in UPSTREAM_PRIVATE and node.attr not in own:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} uses .{node.attr}")
    assert not offenders, "upstream private attributes outside engine/upstream.py:\n" + "\n".join(offenders)


def test_no_upstream_private_method_is_overridden_outside_the_seam() -> None:
    """A subclass of an upstream class outside the seam overrides only public methods."""
    offenders = []
    for path in _modules():
        for cls, base in _upstream_bases(ast.parse(path.read_text())):
            for item in cls.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in UPSTREAM_PRIVATE:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{item.lineno} {cls.name}({base}).{item.name}")
    assert not offenders, "private upstream methods overridden outside engine/upstream.py:\n" + "\n".join(offenders)


def test_the_checks_see_a_violation() -> None:
    """The scanners flag the seam itself and a sample subclass of the seam's server, so they are not vacuous."""
    sample = ast.parse("class S(HookedServer):\n    async def _handle_connect(self): ...\neio._async = {}\n")
    assert [item.name for cls, _ in _upstream_bases(sample) for item in cls.body] == ["_handle_connect"]
    assert "_async" not in _own_names(sample)
    tree = ast.parse(SEAM.read_text())
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} & UPSTREAM_PRIVATE
    assert {"_async", "_binary_packet", "_runner", "_ssl_context"} <= used
    overridden = {
        item.name for cls, _ in _upstream_bases(tree) for item in cls.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in UPSTREAM_PRIVATE
    }
    assert {"_handle_eio_message", "_websocket_handler"} <= overridden
