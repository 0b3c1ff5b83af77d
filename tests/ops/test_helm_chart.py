"""The Helm chart, rendered by the real Helm engine: lint, Kubernetes schemas, the migration split, drain timing,
security settings, and an environment that realtime_sio's own settings loader accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from realtime_sio import settings as settings_module
from tests.ops import k8s_schema
from tests.ops.helm_tool import (
    CHART,
    FULLNAME,
    SCENARIOS,
    SERVED_TLS,
    SPLIT_STEPS,
    Values,
    container,
    find,
    lint,
    render,
    render_error,
)

CANARY = "nginx.ingress.kubernetes.io/canary"
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def _backends(ingress: dict[str, Any]) -> dict[str, str]:
    """path → backend Service name of an Ingress's single rule."""
    (rule,) = ingress["spec"]["rules"]
    return {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}


def _env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The environment the pod gets: its ConfigMap, then its Secret (envFrom order: the later source wins)."""
    env: dict[str, str] = {}
    for source in container(docs)["envFrom"]:
        if "configMapRef" in source:
            env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            secret = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == source["secretRef"]["name"]]
            env.update(secret[0]["stringData"] if secret else {})
    return env


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_helm_lint_strict_passes(helm: str, scenario: str) -> None:
    """`helm lint --strict` reports no error or warning for the default values, each split step and all features."""
    result = lint(helm, SCENARIOS[scenario])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_manifest_matches_its_kubernetes_schema(helm: str, scenario: str) -> None:
    """Each rendered object validates strictly against the Kubernetes (or Prometheus Operator) schema of its kind."""
    docs = render(helm, SCENARIOS[scenario])
    for doc in docs:
        k8s_schema.validate(doc)
    kinds = {d["kind"] for d in docs}
    expected = {"Deployment", "Service", "ConfigMap", "ServiceAccount", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    if scenario == "all-features":
        expected |= {"ServiceMonitor", "PrometheusRule", "Secret", "NetworkPolicy"}
    if scenario == "served-tls":
        expected |= {"ServiceMonitor"}
    assert expected <= kinds, expected - kinds


def test_default_values_route_socket_io_to_realtime_sio_without_canary(helm: str) -> None:
    """Without the migration block the single Ingress sends /socket.io/ to realtime_sio and no canary exists."""
    docs = render(helm)
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    assert [i["metadata"]["name"] for i in ingresses] == [FULLNAME]
    assert _backends(ingresses[0]) == {"/socket.io/": FULLNAME}
    assert CANARY not in ingresses[0]["metadata"]["annotations"]


@pytest.mark.parametrize("weight", SPLIT_STEPS)
def test_split_step_sends_its_weight_to_realtime_sio_and_the_rest_to_reverb(helm: str, weight: int) -> None:
    """values-split-N.yaml: main Ingress → Reverb, canary Ingress (same host and paths) → realtime_sio at weight N."""
    docs = render(helm, Values(files=(f"values-split-{weight}.yaml",)))
    main = find(docs, "Ingress", FULLNAME)
    canary = find(docs, "Ingress", f"{FULLNAME}-canary")
    notes = canary["metadata"]["annotations"]
    assert notes[CANARY] == "true" and notes[WEIGHT] == str(weight)
    assert notes["nginx.ingress.kubernetes.io/canary-weight-total"] == "100"
    assert notes["nginx.ingress.kubernetes.io/affinity-canary-behavior"] == "sticky"
    assert CANARY not in main["metadata"]["annotations"]
    assert main["spec"]["rules"][0]["host"] == canary["spec"]["rules"][0]["host"]
    main_paths, canary_paths = _backends(main), _backends(canary)
    # ingress-nginx only merges a canary into a main Ingress location with the same host and path.
    assert set(canary_paths) <= set(main_paths)
    assert set(canary_paths.values()) == {FULLNAME}
    assert set(main_paths.values()) == {"laravel-reverb"}
    assert {"/app", "/apps"} <= set(main_paths)


def test_weight_zero_is_the_rollback(helm: str) -> None:
    """migration.weight=0 (the watchdog's rollback) removes the canary Ingress, so no sticky canary cookie can keep
    a browser on realtime_sio, while the main Ingress keeps routing everything to Reverb."""
    docs = render(helm, Values(files=("values-split-90.yaml",), sets=("migration.weight=0",)))
    assert [i["metadata"]["name"] for i in docs if i["kind"] == "Ingress"] == [FULLNAME]
    assert set(_backends(find(docs, "Ingress", FULLNAME)).values()) == {"laravel-reverb"}


def test_pinning_cookie_routes_by_cookie_even_at_weight_zero(helm: str) -> None:
    """migration.cookie adds nginx canary-by-cookie, so the app can pin browsers with always/never at any weight."""
    docs = render(helm, Values(sets=("migration.enabled=true", "migration.weight=0", "migration.cookie=realtime_backend")))
    notes = find(docs, "Ingress", f"{FULLNAME}-canary")["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/canary-by-cookie"] == "realtime_backend" and notes[WEIGHT] == "0"


@pytest.mark.parametrize("weight", ["101", "-1"])
def test_weight_outside_0_to_100_is_refused(helm: str, weight: str) -> None:
    """A canary weight outside 0-100 fails at render time with a message naming the value."""
    error = render_error(helm, Values(sets=("migration.enabled=true", f"migration.weight={weight}")))
    assert "migration.weight" in error


def test_reverb_outside_the_namespace_gets_an_externalname_service(helm: str) -> None:
    """With migration.reverb.externalName the main Ingress targets a chart-made ExternalName Service."""
    docs = render(helm, Values(sets=("migration.enabled=true", "migration.reverb.externalName=reverb.example.internal")))
    service = find(docs, "Service", f"{FULLNAME}-reverb")
    assert service["spec"] == {
        "type": "ExternalName",
        "externalName": "reverb.example.internal",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    assert set(_backends(find(docs, "Ingress", FULLNAME)).values()) == {f"{FULLNAME}-reverb"}


def test_ingress_keeps_websockets_open_and_polling_sticky(helm: str) -> None:
    """The Ingress has long proxy timeouts (beyond Engine.IO's ping interval) and cookie affinity, with TLS."""
    ingress = find(render(helm), "Ingress", FULLNAME)
    notes = ingress["metadata"]["annotations"]
    ping_interval = settings_module.Settings().engine.ping_interval + settings_module.Settings().engine.ping_timeout
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(notes[f"nginx.ingress.kubernetes.io/{key}"]) > ping_interval
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-name"]
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]


def test_probes_port_and_command_match_the_server(helm: str) -> None:
    """Liveness probes /health, readiness /ready, on the named port that is the Service's target and port 6001."""
    docs = render(helm)
    c = container(docs)
    assert c["command"] == ["realtime-sio", "serve"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 6001, "protocol": "TCP"}]
    service = find(docs, "Service", FULLNAME)
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == find(docs, "Deployment", FULLNAME)["spec"]["selector"]["matchLabels"]


