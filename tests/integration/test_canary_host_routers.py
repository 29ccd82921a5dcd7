"""canary_weight's routers for hosts without Kubernetes, on real HAProxy and real sample-app processes.

The test starts its own HAProxy (not the lab's, whose node agent owns its slots) and three
sample-app processes on loopback ports, and stops them all.
"""

from __future__ import annotations

import os
import sys
import threading

import pytest

from keneyapp_lab import procs
from keneyapp_lab.services import haproxy_command, wait_for
from keneyapp_lab.state import free_port
from keneyapp_lab.testing import http_get, run_module
from keneyapp_sample.loadgen import run_load

pytestmark = pytest.mark.lab
APP_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples",
                        "keneyapp", "app")


@pytest.fixture
def host(tmp_path):
    """HAProxy with backend ``web``: servers web1, web2 (1.0.0) and canary1 (2.0.0), weights 100/100/0."""
    pids, servers = [], {}
    try:
        for name, version in (("web1", "1.0.0"), ("web2", "1.0.0"), ("canary1", "2.0.0")):
            port = free_port()
            env = dict(os.environ, KENEYAPP_LISTEN="127.0.0.1:%d" % port, KENEYAPP_VERSION=version,
                       PYTHONPATH=APP_PATH, POD_NAME=name)
            pids.append(procs.spawn([sys.executable, "-m", "keneyapp_sample"], str(tmp_path / ("%s.log" % name)),
                                    env=env))
            servers[name] = port
            wait_for(name, lambda p=port: http_get("http://127.0.0.1:%d/health" % p)[0] == 200, timeout=20)
        front, sock = free_port(), str(tmp_path / "admin.sock")
        config = tmp_path / "haproxy.cfg"
        config.write_text("\n".join([
            "global", "    stats socket %s mode 600 level admin" % sock, "",
            "defaults", "    mode http", "    timeout connect 2s", "    timeout client 30s", "    timeout server 30s",
            "    option http-keep-alive", "",
            "frontend web", "    bind 127.0.0.1:%d" % front, "    default_backend web", "",
            "backend web", "    balance roundrobin",
            "    server web1 127.0.0.1:%d weight 100" % servers["web1"],
            "    server web2 127.0.0.1:%d weight 100" % servers["web2"],
            "    server canary1 127.0.0.1:%d weight 0" % servers["canary1"], ""]))
        pids.append(procs.spawn(["haproxy", "-db", "-f", str(config)], str(tmp_path / "haproxy.log")))
        wait_for("HAProxy", lambda: os.path.exists(sock) and "Pid:" in haproxy_command(sock, "show info"), timeout=20)
        yield {"sock": sock, "config": str(config), "port": front, "tmp": tmp_path}
    finally:
        for pid in pids:
            procs.stop(pid)


def set_weight(lab, host, **args):
    check, diff = args.pop("_check", False), args.pop("_diff", False)
    full = dict({"router": "haproxy", "app": "web", "haproxy_socket": host["sock"], "backend": "web",
                 "stable_servers": ["web1", "web2"], "canary_servers": ["canary1"], "config_file": host["config"]},
                **args)
    return run_module(lab, "keneyapp.deploy.canary_weight", full, check=check, diff=diff)


def weights(host):
    return {s: int(haproxy_command(host["sock"], "get weight web/%s" % s).split()[0]) for s in ("web1", "web2", "canary1")}


def test_haproxy_router_check_real_idempotent_share_and_absent(lab, host):
    config_before = open(host["config"], encoding="utf-8").read()
    checked = set_weight(lab, host, weight=10, _check=True, _diff=True)
    assert checked["changed"] is True and checked["previous_weight"] == 0
    assert checked["diff"]["after"]["weights"] == {"web1": 256, "web2": 256, "canary1": 57}
    assert weights(host) == {"web1": 100, "web2": 100, "canary1": 0}, "check mode changed HAProxy"

    done = set_weight(lab, host, weight=10)
    assert done["changed"] is True, done.get("msg")
    assert weights(host) == {"web1": 256, "web2": 256, "canary1": 57}
    text = open(host["config"], encoding="utf-8").read()
    assert "server canary1 127.0.0.1:" in text and text.count("weight 256") == 2 and "weight 57" in text
    summary = run_load("http://127.0.0.1:%d/" % host["port"], requests=1000, concurrency=4)
    share = 100.0 * summary["versions"].get("2.0.0", 0) / 1000
    assert summary["errors"] == 0 and abs(share - 10) <= 2, summary
    assert set_weight(lab, host, weight=10)["changed"] is False

    removed = set_weight(lab, host, state="absent")
    assert removed["changed"] is True and removed["previous_weight"] == 10
    assert weights(host) == {"web1": 100, "web2": 100, "canary1": 0}
    assert open(host["config"], encoding="utf-8").read() == config_before, "the file as it was"
    assert not os.path.exists(host["config"] + ".keneyapp-stable.json")


