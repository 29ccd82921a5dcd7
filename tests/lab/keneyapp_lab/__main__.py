"""``python -m keneyapp_lab up|down|env|status|agent``: one lab per machine.

``up`` reuses a running lab (exit 0, says so) or starts one; ``down`` stops every
process of it and removes its temporary folder; ``env`` prints ``export`` lines.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import shlex
import sys
import tempfile
import time

from keneyapp_lab import cluster, procs, services
from keneyapp_lab import state as lab_state


def _say(message):
    print("[lab %s] %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked():
    """Serialise up/down between processes (make, pytest, molecule) on one machine."""
    os.makedirs(lab_state.STATE_DIR, exist_ok=True)
    with open(lab_state.LOCK_FILE, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pids(st):
    result = {}
    for name in ("postgres", "redis", "haproxy", "pushgateway", "prometheus", "nginx", "agent"):
        if (st.get(name) or {}).get("pid"):
            result[name] = st[name]["pid"]
    for name, pid in ((st.get("cluster") or {}).get("pids") or {}).items():
        result[name] = pid
    return result


def running(st=None):
    """True when the state file says up and every recorded process is alive."""
    st = st if st is not None else lab_state.load()
    if not st or st.get("status") != "up":
        return False
    return all(lab_state.pid_alive(pid) for pid in _pids(st).values())


def up(owner=None):
    """Start the lab unless one runs; returns (state, started_now)."""
    if os.geteuid() != 0:
        raise SystemExit("The lab runs PostgreSQL as the `postgres` user and so must start as root: "
                         "run `sudo make lab-up` (or make test/demo as root).")
    with _locked():
        st = lab_state.load()
        if running(st):
            _say("lab already running (started %s by %s): reusing it" % (st.get("started_at"), st.get("owner")))
            return st, False
        if st:
            _say("cleaning up a lab that is no longer complete")
            _down(st)
        begin = time.monotonic()
        run_dir = tempfile.mkdtemp(prefix="keneyapp-lab-", dir="/tmp")
        os.chmod(run_dir, 0o755)     # postgres must reach its folder below it
        st = {"status": "starting", "run_dir": run_dir, "owner": owner or os.environ.get("KENEYAPP_LAB_OWNER", "make"),
              "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "versions": lab_state.versions()}
        lab_state.save(st)
        try:
            _say("Kubernetes %s (kwokctl, binary runtime, 3 nodes)" % st["versions"]["K8S_VERSION"])
            st["cluster"] = cluster.create(os.path.join(lab_state.STATE_DIR, "kwok"))
            lab_state.save(st)
            _say("PostgreSQL 15 + pgBackRest stanza")
            st["postgres"] = services.start_postgres(run_dir)
            lab_state.save(st)
            _say("Redis, HAProxy, Pushgateway, Prometheus, nginx")
            st["redis"] = services.start_redis(run_dir)
            lab_state.save(st)
            st["haproxy"] = services.start_haproxy(run_dir)
            lab_state.save(st)
            st["pushgateway"] = services.start_pushgateway(run_dir)
            lab_state.save(st)
            st["prometheus"] = services.start_prometheus(run_dir, os.path.join(run_dir, "targets.json"), st["pushgateway"])
            lab_state.save(st)
            st["nginx"] = services.start_nginx(run_dir)
            lab_state.save(st)
            _say("node agent")
            st["agent"] = _start_agent(run_dir)
            st["status"] = "up"
            st["startup_seconds"] = round(time.monotonic() - begin, 1)
            lab_state.save(st)
        except BaseException:
            _say("start failed: stopping what was started")
            # Processes whose health check failed are not in the state yet: stop them by PID.
            procs.stop_spawned()
            _down(lab_state.load() or st)
            raise
        _say("lab up in %.1f s (state: %s)" % (st["startup_seconds"], lab_state.STATE_FILE))
        return st, True


def _start_agent(run_dir):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                         os.path.join(lab_state.REPO, "examples", "keneyapp", "app")])
    log_path = os.path.join(run_dir, "agent.log")
    pid = procs.spawn([sys.executable, "-m", "keneyapp_lab", "agent"], log_path, env=env, cwd=run_dir)
    lab_state.wait_for("the node agent", lambda: "node agent up" in open(log_path, encoding="utf-8").read(), timeout=30)
    return {"pid": pid, "log": log_path}


def down(if_owner=None):
    """Stop the lab if one runs. Returns the processes and folders left behind ({} when clean).

    With ``if_owner``, only a lab started by that owner is stopped (molecule's cleanup
    stops the lab it started and leaves one it reused).
    """
    with _locked():
        st = lab_state.load()
        if not st:
            _say("no lab running")
            return {}
        if if_owner and st.get("owner") != if_owner:
            _say("lab started by %s, not %s: leaving it running" % (st.get("owner"), if_owner))
            return {}
        pids = _pids(st)
        _down(st)
        left = {name: pid for name, pid in pids.items() if lab_state.pid_alive(pid)}
        agent_pid = (st.get("agent") or {}).get("pid")
        if agent_pid and lab_state.group_alive(agent_pid):
            left["agent's app processes (group %d)" % agent_pid] = agent_pid
        if st.get("run_dir") and os.path.exists(st["run_dir"]):
            left["run_dir"] = st["run_dir"]
        if left:
            _say("lab stopped, but these are left: %s" % left)
        else:
            _say("lab stopped: no process of it left")
        return left


def _down(st):
    # The agent first: its processes leave the balancer and drain while the API still answers.
    services.stop_simple(st.get("agent"))
    # Also when the start failed before the cluster reached the state: kwokctl knows it.
    workdir = (st.get("cluster") or {}).get("workdir") or os.path.join(lab_state.STATE_DIR, "kwok")
    if os.path.isdir(workdir):
        cluster.delete(workdir)
    for name in ("nginx", "prometheus", "pushgateway", "haproxy", "redis"):
        services.stop_simple(st.get(name))
    if st.get("postgres"):
        services.stop_postgres(st["postgres"])
    for name, pid in _pids(st).items():
        if lab_state.pid_alive(pid):
            procs.stop(pid, group=False)
            _say("stopped leftover %s (pid %d)" % (name, pid))
    services.remove_run_dir(st.get("run_dir"))
    for name in ("slots.json",):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(lab_state.STATE_DIR, name))
    lab_state.clear()


def env_lines(st):
    """``export`` lines for a shell: eval "$(make -s lab-env)"."""
    pg, hap = st["postgres"], st["haproxy"]
    values = [
        ("KENEYAPP_LAB_STATE", lab_state.STATE_FILE),
        ("KUBECONFIG", st["cluster"]["kubeconfig"]),
        ("KENEYAPP_DATABASE_URL", pg["url"]),
        ("KENEYAPP_DATABASE_ADMIN_URL", pg["admin_url"]),
        ("KENEYAPP_LEDGER_DSN", pg["ledger_url"]),
        ("KENEYAPP_REDIS_URL", st["redis"]["url"]),
        ("KENEYAPP_PROMETHEUS_URL", st["prometheus"]["url"]),
        ("KENEYAPP_PUSHGATEWAY_URL", st["pushgateway"]["url"]),
        ("KENEYAPP_LB_HOST", "127.0.0.1"),
        ("KENEYAPP_LB_SOCKET", hap["socket"]),
        ("KENEYAPP_LB_FIRST_PORT", str(hap["first_port"])),
        ("KENEYAPP_LB_SLOTS", str(hap["slots"])),
        ("KENEYAPP_NGINX_PORT", str(st["nginx"]["port"])),
        ("KENEYAPP_NGINX_CONF_D", st["nginx"]["conf_d"]),
        ("PGBACKREST_CONFIG", pg["pgbackrest"]["config"]),
        ("PGBACKREST_STANZA", pg["pgbackrest"]["stanza"]),
    ]
    lines = ["export %s=%s" % (k, shlex.quote(v)) for k, v in values]
    lines.append('export PATH=%s:"$PATH"' % shlex.quote(lab_state.bin_dir()))
    for key, slot in sorted(slot_map().items()):
        lines.append("# lb slot %-2d http://127.0.0.1:%d  %s" % (slot["slot"], slot["port"], key))
    return lines


def slot_map():
    """The node agent's slot map: {"route:ns/name" | "svc:ns/name": {slot, port}}."""
    try:
        with open(os.path.join(lab_state.STATE_DIR, "slots.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def main(argv=None):
    """The CLI."""
    parser = argparse.ArgumentParser(prog="keneyapp_lab", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "status", "agent"])
    parser.add_argument("--if-owner", help="down: stop the lab only if this owner started it")
    args = parser.parse_args(argv)
    if args.command == "up":
        up()
    elif args.command == "down":
        return 1 if down(args.if_owner) else 0
    elif args.command == "env":
        st = lab_state.load()
        if not running(st):
            print("no lab running: make lab-up", file=sys.stderr)
            return 1
        print("\n".join(env_lines(st)))
    elif args.command == "status":
        st = lab_state.load()
        if not st:
            print("no lab")
            return 1
        print("lab %s (owner %s, started %s)" % ("running" if running(st) else "NOT complete", st.get("owner"), st.get("started_at")))
        for name, pid in sorted(_pids(st).items()):
            print("  %-24s pid %-7d %s" % (name, pid, "alive" if lab_state.pid_alive(pid) else "DEAD"))
        return 0 if running(st) else 1
    elif args.command == "agent":
        from keneyapp_lab import agent  # pylint: disable=import-outside-toplevel
        agent.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
