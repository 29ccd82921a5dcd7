# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgbackrest_backup and pgbackrest_info modules' work: run the pgbackrest CLI, summarise with pgbackrest.py."""

from __future__ import annotations

import os
import pwd
import time

from ansible_collections.keneyapp.deploy.plugins.module_utils import pgbackrest
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError, NotFound


def user_prefix(module, run_as):
    """argv prefix that runs a command as ``run_as``: none when this process already is that user.

    Root switches with runuser (no sudo needed, no password, no Ansible temporary files for the
    target user to read); any other user must already be ``run_as`` (Ansible's become).
    """
    if not run_as:
        return []
    current = pwd.getpwuid(os.geteuid()).pw_name
    if current == run_as:
        return []
    try:
        pwd.getpwnam(run_as)
    except KeyError as exc:
        raise InvalidInput("run_as=%s: there is no such OS user here." % run_as,
                           fix="Give the user that owns the PostgreSQL cluster (usually postgres).") from exc
    if os.geteuid() != 0:
        raise InvalidInput("run_as=%s: the module runs as %s, which cannot switch user." % (run_as, current),
                           fix="Run the task as root, or as %s with become_user: %s." % (run_as, run_as))
    runuser = module.get_bin_path("runuser")
    if not runuser:
        raise NotFound("run_as=%s needs runuser (util-linux), which is not installed." % run_as,
                       fix="Install util-linux, or drop run_as and use become_user: %s." % run_as)
    return [runuser, "-u", run_as, "--"]


class Cli:
    """Runs ``pgbackrest`` for one stanza and turns a failure into one clear error."""

    def __init__(self, module):
        params = module.params
        self.module = module
        self.stanza = params["stanza"]
        self.config = params.get("config")
        binary = module.get_bin_path("pgbackrest")
        if not binary:
            raise NotFound("pgbackrest is not installed on this host.",
                           fix="Install the pgbackrest package (the keneyapp.deploy.db_backup role expects it).")
        self.binary = binary
        self.prefix = user_prefix(module, params.get("run_as"))

    def run(self, verb, argv, check=True):
        # cwd=/: the target user may not be allowed into the directory Ansible runs from (/root).
        # errors=replace: a repository read with the wrong cipher pass makes pgBackRest quote undecryptable bytes.
        rc, out, err = self.module.run_command(self.prefix + argv, cwd="/", errors="replace")
        if rc != 0 and check:
            raise pgbackrest.explain(verb, rc, "%s\n%s" % (out, err), self.stanza, self.config)
        return rc, out, err

    def verify(self):
        """(ok, problems): ``pgbackrest verify`` reads every backup and WAL file of every repository."""
        rc, out, err = self.run("verify", pgbackrest.command(self.binary, self.stanza, "verify", self.config,
                                                             ["--log-level-console=info"]), check=False)
        return pgbackrest.verify_result(rc, "%s\n%s" % (out, err))

    def info(self):
        return pgbackrest.parse_info(self.run("info", pgbackrest.info_argv(self.binary, self.stanza, self.config))[1],
                                     self.stanza)


def run_info(module):
    params = module.params
    pgbackrest.validate(params["stanza"])
    if params["max_age_seconds"] is not None and params["max_age_seconds"] < 0:
        raise InvalidInput("max_age_seconds=%d is negative." % params["max_age_seconds"], fix="Give the RPO in seconds (21600 is 6 h).")
    cli = Cli(module)
    entry = cli.info()
    result = pgbackrest.summarize_info(entry, time.time(), params["max_age_seconds"])
    result["changed"] = False
    result["verified"], result["verify_problems"] = cli.verify() if params["verify"] else (None, [])
    return result


def run_backup(module):
    params = module.params
    annotation = {str(k): str(v) for k, v in (params["annotation"] or {}).items()}
    pgbackrest.validate(params["stanza"], params["type"], None, annotation)
    for repo in params["repos"] or []:
        pgbackrest.validate(params["stanza"], params["type"], repo)
    cli = Cli(module)
    before = cli.info()
    configured = pgbackrest.repo_keys(before)
    repos = params["repos"] or configured
    unknown = [r for r in repos if r not in configured]
    if unknown:
        raise InvalidInput("repos=%s: stanza '%s' has no repository %s (configured: %s)." % (
            repos, params["stanza"], ", ".join(str(r) for r in unknown), ", ".join(str(r) for r in configured)),
            fix="Give configured repository numbers, or leave repos out to back up to all of them.")
    planned = [{"repo": r, "type": params["type"]} for r in repos]
    result = {"changed": True, "stanza": params["stanza"], "type": params["type"], "repos": repos, "planned": planned,
              "backups": [], "label": None}
    if module.check_mode:
        return result
    known = pgbackrest.labels(before)
    done = []
    for repo in repos:
        argv = pgbackrest.backup_argv(cli.binary, params["stanza"], params["type"], repo, cli.config, annotation)
        try:
            cli.run("backup", argv)
        except KeneyappDeployError as exc:
            # Backups already taken into earlier repositories stay: say which.
            exc.details["completed_repos"] = done
            if done:
                exc.message += " The backup into repo %s completed before this failure." % ", ".join(str(r) for r in done)
            raise
        done.append(repo)
    after = cli.info()
    backups = [pgbackrest.new_backup(known, after, repo) for repo in repos]
    result["backups"] = [b for b in backups if b]
    if result["backups"]:
        first = result["backups"][0]
        # The top-level fields describe the backup in the first repository (what most callers record).
        result.update({key: first[key] for key in ("label", "size", "repo_size", "start", "stop", "start_iso",
                                                   "stop_iso", "duration_seconds", "wal_start", "wal_stop")})
        result["type"] = first["type"]
    return result