def test_haproxy_switches_under_keep_alive_load_drop_nothing(lab, host):
    # Load for as long as the switches take (a capped run can end before the first switch
    # on an idle machine): 20 keep-alive connections at most 1000 requests/s, 1 s at a time.
    load = {"requests": 0, "errors": 0, "versions": {}}
    done = threading.Event()

    def run():
        while not done.is_set():
            summary = run_load("http://127.0.0.1:%d/" % host["port"], requests=1000, concurrency=20, keep_alive=True,
                               rate=1000, duration=1)
            load["requests"] += summary["requests"]
            load["errors"] += summary["errors"]
            for version, count in summary["versions"].items():
                load["versions"][version] = load["versions"].get(version, 0) + count

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _switch in range(9):
            assert set_weight(lab, host, weight=100)["changed"] is True
            assert set_weight(lab, host, weight=0)["changed"] is True
    finally:
        done.set()
        thread.join()
    print("18 switches under keep-alive load: %d requests, %d errors, %s" % (load["requests"], load["errors"], load["versions"]))
    assert load["errors"] == 0 and load["requests"] > 1000, load
    assert set(load["versions"]) == {"1.0.0", "2.0.0"}, "both sides answered across the 18 switches"


@pytest.mark.parametrize("args, fragment", [
    ({"weight": 150}, "weight=150 is not a percentage of traffic"),
    ({"weight": 5, "canary_servers": ["nope"]}, "HAProxy has no server web/nope"),
    ({"weight": 5, "canary_servers": ["web2"]}, "Servers both stable and canary: web2"),
    ({"weight": 5, "haproxy_socket": "/nonexistent/admin.sock"}, "did not answer"),
    ({"weight": 5, "backend": None}, "router=haproxy needs haproxy_socket and backend"),
    ({"weight": 5, "config_file": "/nonexistent/haproxy.cfg"}, "config_file=/nonexistent/haproxy.cfg is not a file"),
])
def test_haproxy_bad_input_changes_nothing(lab, host, args, fragment):
    before, text = weights(host), open(host["config"], encoding="utf-8").read()
    result = set_weight(lab, host, **args)
    assert result.get("failed") and fragment in result["msg"], result
    assert weights(host) == before and open(host["config"], encoding="utf-8").read() == text


@pytest.fixture
def nginx_site(lab, tmp_path):
    """Two sample apps (1.0.0, 2.0.0) behind the lab's nginx: a server block proxying to upstream ``shop``,
    whose file lists the stable server only. Both files are removed and nginx reloaded afterwards."""
    pids, ports = [], {}
    info = lab.state["nginx"]
    tag = os.path.basename(str(tmp_path))
    site = os.path.join(info["conf_d"], "%s-site.conf" % tag)
    upstream = os.path.join(info["conf_d"], "%s-upstream.conf" % tag)
    name = "shop_%s" % tag.replace("-", "_")
    nginx = ["nginx", "-c", info["config"], "-p", info["prefix"]]
    try:
        for server, version in (("stable", "1.0.0"), ("canary", "2.0.0")):
            port = free_port()
            env = dict(os.environ, KENEYAPP_LISTEN="127.0.0.1:%d" % port, KENEYAPP_VERSION=version, PYTHONPATH=APP_PATH)
            pids.append(procs.spawn([sys.executable, "-m", "keneyapp_sample"], str(tmp_path / ("%s.log" % server)),
                                    env=env))
            ports[server] = port
            wait_for(server, lambda p=port: http_get("http://127.0.0.1:%d/health" % p)[0] == 200, timeout=20)
        front = free_port()
        with open(upstream, "w", encoding="utf-8") as handle:
            handle.write("upstream %s {\n    server 127.0.0.1:%d;\n}\n" % (name, ports["stable"]))
        with open(site, "w", encoding="utf-8") as handle:
            handle.write("server { listen 127.0.0.1:%d; location / { proxy_pass http://%s; } }\n" % (front, name))
        procs.run(nginx + ["-s", "reload"])
        wait_for("the site", lambda: http_get("http://127.0.0.1:%d/health" % front)[0] == 200, timeout=20)
        yield {"file": upstream, "upstream": name, "port": front, "ports": ports, "conf": info["config"],
               "prefix": info["prefix"]}
    finally:
        for path in (site, upstream, upstream + ".keneyapp-stable"):
            if os.path.exists(path):
                os.unlink(path)
        procs.run(nginx + ["-s", "reload"], check=False)
        for pid in pids:
            procs.stop(pid)


