"""What the schema cannot say about the rendered manifests (kubectl kustomize output on stdin):
the Deployment runs at least two non-root replicas with a read-only root filesystem, probes
/health/live and /health/ready, has resource requests and limits, and a grace period longer than
its drain (preStop + http.shutdown_timeout_s); the HPA and PDB keep two replicas.

    kubectl kustomize deploy/k8s/overlays/production | python3 deploy/checks/k8s.py production
"""

import sys

import ruamel.yaml

SHUTDOWN_TIMEOUT_S = 30  # http.shutdown_timeout_s in config/default.toml

name = sys.argv[1] if len(sys.argv) > 1 else "manifests"
objects = {doc["kind"]: doc for doc in ruamel.yaml.YAML(typ="safe").load_all(sys.stdin) if doc}
problems = []


def require(condition, message):
    if not condition:
        problems.append(message)


expected = {"Deployment", "Job", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "ConfigMap"}
require(expected <= objects.keys(), f"missing kinds: {sorted(expected - objects.keys())}")
deployment = objects.get("Deployment", {})
pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
container = (pod.get("containers") or [{}])[0]
require(deployment.get("spec", {}).get("replicas", 0) >= 2, "the Deployment runs fewer than 2 replicas")
require(pod.get("securityContext", {}).get("runAsNonRoot") is True, "runAsNonRoot is not set")
require(container.get("securityContext", {}).get("readOnlyRootFilesystem") is True, "the root filesystem is writable")
require(container.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/health/live", "liveness is not /health/live")
require(container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/health/ready", "readiness is not /health/ready")
resources = container.get("resources", {})
require({"cpu", "memory"} <= resources.get("requests", {}).keys(), "no cpu/memory requests")
require({"cpu", "memory"} <= resources.get("limits", {}).keys(), "no cpu/memory limits")
pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", ["sleep", "0"])
drain = SHUTDOWN_TIMEOUT_S + int(pre_stop[-1])
require(pod.get("terminationGracePeriodSeconds", 30) > drain, f"the grace period does not exceed the drain ({drain} s)")
require(objects.get("HorizontalPodAutoscaler", {}).get("spec", {}).get("minReplicas", 0) >= 2, "the HPA allows fewer than 2 replicas")
require("minAvailable" in objects.get("PodDisruptionBudget", {}).get("spec", {}), "the PDB has no minAvailable")

if problems:
    sys.exit(f"{name}: " + "; ".join(problems))
print(f"ok  {name}: {len(objects)} kinds, {deployment['spec']['replicas']} replicas, drain {drain} s < grace {pod['terminationGracePeriodSeconds']} s")
