"""infra/ manifests, parsed: the fields perseus relies on (ports, images, GPU requests, repository, the
load generator's image, its network and the Locust master/worker wiring)."""

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import yaml

from perseus.checks import check_price
from perseus.scenario import load

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TRITON_PORTS = {8000, 8001, 8002}  # HTTP (the load generator), gRPC, metrics
HTTP_PORT, METRICS_PORT = 8000, 8002
GPU = "nvidia.com/gpu"


def test_compose_binds_loopback_asks_for_a_gpu_and_mounts_the_repository_read_only():
    compose = yaml.safe_load((INFRA / "docker-compose.gpu.yml").read_text())
    triton = compose["services"]["triton"]
    assert triton["image"].startswith("nvcr.io/nvidia/tritonserver:")
    hosts = {p.rsplit(":", 2)[0] for p in triton["ports"]}
    assert hosts == {"127.0.0.1"}  # every listener on loopback unless the user asks
    assert {int(p.rsplit(":", 1)[1]) for p in triton["ports"]} == TRITON_PORTS
    assert "--model-config-name=onnxruntime" in triton["command"]  # native ONNX Runtime configs
    assert any(v.endswith(":/models:ro") for v in triton["volumes"])
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_kubernetes_deployment_requests_a_gpu_behind_a_cluster_ip_service():
    docs = {d["kind"]: d for d in yaml.safe_load_all((INFRA / "k8s" / "triton-deployment.yaml").read_text())}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {p["containerPort"] for p in container["ports"]} == TRITON_PORTS
    assert "--model-config-name=onnxruntime" in (container.get("args") or container["command"])
    service = docs["Service"]["spec"]
    assert service["type"] == "ClusterIP"  # reachable inside the cluster only
    assert {p["port"] for p in service["ports"]} == TRITON_PORTS


# -- the perseus image --------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """infra/Dockerfile as (INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"]


