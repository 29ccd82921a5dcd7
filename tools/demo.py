"""`make demo`: bring the lab up, release 0.1.0, then 0.2.0 under a bounded load.

Prints what is deployed where and what the load saw (requests, errors, versions).
Safe to run twice: on a lab that already runs a newer version it releases 0.1.0 again
with allow_older_version (and says so), so every run shows the same two releases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from keneyapp_lab import __main__ as lab_cli
from keneyapp_sample.loadgen import run_load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST, SECOND = "0.1.0", "0.2.0"
LOAD_SECONDS, LOAD_RATE = 25.0, 40.0


def say(text):
    """One line of progress."""
    print("\n==> %s" % text, flush=True)


def release(version, *extra):
    """ansible-playbook release.yml -i inventories/development -e app_version=<version>."""
    argv = ["ansible-playbook", "release.yml", "-i", "inventories/development", "-e", "app_version=%s" % version]
    for item in extra:
        argv += ["-e", item]
    print("$ " + " ".join(argv), flush=True)
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, check=False, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if "msg:" in line or "keneyapp-development :" in line]
    print("\n".join(lines[-4:]))
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:], sep="\n")
        sys.exit("release of %s failed (exit %d)" % (version, result.returncode))
    return time.monotonic() - started


def kubectl(st, *args):
    """The lab's kubectl (1.36) against the lab."""
    return subprocess.run(["kubectl", "--kubeconfig", st["cluster"]["kubeconfig"]] + list(args),
                          check=False, capture_output=True, text=True).stdout


def running_version(st):
    """The live backend version, or None on an empty lab."""
    out = kubectl(st, "get", "deploy", "-n", "keneyapp-dev", "-l", "app.kubernetes.io/name=keneyapp-backend",
                  "-o", "jsonpath={range .items[?(@.spec.replicas>0)]}{.metadata.labels.app\\.kubernetes\\.io/version}{\"\\n\"}{end}")
    versions = [v for v in out.split() if v]
    return versions[0] if versions else None


def main():
    """The demo."""
    from keneyapp_lab import state as lab_state  # pylint: disable=import-outside-toplevel

    os.environ["PATH"] = lab_state.bin_dir() + os.pathsep + os.environ["PATH"]
    say("lab up (reuses a running one)")
    st, _started = lab_cli.up()
    os.environ["KUBECONFIG"] = st["cluster"]["kubeconfig"]

    current = running_version(st)
    extra = []
    if current and current != FIRST:
        print("keneyapp-dev runs %s: releasing %s first with allow_older_version=true, so the demo repeats" % (current, FIRST))
        extra.append("allow_older_version=true")
    say("release %s (rolling, development inventory)" % FIRST)
    release(FIRST, *extra)

    port = lab_cli.slot_map()["route:keneyapp-dev/keneyapp-backend"]["port"]
    url = "http://127.0.0.1:%d/api/patients" % port
    say("release %s while %.0f req/s run through the lab's load balancer (%s) for at most %.0f s"
        % (SECOND, LOAD_RATE, url, LOAD_SECONDS))
    summary = {}

    def load():
        summary.update(run_load(url, requests=int(LOAD_SECONDS * LOAD_RATE), concurrency=4, rate=LOAD_RATE,
                                duration=LOAD_SECONDS, timeout=10))

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(2.0)
    took = release(SECOND)
    thread.join()

    say("what is deployed where")
    print(kubectl(st, "get", "deploy", "-n", "keneyapp-dev", "-L", "app.kubernetes.io/version,color"))
    print("\n".join(line for line in lab_cli.env_lines(st) if line.startswith("# lb slot")))

    say("what the load saw")
    print(json.dumps({k: summary.get(k) for k in ("requests", "errors", "status", "versions", "duration_s")}, indent=1))
    print("release of %s took %.1f s; %d requests, %d errors, versions answered: %s"
          % (SECOND, took, summary.get("requests", 0), summary.get("errors", 0), summary.get("versions")))
    print('\nNext: eval "$(make -s lab-env)"; kubectl get deploy -n keneyapp-dev; curl -i %s' % url)
    print("Stop the lab with: make lab-down")
    return 0 if summary.get("errors", 1) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
