"""PostgreSQL 15 + pgBackRest, Redis, HAProxy, Prometheus and nginx on loopback ports.

Each runs from Debian's package in a folder of the lab's temporary run directory,
is health-checked before the lab reports ready, and is stopped by ``down``.
PostgreSQL refuses to run as root, so it (and pgBackRest) run as ``postgres``.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import urllib.request

from keneyapp_lab import procs
from keneyapp_lab.state import free_port, free_port_block, wait_for

PG_BIN = "/usr/lib/postgresql/15/bin"
HAPROXY_SLOTS = 40          # frontend+backend pairs declared up front (HAProxy cannot add them at run time)
STANZA = "keneyapp"


def _chown_tree(path, user):
    entry = pwd.getpwnam(user)
    for base, dirs, files in os.walk(path):
        for name in [base] + [os.path.join(base, d) for d in dirs] + [os.path.join(base, f) for f in files]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def _http_ok(url, timeout=1.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec - loopback only
        return response.status == 200


# --- PostgreSQL ---------------------------------------------------------------------------


def start_postgres(run_dir):
    """initdb (scram-sha-256, generated passwords), start, create the app role and database."""
    base = os.path.join(run_dir, "postgres")
    data, sock = os.path.join(base, "data"), os.path.join(base, "run")
    os.makedirs(sock, exist_ok=True)
    admin_pw, app_pw = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    pwfile = os.path.join(base, "pwfile")
    with open(pwfile, "w", encoding="utf-8") as handle:
        handle.write(admin_pw + "\n")
    os.chmod(pwfile, 0o600)
    _chown_tree(base, "postgres")
    # Socket connections by the OS user postgres use peer auth (pgBackRest, admin tasks);
    # every TCP connection needs a password, so a wrong one really fails.
    procs.run([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "postgres", "-E", "UTF8", "--no-sync",
               "--auth-local=peer", "--auth-host=scram-sha-256", "--pwfile", pwfile], user="postgres")
    os.unlink(pwfile)
    # Archiving on from the start with a no-op command, written in postgresql.conf and not
    # on the command line (which would outrank ALTER SYSTEM): pgBackRest's archive_command
    # then takes over with ALTER SYSTEM and a reload, no restart.
    with open(os.path.join(data, "postgresql.conf"), "a", encoding="utf-8") as handle:
        handle.write("\n# keneyapp lab\nwal_level = replica\narchive_mode = on\narchive_command = 'true'\n")
    port = free_port()
    argv = [os.path.join(PG_BIN, "postgres"), "-D", data,
            "-c", "port=%d" % port, "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=%s" % sock,
            "-c", "password_encryption=scram-sha-256",
            "-c", "max_wal_senders=4", "-c", "shared_buffers=64MB", "-c", "max_connections=100"]
    pid = procs.spawn(argv, os.path.join(base, "postgres.log"), user="postgres", cwd=base)
    wait_for("PostgreSQL on 127.0.0.1:%d" % port,
             lambda: procs.run([os.path.join(PG_BIN, "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                               check=False).returncode == 0, timeout=60)
    # Through standard input, so the password never shows in a process's arguments.
    sql = ("CREATE ROLE keneyapp LOGIN PASSWORD '%s';\n" % app_pw
           + "CREATE DATABASE keneyapp OWNER keneyapp;\n"
           + "CREATE DATABASE keneyapp_ledger OWNER keneyapp;\n")
    procs.run([os.path.join(PG_BIN, "psql"), "-h", sock, "-p", str(port), "-U", "postgres", "-d", "postgres",
               "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"], user="postgres", stdin_text=sql)
    info = {
        "pid": pid, "port": port, "dir": base, "data": data, "socket_dir": sock,
        "admin_password": admin_pw, "password": app_pw,
        "url": "postgresql://keneyapp:%s@127.0.0.1:%d/keneyapp" % (app_pw, port),
        "admin_url": "postgresql://postgres:%s@127.0.0.1:%d/postgres" % (admin_pw, port),
        "ledger_url": "postgresql://keneyapp:%s@127.0.0.1:%d/keneyapp_ledger" % (app_pw, port),
    }
    info["pgbackrest"] = configure_pgbackrest(info)
    return info


def configure_pgbackrest(pg):
    """Write pgbackrest.conf (two encrypted repositories, time retention 30 days) and create the stanza."""
    base = os.path.join(pg["dir"], "pgbackrest")
    for sub in ("repo1", "repo2", "log", "lock", "spool"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    conf = os.path.join(base, "pgbackrest.conf")
    lines = ["[global]"]
    for repo in (1, 2):
        # repo2 stands in for the copy in another region.
        lines += ["repo%d-path=%s" % (repo, os.path.join(base, "repo%d" % repo)),
                  "repo%d-retention-full-type=time" % repo, "repo%d-retention-full=30" % repo,
                  "repo%d-cipher-type=aes-256-cbc" % repo, "repo%d-cipher-pass=%s" % (repo, secrets.token_urlsafe(32))]
    lines += ["start-fast=y", "log-path=%s" % os.path.join(base, "log"), "lock-path=%s" % os.path.join(base, "lock"),
              "spool-path=%s" % os.path.join(base, "spool"), "log-level-console=warn", "log-level-file=info",
              "", "[%s]" % STANZA, "pg1-path=%s" % pg["data"], "pg1-port=%d" % pg["port"],
              "pg1-socket-path=%s" % pg["socket_dir"], "pg1-user=postgres", ""]
    with open(conf, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.chmod(conf, 0o640)
    _chown_tree(base, "postgres")
    procs.run(["pgbackrest", "--config=%s" % conf, "--stanza=%s" % STANZA, "stanza-create"], user="postgres")
    return {"config": conf, "stanza": STANZA, "repo_path": os.path.join(base, "repo1")}


def stop_postgres(info):
    """Fast shutdown (SIGINT): disconnect clients, checkpoint, exit."""
    procs.stop(info.get("pid"), sig=signal.SIGINT, timeout=30, group=False)


# --- Redis --------------------------------------------------------------------------------


def start_redis(run_dir):
    """redis-server on a free loopback port, no persistence."""
    base = os.path.join(run_dir, "redis")
    os.makedirs(base, exist_ok=True)
    port = free_port()
    pid = procs.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", base, "--daemonize", "no"],
                      os.path.join(base, "redis.log"), cwd=base)

    def ping():
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_for("Redis on 127.0.0.1:%d" % port, ping, timeout=20)
    return {"pid": pid, "port": port, "url": "redis://127.0.0.1:%d/0" % port}


# --- HAProxy (the node agent's load balancer) ----------------------------------------------


def start_haproxy(run_dir):
    """HAProxy with a fixed pool of slots: frontend+backend pairs on consecutive ports.

    HAProxy 2.6 can add and delete servers at run time but not frontends or backends,
    so every slot is declared now, empty; the node agent adds a server per Ready pod
    through the runtime API (``add server``, ``set server ... weight``, ``del server``).
    """
    base = os.path.join(run_dir, "haproxy")
    os.makedirs(base, exist_ok=True)
    first = free_port_block(HAPROXY_SLOTS + 1)
    stats_port = first + HAPROXY_SLOTS
    sock = os.path.join(base, "admin.sock")
    cfg = ["global", "    stats socket %s mode 600 level admin" % sock, "    pidfile %s" % os.path.join(base, "haproxy.pid"),
           "    maxconn 4096", "",
           "defaults", "    mode http", "    timeout connect 2s", "    timeout client 60s", "    timeout server 60s",
           "    timeout http-keep-alive 10s", "    option http-keep-alive", "    retries 0", "",
           "frontend stats", "    bind 127.0.0.1:%d" % stats_port, "    http-request return status 200 content-type text/plain string ok if { path /healthz }",
           "    stats enable", "    stats uri /stats", ""]
    for slot in range(HAPROXY_SLOTS):
        cfg += ["frontend slot%d" % slot, "    bind 127.0.0.1:%d" % (first + slot), "    default_backend slot%d" % slot, "",
                "backend slot%d" % slot, "    balance roundrobin", ""]
    path = os.path.join(base, "haproxy.cfg")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(cfg))
    procs.run(["haproxy", "-c", "-q", "-f", path])
    pid = procs.spawn(["haproxy", "-db", "-f", path], os.path.join(base, "haproxy.log"), cwd=base)
    wait_for("HAProxy runtime socket", lambda: "Pid:" in haproxy_command(sock, "show info"), timeout=20)
    return {"pid": pid, "socket": sock, "config": path, "first_port": first, "slots": HAPROXY_SLOTS,
            "stats_port": stats_port}


def haproxy_command(sock_path, command, timeout=5.0):
    """One runtime API command over the stats socket; returns its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