def nginx_weight(lab, site, **args):
    check = args.pop("_check", False)
    full = dict({"router": "nginx", "app": "shop", "upstream": site["upstream"], "upstream_file": site["file"],
                 "stable_servers": ["127.0.0.1:%d" % site["ports"]["stable"]],
                 "canary_servers": ["127.0.0.1:%d" % site["ports"]["canary"]], "nginx_conf": site["conf"]}, **args)
    return run_module(lab, "keneyapp.deploy.canary_weight", full, check=check)


def _nginx_share(site):
    summary = {}
    # nginx -s reload returns before the new worker serves: wait until the canary answers at all.
    wait_for("the reload", lambda: summary.update(run_load("http://127.0.0.1:%d/" % site["port"], requests=100,
                                                           concurrency=1)) or "2.0.0" in summary["versions"], timeout=20)
    summary = run_load("http://127.0.0.1:%d/" % site["port"], requests=1000, concurrency=4)
    assert summary["errors"] == 0, summary
    return 100.0 * summary["versions"].get("2.0.0", 0) / 1000


def test_nginx_router_check_real_share_idempotent_and_absent(lab, nginx_site):
    original = open(nginx_site["file"], encoding="utf-8").read()
    checked = nginx_weight(lab, nginx_site, weight=20, _check=True)
    assert checked["changed"] is True and checked["previous_weight"] == 0
    assert open(nginx_site["file"], encoding="utf-8").read() == original, "check mode wrote"
    done = nginx_weight(lab, nginx_site, weight=20)
    assert done["changed"] is True, done.get("msg")
    text = open(nginx_site["file"], encoding="utf-8").read()
    assert "weight=100;" in text and "weight=25;" in text
    share = _nginx_share(nginx_site)
    assert abs(share - 20) <= 2, share
    assert nginx_weight(lab, nginx_site, weight=20)["changed"] is False
    removed = nginx_weight(lab, nginx_site, state="absent")
    assert removed["changed"] is True and removed["previous_weight"] == 20
    assert open(nginx_site["file"], encoding="utf-8").read() == original, "the file as it was"
    assert not os.path.exists(nginx_site["file"] + ".keneyapp-stable")


def test_nginx_upstream_file_in_a_missing_folder_is_refused(lab, nginx_site):
    result = nginx_weight(lab, nginx_site, weight=20, upstream_file="/nonexistent/upstream.conf")
    assert result.get("failed") and "is in a folder that does not exist" in result["msg"], result
    assert "Traceback" not in result["msg"]


def test_nginx_a_file_nginx_rejects_is_rolled_back_and_not_reloaded(lab, nginx_site):
    original = open(nginx_site["file"], encoding="utf-8").read()
    result = nginx_weight(lab, nginx_site, weight=20, canary_servers=["127.0.0.1:notaport"])
    assert result.get("failed") and "made 'nginx -t' fail" in result["msg"], result
    assert open(nginx_site["file"], encoding="utf-8").read() == original
    assert run_load("http://127.0.0.1:%d/" % nginx_site["port"], requests=20, concurrency=1)["versions"] == {"1.0.0": 20}