def test_pod_runs_non_root_on_a_read_only_root_filesystem(helm: str) -> None:
    """Non-root, read-only root filesystem with a /tmp emptyDir, no privilege escalation, no capabilities, no
    service links (they would inject REALTIME_SIO_PORT=tcp://... that the settings loader rejects)."""
    docs = render(helm)
    pod = find(docs, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    c = container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert pod["enableServiceLinks"] is False and pod["automountServiceAccountToken"] is False
    assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_termination_grace_covers_prestop_and_shutdown(helm: str, scenario: str) -> None:
    """terminationGracePeriodSeconds ≥ preStop sleep + REALTIME_SIO_SHUTDOWN_TIMEOUT > REALTIME_SIO_DRAIN_SECONDS."""
    docs = render(helm, SCENARIOS[scenario])
    pod = find(docs, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    env = _env(docs)
    command = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop, shutdown, drain = float(command[1]), float(env["REALTIME_SIO_SHUTDOWN_TIMEOUT"]), float(env["REALTIME_SIO_DRAIN_SECONDS"])
    assert drain < shutdown
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + shutdown


def test_grace_period_shorter_than_the_drain_is_refused(helm: str) -> None:
    """An explicit terminationGracePeriodSeconds that would kill pods mid-drain fails at render time."""
    error = render_error(helm, Values(sets=("drain.terminationGracePeriodSeconds=10",)))
    assert "terminationGracePeriodSeconds" in error


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rendered_environment_loads_with_realtime_sio_settings(helm: str, scenario: str, tmp_path: Path) -> None:
    """The ConfigMap + Secret environment and the mounted channels.toml are accepted by settings.load()."""
    docs = render(helm, SCENARIOS[scenario])
    env = _env(docs)
    unknown = {k for k in env if k not in settings_module.OPTIONS_BY_ENV}
    assert not unknown, f"variables realtime_sio does not know: {unknown}"
    rules_file = tmp_path / "channels.toml"
    rules_file.write_text(find(docs, "ConfigMap", f"{FULLNAME}-channels")["data"]["channels.toml"])
    mount = next(m for m in container(docs)["volumeMounts"] if m["name"] == "channels")
    assert env["REALTIME_SIO_CONFIG_FILE"] == f"{mount['mountPath']}/channels.toml"
    env["REALTIME_SIO_CONFIG_FILE"] = str(rules_file)
    loaded = settings_module.load(env)
    assert loaded.host == "0.0.0.0" and loaded.port == 6001
    assert loaded.channel_rules == settings_module.DEFAULT_CHANNEL_RULES


def test_channel_rules_with_roles_and_params_render_to_valid_toml(helm: str, tmp_path: Path) -> None:
    """channelRules with param and roles (and characters needing escapes) reach the server's rules loader intact."""
    values = tmp_path / "rules.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "channelRules": [
                    {"pattern": "private-team.{team}.{user}", "allow": "user", "param": "user"},
                    {"pattern": "private-admin.*", "allow": "roles", "roles": ["admin", 'o"dd\\role']},
                ]
            }
        )
    )
    docs = render(helm, Values(files=(str(values),)))
    rules_file = tmp_path / "channels.toml"
    rules_file.write_text(find(docs, "ConfigMap", f"{FULLNAME}-channels")["data"]["channels.toml"])
    assert settings_module.load_rules_file(str(rules_file)) == (
        settings_module.ChannelRule("private-team.{team}.{user}", "user", "user"),
        settings_module.ChannelRule("private-admin.*", "roles", None, ("admin", 'o"dd\\role')),
    )


