"""The lab's node agent: the kubelet and data plane this machine does not have.

No kubelet and no container runtime run here, so for each pod labelled
``keneyapp.io/lab-process`` on a kwok node the agent:

1. runs one real process on a free loopback port: the sample app with the pod's
   container environment (plain values, field, Secret and ConfigMap references,
   ``envFrom``) and the version from the pod's ``app.kubernetes.io/version`` label; or,
   for the value ``static-page``, a server of the ConfigMap mounted in the pod. kwok
   leaves these pods Running but not Ready; the agent sets Ready (pods/status) once the
   process answers ``/health`` and clears it when it stops answering, so readiness is
   real. A deleted pod's process leaves the load balancer first, then gets SIGTERM and
   drains its in-flight requests;
2. writes Prometheus file_sd targets for the sample-app processes, labelled
   ``namespace``, ``pod``, ``app``, ``track`` and ``version`` from the pod;
3. keeps its HAProxy's slots equal to the Services and HTTPRoutes of namespaces
   labelled ``lab.keneyapp.io/serve=true``: a Service's slot holds the processes behind
   its Ready endpoints; an HTTPRoute's slot holds the Ready processes of its
   backendRefs, each weighted route-weight / that Service's Ready endpoints (scaled to
   HAProxy's 0-256), and the route's ``status.parents`` gets the ``observedGeneration``
   once it is live. Only the first rule of a route is served (one slot per route).

It polls the API server every 0.3 s (a handful of LIST calls on a loopback API server)
rather than holding watches: simpler to make exact, and quick enough for the tests.
It re-applies every slot every 2 s and whenever HAProxy's PID changes.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from keneyapp_lab import state as lab_state
from keneyapp_lab.services import haproxy_command

LAB_PROCESS = "keneyapp.io/lab-process"
SERVE_LABEL = "lab.keneyapp.io/serve"
VERSION_LABEL = "app.kubernetes.io/version"
NAME_LABEL = "app.kubernetes.io/name"
CONTROLLER_NAME = "lab.keneyapp.io/node-agent"
NEVER_READY = "keneyapp.io/never-ready"
TICK = 0.3
RESYNC = 2.0
API_TIMEOUT = 5          # seconds per API call: a hung call must not freeze the loop

log = logging.getLogger("keneyapp-lab-agent")


class Process:
    """One pod's process."""

    def __init__(self, pod, kind, port, popen, workdir):
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        self.uid = meta["uid"]
        self.namespace = meta["namespace"]
        self.name = meta["name"]
        self.kind = kind
        self.port = port
        self.popen = popen
        self.workdir = workdir
        self.labels = labels
        self.healthy = False
        self.fails = 0
        self.last_probe = 0.0
        self.started = time.monotonic()
        self.restarts = 0

    @property
    def alive(self):
        return self.popen.poll() is None


