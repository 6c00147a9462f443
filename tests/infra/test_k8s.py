"""Kubernetes manifests: each overlay renders with kubectl's built-in kustomize, validates
(kubernetes-validate, strict, offline schemas; Gateway API kinds against the subset schemas
in schemas/ since no CRD schema ships offline), and hangs together: Services select pods,
the route and the autoscalers point at what exists, every Secret reference is provided by
infra/k8s/secrets, every container has requests, limits and a non-root identity."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.infra.conftest import K8S, OVERLAYS, ROOT, run, tool

K8S_VERSION = "1.32.0"  # the oldest cluster version the manifests are checked against
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute-gateway-v1.json",
    ("gateway.networking.k8s.io/v1", "Gateway"): "gateway-gateway-v1.json",
}
WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob"}
SERVING = ("artflow-champion", "artflow-challenger")


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec["template"]["metadata"].get("labels", {})


def workloads(objects: list[dict[str, Any]]):
    return [o for o in objects if o["kind"] in WORKLOADS]


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def crd_schema(obj: dict[str, Any]) -> dict[str, Any] | None:
    name = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    return json.loads((SCHEMAS / name).read_text()) if name else None


def validate_builtin(objects: list[dict[str, Any]], tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "builtin.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    cmd = [tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, "--quiet", str(path)]
    return run(cmd)


# ---------------------------------------------------------------- render and validate


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates(overlay: str, rendered, tmp_path: Path) -> None:
    objects = rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "HTTPRoute", "CronJob"} <= kinds
    custom = [o for o in objects if "gateway.networking.k8s.io" in o["apiVersion"]]
    for obj in custom:
        schema = crd_schema(obj)
        assert schema, f"no schema for {obj['apiVersion']} {obj['kind']}: add one to schemas/"
        jsonschema.validate(obj, schema)
    proc = validate_builtin([o for o in objects if o not in custom], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_validators_reject_broken_manifests(rendered, tmp_path: Path) -> None:
    objects = copy.deepcopy(rendered["local"])
    deployment = by_kind(objects, "Deployment")["artflow-champion"]
    container = pod_spec(deployment)["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")  # a typo
    proc = validate_builtin([deployment], tmp_path)
    assert proc.returncode != 0 and "readinesProbe" in proc.stdout, proc.stdout
    route = copy.deepcopy(by_kind(objects, "HTTPRoute")["artflow"])
    route["spec"]["rules"][0]["backendRefs"][1]["wieght"] = 10
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(route, crd_schema(route))


# ---------------------------------------------------------------- workload hygiene


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_hardened(overlay: str, rendered) -> None:
    """Restricted by default: a fixed non-root uid and gid, RuntimeDefault seccomp, no
    service-account token, every capability dropped, no privilege escalation, a read-only
    root filesystem whose writable paths are volumes, requests and limits."""
    for obj in workloads(rendered[overlay]):
        spec = pod_spec(obj)
        where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True and pod.get("seccompProfile") == {
            "type": "RuntimeDefault"
        }, where
        assert pod.get("runAsUser", 0) > 0 and pod.get("runAsGroup", 0) > 0, where
        assert pod.get("fsGroup") == pod["runAsGroup"], f"{where}: Secret files readable"
        assert spec.get("automountServiceAccountToken") is False, where
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for c in all_containers(spec):
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part, {})), f"{where}: {part}"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}/{c['name']}"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("runAsUser", 1) > 0, where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}/{c['name']}: /tmp must be a writable volume"
            assert set(mounts.values()) <= volumes, where


def test_images_are_immutable_and_set_in_one_place(rendered) -> None:
    """Manifests name images symbolically; their tags and digests live in the base's
    `images:` only (overlays may only point artflow's at local builds)."""
    for path in K8S.rglob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"\s*(?:-\s+)?image:\s*(\S+)", line)
            assert not m or re.fullmatch(r"[\w-]+", m[1]), f"{path}: {line.strip()}"
    for overlay, objects in rendered.items():
        for obj in workloads(objects):
            for c in all_containers(pod_spec(obj)):
                image = c["image"]
                pinned = re.search(r"@sha256:[0-9a-f]{64}$", image) or re.search(
                    r":(?!latest$)[\w.-]+$", image
                )
                assert pinned, f"{overlay}: {image}"
                if overlay == "production" and not image.startswith("ghcr.io/artflow/"):
                    assert "@sha256:" in image, f"third-party images by digest: {image}"


