"""infra/ manifests, parsed: the fields perseus relies on (ports, images, GPU requests, repository)."""

from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
TRITON_PORTS = {8000, 8001, 8002}  # HTTP (the load generator), gRPC, metrics


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