def test_secrets_go_to_the_secret_never_the_configmap(helm: str) -> None:
    """JWT secret, API key and a password-bearing Redis URL are rendered only into the Secret."""
    sets = ("secrets.jwtSecret=jwt-secret-0123456789", "secrets.apiKey=api-key-42", "redis.external.url=redis://:pw-9f3@redis:6379/0")
    docs = render(helm, Values(sets=sets))
    secret = find(docs, "Secret", FULLNAME)["stringData"]
    assert secret == {
        "REALTIME_SIO_JWT_SECRET": "jwt-secret-0123456789",
        "REALTIME_SIO_API_KEY": "api-key-42",
        "REALTIME_SIO_REDIS_URL": "redis://:pw-9f3@redis:6379/0",
    }
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        text = yaml.safe_dump(cm)
        assert "jwt-secret-0123456789" not in text and "api-key-42" not in text and "pw-9f3" not in text


def test_dashboard_token_and_pusher_apps_have_a_secret_slot(helm: str) -> None:
    """secrets.dashboardToken and secrets.pusherApps render into the Secret, never a ConfigMap; settings refuses them."""
    sets = ("secrets.dashboardToken=dash-token-0123456789", "secrets.pusherApps=app1:key1:pusher-secret-0123456789")
    docs = render(helm, Values(sets=sets))
    secret = find(docs, "Secret", FULLNAME)["stringData"]
    assert secret == {
        "REALTIME_SIO_DASHBOARD_TOKEN": "dash-token-0123456789",
        "REALTIME_SIO_PUSHER_APPS": "app1:key1:pusher-secret-0123456789",
    }
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        text = yaml.safe_dump(cm)
        assert "dash-token-0123456789" not in text and "pusher-secret-0123456789" not in text
    for key in ("DASHBOARD_TOKEN", "PUSHER_APPS"):
        assert f"settings.{key}" in render_error(helm, Values(sets=(f"settings.{key}=x",)))


def test_server_network_policy_admits_only_the_listed_peers(helm: str) -> None:
    """networkPolicy.server: a NetworkPolicy on the realtime-sio pods whose only ingress rule is the listed peers."""
    assert not [d for d in render(helm) if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == FULLNAME]
    peer = "networkPolicy.server.from[0].podSelector.matchLabels.app=ingress-nginx"
    docs = render(helm, Values(sets=("networkPolicy.server.enabled=true", peer)))
    policy = find(docs, "NetworkPolicy", FULLNAME)
    k8s_schema.validate(policy)
    assert policy["spec"]["podSelector"]["matchLabels"] == find(docs, "Deployment", FULLNAME)["spec"]["selector"]["matchLabels"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "ingress-nginx"}}}]
    assert "networkPolicy.server.from" in render_error(helm, Values(sets=("networkPolicy.server.enabled=true",)))


def test_existing_secret_is_used_instead_of_a_chart_secret(helm: str) -> None:
    """secrets.existingSecret: the pod reads that Secret and the chart renders none of its own."""
    docs = render(helm, Values(sets=("secrets.existingSecret=realtime-creds", "secrets.jwtSecret=ignored-0123456789")))
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert {"secretRef": {"name": "realtime-creds"}} in container(docs)["envFrom"]