# --- Prometheus -----------------------------------------------------------------------------


def start_pushgateway(run_dir):
    """A Prometheus Pushgateway on a loopback port: the collection pushes its release metrics there."""
    base = os.path.join(run_dir, "pushgateway")
    os.makedirs(base, exist_ok=True)
    port = free_port()
    pid = procs.spawn(["prometheus-pushgateway", "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                      os.path.join(base, "pushgateway.log"), cwd=base)
    url = "http://127.0.0.1:%d" % port
    wait_for("the Pushgateway at %s" % url, lambda: _http_ok(url + "/-/ready"), timeout=30, interval=0.2)
    return {"pid": pid, "port": port, "url": url}


def start_prometheus(run_dir, targets_file, pushgateway=None):
    """Prometheus scraping the node agent's file_sd targets (and the Pushgateway) every second."""
    base = os.path.join(run_dir, "prometheus")
    os.makedirs(os.path.join(base, "data"), exist_ok=True)
    if not os.path.exists(targets_file):
        with open(targets_file, "w", encoding="utf-8") as handle:
            json.dump([], handle)
    port = free_port()
    cfg = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "keneyapp", "file_sd_configs": [{"files": [targets_file], "refresh_interval": "1s"}]},
            {"job_name": "prometheus", "static_configs": [{"targets": ["127.0.0.1:%d" % port]}]},
        ],
    }
    if pushgateway:
        # honor_labels: the pushed job/instance labels are kept, as a Pushgateway needs.
        cfg["scrape_configs"].append({"job_name": "pushgateway", "honor_labels": True,
                                      "static_configs": [{"targets": ["127.0.0.1:%d" % pushgateway["port"]]}]})
    path = os.path.join(base, "prometheus.yml")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(cfg, handle, indent=1)   # JSON is YAML
    pid = procs.spawn(["prometheus", "--config.file=%s" % path, "--storage.tsdb.path=%s" % os.path.join(base, "data"),
                       "--web.listen-address=127.0.0.1:%d" % port, "--storage.tsdb.retention.time=1d",
                       "--web.enable-lifecycle", "--log.level=warn"],
                      os.path.join(base, "prometheus.log"), cwd=base)
    url = "http://127.0.0.1:%d" % port
    wait_for("Prometheus at %s" % url, lambda: _http_ok(url + "/-/ready"), timeout=60, interval=0.2)
    return {"pid": pid, "port": port, "url": url, "config": path, "targets_file": targets_file}