# ---------------------------------------------------------------- network policies


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        inside = labels.get(expr["key"]) in expr.get("values", [])
        ok = {"In": inside, "NotIn": not inside, "Exists": present, "DoesNotExist": not present}
        if not ok[expr["operator"]]:
            return False
    return True


def _peer_matches(peer: dict[str, Any], ns: str, labels: dict[str, str], own_ns: str) -> bool:
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns}):
            return False
    elif ns != own_ns:
        return False
    return "podSelector" not in peer or _selects(peer["podSelector"], labels)


def _rule_allows(rule, peer_ns, peer_labels, own_ns, port) -> bool:
    peers = rule.get("from", rule.get("to"))
    ports = rule.get("ports")
    if ports is not None and port not in {p["port"] for p in ports}:
        return False
    return peers is None or any(_peer_matches(p, peer_ns, peer_labels, own_ns) for p in peers)


def allowed(policies, src: tuple[str, dict], dst: tuple[str, dict], port: int) -> bool:
    """Kubernetes' semantics: a direction is open when no policy selects the pod for it, or
    one of the policies that do has a rule admitting the peer and port; both ends must agree."""

    def side(pod_ns, pod_labels, peer_ns, peer_labels, kind, key):
        chosen = [
            p
            for p in policies
            if p["metadata"].get("namespace", "artflow") == pod_ns
            and _selects(p["spec"]["podSelector"], pod_labels)
            and kind in p["spec"].get("policyTypes", ["Ingress"])
        ]
        if pod_ns != "artflow":
            return True  # other namespaces' policies are not ours
        if not chosen:
            return True
        return any(
            _rule_allows(r, peer_ns, peer_labels, pod_ns, port)
            for p in chosen
            for r in p["spec"].get(key) or []
        )

    return side(*src, *dst, "Egress", "egress") and side(*dst, *src, "Ingress", "ingress")


def _pod(name: str, **more: str) -> tuple[str, dict[str, str]]:
    return "artflow", {"app.kubernetes.io/name": name, **more}


