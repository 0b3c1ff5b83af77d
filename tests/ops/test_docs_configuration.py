"""docs/configuration.md lists exactly the settings of realtime_sio.settings.OPTIONS, with the code's defaults,
and no document or chart file names a REALTIME_SIO_* variable the server does not know."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from realtime_sio.settings import OPTIONS, OPTIONS_BY_ENV, JwtSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
VARIABLE = re.compile(r"\bREALTIME_SIO_[A-Z0-9_]*[A-Z0-9]\b")
# Names the docs mention only to warn about them: Kubernetes service links would inject these for a Service named
# realtime-sio, and the server refuses unknown REALTIME_SIO_* variables (the chart sets enableServiceLinks: false).
WARNED_NOT_SETTINGS = {"REALTIME_SIO_SERVICE_HOST", "REALTIME_SIO_SERVICE_PORT"}


def table_rows() -> dict[str, list[str]]:
    """Variable → cells of each table row whose first cell is a `REALTIME_SIO_*` variable."""
    rows: dict[str, list[str]] = {}
    for line in CONFIGURATION.read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        if VARIABLE.fullmatch(name):
            assert name not in rows, f"{name} is listed twice"
            rows[name] = cells
    return rows


def code_default(attr: str, secret: bool) -> str:
    """The default as the table shows it: `value`, (empty) for an empty tuple, (unset) for None or a secret."""
    if secret:
        return "(unset)"
    owner, name = (JwtSettings, attr[4:]) if attr.startswith("jwt.") else (Settings, attr)
    value = next(f.default for f in fields(owner) if f.name == name)
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value) or "(empty)"
    return "(unset)" if value is None else f"`{value}`"


def test_configuration_doc_lists_exactly_the_settings() -> None:
    """Every OPTIONS variable has one row in docs/configuration.md, and every row is an OPTIONS variable."""
    documented = set(table_rows())
    declared = {o.env for o in OPTIONS}
    assert not declared - documented, f"undocumented settings: {sorted(declared - documented)}"
    assert not documented - declared, f"documented settings that do not exist: {sorted(documented - declared)}"


def test_configuration_doc_defaults_are_the_codes() -> None:
    """Each row's Default cell is the default of the Settings dataclass (secrets show as unset)."""
    rows = table_rows()
    header = next(line for line in CONFIGURATION.read_text().splitlines() if line.startswith("| Variable"))
    column = [c.strip() for c in header.strip().strip("|").split("|")].index("Default")
    wrong = {
        o.env: (rows[o.env][column], code_default(o.attr, o.secret))
        for o in OPTIONS
        if rows[o.env][column].strip("`").replace("`", "") != code_default(o.attr, o.secret).strip("`")
    }
    assert not wrong, f"doc default vs code default: {wrong}"


def test_docs_and_chart_name_only_real_settings() -> None:
    """Any REALTIME_SIO_* name in docs/, the Helm chart, the Dockerfile or the README is a real setting."""
    sources = [*ROOT.glob("docs/*.md"), *ROOT.glob("helm/realtime-sio/**/*.yaml"), *ROOT.glob("helm/realtime-sio/templates/*")]
    sources += [p for p in (ROOT / "Dockerfile", ROOT / "README.md") if p.exists()]
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sources
        for name in VARIABLE.findall(path.read_text())
        if name not in OPTIONS_BY_ENV and name not in WARNED_NOT_SETTINGS
    }
    assert not unknown, sorted(unknown)
