"""No document, chart file, Dockerfile or README names a REALTIME_SIO_* variable the server does not know.

(That docs/configuration.md lists every setting with its default is tests/unit/test_docs.py: the table is generated.)"""

from __future__ import annotations

import re
from pathlib import Path

from realtime_sio.settings import OPTIONS_BY_ENV

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\bREALTIME_SIO_[A-Z0-9_]*[A-Z0-9]\b")
# Names the docs mention only to warn about them: Kubernetes service links would inject these for a Service named
# realtime-sio, and the server refuses unknown REALTIME_SIO_* variables (the chart sets enableServiceLinks: false).
WARNED_NOT_SETTINGS = {"REALTIME_SIO_SERVICE_HOST", "REALTIME_SIO_SERVICE_PORT"}


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