def test_dockerfile_installs_the_project_and_runs_perseus_as_a_numeric_non_root_user():
    steps = _dockerfile()
    kinds = [kind for kind, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["perseus"]
    assert any(kind == "RUN" and "pip install" in args for kind, args in steps)
    # The last USER comes after the last RUN, so that nothing at run time is root; numeric, so that
    # Kubernetes' runAsNonRoot can check it.
    last_user = len(kinds) - 1 - kinds[::-1].index("USER")
    last_run = len(kinds) - 1 - kinds[::-1].index("RUN")
    assert last_user > last_run
    uid = steps[last_user][1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    # Code only: no model weights, scenarios or results baked in.
    copied = {src for kind, args in steps if kind == "COPY" for src in shlex.split(args)[:-1]}
    assert copied <= {"pyproject.toml", "README.md", "perseus"}


def test_dockerignore_keeps_environments_results_and_weights_out_of_the_build_context():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "results", "benchmarks/.tools", "**/node_modules", "**/*.onnx"} <= ignored


# -- compose: the perseus load service ----------------------------------------------------------


def _default(value: str) -> str:
    """Compose's ${VAR:-default} interpolation, with every variable unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_perseus_service_shares_tritons_network_namespace_and_publishes_nothing():
    services = yaml.safe_load((INFRA / "docker-compose.gpu.yml").read_text())["services"]
    perseus, triton = services["perseus"], services["triton"]
    assert perseus["network_mode"] == "service:triton"  # 127.0.0.1 is triton's loopback
    assert "ports" not in perseus and "expose" not in perseus
    assert "deploy" not in perseus  # the load generator asks for no GPU
    assert perseus["profiles"] == ["load"]  # a plain `docker compose up` starts Triton only
    assert (INFRA / perseus["build"]["context"] / perseus["build"]["dockerfile"]).resolve() == INFRA / "Dockerfile"
    assert not _default(perseus["user"]).startswith(("0:", "root"))
    # Waits for Triton's readiness, the endpoint perseus's remote launcher checks too.
    assert perseus["depends_on"]["triton"]["condition"] == "service_healthy"
    assert any("/v2/health/ready" in part for part in triton["healthcheck"]["test"])
    assert "../scenarios:/scenarios:ro" in perseus["volumes"]
    results = next(v for v in perseus["volumes"] if v.split(":")[1] == "/results")
    assert not results.endswith(":ro")


def test_compose_perseus_command_runs_a_remote_scenario_that_reaches_the_compose_triton():
    services = yaml.safe_load((INFRA / "docker-compose.gpu.yml").read_text())["services"]
    command = [_default(part) for part in services["perseus"]["command"]]
    assert command[0] == "run"
    assert command[command.index("--out") + 1].startswith("/results/")
    scenario_file = ROOT / "scenarios" / Path(command[1]).relative_to("/scenarios")
    scenario, _ = load(scenario_file)
    check_price(scenario, str(scenario_file))
    assert scenario.server.launcher == "remote"
    published = {int(p.rsplit(":", 1)[1]) for p in services["triton"]["ports"]}
    url, metrics = urlparse(scenario.server.url), urlparse(scenario.server.metrics_url)
    assert url.hostname == metrics.hostname == "127.0.0.1"
    assert (url.port, metrics.port) == (HTTP_PORT, METRICS_PORT) and {HTTP_PORT, METRICS_PORT} <= published
    assert metrics.path == "/metrics"
    # The compose server serves model_repository/'s folders under their own names.
    assert all((ROOT / "model_repository" / t.model).is_dir() for t in scenario.tenants)


# -- Kubernetes: Locust master and workers --------------------------------------------------------


def _load_docs() -> dict[tuple[str, str], dict]:
    docs = yaml.safe_load_all((INFRA / "k8s" / "perseus-load.yaml").read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _one(docs: dict, kind: str, label: str) -> dict:
    [doc] = [
        d for (k, _), d in docs.items() if k == kind and d["metadata"]["labels"].get("app.kubernetes.io/name") == label
    ]
    return doc


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _container(deployment: dict) -> dict:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_kubernetes_master_service_is_cluster_ip_with_only_the_locust_port():
    docs = _load_docs()
    master = _one(docs, "Deployment", "perseus-locust-master")
    service = _one(docs, "Service", "perseus-locust-master")
    args = _container(master)["args"]
    port = int(_flag(args, "--master-port"))
    assert service["spec"]["type"] == "ClusterIP"  # the protocol has no authentication
    assert [p["port"] for p in service["spec"]["ports"]] == [port] == [5557]
    assert service["spec"]["selector"].items() <= master["spec"]["template"]["metadata"]["labels"].items()
    [target] = [p["targetPort"] for p in service["spec"]["ports"]]
    named = {p["name"]: p["containerPort"] for p in _container(master)["ports"]}
    assert named.get(target, target) == port
    assert master["spec"]["replicas"] == 1


def test_kubernetes_master_waits_for_every_worker_and_workers_dial_the_master_service():
    docs = _load_docs()
    master = _container(_one(docs, "Deployment", "perseus-locust-master"))
    workers = _one(docs, "Deployment", "perseus-locust-worker")
    service = _one(docs, "Service", "perseus-locust-master")
    args = master["args"]
    assert args[0] == "run"
    assert int(_flag(args, "--expect-workers")) == workers["spec"]["replicas"] == 2
    assert _flag(args, "--master-bind") == "0.0.0.0"  # the pod's interfaces, behind the ClusterIP
    # The master's arguments reach perseus: the shell wrapper (keeps the pod for kubectl cp) passes "$@".
    assert master["command"][:2] == ["sh", "-c"] and 'perseus "$@"' in master["command"][2]
    mounts = {m["name"]: m["mountPath"] for m in master["volumeMounts"]}
    assert _flag(args, "--out").startswith(mounts["results"] + "/")
    worker = _container(workers)
    assert worker["args"][0] == "worker" and "command" not in worker  # the image's ENTRYPOINT: perseus
    assert _flag(worker["args"], "--master") == service["metadata"]["name"]
    assert int(_flag(worker["args"], "--master-port")) == service["spec"]["ports"][0]["port"]
    assert workers["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "perseus-locust-worker"


def test_kubernetes_load_pods_ask_cpu_not_gpu_and_run_unprivileged():
    docs = _load_docs()
    for name in ("perseus-locust-master", "perseus-locust-worker"):
        deployment = _one(docs, "Deployment", name)
        container = _container(deployment)
        resources = container["resources"]
        assert all(GPU not in resources.get(k, {}) for k in ("requests", "limits")), name
        assert "cpu" in resources["requests"], name  # load generation is CPU-bound
        assert "cpu" not in resources.get("limits", {}), name  # throttling would pose as server latency
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_kubernetes_network_policy_lets_only_workers_reach_the_master():
    docs = _load_docs()
    policy = docs[("NetworkPolicy", "perseus-locust-master")]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "perseus-locust-master"}
    [rule] = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "perseus-locust-worker"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5557}]


def test_kubernetes_scenario_parses_and_points_at_the_triton_service(tmp_path):
    docs = _load_docs()
    master = _one(docs, "Deployment", "perseus-locust-master")
    pod = master["spec"]["template"]["spec"]
    # The scenario the master runs is the ConfigMap's key, mounted where args say.
    path = Path(_container(master)["args"][1])
    mount = next(m for m in _container(master)["volumeMounts"] if m["mountPath"] == str(path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = docs[("ConfigMap", volume["configMap"]["name"])]
    file = tmp_path / "scenario.toml"
    file.write_text(config_map["data"][path.name])
    scenario, _ = load(file)
    check_price(scenario, str(file))

    triton = {d["kind"]: d for d in yaml.safe_load_all((INFRA / "k8s" / "triton-deployment.yaml").read_text())}[
        "Service"
    ]
    ports = {p["name"]: p["port"] for p in triton["spec"]["ports"]}
    url, metrics = urlparse(scenario.server.url), urlparse(scenario.server.metrics_url)
    assert scenario.server.launcher == "remote"  # the workers send to this server too: it must not be local
    assert url.hostname == metrics.hostname == triton["metadata"]["name"]
    assert (url.port, metrics.port, metrics.path) == (ports["http"], ports["metrics"], "/metrics")
    assert all((ROOT / "model_repository" / t.model).is_dir() for t in scenario.tenants)
