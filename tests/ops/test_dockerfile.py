"""The Dockerfile, the chart and setup.cfg agree: same package, console script, command, port and user; and the
build context that .dockerignore admits is enough to build the package."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

import realtime_sio
from realtime_sio.settings import OPTIONS_BY_ENV, Settings
from tests.ops.helm_tool import CHART, FULLNAME, container, find, render

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its stage index."""

    stage: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments and parser directives dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword.upper(), args.strip()))
    return out


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def console_scripts() -> dict[str, str]:
    lines = setup_cfg()["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict((part.strip() for part in line.split("=", 1)) for line in lines)  # type: ignore[misc]


INSTRUCTIONS = parse_dockerfile((ROOT / "Dockerfile").read_text())
FINAL = max(i.stage for i in INSTRUCTIONS)


def final(keyword: str) -> list[str]:
    """Arguments of every ``keyword`` instruction of the final stage."""
    return [i.args for i in INSTRUCTIONS if i.stage == FINAL and i.keyword == keyword]


def _arg_defaults() -> dict[str, str]:
    return {k: v for k, _, v in (i.args.partition("=") for i in INSTRUCTIONS if i.keyword == "ARG" and i.stage == -1)}


def test_image_is_multi_stage_on_slim_python_311() -> None:
    """Two or more stages, every one FROM a python:3.11 slim image, and the build stage runs `pip install .`."""
    bases = [i.args.split()[0] for i in INSTRUCTIONS if i.keyword == "FROM"]
    args = _arg_defaults()
    resolved = [args.get(b.strip("${}"), b) for b in bases]
    assert len(resolved) >= 2 and all(b.startswith("python:3.11-slim") for b in resolved), resolved
    runs = " ".join(i.args for i in INSTRUCTIONS if i.keyword == "RUN")
    assert "pip install ." in runs


def test_image_runs_the_console_script_that_the_chart_runs(helm: str) -> None:
    """CMD == the chart's container command == `realtime-sio serve`, and setup.cfg maps realtime-sio to cli:main."""
    (cmd,) = final("CMD")
    argv = json.loads(cmd)
    assert argv == ["realtime-sio", "serve"]
    assert not final("ENTRYPOINT"), "an ENTRYPOINT would be prepended to the chart's command"
    assert container(render(helm))["command"] == argv
    assert console_scripts()[argv[0]] == "realtime_sio.cli:main"
    from realtime_sio import cli

    assert callable(cli.main)


def test_exposed_port_is_the_charts_and_the_servers_default(helm: str) -> None:
    """EXPOSE 6001 == chart containerPort == Service port == Settings().port."""
    (expose,) = final("EXPOSE")
    docs = render(helm)
    assert int(expose) == container(docs)["ports"][0]["containerPort"] == Settings().port
    assert find(docs, "Service", FULLNAME)["spec"]["ports"][0]["port"] == int(expose)


def test_image_user_is_the_charts_non_root_user(helm: str) -> None:
    """The final stage's USER uid:gid is non-root and is the chart's runAsUser/runAsGroup."""
    (user,) = final("USER")
    uid, _, gid = user.partition(":")
    pod = find(render(helm), "Deployment", FULLNAME)["spec"]["template"]["spec"]["securityContext"]
    assert int(uid) != 0 and (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])
    creation = " ".join(i.args for i in INSTRUCTIONS if i.stage == FINAL and i.keyword == "RUN")
    assert f"--uid {uid}" in creation and f"--gid {gid}" in creation


def test_image_listens_on_all_interfaces_with_known_settings_only() -> None:
    """ENV sets REALTIME_SIO_HOST=0.0.0.0 and no REALTIME_SIO_* variable the server would reject."""
    env: dict[str, str] = {}
    for args in final("ENV"):
        for pair in args.split():
            key, _, value = pair.partition("=")
            env[key] = value
    assert env["REALTIME_SIO_HOST"] == "0.0.0.0"
    assert {k for k in env if k.startswith("REALTIME_SIO_")} <= set(OPTIONS_BY_ENV)


def test_package_name_and_version_agree_with_the_chart() -> None:
    """setup.cfg's name is the chart's name and realtime_sio.__version__ is the chart's appVersion."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert setup_cfg()["metadata"]["name"] == chart["name"] == "realtime-sio"
    assert chart["appVersion"] == realtime_sio.__version__


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore glob: `*` and `?` stay inside one path segment, `**` spans segments."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_admits(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent directory matches its files."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    admitted = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            admitted = negate
    return admitted


def test_dockerignore_matching_follows_docker_rules() -> None:
    """The matcher used below admits and excludes like Docker for the patterns .dockerignore uses."""
    patterns = ["*", "!realtime_sio/", "!setup.cfg", "**/__pycache__", "**/*.pyc"]
    assert dockerignore_admits("realtime_sio/sio/server.py", patterns)
    assert dockerignore_admits("setup.cfg", patterns)
    assert not dockerignore_admits("tests/ops/test_dockerfile.py", patterns)
    assert not dockerignore_admits("realtime_sio/__pycache__/cli.cpython-311.pyc", patterns)
    assert not dockerignore_admits("realtime_sio/x.pyc", patterns)


def test_build_context_builds_the_package_with_its_console_script(tmp_path: Path) -> None:
    """Copy only what .dockerignore admits, build a wheel from it (as `pip install .` does in the image), and find
    the realtime_sio package and the realtime-sio console script inside."""
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    context = tmp_path / "context"
    skip = {".git", ".venv", "node_modules"}
    copied: list[str] = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_dir() or skip & set(relative.split("/")) or not dockerignore_admits(relative, patterns):
            continue
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, context / relative)
        copied.append(relative)
    assert "setup.cfg" in copied and "realtime_sio/cli.py" in copied
    assert not [c for c in copied if c.startswith(("tests/", "helm/", "docs/")) or "__pycache__" in c], copied
    out = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(context)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = out.glob("realtime_sio-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "realtime_sio/cli.py" in names and "realtime_sio/watchdog.py" in names
    assert "realtime-sio = realtime_sio.cli:main" in entry_points
