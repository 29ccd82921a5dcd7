"""Where the lab keeps its state, and the one state file that says what runs."""

from __future__ import annotations

import json
import os
import socket
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
CACHE = os.environ.get("KENEYAPP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "keneyapp-deploy")
STATE_DIR = os.environ.get("KENEYAPP_LAB_DIR") or os.path.join(CACHE, "lab")
STATE_FILE = os.path.join(STATE_DIR, "state.json")
LOCK_FILE = os.path.join(STATE_DIR, "lab.lock")


def versions():
    """The pinned versions of tests/lab/versions.env as a dict."""
    result = {}
    with open(os.path.join(os.path.dirname(HERE), "versions.env"), encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                result[key] = value
    return result


def bin_dir():
    """The cache folder of the lab's Go binaries (tests/lab/build.sh builds it)."""
    v = versions()
    key = "k8s-%s_etcd-%s_kwok-%s_gw-%s_os-%s" % (
        v["K8S_VERSION"], v["ETCD_VERSION"], v["KWOK_VERSION"], v["GATEWAY_API_VERSION"],
        v["OPENSHIFT_API_VERSION"].rsplit("-", 1)[-1])
    return os.path.join(CACHE, "lab-bin", key)


def load():
    """The state dict, or None when no lab was started."""
    try:
        with open(STATE_FILE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def save(state):
    """Write the state atomically (readers never see half a file)."""
    os.makedirs(STATE_DIR, exist_ok=True)
    tmp = STATE_FILE + ".tmp"
    # 0600 from creation: the state holds the lab's generated passwords.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(tmp, STATE_FILE)


def clear():
    """Forget the state (after the lab stopped)."""
    try:
        os.unlink(STATE_FILE)
    except FileNotFoundError:
        pass


def pid_alive(pid):
    """True if a process with that PID exists and is not a zombie."""
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def group_alive(pgid):
    """True if any live (non-zombie) process belongs to process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def free_port():
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port):
    """True when nothing listens on 127.0.0.1:port and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count, start=21000, stop=29000):
    """The first ``count`` consecutive free ports in [start, stop)."""
    port = start
    while port + count < stop:
        bad = next((p for p in range(port, port + count) if not port_free(p)), None)
        if bad is None:
            return port
        port = bad + 1
    raise RuntimeError("no block of %d free loopback ports between %d and %d" % (count, start, stop))


def wait_for(what, check, timeout=60.0, interval=0.1):
    """Call ``check`` until it returns a truthy value; raise naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # pylint: disable=broad-except
            last = exc
        time.sleep(interval)
    raise TimeoutError("%s not ready after %.0f s%s" % (what, timeout, (": %s" % last) if last else ""))