class Agent:
    """Reconciles processes, readiness, Prometheus targets and HAProxy slots with the API."""

    def __init__(self, lab):
        self.lab = lab
        self.api = config.new_client_from_config(config_file=lab["cluster"]["kubeconfig"])
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)
        self.color_label = os.environ.get("KENEYAPP_COLOR_LABEL", "color")
        hap = lab["haproxy"]
        self.socket = hap["socket"]
        self.first_port = hap["first_port"]
        self.slot_count = hap["slots"]
        self.targets_file = lab["prometheus"]["targets_file"]
        self.slots_file = os.path.join(lab_state.STATE_DIR, "slots.json")
        self.run_dir = os.path.join(lab["run_dir"], "pods")
        os.makedirs(self.run_dir, exist_ok=True)
        self.procs = {}                     # pod uid -> Process
        self.slot_map = {}                  # "svc:ns/name" | "route:ns/name" -> slot index
        self.applied = {}                   # slot -> {pod port: weight} of the enabled servers
        self.to_delete = set()              # (slot, port) disabled, deleted once their connections end
        self.lonely = {}                    # slot -> port of the server added to it while it was empty
        self.route_status = {}              # route uid -> generation written
        self.last_targets = None
        self.haproxy_pid = None
        self.last_resync = 0.0
        self.force_resync = True
        self.stopping = threading.Event()
        self.python = sys.executable
        self.app_path = os.path.join(lab_state.REPO, "examples", "keneyapp", "app")

    # --- API helpers -------------------------------------------------------------------

    def _dict(self, obj):
        return self.api.sanitize_for_serialization(obj)

    def list_lab_pods(self):
        pods = self.core.list_pod_for_all_namespaces(label_selector=LAB_PROCESS, _request_timeout=API_TIMEOUT)
        return [p for p in self._dict(pods).get("items", []) if (p.get("spec") or {}).get("nodeName")]

    # --- processes ---------------------------------------------------------------------

    def _secret(self, namespace, name, key=None):
        try:
            data = self._dict(self.core.read_namespaced_secret(name, namespace, _request_timeout=API_TIMEOUT)).get("data") or {}
            decoded = {k: base64.b64decode(v).decode() for k, v in data.items()}
        except Exception:  # pylint: disable=broad-except
            # A missing, unreadable or binary Secret: like an optional envFrom, no values.
            return None
        return decoded if key is None else decoded.get(key)

    def _configmap(self, namespace, name, key=None):
        try:
            data = self._dict(self.core.read_namespaced_config_map(name, namespace, _request_timeout=API_TIMEOUT)).get("data") or {}
        except Exception:  # pylint: disable=broad-except
            return None
        return data if key is None else data.get(key)

    def _field(self, pod, path):
        meta = pod["metadata"]
        if path.startswith("metadata.labels['") or path.startswith('metadata.labels["'):
            return (meta.get("labels") or {}).get(path[len("metadata.labels['"):-2])
        if path.startswith("metadata.annotations['") or path.startswith('metadata.annotations["'):
            return (meta.get("annotations") or {}).get(path[len("metadata.annotations['"):-2])
        return {
            "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
            "metadata.uid": meta.get("uid"), "spec.nodeName": pod["spec"].get("nodeName"),
            "status.podIP": (pod.get("status") or {}).get("podIP"),
        }.get(path)

    def container_env(self, pod):
        """The first container's environment as the kubelet would build it."""
        env = {}
        container = (pod["spec"].get("containers") or [{}])[0]
        namespace = pod["metadata"]["namespace"]
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix") or ""
            if source.get("secretRef"):
                values = self._secret(namespace, source["secretRef"]["name"]) or {}
            elif source.get("configMapRef"):
                values = self._configmap(namespace, source["configMapRef"]["name"]) or {}
            else:
                values = {}
            env.update({prefix + k: v for k, v in values.items()})
        for item in container.get("env") or []:
            value = item.get("value")
            ref = item.get("valueFrom") or {}
            if ref.get("fieldRef"):
                value = self._field(pod, ref["fieldRef"]["fieldPath"])
            elif ref.get("secretKeyRef"):
                value = self._secret(namespace, ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            elif ref.get("configMapKeyRef"):
                value = self._configmap(namespace, ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"])
            if value is not None:
                env[item["name"]] = str(value)
        return env

    def start_process(self, pod):
        """Start the process for a pod; returns the Process."""
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        kind = labels.get(LAB_PROCESS)
        port = lab_state.free_port()
        workdir = tempfile.mkdtemp(prefix="%s-" % meta["name"][:40], dir=self.run_dir)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "LANG": "C.UTF-8"}
        env.update(self.container_env(pod))
        if kind == "static-page":
            pagedir = os.path.join(workdir, "page")
            os.makedirs(pagedir)
            for volume in pod["spec"].get("volumes") or []:
                if volume.get("configMap"):
                    for key, text in (self._configmap(meta["namespace"], volume["configMap"]["name"]) or {}).items():
                        with open(os.path.join(pagedir, key), "w", encoding="utf-8") as handle:
                            handle.write(text)
            argv = [self.python, "-m", "keneyapp_lab.static_page", "--dir", pagedir, "--port", str(port)]
            env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        else:
            env.update({
                "KENEYAPP_LISTEN": "127.0.0.1:%d" % port,
                "PORT": str(port),
                "KENEYAPP_VERSION": labels.get(VERSION_LABEL, env.get("KENEYAPP_VERSION", "0.0.0")),
                "POD_NAME": meta["name"],
                "POD_NAMESPACE": meta["namespace"],
            })
            argv = [self.python, "-m", "keneyapp_sample"]
            env["PYTHONPATH"] = self.app_path
        with open(os.path.join(workdir, "process.log"), "ab") as out:
            popen = subprocess.Popen(argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                                     stdout=out, stderr=subprocess.STDOUT)
        proc = Process(pod, kind, port, popen, workdir)
        log.info("started %s/%s (%s) on 127.0.0.1:%d pid %d", proc.namespace, proc.name, kind, port, popen.pid)
        return proc

    def stop_process(self, proc):
        """SIGTERM (the app drains its in-flight requests), then wait; SIGKILL after 30 s."""
        if proc.alive:
            proc.popen.terminate()
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        log.info("stopped %s/%s (port %d)", proc.namespace, proc.name, proc.port)

    def probe(self, proc):
        """One readiness probe: GET /health answering 200."""
        if not proc.alive:
            return False
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % proc.port, timeout=0.5) as resp:  # nosec
                return resp.status == 200
        except Exception:  # pylint: disable=broad-except
            return False

    def set_ready(self, pod, ready):
        """Patch the pod's Ready and ContainersReady conditions (and container statuses)."""
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        value = "True" if ready else "False"
        status = pod.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if c.get("type") not in ("Ready", "ContainersReady")]
        for ctype in ("Ready", "ContainersReady"):
            cond = {"type": ctype, "status": value, "lastTransitionTime": now}
            if not ready:
                cond["reason"] = "LabProcessNotHealthy"
            conditions.append(cond)
        statuses = []
        for cs in status.get("containerStatuses") or []:
            cs = dict(cs)
            cs["ready"] = ready
            statuses.append(cs)
        body = {"status": {"conditions": conditions, "containerStatuses": statuses}}
        try:
            self.core.patch_namespaced_pod_status(
                pod["metadata"]["name"], pod["metadata"]["namespace"], body,
                _content_type="application/merge-patch+json", _request_timeout=API_TIMEOUT)
            log.info("pod %s/%s Ready=%s", pod["metadata"]["namespace"], pod["metadata"]["name"], value)
        except Exception as exc:  # pylint: disable=broad-except
            log.warning("patching pod %s status failed: %s", pod["metadata"]["name"], exc)

    @staticmethod
    def pod_ready(pod):
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready":
                return cond.get("status") == "True"
        return False

    def sync_pods(self):
        """Start, restart and stop processes; probe and write readiness. Returns (pods by uid, leaving)."""
        pods = {p["metadata"]["uid"]: p for p in self.list_lab_pods()}
        live = {uid: p for uid, p in pods.items() if not p["metadata"].get("deletionTimestamp")}
        leaving = [proc for uid, proc in self.procs.items() if uid not in live]
        for uid, pod in list(live.items()):
            if NEVER_READY in (pod["metadata"].get("labels") or {}):
                # kwok's pod-never-ready stage owns these: no process, never Ready.
                del live[uid]
                continue
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            proc = self.procs.get(uid)
            try:
                if proc is None:
                    self.procs[uid] = self.start_process(pod)
                elif not proc.alive and time.monotonic() - proc.started > 1.0:
                    # restartPolicy Always: start it again (new port), like a container restart.
                    log.info("%s/%s exited with %s: restarting", proc.namespace, proc.name, proc.popen.returncode)
                    self.procs[uid] = self.start_process(pod)
                    self.procs[uid].restarts = proc.restarts + 1
            except Exception:  # pylint: disable=broad-except
                # One pod that cannot start must not stall every other pod.
                log.exception("starting the process of pod %s/%s failed", pod["metadata"]["namespace"],
                              pod["metadata"]["name"])
        now = time.monotonic()
        for uid, proc in list(self.procs.items()):
            pod = live.get(uid)
            if pod is None:
                continue
            due = (not proc.healthy) or now - proc.last_probe >= 1.0
            if not due:
                continue
            proc.last_probe = now
            ok = self.probe(proc)
            if ok:
                proc.fails = 0
                proc.healthy = True
            else:
                proc.fails += 1
                # Two failures in a row mark a Ready process unhealthy (a kubelet's failureThreshold).
                if proc.fails >= 2 or not proc.alive:
                    proc.healthy = False
            if proc.healthy != self.pod_ready(pod):
                self.set_ready(pod, proc.healthy)
        return live, leaving

    # --- Prometheus targets ------------------------------------------------------------

    def write_targets(self):
        targets = []
        for proc in sorted(self.procs.values(), key=lambda p: (p.namespace, p.name)):
            if proc.kind != "sample-app" or not proc.alive:
                continue
            targets.append({"targets": ["127.0.0.1:%d" % proc.port], "labels": {
                "namespace": proc.namespace, "pod": proc.name, "app": proc.labels.get(NAME_LABEL, ""),
                "track": proc.labels.get(self.color_label, ""), "version": proc.labels.get(VERSION_LABEL, ""),
            }})
        if targets != self.last_targets:
            tmp = self.targets_file + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(targets, handle, indent=1)
            os.replace(tmp, self.targets_file)
            self.last_targets = targets

    # --- load balancer -----------------------------------------------------------------

    def served_namespaces(self):
        items = self._dict(self.core.list_namespace(label_selector="%s=true" % SERVE_LABEL,
                                                    _request_timeout=API_TIMEOUT)).get("items", [])
        return [n["metadata"]["name"] for n in items]

    def ready_ports(self, namespace, service, by_pod):
        """Loopback ports of the live processes behind a Service's Ready endpoints."""
        slices = self._dict(self.discovery.list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=%s" % service, _request_timeout=API_TIMEOUT)).get("items", [])
        ports = set()
        for eps in slices:
            for endpoint in eps.get("endpoints") or []:
                if not (endpoint.get("conditions") or {}).get("ready"):
                    continue
                ref = endpoint.get("targetRef") or {}
                proc = by_pod.get((namespace, ref.get("name")))
                if proc is not None and proc.alive and proc.healthy:
                    ports.add(proc.port)
        return sorted(ports)

    def desired_slots(self, live_pods):
        """{slot key: ([(port, weight)], route or None)} for every served Service and HTTPRoute."""
        by_pod = {(p.namespace, p.name): p for uid, p in self.procs.items() if uid in live_pods}
        desired = {}
        for namespace in self.served_namespaces():
            ready = {}
            services = self._dict(self.core.list_namespaced_service(namespace, _request_timeout=API_TIMEOUT)).get("items", [])
            for svc in services:
                name = svc["metadata"]["name"]
                ready[name] = self.ready_ports(namespace, name, by_pod)
                desired["svc:%s/%s" % (namespace, name)] = ([(port, 1) for port in ready[name]], None)
            try:
                routes = self.custom.list_namespaced_custom_object(
                    "gateway.networking.k8s.io", "v1", namespace, "httproutes", _request_timeout=API_TIMEOUT).get("items", [])
            except ApiException as exc:
                # No Gateway API CRD: no routes. Any other error must not empty the route
                # slots (the public entry would answer 503): let the tick fail and retry.
                if exc.status != 404:
                    raise
                routes = []
            for route in routes:
                rules = (route.get("spec") or {}).get("rules") or []
                shares = []
                for ref in (rules[0].get("backendRefs") or []) if rules else []:
                    if ref.get("kind", "Service") != "Service" or ref.get("namespace", namespace) != namespace:
                        continue
                    ports = ready.get(ref["name"], [])
                    weight = ref.get("weight", 1)
                    shares += [(port, weight / len(ports)) for port in ports if weight > 0]
                desired["route:%s/%s" % (namespace, route["metadata"]["name"])] = (scale_weights(shares), route)
        return desired

    def assign_slot(self, key):
        if key in self.slot_map:
            return self.slot_map[key]
        used = set(self.slot_map.values())
        free = [i for i in range(self.slot_count) if i not in used]
        if not free:
            log.warning("no free HAProxy slot for %s (all %d used)", key, self.slot_count)
            return None
        self.slot_map[key] = free[0]
        self.save_slot_map()
        log.info("slot %d (127.0.0.1:%d) -> %s", free[0], self.first_port + free[0], key)
        return free[0]

    def save_slot_map(self):
        data = {key: {"slot": slot, "port": self.first_port + slot} for key, slot in sorted(self.slot_map.items())}
        tmp = self.slots_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.slots_file)

    def apply_slot(self, slot, servers):
        """Make slot ``slot`` serve exactly ``servers`` [(port, weight)].

        Each pod port is a dynamic server ``slot<N>/p<port>``, added fresh and deleted when
        it goes. (Re-using a fixed pool of servers made HAProxy 2.6's weighted round-robin
        starve a re-enabled server whose position dated from an earlier, lower weight.)
        Add and re-weight first, disable last: the slot is never empty in between.

        HAProxy 2.6's weighted round-robin can misplace a server added to an empty backend
        with a long history: once a second server is there it never picks the first again
        (measured: 3 of 8 rounds, after some thousand requests). Disabling and enabling that
        server once the slot holds two puts it back in turn (12 of 12 rounds).
        """
        current = self.applied.setdefault(slot, {})
        wanted = dict(servers)
        commands = []
        if not current and servers:
            self.lonely[slot] = servers[0][0]
        for port, weight in servers:
            name = "slot%d/p%d" % (slot, port)
            if port not in current and (slot, port) in self.to_delete:
                # Disabled but not deleted yet: take it back.
                self.to_delete.discard((slot, port))
                commands += ["set server %s weight %d" % (name, weight), "enable server %s" % name]
            elif port not in current:
                commands += ["add server %s 127.0.0.1:%d weight %d" % (name, port, weight), "enable server %s" % name]
            elif current[port] != weight:
                commands.append("set server %s weight %d" % (name, weight))
            current[port] = weight
        for port in [p for p in current if p not in wanted]:
            commands.append("disable server slot%d/p%d" % (slot, port))
            del current[port]
            self.to_delete.add((slot, port))
        lonely = self.lonely.get(slot)
        if lonely is not None and (lonely not in current or len(current) >= 2):
            del self.lonely[slot]
            if lonely in current:
                commands += ["disable server slot%d/p%d" % (slot, lonely), "enable server slot%d/p%d" % (slot, lonely)]
        for command in commands:
            answer = haproxy_command(self.socket, command).strip()
            if answer and "new server registered" not in answer.lower() and "no need" not in answer.lower():
                log.warning("haproxy: %s -> %s", command, answer)
        self.delete_disabled()
        return bool(commands)

    def delete_disabled(self):
        """Delete the disabled servers whose connections have ended (HAProxy refuses before)."""
        for slot, port in sorted(self.to_delete):
            answer = haproxy_command(self.socket, "del server slot%d/p%d" % (slot, port)).lower()
            if "deleted" in answer or "no such server" in answer:
                self.to_delete.discard((slot, port))

    def slot_servers_state(self, slot):
        """[(name, port, enabled, weight)] of a slot's servers, read from HAProxy."""
        answer = haproxy_command(self.socket, "show servers state slot%d" % slot)
        rows = []
        for line in answer.splitlines()[2:]:
            parts = line.split()
            if len(parts) >= 19:
                # srv_admin_state (parts[6]) bit 1: maintenance; parts[7]: weight; parts[18]: port.
                rows.append((parts[3], int(parts[18]), not int(parts[6]) & 1, int(parts[7])))
        return rows

    def reset_slot(self, slot):
        """Disable every server of a slot (a freed slot), deleting them once drained."""
        for name, port, enabled, _weight in self.slot_servers_state(slot):
            if name.startswith("p"):
                haproxy_command(self.socket, "disable server slot%d/%s" % (slot, name))
                self.to_delete.add((slot, port))
            elif enabled:
                haproxy_command(self.socket, "set server slot%d/%s state maint" % (slot, name))
        self.applied[slot] = {}
        self.lonely.pop(slot, None)
        self.delete_disabled()

    def check_haproxy(self):
        """Return True when a full re-sync is due (HAProxy restarted, or every RESYNC seconds)."""
        info = haproxy_command(self.socket, "show info")
        pid = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Pid:")), None)
        due = self.force_resync or pid != self.haproxy_pid or time.monotonic() - self.last_resync >= RESYNC
        self.haproxy_pid = pid
        self.force_resync = False
        return due

    def sync_balancer(self, live_pods):
        full = self.check_haproxy()
        if full:
            # Re-apply from what HAProxy says (reset_slot_if_stale), not from memory.
            self.last_resync = time.monotonic()
            self.applied = {}
        desired = self.desired_slots(live_pods)
        for key in [k for k in self.slot_map if k not in desired]:
            slot = self.slot_map.pop(key)
            self.reset_slot(slot)
            self.save_slot_map()
            log.info("slot %d freed (%s is gone)", slot, key)
        for key, (servers, route) in sorted(desired.items()):
            slot = self.assign_slot(key)
            if slot is None:
                continue
            if full:
                self.reset_slot_if_stale(slot, servers)
            self.apply_slot(slot, servers)
            if route is not None:
                self.write_route_status(route, slot)

    def reset_slot_if_stale(self, slot, servers):
        """On a full re-sync, read the slot back: keep what is right, drop anything else.

        A wanted server someone disabled is deleted and added afresh by ``apply_slot``.
        """
        wanted = dict(servers)
        applied = self.applied.setdefault(slot, {})
        for name, port, enabled, weight in self.slot_servers_state(slot):
            if not name.startswith("p"):
                if enabled:
                    haproxy_command(self.socket, "set server slot%d/%s state maint" % (slot, name))
                continue
            if enabled and port in wanted:
                applied[port] = weight
                continue
            haproxy_command(self.socket, "disable server slot%d/%s" % (slot, name))
            self.to_delete.add((slot, port))
        self.delete_disabled()

    def write_route_status(self, route, slot):
        meta = route["metadata"]
        key = "%s/%s" % (meta["namespace"], meta["name"])
        generation = meta.get("generation")
        # Keyed by uid: a route deleted and created again starts at generation 1 again.
        if self.route_status.get(meta["uid"]) == generation:
            return
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = "served by the lab's HAProxy slot %d on 127.0.0.1:%d" % (slot, self.first_port + slot)
        parents = []
        for parent in (route.get("spec") or {}).get("parentRefs") or [{"name": "lab"}]:
            parents.append({"parentRef": parent, "controllerName": CONTROLLER_NAME, "conditions": [
                {"type": t, "status": "True", "reason": t, "message": message,
                 "observedGeneration": generation, "lastTransitionTime": now}
                for t in ("Accepted", "ResolvedRefs")]})
        try:
            self.custom.patch_namespaced_custom_object_status(
                "gateway.networking.k8s.io", "v1", meta["namespace"], "httproutes", meta["name"],
                {"status": {"parents": parents}}, _content_type="application/merge-patch+json",
                _request_timeout=API_TIMEOUT)
            self.route_status[meta["uid"]] = generation
            log.info("httproute %s generation %s live on slot %d", key, generation, slot)
        except Exception as exc:  # pylint: disable=broad-except
            log.warning("writing status of httproute %s failed: %s", key, exc)

    # --- main loop ---------------------------------------------------------------------

    def tick(self):
        live, leaving = self.sync_pods()
        for proc in leaving:
            proc.healthy = False
        self.sync_balancer(live)        # leaving processes are out of the balancer first ...
        for proc in leaving:            # ... then they get SIGTERM and drain
            del self.procs[proc.uid]
            threading.Thread(target=self.stop_process, args=(proc,), daemon=True).start()
        self.write_targets()

    def run(self):
        log.info("node agent up (pid %d)", os.getpid())
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # pylint: disable=broad-except
                log.exception("sync failed; retrying with a full re-sync")
                # What HAProxy holds is unknown now (a lost socket, a restart): read it back next time.
                self.force_resync = True
            self.stopping.wait(max(0.0, TICK - (time.monotonic() - started)))
        for proc in list(self.procs.values()):
            if proc.alive:
                proc.popen.terminate()
        for proc in list(self.procs.values()):
            self.stop_process(proc)
        log.info("node agent stopped")


def scale_weights(shares):
    """[(port, float share)] -> [(port, int weight 1..256)] keeping the ratios (HAProxy weights are 0-256)."""
    shares = [(port, share) for port, share in shares if share > 0]
    if not shares:
        return []
    top = max(share for _port, share in shares)
    return [(port, max(1, int(round(share * 256.0 / top)))) for port, share in shares]


def main():
    """Run the agent until SIGTERM."""
    lab = lab_state.load()
    if not lab:
        sys.exit("no lab state at %s" % lab_state.STATE_FILE)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    agent = Agent(lab)
    signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stopping.set())
    agent.run()
