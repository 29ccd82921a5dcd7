"""The sample application's kustomize overlays render, in the object layout of DESIGN.md section 2."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

K8S = Path(__file__).resolve().parents[3] / "examples" / "keneyapp" / "k8s"
APPS = {"keneyapp-backend": ("backend", 8000), "keneyapp-frontend": ("frontend", 8080)}
KUBECTL = shutil.which("kubectl")


def render(overlay: str) -> dict[tuple[str, str], dict]:
    """``kubectl kustomize`` an overlay; return {(kind, name): object}."""
    if not KUBECTL:
        pytest.skip("kubectl (with built-in kustomize) is not installed")
    result = subprocess.run([KUBECTL, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(result.stdout) if doc}


@pytest.mark.parametrize(
    "overlay,namespace,live_replicas",
    [
        ("development", "keneyapp-dev", {"backend": 2, "frontend": 1}),
        ("staging", "keneyapp-staging", {"backend": 2, "frontend": 2}),
        ("production", "keneyapp-prod", {"backend": 3, "frontend": 3}),
    ],
)
def test_object_layout(overlay, namespace, live_replicas):  # pylint: disable=too-many-locals
    objects = render(overlay)
    assert ("Namespace", namespace) in objects
    for (kind, name), obj in objects.items():
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "keneyapp", (kind, name)
        assert labels.get("app.kubernetes.io/managed-by") == "keneyapp.deploy", (kind, name)
        assert {"app.kubernetes.io/name", "app.kubernetes.io/version", "app.kubernetes.io/component"} <= set(labels), (kind, name)
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, (kind, name)
    for app, (component, port) in APPS.items():
        for color, replicas in (("blue", live_replicas[component]), ("green", 0), ("canary", 0)):
            deployment = objects[("Deployment", f"{app}-{color}")]
            spec = deployment["spec"]
            assert spec["replicas"] == replicas
            assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": app, "color": color}
            assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
            assert spec["revisionHistoryLimit"] == 10
            assert spec["progressDeadlineSeconds"] == (60 if overlay == "development" else 600)
            pod_labels = spec["template"]["metadata"]["labels"]
            assert pod_labels["color"] == color and pod_labels["app.kubernetes.io/component"] == component
            assert pod_labels["app.kubernetes.io/version"] == "0.1.0"
            container = spec["template"]["spec"]["containers"][0]
            assert container["ports"][0]["containerPort"] == port
            assert container["readinessProbe"]["httpGet"]["path"] == "/health"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            assert container["envFrom"] == [{"secretRef": {"name": f"{app}-env", "optional": True}}]
            env = {item["name"]: item for item in container["env"]}
            assert env["KENEYAPP_VERSION"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['app.kubernetes.io/version']"
            assert env["KENEYAPP_COMPONENT"]["value"] == component
            assert {"requests", "limits"} <= set(container["resources"])
        for service, color in ((app, "blue"), (f"{app}-preview", "green"), (f"{app}-canary", "canary")):
            svc = objects[("Service", service)]["spec"]
            assert svc["selector"] == {"app.kubernetes.io/name": app, "color": color}
            assert svc["ports"][0]["port"] == port
    worker = objects[("Deployment", "keneyapp-worker")]["spec"]
    assert worker["replicas"] == 1 and "color" not in worker["template"]["metadata"]["labels"]
    assert objects[("Deployment", "keneyapp-maintenance")]["spec"]["replicas"] == 0
    assert "Maintenance planifiée" in objects[("ConfigMap", "keneyapp-maintenance")]["data"]["index.html"]
    ingress = objects[("Ingress", "keneyapp")]["spec"]
    assert ingress["ingressClassName"] == "nginx" and ingress["tls"][0]["secretName"] == "keneyapp-tls"
    services = [rule["http"]["paths"][0]["backend"]["service"] for rule in ingress["rules"]]
    backends = [(service["name"], service["port"]["number"]) for service in services]
    assert backends == [("keneyapp-backend", 8000), ("keneyapp-frontend", 8080)]


def test_development_is_served_by_the_lab():
    objects = render("development")
    assert objects[("Namespace", "keneyapp-dev")]["metadata"]["labels"]["lab.keneyapp.io/serve"] == "true"
    for (kind, name), obj in objects.items():
        if kind == "Deployment":
            expected = "static-page" if name == "keneyapp-maintenance" else "sample-app"
            assert obj["spec"]["template"]["metadata"]["labels"]["keneyapp.io/lab-process"] == expected, name
    gateway = objects[("Gateway", "keneyapp")]
    assert gateway["apiVersion"] == "gateway.networking.k8s.io/v1" and gateway["spec"]["gatewayClassName"] == "lab"
    assert [(listener["protocol"], listener["port"]) for listener in gateway["spec"]["listeners"]] == [("HTTP", 80)]
    for app, (_image, port) in APPS.items():
        route = objects[("HTTPRoute", app)]
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert route["spec"]["parentRefs"] == [{"name": "keneyapp"}]
        assert route["spec"]["rules"][0]["backendRefs"] == [{"name": app, "port": port, "weight": 100}]


def test_lab_label_only_in_development():
    for overlay in ("staging", "production"):
        text = yaml.safe_dump_all(render(overlay).values())
        assert "keneyapp.io/lab-process" not in text and "HTTPRoute" not in text


def test_production_autoscaling_and_disruption_budgets():
    objects = render("production")
    for app in APPS:
        hpa = objects[("HorizontalPodAutoscaler", f"{app}-blue")]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{app}-blue"}
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
        pdb = objects[("PodDisruptionBudget", app)]
        assert pdb["spec"]["minAvailable"] == 2 and pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": app}
    assert ("HorizontalPodAutoscaler", "keneyapp-backend-canary") not in objects