@pytest.mark.parametrize("key", ["JWT_SECRET", "PORT", "REALTIME_SIO_LOG_LEVEL", "TLS_CERT_FILE", "TLS_KEY_FILE"])
def test_settings_block_refuses_managed_secret_or_prefixed_keys(helm: str, key: str) -> None:
    """settings.<KEY> may not carry secrets, chart-managed variables, or the REALTIME_SIO_ prefix."""
    error = render_error(helm, Values(sets=(f"settings.{key}=x",)))
    assert f"settings.{key}" in error


def test_internal_redis_is_wired_and_fenced(helm: str) -> None:
    """redis.internal.enabled: a Redis Deployment and Service, REDIS_URL pointing at it, a NetworkPolicy admitting
    only realtime-sio pods; it cannot be combined with an external URL."""
    docs = render(helm, Values(sets=("redis.internal.enabled=true",)))
    service = find(docs, "Service", f"{FULLNAME}-redis")
    assert _env(docs)["REALTIME_SIO_REDIS_URL"] == f"redis://{FULLNAME}-redis:6379/0"
    assert find(docs, "Deployment", f"{FULLNAME}-redis")["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()
    policy = find(docs, "NetworkPolicy", f"{FULLNAME}-redis")
    server_labels = find(docs, "Deployment", FULLNAME)["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": server_labels}}]
    error = render_error(helm, Values(sets=("redis.internal.enabled=true", "redis.external.url=redis://x:6379/0")))
    assert "exclusive" in error


def test_hpa_and_pdb_target_the_server_pods(helm: str) -> None:
    """The HPA scales the Deployment (and replicas is left to it); the PDB selects the server pods."""
    docs = render(helm)
    deployment = find(docs, "Deployment", FULLNAME)
    hpa = find(docs, "HorizontalPodAutoscaler", FULLNAME)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    pdb = find(docs, "PodDisruptionBudget", FULLNAME)
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    fixed = render(helm, Values(sets=("autoscaling.enabled=false", "replicaCount=3")))
    assert find(fixed, "Deployment", FULLNAME)["spec"]["replicas"] == 3
    assert not [d for d in fixed if d["kind"] == "HorizontalPodAutoscaler"]


def test_service_monitor_scrapes_metrics_on_the_service_port(helm: str) -> None:
    """The ServiceMonitor selects the Service by its labels and scrapes /metrics on the port named http."""
    docs = render(helm, Values(sets=("serviceMonitor.enabled=true", "serviceMonitor.labels.release=kps")))
    monitor = find(docs, "ServiceMonitor", FULLNAME)
    service = find(docs, "Service", FULLNAME)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kps"


def test_dashboard_configmap_ships_the_dashboard_file(helm: str) -> None:
    """grafanaDashboard.enabled: a ConfigMap labelled for the Grafana sidecar holds dashboards/realtime-sio.json."""
    docs = render(helm, Values(sets=("grafanaDashboard.enabled=true",)))
    cm = find(docs, "ConfigMap", f"{FULLNAME}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"]["realtime-sio.json"] == (CHART / "dashboards" / "realtime-sio.json").read_text().rstrip("\n")


def test_every_value_in_values_yaml_is_commented() -> None:
    """Every leaf value of values.yaml has a comment right above its key or above one of its parent keys."""
    text = (CHART / "values.yaml").read_text()
    lines = text.splitlines()

    def commented(line: int) -> bool:
        return line > 0 and lines[line - 1].strip().startswith("#")

    undocumented: list[str] = []

    def walk(node: yaml.Node, path: str, documented: bool) -> None:
        if isinstance(node, yaml.MappingNode) and node.value:
            for key, value in node.value:
                walk(value, f"{path}.{key.value}".lstrip("."), documented or commented(key.start_mark.line))
        elif isinstance(node, yaml.SequenceNode) and node.value and isinstance(node.value[0], yaml.MappingNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]", documented)
        elif not documented:
            undocumented.append(path)

    walk(yaml.compose(text), "", False)
    assert not undocumented, f"values without a comment: {undocumented}"


