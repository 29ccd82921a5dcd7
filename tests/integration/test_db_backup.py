"""pgBackRest: the db_backup role, the pgbackrest_backup / pgbackrest_info modules and playbooks/backup.yml.

The tests run on a PostgreSQL 15 cluster of their own (initdb in a temporary folder, started
like the lab's: archive_mode=on, archive_command='true', so switching archiving to pgBackRest
is a reload). archive_command is one per cluster: pointing the lab's at a test stanza would
break the lab stanza's backups for whoever uses it at the same time. Every assertion reads
back pgBackRest (info, check, verify) or the server (SHOW), never just Ansible's word.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
import yaml

from keneyapp_lab import procs
from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import run_module

pytestmark = pytest.mark.lab
PG_BIN = "/usr/lib/postgresql/15/bin"
STANZA = "roletest"


class Cluster:
    """A scratch cluster, its stanza's settings and the cipher pass the tests must never see printed."""

    def __init__(self, lab, base):
        self.lab = lab
        self.base = base
        self.data = os.path.join(base, "data")
        self.socket = os.path.join(base, "run")
        self.port = lab_state.free_port()
        self.config = os.path.join(base, "etc", "pgbackrest.conf")
        self.secret = secrets.token_urlsafe(32)
        self.outputs = []

    def settings(self, **override):
        values = {
            "keneyapp_backup_stanza": STANZA,
            "keneyapp_backup_config_path": self.config,
            "keneyapp_backup_pg_data": self.data,
            "keneyapp_backup_pg_port": self.port,
            "keneyapp_backup_pg_socket_dir": self.socket,
            # Count-based retention proves expiry within one test; production's 30 days is checked in its rendering.
            "keneyapp_backup_repos": [{"path": os.path.join(self.base, "repo%d" % n), "retention_full": 2,
                                       "retention_full_type": "count"} for n in (1, 2)],
            "keneyapp_backup_cipher_pass": self.secret,
            "keneyapp_backup_log_path": os.path.join(self.base, "log"),
            "keneyapp_backup_lock_path": os.path.join(self.base, "lock"),
            "keneyapp_backup_spool_path": os.path.join(self.base, "spool"),
            "keneyapp_backup_schedule": ["systemd", "cronjob"],
            "keneyapp_backup_systemd_dir": os.path.join(self.base, "systemd"),
            "keneyapp_backup_cronjob_path": os.path.join(self.base, "cronjob.yaml"),
        }
        values.update(override)
        return values

    def psql(self, sql):
        return procs.run([os.path.join(PG_BIN, "psql"), "-X", "-At", "-h", self.socket, "-p", str(self.port), "-d",
                          "postgres", "-c", sql], user="postgres", cwd="/").stdout.strip()

    def pgbackrest(self, *args, check=True):
        return procs.run(["pgbackrest", "--config=%s" % self.config, "--stanza=%s" % STANZA] + list(args),
                         user="postgres", cwd="/", check=check)

    def info(self):
        return json.loads(self.pgbackrest("info", "--output=json").stdout)[0]

    def play(self, *args, book=None, tasks_from="main", only=None, **override):
        """ansible-playbook of the role (or of ``book``) with these settings as extra vars (a file: no secret in argv).

        ``only``: exactly these extra vars, the role's defaults for the rest.
        """
        varfile = os.path.join(self.base, "vars-%s.json" % secrets.token_hex(4))
        with open(varfile, "w", encoding="utf-8") as handle:
            json.dump(only if only is not None else self.settings(**override), handle)
        if book is None:
            book = os.path.join(self.base, "play-%s.yml" % tasks_from)
            with open(book, "w", encoding="utf-8") as handle:
                yaml.safe_dump([{"name": "Role under test", "hosts": "localhost", "gather_facts": False, "tasks": [
                    {"name": "Run db_backup", "ansible.builtin.include_role": {
                        "name": "keneyapp.deploy.db_backup", "tasks_from": tasks_from}}]}], handle)
        bindir = os.path.dirname(sys.executable)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        env.pop("KENEYAPP_BACKUP_CIPHER_PASS", None)
        argv = [os.path.join(bindir, "ansible-playbook"), book, "-v", "-e", "@" + varfile] + list(args)
        proc = subprocess.run(argv, cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
        os.unlink(varfile)
        self.outputs.append(proc.stdout + proc.stderr)
        return proc

    def module(self, name, args, check=False):
        result = run_module(self.lab, name, args, check=check)
        self.outputs.append(json.dumps(result))
        return result


def recap(proc):
    match = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(4))}