# --- nginx ----------------------------------------------------------------------------------


def start_nginx(run_dir):
    """nginx on a loopback port, with a conf.d folder the collection's nginx router can write to."""
    base = os.path.join(run_dir, "nginx")
    confd = os.path.join(base, "conf.d")
    os.makedirs(confd, exist_ok=True)
    os.makedirs(os.path.join(base, "tmp"), exist_ok=True)
    port = free_port()
    path = os.path.join(base, "nginx.conf")
    tmp = os.path.join(base, "tmp")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join([
            "worker_processes 1;", "pid %s;" % os.path.join(base, "nginx.pid"),
            "error_log %s warn;" % os.path.join(base, "error.log"),
            "events { worker_connections 256; }",
            "http {",
            "  access_log off;",
            "  client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fcgi;" % (tmp, tmp, tmp),
            "  uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;" % (tmp, tmp),
            "  server { listen 127.0.0.1:%d; location = /healthz { return 200 'ok'; } }" % port,
            "  include %s/*.conf;" % confd,
            "}", ""]))
    os.chmod(tmp, 0o777)
    procs.run(["nginx", "-t", "-q", "-c", path, "-p", base])
    pid = procs.spawn(["nginx", "-c", path, "-p", base, "-g", "daemon off;"], os.path.join(base, "nginx.out"), cwd=base)
    wait_for("nginx on 127.0.0.1:%d" % port, lambda: _http_ok("http://127.0.0.1:%d/healthz" % port), timeout=20)
    return {"pid": pid, "port": port, "config": path, "conf_d": confd, "prefix": base}


def stop_simple(info, sig=signal.SIGTERM):
    """Stop a service started with procs.spawn."""
    if info:
        procs.stop(info.get("pid"), sig=sig)


def remove_run_dir(run_dir):
    """Delete the temporary run folder (after every process stopped)."""
    if run_dir and os.path.isdir(run_dir) and os.path.basename(run_dir).startswith("keneyapp-lab-"):
        shutil.rmtree(run_dir, ignore_errors=True)
