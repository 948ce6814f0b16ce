"""Validation of ``deploy/`` as far as this machine allows (issue 7).

Every YAML and JSON file parses; the compose file validates against the Compose specification
schema (vendored by the ``check-jsonschema`` package); the Kubernetes manifests validate
against the Kubernetes 1.30 OpenAPI schemas in strict mode (``kubernetes-validate``, offline);
the systemd units pass ``systemd-analyze verify`` (or, without systemd, a section/key allow-list)
and carry the hardening options; the Dockerfiles parse (``dockerfile-parse``), copy only files
that exist and start real ``predis-fl`` commands; every command line in compose, Kubernetes,
systemd and Dockerfiles parses with ``predis-fl``'s own parser or names only flags the
installed Flower commands accept; the Grafana dashboard uses only metric names defined in the
code. Nothing here needs Docker, a cluster or network access.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.30"
FLOWER_COMMANDS = {"flower-superlink", "flower-supernode", "flower-superexec"}
#: Secrets the manifests reference by name; deploy/README.md says how to create each.
K8S_SECRETS = {
    "predis-superlink-tls",
    "predis-api",
    "predis-registry-signing-key",
    "predis-postgres",
}


def _files(*patterns: str) -> list[Path]:
    return sorted(p for pattern in patterns for p in DEPLOY.rglob(pattern) if p.is_file())


def _yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


# --------------------------------------------------------------------------- parsing


def test_every_yaml_and_json_file_parses() -> None:
    yamls = _files("*.yaml", "*.yml")
    jsons = _files("*.json")
    assert len(yamls) >= 10 and jsons
    for path in yamls:
        assert _yaml_docs(path), f"{path} is empty"
    for path in jsons:
        json.loads(path.read_text())


def test_nothing_secret_is_committed() -> None:
    private = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not private.search(text), f"{path} holds a private key"
            assert not re.search(r"(?i)password\s*[:=]\s*['\"]?[A-Za-z0-9]{6,}", text) or (
                "<" in text
            ), f"{path} seems to hold a password"
    for example in _files("*.example"):
        for line in example.read_text().splitlines():
            if "PASSWORD" in line.upper() and "=" in line and not line.startswith("#"):
                assert "<" in line, f"{example}: {line!r} is not a placeholder"
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert "/keys/" in ignored and "/secrets/" in ignored


# --------------------------------------------------------------------------- commands


@functools.cache
def _flower_flags(command: str) -> frozenset[str]:
    done = subprocess.run(
        [str(BIN / command), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    flags = frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", done.stdout + done.stderr))
    assert "--help" in flags, f"{command} --help printed no flags"
    return flags


def _check_command(argv: list[str], where: str) -> None:
    """Check one command line: ``predis-fl`` args parse; Flower commands use real flags."""
    program = Path(argv[0]).name
    args = [re.sub(r"\$\{?[A-Z_]+\}?|%d", "x", a) for a in argv[1:]]
    if program == "predis-fl":
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"{where}: predis-fl {' '.join(args)} does not parse") from exc
        return
    assert program in FLOWER_COMMANDS, f"{where}: unexpected program {program}"
    used = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    unknown = used - _flower_flags(program)
    assert not unknown, f"{where}: {program} has no flags {sorted(unknown)}"


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def _image_default_command(dockerfile: str) -> list[str]:
    dfp = pytest.importorskip("dockerfile_parse")
    parser = dfp.DockerfileParser(str(DEPLOY / "docker" / dockerfile))
    last = {i["instruction"]: i["value"] for i in parser.structure}  # the final stage's
    return [*json.loads(last["ENTRYPOINT"]), *json.loads(last["CMD"])]


def _compose_commands() -> Iterator[tuple[str, list[str]]]:
    for name, service in _compose()["services"].items():
        if "build" not in service and "predis-server" not in str(service.get("image")):
            continue  # third-party images (postgres, prometheus, grafana)
        entry = service.get("entrypoint") or ["predis-fl"]
        yield f"compose service {name}", [*entry, *service.get("command", [])]


def test_compose_commands_are_real() -> None:
    commands = dict(_compose_commands())
    assert set(commands) == {
        "compose service superlink",
        "compose service serverapp",
        "compose service api",
    }
    for where, argv in commands.items():
        _check_command(argv, where)


def test_superlink_runs_with_tls_and_node_auth_everywhere() -> None:
    superlink = _compose()["services"]["superlink"]["command"]
    manifests = {
        d["metadata"]["name"]: d
        for path in _files("kubernetes/*.yaml")
        for d in _yaml_docs(path)
        if d.get("kind") == "Deployment"
    }
    k8s = manifests["superlink"]["spec"]["template"]["spec"]["containers"][0]["args"]
    for args in (superlink, k8s):
        flags = {a.split("=", 1)[0] for a in args}
        assert {"--ssl-certfile", "--ssl-keyfile", "--ssl-ca-certfile"} <= flags
        assert "--enable-supernode-auth" in flags and "--insecure" not in flags
    unit = (DEPLOY / "systemd" / "predis-agent.service").read_text()
    assert "--superlink" in unit and "--root-certificates" in unit and "--auth-key" in unit
    assert "--insecure" not in unit


# --------------------------------------------------------------------------- compose


def test_compose_validates_against_the_compose_spec() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema", reason="check-jsonschema ships the Compose schema")
    from importlib.resources import files

    schema_file = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text())
    doc = _compose()
    jsonschema.validate(doc, schema)
    broken = json.loads(json.dumps(doc))
    broken["services"]["api"]["restart_policy"] = "always"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_compose_references_existing_files() -> None:
    doc = _compose()
    for name, service in doc["services"].items():
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith("./"):
                assert source in doc["volumes"], f"{name}: undeclared volume {source}"
                continue
            if source.startswith(("./keys/", "./secrets/")):
                continue  # created by the operator (git-ignored)
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
        for secret in service.get("secrets", []):
            assert secret in doc["secrets"], f"{name}: undeclared secret {secret}"
    for secret in doc["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t
        for job in scrape["scrape_configs"]
        for s in job.get("static_configs", [])
        for t in s["targets"]
    ]
    assert "api:8080" in targets


# --------------------------------------------------------------------------- kubernetes


def _k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc)
        for path in _files("kubernetes/*.yaml")
        if path.name != "kustomization.yaml"
        for doc in _yaml_docs(path)
    ]


def test_kubernetes_manifests_validate_against_their_schemas() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    docs = _k8s_docs()
    kinds = {d["kind"] for _, d in docs}
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "NetworkPolicy"} <= kinds
    assert "Secret" not in kinds, "secrets are created by the operator, not committed"
    for path, doc in docs:
        try:
            kv.validate(doc, KUBERNETES_VERSION, strict=True)
        except kv.ValidationError as exc:
            raise AssertionError(f"{path.name}: {doc['kind']}: {exc.message}") from None
    bad = json.loads(json.dumps(next(d for _, d in docs if d["kind"] == "Deployment")))
    bad["spec"]["replicas"] = "one"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, KUBERNETES_VERSION, strict=True)


def test_kubernetes_kustomization_secrets_and_commands() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in _files("kubernetes/*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    referenced: set[str] = set()
    text = "\n".join(p.read_text() for p in _files("kubernetes/*.yaml"))
    referenced |= set(re.findall(r"secretName:\s*(\S+)", text))
    for _, doc in _k8s_docs():
        for match in re.finditer(r"'secretKeyRef': \{[^}]*'name': '([^']+)'", str(doc)):
            referenced.add(match.group(1))
    assert referenced == K8S_SECRETS
    guide = (DEPLOY / "README.md").read_text()
    for secret in K8S_SECRETS:
        assert f"create secret generic {secret}" in guide, f"README misses {secret}"
    for path, doc in _k8s_docs():
        if doc["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if not container["image"].startswith("predis-"):
                continue
            argv = [*container.get("command", ["predis-fl"]), *container.get("args", [])]
            _check_command(argv, f"{path.name}:{container['name']}")
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True


# --------------------------------------------------------------------------- systemd

#: Without systemd-analyze, unit keys are checked against this allow-list (systemd 252 names).
SYSTEMD_KEYS = {
    "Unit": {"Description", "Documentation", "After", "Wants", "Requires", "Before"},
    "Service": {
        "Type", "EnvironmentFile", "Environment", "ExecStart", "KillSignal", "TimeoutStopSec",
        "Restart", "RestartSec", "DynamicUser", "StateDirectory", "StateDirectoryMode",
        "WorkingDirectory", "UMask", "ReadOnlyPaths", "ProtectSystem", "ProtectHome",
        "PrivateTmp", "PrivateDevices", "NoNewPrivileges", "CapabilityBoundingSet",
        "AmbientCapabilities", "ProtectKernelTunables", "ProtectKernelModules",
        "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
        "ProtectProc", "ProcSubset", "RestrictNamespaces", "RestrictRealtime",
        "RestrictSUIDSGID", "RestrictAddressFamilies", "LockPersonality", "RemoveIPC",
        "SystemCallArchitectures", "SystemCallFilter", "LoadCredential",
    },
    "Install": {"WantedBy"},
}  # fmt: skip
HARDENING = {
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
}


def _unit_entries(path: Path) -> list[tuple[str, str, str]]:
    section, entries = "", []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_unit_is_valid_and_hardened(unit: Path, tmp_path: Path) -> None:
    entries = _unit_entries(unit)
    values = {(s, k): v for s, k, v in entries}
    for key, value in HARDENING.items():
        assert values.get(("Service", key)) == value, f"{unit.name}: {key}={value} missing"
    assert values.get(("Service", "StateDirectory"))
    exec_start = shlex.split(values[("Service", "ExecStart")])
    _check_command(exec_start, unit.name)
    assert _unit_complaints(unit.read_text(), unit.name, tmp_path) == []


def _unit_complaints(text: str, name: str, tmp_path: Path) -> list[str]:
    """What ``systemd-analyze verify`` (or, without it, the allow-list) says about a unit."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        copy = tmp_path / name
        copy.write_text(text)
        return [
            f"[{section}] {key}"
            for section, key, _ in _unit_entries(copy)
            if key not in SYSTEMD_KEYS.get(section, set())
        ]
    # verify a copy whose ExecStart names this venv (verify checks that the binary exists)
    copy = tmp_path / name
    copy.write_text(text.replace("/opt/predis/venv", str(BIN.parent)))
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120, check=False
    )
    complaints = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if name in line and "Documentation" not in line
    ]
    if done.returncode != 0:
        complaints.append(f"exit {done.returncode}: {done.stderr.strip()}")
    return complaints