FLOWS = [  # (from, to, port, allowed)
    (_pod("artflow-serving"), _pod("mlflow"), 5000, True),
    (_pod("artflow-serving"), _pod("postgres"), 5432, True),
    (_pod("artflow-serving"), _pod("minio"), 9000, True),
    (_pod("artflow-serving"), _pod("artflow-serving"), 3000, True),
    (
        ("artflow", {"gateway.networking.k8s.io/gateway-name": "artflow"}),
        _pod("artflow-serving"),
        3000,
        True,
    ),
    (
        ("envoy-gateway-system", {"gateway.envoyproxy.io/owning-gateway-name": "artflow"}),
        _pod("artflow-serving"),
        3000,
        True,
    ),
    (_pod("drift"), _pod("mlflow"), 5000, True),
    (_pod("ab-report"), _pod("mlflow"), 5000, True),
    (_pod("mlflow-identities"), _pod("mlflow"), 5000, True),
    (_pod("ab-report"), _pod("postgres"), 5432, True),
    (_pod("drift"), _pod("postgres"), 5432, True),  # the serving store's style answers
    (_pod("serving-store"), _pod("postgres"), 5432, True),
    (_pod("mlflow"), _pod("postgres"), 5432, True),
    (_pod("mlflow"), _pod("minio"), 9000, True),
    (_pod("db-backup"), _pod("postgres"), 5432, True),
    (_pod("db-backup"), _pod("minio"), 9000, True),
    (("kubeflow", {"pipeline": "step"}), _pod("mlflow"), 5000, True),
    # and nothing else
    (_pod("mlflow-identities"), _pod("postgres"), 5432, False),
    (_pod("artflow-serving"), _pod("mlflow"), 5432, False),
    (("kubeflow", {"pipeline": "step"}), _pod("postgres"), 5432, False),
    (("default", {"app": "anything"}), _pod("mlflow"), 5000, False),
    (("default", {"app": "anything"}), _pod("artflow-serving"), 3000, False),
    (_pod("mlflow"), _pod("artflow-serving"), 3000, False),
    (_pod("postgres"), _pod("minio"), 9000, False),
    (_pod("artflow-serving"), ("default", {"app": "anything"}), 443, False),
    (_pod("minio"), ("default", {"app": "anything"}), 443, False),
]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_flows(overlay: str, rendered) -> None:
    policies = list(by_kind(rendered[overlay], "NetworkPolicy").values())
    deny = by_kind(rendered[overlay], "NetworkPolicy")["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    wrong = [
        f"{src} -> {dst}:{port} should be {'open' if want else 'closed'}"
        for src, dst, port, want in FLOWS
        if allowed(policies, src, dst, port) != want
    ]
    assert not wrong, "\n".join(wrong)
    # every pod is selected by a policy beyond the default deny (each has its own flows)
    for obj in workloads(rendered[overlay]):
        labels = pod_labels(obj)
        general = {"default-deny", "allow-dns"}
        mine = [
            p
            for p in policies
            if p["metadata"]["name"] not in general and _selects(p["spec"]["podSelector"], labels)
        ]
        assert mine, f"{obj['metadata']['name']}: no policy for its flows"
    # DNS for everyone
    dns = ("kube-system", {"k8s-app": "kube-dns"})
    assert allowed(policies, _pod("drift"), dns, 53)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_probes_use_the_health_endpoints(overlay: str, rendered) -> None:
    deployments = by_kind(rendered[overlay], "Deployment")
    for name in SERVING:
        (c,) = pod_spec(deployments[name])["containers"]
        ports = {p["name"] for p in c["ports"]}
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert c[probe]["httpGet"]["port"] in ports, f"{name}: {probe} port"