def test_pusher_websocket_can_be_routed_and_split(helm: str) -> None:
    """ingress.pusher routes /app to realtime_sio; in a split step the canary splits /app at the step's weight and
    the main Ingress keeps /app (once) on Reverb, so an unchanged Reverb frontend reaches either side."""
    plain = _backends(find(render(helm, Values(sets=("ingress.pusher=true",))), "Ingress", FULLNAME))
    assert plain == {"/socket.io/": FULLNAME, "/app": FULLNAME}
    docs = render(helm, Values(files=("values-split-50.yaml",), sets=("ingress.pusher=true",)))
    main, canary = find(docs, "Ingress", FULLNAME), find(docs, "Ingress", f"{FULLNAME}-canary")
    assert _backends(canary) == {"/socket.io/": FULLNAME, "/app": FULLNAME}
    paths = [p["path"] for p in main["spec"]["rules"][0]["http"]["paths"]]
    assert sorted(paths) == ["/app", "/apps", "/socket.io/"] and set(_backends(main).values()) == {"laravel-reverb"}


def test_served_tls_mounts_the_secret_and_switches_probes_scrape_and_ingress_to_https(helm: str) -> None:
    """tls.servedSecretName: the Secret is mounted read-only as a directory (no subPath, so renewals reach the files),
    TLS_CERT_FILE/KEY_FILE name tls.crt/tls.key there and load, probes use HTTPS on the port named https, the
    ServiceMonitor scrapes https (unverified by default), and the Ingress talks HTTPS to the pods."""
    docs = render(helm, Values(sets=SERVED_TLS))
    pod = find(docs, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    c = container(docs)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "served-tls"]
    assert volume["secret"]["secretName"] == "realtime-sio-served-tls"
    assert {i["key"] for i in volume["secret"]["items"]} == {"tls.crt", "tls.key"}
    assert volume["secret"]["defaultMode"] == 0o440  # owner root, group fsGroup: the server reads the key
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "served-tls"]
    assert mount["readOnly"] is True and "subPath" not in mount
    assert not any(mount["mountPath"].startswith(m["mountPath"] + "/") for m in c["volumeMounts"] if m is not mount)
    env = _env(docs)
    assert env["REALTIME_SIO_TLS_CERT_FILE"] == f"{mount['mountPath']}/tls.crt"
    assert env["REALTIME_SIO_TLS_KEY_FILE"] == f"{mount['mountPath']}/tls.key"
    loaded = settings_module.load({k: v for k, v in env.items() if k != "REALTIME_SIO_CONFIG_FILE"})  # rules: elsewhere
    assert loaded.tls.cert_file == env["REALTIME_SIO_TLS_CERT_FILE"]
    assert c["ports"] == [{"name": "https", "containerPort": 6001, "protocol": "TCP"}]
    for probe, path in (("startupProbe", "/health"), ("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        assert c[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}, probe
    service = find(docs, "Service", FULLNAME)
    assert service["spec"]["ports"][0]["name"] == service["spec"]["ports"][0]["targetPort"] == "https"
    (endpoint,) = find(docs, "ServiceMonitor", FULLNAME)["spec"]["endpoints"]
    assert endpoint["port"] == "https" and endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    ingress = find(docs, "Ingress", FULLNAME)
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    ports = {p["backend"]["service"]["port"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert ports == {"https"}


def test_served_tls_scrape_can_verify_the_certificate(helm: str) -> None:
    """tls.scrape.serverName (and caKey): the ServiceMonitor checks the certificate against that name and the CA in
    the served Secret instead of skipping verification."""
    sets = (*SERVED_TLS, "tls.scrape.serverName=realtime.example.com", "tls.scrape.caKey=ca.crt")
    (endpoint,) = find(render(helm, Values(sets=sets)), "ServiceMonitor", FULLNAME)["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == {
        "serverName": "realtime.example.com",
        "ca": {"secret": {"name": "realtime-sio-served-tls", "key": "ca.crt"}},
    }


def test_plain_http_is_the_default_and_served_tls_refuses_the_migration_split(helm: str) -> None:
    """Without tls.servedSecretName nothing TLS is rendered (no mount, no TLS variables, no backend-protocol); with
    the migration split it fails at render time, since the canary would inherit Reverb's plain-HTTP backend."""
    docs = render(helm, Values(sets=("serviceMonitor.enabled=true",)))
    assert not [m for m in container(docs)["volumeMounts"] if m["name"] == "served-tls"]
    assert not {k for k in _env(docs) if k.startswith("REALTIME_SIO_TLS_")}
    assert "nginx.ingress.kubernetes.io/backend-protocol" not in find(docs, "Ingress", FULLNAME)["metadata"]["annotations"]
    (endpoint,) = find(docs, "ServiceMonitor", FULLNAME)["spec"]["endpoints"]
    assert "scheme" not in endpoint and "tlsConfig" not in endpoint
    error = render_error(helm, Values(files=("values-split-50.yaml",), sets=SERVED_TLS))
    assert "tls.servedSecretName" in error and "migration.enabled" in error