def test_systemd_check_catches_a_bad_unit(tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / "predis-agent.service").read_text()
    bad = text.replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSystm=strict")
    assert _unit_complaints(bad, "bad-agent.service", tmp_path)


# --------------------------------------------------------------------------- Dockerfiles

DOCKERFILES = sorted((DEPLOY / "docker").glob("*.Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[d.name for d in DOCKERFILES])
def test_dockerfile_copies_existing_files_and_runs_real_commands(dockerfile: Path) -> None:
    dfp = pytest.importorskip("dockerfile_parse")
    parser = dfp.DockerfileParser(str(dockerfile))
    assert parser.baseimage
    copies = [i["value"].split() for i in parser.structure if i["instruction"] == "COPY"]
    assert copies
    ignore = (dockerfile.parent / f"{dockerfile.name}.dockerignore").read_text().split()
    for args in copies:
        if any(a.startswith("--from=") for a in args):
            continue
        for source in args[:-1]:
            assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
            assert f"!{source.rstrip('/')}/" in ignore or f"!{source}" in ignore, (
                f"{dockerfile.name}: {source} is excluded by the .dockerignore"
            )
    user = [i["value"] for i in parser.structure if i["instruction"] == "USER"]
    assert user and not user[-1].startswith(("0", "root")), "images run as a non-root user"
    command = _image_default_command(dockerfile.name)
    assert command[0] == "predis-fl"
    _check_command(command, dockerfile.name)


# --------------------------------------------------------------------------- Flower app


def test_fab_ships_every_product_module(tmp_path: Path) -> None:
    """``flwr run`` ships the app as a FAB built by Flower's rules, which silently drop
    ``*_test.py`` and ``test_*.py`` files; a product module so named is missing on every
    SuperNode and ServerApp runner (ModuleNotFoundError in each round)."""
    import io
    import zipfile

    from flwr.cli.build import build_fab_from_disk

    from tests.test_deploy_support import APP_PACKAGES, app_copy

    app = app_copy(tmp_path / "app")
    with zipfile.ZipFile(io.BytesIO(build_fab_from_disk(app))) as fab:
        shipped = set(fab.namelist())
    modules = {
        p.relative_to(app).as_posix()
        for package in APP_PACKAGES
        for p in (app / package).rglob("*.py")
    }
    missing = sorted(modules - shipped)
    assert not missing, f"left out of the Flower app bundle (rename these modules): {missing}"


# --------------------------------------------------------------------------- Grafana


def _defined_metrics() -> set[str]:
    """Names of every Prometheus series the code defines (exposition names, with suffixes)."""
    from prometheus_client import CollectorRegistry

    from federation.client.agent.metrics import AgentMetrics
    from federation.server.api.metrics import ApiMetrics

    families: set[tuple[str, str]] = set()
    registries: list[CollectorRegistry] = [ApiMetrics().registry, AgentMetrics("c").registry]
    for registry in registries:
        for family in registry.collect():
            families.add((family.name, family.type))
    # plus literal names passed to prometheus_client constructors anywhere in the product code
    kinds = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}
    for package in ("cache_core", "customer_models", "privacy", "federation", "simulations"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in kinds
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    name = node.args[0].value
                    kind = kinds[node.func.id]
                    families.add((name.removesuffix("_total") if kind == "counter" else name, kind))
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    return {f"{name}{suffix}" for name, kind in families for suffix in suffixes[kind]}


def test_dashboard_uses_only_metrics_defined_in_the_code() -> None:
    dashboard = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "predis-federation.json").read_text()
    )
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs.append(dashboard["templating"]["list"][0]["query"]["query"])
    used = {m for e in exprs for m in re.findall(r"\bpredis_[a-z0-9_]+", e)}
    defined = _defined_metrics()
    assert used, "the dashboard queries nothing"
    assert used <= defined, f"not defined in the code: {sorted(used - defined)}"
    # the four things the issue asks the dashboard to show
    for needed in (
        "predis_api_models_published_total",  # rounds (one version per round)
        "predis_agent_epsilon_spent",  # ε per customer
        "predis_agent_hit_ratio",  # hit ratios
        "predis_agent_decisions",  # A/B decisions
    ):
        assert needed in used, needed
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    uid = source["datasources"][0]["uid"]
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"] if "datasource" in p)