@pytest.fixture(scope="module")
def cluster(lab):
    """A PostgreSQL 15 cluster of this module's own, started as the lab starts its own; removed afterwards."""
    base = tempfile.mkdtemp(prefix="keneyapp-pgbr-")
    entry = pwd.getpwnam("postgres")
    os.chmod(base, 0o755)
    os.chown(base, entry.pw_uid, entry.pw_gid)
    found = Cluster(lab, base)
    os.makedirs(found.socket)
    os.makedirs(os.path.join(base, "systemd"))  # stands in for /etc/systemd/system
    os.chown(found.socket, entry.pw_uid, entry.pw_gid)
    procs.run([os.path.join(PG_BIN, "initdb"), "-D", found.data, "-U", "postgres", "-E", "UTF8", "--no-sync",
               "--auth-local=peer", "--auth-host=scram-sha-256"], user="postgres", cwd="/")
    with open(os.path.join(found.data, "postgresql.conf"), "a", encoding="utf-8") as handle:
        # In postgresql.conf, not -c: a command-line setting would override ALTER SYSTEM.
        handle.write("port = %d\nlisten_addresses = ''\nunix_socket_directories = '%s'\nwal_level = replica\n"
                     "archive_mode = on\narchive_command = 'true'\nfsync = off\nshared_buffers = 16MB\n"
                     % (found.port, found.socket))
    procs.run([os.path.join(PG_BIN, "pg_ctl"), "-D", found.data, "-l", os.path.join(base, "postgres.log"), "-w", "start"],
              user="postgres", cwd="/")
    yield found
    procs.run([os.path.join(PG_BIN, "pg_ctl"), "-D", found.data, "-m", "immediate", "-w", "stop"], user="postgres",
              cwd="/", check=False)
    shutil.rmtree(base, ignore_errors=True)


def test_check_mode_changes_nothing(cluster):
    proc = cluster.play("--check")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not os.path.exists(cluster.config)
    assert cluster.psql("SHOW archive_command") == "true"


def test_role_archives_wal_backs_up_into_two_encrypted_repos_and_verifies(cluster):
    proc = cluster.play()
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert cluster.psql("SHOW archive_command") == (
        "/usr/bin/pgbackrest --config=%s --stanza=%s archive-push %%p" % (cluster.config, STANZA))

    info = cluster.info()
    assert [(r["key"], r["cipher"], r["status"]["message"]) for r in info["repo"]] == [
        (1, "aes-256-cbc", "ok"), (2, "aes-256-cbc", "ok")]
    fulls = sorted((b["database"]["repo-key"], b["type"]) for b in info["backup"])
    assert fulls == [(1, "full"), (2, "full")], "one full backup in each repository"

    segment = cluster.psql("SELECT pg_walfile_name(pg_switch_wal())")
    assert cluster.pgbackrest("check").returncode == 0
    archived = {a["database"]["repo-key"]: a["max"] for a in cluster.info()["archive"]}
    assert archived[1] >= segment and archived[2] >= segment, (archived, segment)
    assert cluster.pgbackrest("verify").returncode == 0

    mode = os.stat(cluster.config)
    assert (stat.S_IMODE(mode.st_mode), pwd.getpwuid(mode.st_uid).pw_name) == (0o640, "postgres")
    with open(cluster.config, encoding="utf-8") as handle:
        conf = handle.read()
    assert "repo1-retention-full-type=count\nrepo1-retention-full=2\nrepo1-cipher-type=aes-256-cbc" in conf
    assert "start-fast=y" in conf

    with open(os.path.join(cluster.base, "systemd", "pgbackrest-roletest.timer"), encoding="utf-8") as handle:
        timer = handle.read()
    assert "OnCalendar=*-*-* 00/6:00:00" in timer
    with open(os.path.join(cluster.base, "systemd", "pgbackrest-roletest.service"), encoding="utf-8") as handle:
        service = handle.read()
    assert "User=postgres" in service and "--type=full --repo=2 backup" in service
    with open(cluster.config.replace("etc/pgbackrest.conf", "cronjob.yaml"), encoding="utf-8") as handle:
        cronjob = yaml.safe_load(handle)
    assert (cronjob["apiVersion"], cronjob["kind"], cronjob["spec"]["schedule"]) == ("batch/v1", "CronJob", "0 */6 * * *")

    again = cluster.play()
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap(again)["changed"] == 0, again.stdout[-3000:]
    assert len(cluster.info()["backup"]) == 2, "a second run takes no new backup"


