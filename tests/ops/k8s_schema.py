"""Validate rendered manifests offline: Kubernetes built-in kinds against kubernetes-validate's bundled schemas,
Prometheus Operator kinds against strict hand-written subsets in tests/ops/schemas/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion is wider, but 1.29 is the oldest still maintained
# by major providers) and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
_CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.schema.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.schema.json",
}
_SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@cache
def _crd_validator(filename: str) -> jsonschema.protocols.Validator:
    schema = json.loads((_SCHEMA_DIR / filename).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(doc: dict[str, Any]) -> None:
    """Raise (a jsonschema ValidationError or AssertionError) unless ``doc`` is valid for every supported version."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in _CRD_SCHEMAS:
        _crd_validator(_CRD_SCHEMAS[key]).validate(doc)
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            raise AssertionError(f"no schema for {key} in Kubernetes {version}") from None
