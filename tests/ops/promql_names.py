"""Which metric names PromQL reads (parsed with promql-parser, not regexes) and which names a registry exposes."""

from __future__ import annotations

import re
from collections.abc import Iterable

import promql_parser
from prometheus_client import Metric

# Grafana's built-in range variables, replaced by a literal duration so the query parses as plain PromQL.
# Other $variables only appear inside label-matcher strings, where they are ordinary text.
_GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*\w+\s*\)\s*$")

# Sample names each metric type adds to its family name (prometheus_client exposition).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    """Names of every vector selector in ``expr``; raises ValueError when it is not valid PromQL."""
    for variable, literal in _GRAFANA_RANGES.items():
        expr = expr.replace(variable, literal)
    try:
        tree = promql_parser.parse(expr)
    except Exception as exc:  # the Rust parser raises its own exception types
        raise ValueError(f"invalid PromQL {expr!r}: {exc}") from exc
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(tree, visit)
    return names


def grafana_variable_names(query: str) -> set[str]:
    """Metric names of a Grafana Prometheus variable query: ``label_values(selector, label)`` or plain PromQL."""
    match = _LABEL_VALUES.match(query)
    return metric_names(match["selector"] if match else query)


def sample_names(families: Iterable[Metric]) -> set[str]:
    """Every sample name the families can expose, whether or not a labelled child exists yet."""
    return {family.name + suffix for family in families for suffix in _SUFFIXES[family.type]}