def test_backups_expire_by_count_and_info_reports_the_newest(cluster):
    oldest = {b["database"]["repo-key"]: b["label"] for b in cluster.info()["backup"]}
    checked = cluster.module("keneyapp.deploy.pgbackrest_backup",
                             {"stanza": STANZA, "config": cluster.config, "run_as": "postgres"}, check=True)
    assert checked["changed"] and checked["planned"] == [{"repo": 1, "type": "full"}, {"repo": 2, "type": "full"}]
    assert len(cluster.info()["backup"]) == 2, "check mode took no backup"

    labels = []
    for release in ("1.4.0", "1.4.1"):
        # Into repo1 only: three full backups there prove the expiry; repo2 keeps the role's one.
        result = cluster.module("keneyapp.deploy.pgbackrest_backup", {
            "stanza": STANZA, "config": cluster.config, "run_as": "postgres", "repos": [1],
            "annotation": {"release": release}})
        assert result["changed"] and not result.get("failed"), result
        assert [b["repo"] for b in result["backups"]] == [1]
        labels.append(result["label"])
    info = cluster.info()
    kept = {}
    for backup in info["backup"]:
        kept.setdefault(backup["database"]["repo-key"], []).append(backup["label"])
    assert sorted(kept[1]) == sorted(labels), "retention-full=2 keeps the newest two of three full backups in repo1"
    assert oldest[1] not in kept[1] and kept[2] == [oldest[2]]
    last = [b for b in info["backup"] if b["label"] == labels[-1]][0]
    assert (last["type"], last["annotation"]) == ("full", {"release": "1.4.1"})
    assert (result["wal_start"], result["wal_stop"], result["size"]) == (
        last["archive"]["start"], last["archive"]["stop"], last["info"]["size"])

    report = cluster.module("keneyapp.deploy.pgbackrest_info",
                            {"stanza": STANZA, "config": cluster.config, "run_as": "postgres", "max_age_seconds": 21600})
    assert report["backup_count"] == 3 and report["cipher"] == "aes-256-cbc" and not report["changed"]
    assert report["newest"]["stop"] == max(b["timestamp"]["stop"] for b in info["backup"])
    assert 0 <= report["newest"]["age_seconds"] < 120 and report["rpo_ok"] is True


