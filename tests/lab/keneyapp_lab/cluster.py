"""The Kubernetes part of the lab: kwokctl's binary runtime with the project's own builds.

Real kube-apiserver, kube-controller-manager and kube-scheduler 1.36 with etcd; the
nodes are kwok's. Pods move through kwok Stages: the defaults, plus

* ``pod-never-ready``: pods labelled ``keneyapp.io/never-ready`` run but never get Ready
  (failed rollouts on demand: the Deployment ends with ProgressDeadlineExceeded);
* ``pod-lab-process``: pods labelled ``keneyapp.io/lab-process`` run but are left not
  Ready, because the node agent sets Ready once their real process answers /health.
"""

from __future__ import annotations

import copy
import glob
import os

import yaml

from keneyapp_lab import procs
from keneyapp_lab.state import bin_dir, wait_for

CLUSTER = "keneyapp-lab"
LAB_PROCESS_LABEL = "keneyapp.io/lab-process"
NEVER_READY_LABEL = "keneyapp.io/never-ready"
DEFAULT_NAMESPACE = "keneyapp-dev"

_NOT_READY_STATUS = """
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: %(reason)s
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: %(reason)s
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
{{ with $podIPs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""


def _label_key(label):
    return '.metadata.labels.["%s"]' % label


def stages():
    """kwok's default Stages with pod-ready narrowed, plus the lab's two not-Ready stages.

    A config that lists any Stage replaces kwok's defaults, so all of them are listed.
    """
    result = []
    for path in sorted(glob.glob(os.path.join(bin_dir(), "kwok-stages", "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        with open(path, encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if doc and doc.get("kind") == "Stage":
                    result.append(doc)
    names = {s["metadata"]["name"] for s in result}
    missing = {"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete"} - names
    if missing:
        raise RuntimeError("kwok stages missing from the build (%s): rerun tests/lab/build.sh" % ", ".join(sorted(missing)))
    ready = next(s for s in result if s["metadata"]["name"] == "pod-ready")
    for label in (LAB_PROCESS_LABEL, NEVER_READY_LABEL):
        ready["spec"]["selector"]["matchExpressions"].append({"key": _label_key(label), "operator": "DoesNotExist"})
    for name, label, reason in (("pod-never-ready", NEVER_READY_LABEL, "LabNeverReady"),
                                ("pod-lab-process", LAB_PROCESS_LABEL, "WaitingForLabProcess")):
        stage = copy.deepcopy(ready)
        stage["metadata"]["name"] = name
        exprs = [e for e in stage["spec"]["selector"]["matchExpressions"] if e["key"] != _label_key(label)]
        if label == NEVER_READY_LABEL:
            exprs = [e for e in exprs if e["key"] != _label_key(LAB_PROCESS_LABEL)]
        exprs.append({"key": _label_key(label), "operator": "Exists"})
        stage["spec"]["selector"]["matchExpressions"] = exprs
        stage["spec"]["next"] = {"statusTemplate": _NOT_READY_STATUS % {"reason": reason}}
        result.append(stage)
    return result


def write_config(path):
    """The KwokctlConfiguration (binary runtime, loopback, our binaries) followed by the Stages."""
    bins = bin_dir()
    config = {
        "kind": "KwokctlConfiguration",
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "options": {
            "runtime": "binary",
            "bindAddress": "127.0.0.1",
            "kubeBinaryPrefix": bins,
            "etcdBinary": os.path.join(bins, "etcd"),
            "kwokControllerBinary": os.path.join(bins, "kwok"),
            "kubeVersion": "v" + os.path.basename(bins).split("_")[0].split("-")[1],
        },
    }
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump_all([config] + stages(), handle, sort_keys=False)
    return path


def env(workdir):
    """Environment for kwokctl and kubectl: the lab's own 1.36 kubectl first on PATH."""
    result = dict(os.environ)
    result["KWOK_WORKDIR"] = workdir
    # kwokctl adds a context to the kubeconfig named by KUBECONFIG (else ~/.kube/config):
    # point it at a file of the lab's so the user's own kubeconfig is never touched.
    result["KUBECONFIG"] = os.path.join(workdir, "kwokctl-contexts.yaml")
    result["PATH"] = bin_dir() + os.pathsep + result.get("PATH", "")
    return result


def kubectl(kubeconfig, *args, check=True, timeout=120):
    """Run the lab's kubectl against the lab."""
    return procs.run([os.path.join(bin_dir(), "kubectl"), "--kubeconfig", kubeconfig] + list(args),
                     check=check, timeout=timeout)


def create(workdir, nodes=3):
    """Create the cluster, scale it to ``nodes`` Ready nodes and install the CRDs."""
    bins = bin_dir()
    if not os.path.exists(os.path.join(bins, ".complete")):
        raise RuntimeError("the lab's binaries are not built: run `make lab-build` (tests/lab/build.sh)")
    os.makedirs(workdir, exist_ok=True)
    config = write_config(os.path.join(workdir, "kwokctl.yaml"))
    kwokctl = os.path.join(bins, "kwokctl")
    procs.run([kwokctl, "delete", "cluster", "--name", CLUSTER], env=env(workdir), check=False)
    procs.run([kwokctl, "create", "cluster", "--name", CLUSTER, "--config", config, "--wait", "120s",
               "--extra-args", "kube-apiserver=endpoint-reconciler-type=none"], env=env(workdir), timeout=240)
    kubeconfig = os.path.join(workdir, "clusters", CLUSTER, "kubeconfig.yaml")
    # `kubectl get deploy` after `eval "$(make -s lab-env)"` shows the development namespace.
    kubectl(kubeconfig, "config", "set-context", "--current", "--namespace", DEFAULT_NAMESPACE)
    procs.run([kwokctl, "scale", "node", "--name", CLUSTER, "--replicas", str(nodes)], env=env(workdir), timeout=120)
    kubectl(kubeconfig, "wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
    wait_for("the default ServiceAccount",
             lambda: kubectl(kubeconfig, "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
             timeout=60, interval=0.2)
    crds = sorted(glob.glob(os.path.join(bins, "crds", "*.yaml")))
    args = ["apply", "--server-side", "--force-conflicts"]
    for crd in crds:
        args += ["-f", crd]
    kubectl(kubeconfig, *args)
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    pids = {}
    for path in glob.glob(os.path.join(workdir, "clusters", CLUSTER, "pids", "*.pid")):
        with open(path, encoding="utf-8") as handle:
            pids[os.path.basename(path)[:-4]] = int(handle.read().strip() or 0)
    return {"name": CLUSTER, "workdir": workdir, "kubeconfig": kubeconfig, "nodes": nodes, "pids": pids,
            "crds": [os.path.basename(c) for c in crds]}


def delete(workdir):
    """Stop every control-plane process and remove the cluster's files."""
    kwokctl = os.path.join(bin_dir(), "kwokctl")
    if os.path.exists(kwokctl):
        procs.run([kwokctl, "delete", "cluster", "--name", CLUSTER], env=env(workdir), check=False, timeout=120)