# ---------------------------------------------------------------- references between objects


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_and_their_ports(overlay: str, rendered) -> None:
    objects = rendered[overlay]
    pods = [(pod_labels(o), pod_spec(o)) for o in by_kind(objects, "Deployment").values()]
    for name, svc in by_kind(objects, "Service").items():
        selector = svc["spec"]["selector"]
        matches = [s for labels, s in pods if selector.items() <= labels.items()]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} Deployments"
        ports = {p["name"] for c in matches[0]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: no port {port['targetPort']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_route_and_autoscalers_point_at_what_exists(overlay: str, rendered) -> None:
    objects = rendered[overlay]
    services, deployments = by_kind(objects, "Service"), by_kind(objects, "Deployment")
    route = by_kind(objects, "HTTPRoute")["artflow"]
    gateways = by_kind(objects, "Gateway")
    assert all(ref["name"] in gateways for ref in route["spec"]["parentRefs"])
    refs = route["spec"]["rules"][0]["backendRefs"]
    # Fixed weights: who sees the challenger is the serving store's share (POST /admin/weight,
    # infra/scripts/serving-admin.sh), never the route: one mechanism, not two.
    assert [(r["name"], r["weight"]) for r in refs] == [(SERVING[0], 100), (SERVING[1], 0)]
    for ref in refs:
        assert ref["port"] in {p["port"] for p in services[ref["name"]]["spec"]["ports"]}
    for name, hpa in by_kind(objects, "HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments, name
        assert "replicas" not in deployments[target["name"]]["spec"], (
            f"{target['name']}: the HPA owns replicas; a fixed count fights it on every apply"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_volumes_config_and_accounts_resolve(overlay: str, rendered) -> None:
    objects = rendered[overlay]
    claims = set(by_kind(objects, "PersistentVolumeClaim"))
    configmaps = set(by_kind(objects, "ConfigMap"))
    accounts = set(by_kind(objects, "ServiceAccount")) | {"default"}
    for obj in workloads(objects):
        spec = pod_spec(obj)
        for vol in spec.get("volumes", []):
            if "persistentVolumeClaim" in vol:
                assert vol["persistentVolumeClaim"]["claimName"] in claims
            if "configMap" in vol:
                assert vol["configMap"]["name"] in configmaps
        assert spec.get("serviceAccountName", "default") in accounts
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                assert src["configMapRef"]["name"] in configmaps


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_mounted_files_never_env(overlay: str, rendered, rendered_secrets) -> None:
    """Secrets reach a process as files (a Secret volume's items), never as environment
    values the pod spec hands over, and every key used is provided by infra/k8s/secrets."""
    objects = rendered[overlay]
    assert not by_kind(objects, "Secret"), "Secrets belong in infra/k8s/secrets (env files)"
    provided = {(s["metadata"]["name"], key) for s in rendered_secrets for key in s["data"]}
    used = set()
    for obj in workloads(objects):
        spec = pod_spec(obj)
        for c in all_containers(spec):
            for env in c.get("env", []):
                assert "secretKeyRef" not in env.get("valueFrom", {}), f"{c['name']}: {env['name']}"
            assert not any("secretRef" in src for src in c.get("envFrom", [])), c["name"]
        for vol in spec.get("volumes", []):
            projected = vol.get("projected", {}).get("sources", [])
            sources = [s["secret"] for s in projected if "secret" in s]
            if "secret" in vol:
                sources.append({**vol["secret"], "name": vol["secret"]["secretName"]})
            for secret in sources:
                assert secret.get("items"), f"{vol['name']}: name the keys a pod gets"
                used |= {(secret["name"], item["key"]) for item in secret["items"]}
    assert used and used <= provided, f"not in infra/k8s/secrets: {used - provided}"


def test_secret_values_stay_out_of_git() -> None:
    if run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT).returncode != 0:
        pytest.skip("not a git checkout: nothing is tracked")
    tracked = run(["git", "ls-files", str(K8S / "secrets")], cwd=ROOT).stdout.split()
    assert tracked and not [f for f in tracked if f.endswith(".env")], tracked
    probe = run(["git", "check-ignore", "-q", str(K8S / "secrets" / "postgres.env")], cwd=ROOT)
    assert probe.returncode == 0, "infra/k8s/secrets/*.env must be git-ignored"


def test_production_pins_image_tags(rendered) -> None:
    for obj in workloads(rendered["production"]):
        for c in pod_spec(obj)["containers"]:
            image = c["image"]
            assert re.search(r":[\w.-]+$|@sha256:", image) and not image.endswith(":latest"), image


def test_env_the_manifests_set_is_read_by_artflow(rendered) -> None:
    """An ARTFLOW_* variable that no code reads is configuration that silently does nothing."""
    names = {
        env["name"]
        for obj in workloads(rendered["production"])
        for c in pod_spec(obj)["containers"]
        for env in c.get("env", [])
        if env["name"].startswith("ARTFLOW_")
    }
    names |= {
        key
        for cm in by_kind(rendered["production"], "ConfigMap").values()
        for key in cm.get("data", {})
        if key.startswith("ARTFLOW_")
    }
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "artflow").rglob("*.py"))
    unread = sorted(n for n in names if f'"{n}"' not in source)
    assert not unread, f"set in infra/k8s but read nowhere in src/artflow: {unread}"


def test_serving_pods_run_as_the_bento_images_user(rendered) -> None:
    """`bentoml containerize` images run as a *named* user, which runAsNonRoot cannot verify:
    the Deployments give its uid explicitly, and it must be the installed BentoML's."""
    import importlib.util

    origin = Path(importlib.util.find_spec("bentoml").origin).parent
    generate = (origin / "_internal" / "container" / "generate.py").read_text()
    uid = int(re.search(r"^BENTO_UID_GID = (\d+)", generate, re.M)[1])
    deployments = by_kind(rendered["production"], "Deployment")
    for name in SERVING:
        ctx = pod_spec(deployments[name])["securityContext"]
        assert ctx["runAsUser"] == ctx["fsGroup"] == uid, f"{name}: uid {uid} expected"


# ---------------------------------------------------------------- the containers' own scripts


def _scripts(objects: list[dict[str, Any]]):
    for obj in workloads(objects):
        for c in all_containers(pod_spec(obj)):
            cmd = c.get("command", [])
            if cmd[:1] in (["sh"], ["bash"]) and len(cmd) == 3 and cmd[1].startswith("-c"):
                yield f"{obj['metadata']['name']}/{c['name']}", cmd[0], cmd[2]


def test_inline_scripts_pass_shellcheck(rendered, tmp_path: Path) -> None:
    scripts = list(_scripts(rendered["production"]))
    assert len(scripts) >= 4, [s[0] for s in scripts]
    for where, shell, script in scripts:
        path = tmp_path / f"{where.replace('/', '-')}.sh"
        path.write_text(script)
        proc = run(["shellcheck", "-s", shell, "-S", "warning", str(path)])
        assert proc.returncode == 0, f"{where}:\n{proc.stdout}"


def test_mlflow_server_start_reads_every_secret_from_files(rendered, tmp_path: Path) -> None:
    """The MLflow container's start command, run here with stand-ins for the mounted files
    and for `mlflow` itself: the credentials reach MLflow's own variables (never argv), the
    auth app's config is artflow's own, with no password in it."""
    ((_, shell, script),) = [
        s for s in _scripts(rendered["production"]) if s[0] == "artflow-mlflow/mlflow"
    ]
    secrets = {
        "postgres/POSTGRES_USER": "mlflow",
        "postgres/POSTGRES_PASSWORD": "pg-s3cret",
        "minio/MINIO_ROOT_USER": "root",
        "minio/MINIO_ROOT_PASSWORD": "minio-s3cret",
        "mlflow-auth/MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-key",
        "mlflow-auth/MLFLOW_AUTH_ADMIN_PASSWORD": "admin-s3cret",
    }
    for name, value in secrets.items():
        (tmp_path / "etc" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "etc" / name).write_text(value + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    stub = bin_dir / "mlflow"  # prints what the real one would get
    stub.write_text('#!/bin/sh\nprintf "ARGV %s\\n" "$*"; env | grep -E "^(MLFLOW|AWS|PG)"\n')
    stub.chmod(0o755)
    script = script.replace("/tmp/", f"{tmp_path}/").replace("/etc/artflow", str(tmp_path / "etc"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}
    proc = run([shell, "-ceu", script], env=env)
    assert proc.returncode == 0, proc.stderr
    out = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line[:40])
    argv = next(line for line in proc.stdout.splitlines() if line.startswith("ARGV"))
    assert "--app-name artflow" in argv and not any(v in argv for v in ("s3cret", "flask-key"))
    uri = "postgresql://mlflow:pg-s3cret@artflow-postgres:5432/mlflow"
    assert out["MLFLOW_BACKEND_STORE_URI"] == uri
    assert out["AWS_SECRET_ACCESS_KEY"] == "minio-s3cret" and out["PGPASSWORD"] == "pg-s3cret"
    assert out["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-s3cret"
    config = Path(out["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert "database_uri = postgresql://mlflow@artflow-postgres:5432/mlflow_auth" in config
    assert "champion_writers = gate" in config and "s3cret" not in config