def test_backup_playbook_takes_and_verifies_an_on_demand_backup(cluster):
    before = {b["label"] for b in cluster.info()["backup"]}
    proc = cluster.play("-e", "backup_type=incr", book="playbooks/backup.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    new = [b for b in cluster.info()["backup"] if b["label"] not in before]
    assert sorted((b["database"]["repo-key"], b["type"]) for b in new) == [(1, "incr"), (2, "incr")]
    assert new[0]["label"] in proc.stdout and "RPO" in proc.stdout


def test_production_defaults_render_30_day_time_retention(cluster):
    path = os.path.join(cluster.base, "prod", "pgbackrest.conf")
    os.makedirs(os.path.dirname(path))
    proc = cluster.play(tasks_from="config", only={"keneyapp_backup_config_path": path,
                                                   "keneyapp_backup_cipher_pass": cluster.secret})
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(path, encoding="utf-8") as handle:
        conf = handle.read()
    for repo in (1, 2):
        assert "repo%d-retention-full-type=time\nrepo%d-retention-full=30\nrepo%d-cipher-type=aes-256-cbc" % (
            repo, repo, repo) in conf
    assert "repo2-path=/var/lib/pgbackrest-dr" in conf and "pg1-path=/var/lib/postgresql/15/main" in conf


def test_the_cronjob_manifest_is_accepted_by_the_api_server(cluster):
    """The rendered CronJob, created with dry_run=All (kubectl apply --dry-run=server) in a namespace of its own:
    the API server validates it (schema, securityContext) and stores nothing."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    namespace = "t-cronjob-%s" % secrets.token_hex(4)
    path = os.path.join(cluster.base, "cronjob-%s.yaml" % namespace)
    proc = cluster.play(tasks_from="cronjob", only={"keneyapp_backup_cronjob_path": path,
                                                    "keneyapp_backup_cronjob_namespace": namespace,
                                                    "keneyapp_backup_cronjob_uid": 105})
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(path, encoding="utf-8") as handle:
        manifest = yaml.safe_load(handle)
    pod = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 105, "the uid comes from keneyapp_backup_cronjob_uid"
    assert manifest["metadata"]["namespace"] == namespace

    core, batch = cluster.lab.core, client.BatchV1Api(cluster.lab.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        created = batch.create_namespaced_cron_job(namespace, manifest, dry_run="All")
        assert created.metadata.name == "pgbackrest-keneyapp" and created.spec.schedule == "0 */6 * * *"
        assert created.spec.job_template.spec.template.spec.security_context.run_as_user == 105
        assert batch.list_namespaced_cron_job(namespace).items == [], "a dry run stores nothing"
        # The same call refuses a manifest the API server would not accept (the check can fail).
        broken = json.loads(json.dumps(manifest))
        broken["spec"]["schedule"] = "every six hours"
        with pytest.raises(ApiException) as refused:
            batch.create_namespaced_cron_job(namespace, broken, dry_run="All")
        assert refused.value.status == 422 and "schedule" in refused.value.body
    finally:
        core.delete_namespace(namespace)


def test_bad_inputs_give_one_clear_message_and_change_nothing(cluster):
    before = cluster.info()["backup"]

    missing = cluster.module("keneyapp.deploy.pgbackrest_backup",
                             {"stanza": "nosuch", "config": cluster.config, "run_as": "postgres"})
    assert missing["failed"] and "Stanza 'nosuch'" in missing["msg"] and "db_backup role" in missing["msg"], missing
    assert "Traceback" not in json.dumps(missing)

    other = os.path.join(cluster.base, "other", "pgbackrest.conf")
    unreachable = cluster.play(keneyapp_backup_pg_port=lab_state.free_port(), keneyapp_backup_config_path=other)
    assert unreachable.returncode != 0
    assert "Cannot connect to the PostgreSQL server of stanza roletest" in unreachable.stdout
    assert "Nothing was changed" in unreachable.stdout and not os.path.exists(os.path.dirname(other))

    nopass = cluster.play(keneyapp_backup_cipher_pass="", keneyapp_backup_config_path=other)
    assert nopass.returncode != 0 and "no cipher pass" in nopass.stdout and not os.path.exists(os.path.dirname(other))

    wrong = os.path.join(cluster.base, "wrong-pass.conf")
    with open(cluster.config, encoding="utf-8") as handle:
        text = handle.read()
    with open(wrong, "w", encoding="utf-8") as handle:
        handle.write(text.replace(cluster.secret, secrets.token_urlsafe(32)))
    os.chown(wrong, pwd.getpwnam("postgres").pw_uid, -1)
    undecryptable = cluster.module("keneyapp.deploy.pgbackrest_info", {"stanza": STANZA, "config": wrong, "run_as": "postgres"})
    assert undecryptable["failed"] and "cannot be decrypted" in undecryptable["msg"], undecryptable

    assert cluster.info()["backup"] == before
    assert cluster.psql("SHOW archive_command").startswith("/usr/bin/pgbackrest")


def test_the_cipher_pass_is_never_printed(cluster):
    assert cluster.outputs, "runs before this one recorded their output"
    for output in cluster.outputs:
        assert cluster.secret not in output
    logs = os.path.join(cluster.base, "log")
    for name in os.listdir(logs):
        with open(os.path.join(logs, name), encoding="utf-8", errors="replace") as handle:
            assert cluster.secret not in handle.read(), name
