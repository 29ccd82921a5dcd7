# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest: command lines, ``info --output=json`` summaries, backup age and error messages (pure functions).

Nothing here runs a command; pgbackrest_runner.py does, with these argv lists.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError, NotFound

BACKUP_TYPES = ("full", "diff", "incr")
STANZA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ANNOTATION_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ERROR_RE = re.compile(r"^ERROR: \[(\d+)\]: (.*)$", re.MULTILINE)
# A connection failure is a WARN line ("unable to check pg1: [DbConnectError] ...") before the ERROR.
CONNECT_RE = re.compile(r"\[DbConnectError\] (.*)$", re.MULTILINE)


def validate(stanza, backup_type="full", repo=None, annotation=None):
    """Refuse inputs pgBackRest would refuse, with the fix, before anything runs."""
    if not stanza or not STANZA_RE.match(stanza):
        raise InvalidInput("stanza=%r is not a pgBackRest stanza name." % (stanza,),
                           fix="Use letters, digits, '_', '.', '-' (for example keneyapp).")
    if backup_type not in BACKUP_TYPES:
        raise InvalidInput("type=%r is not a backup type." % (backup_type,), fix="Use full, diff or incr.")
    if repo is not None and (isinstance(repo, bool) or not isinstance(repo, int) or not 1 <= repo <= 256):
        raise InvalidInput("repo=%r is not a repository number." % (repo,), fix="Use 1 to 256 (repo1 is 1).")
    for key, value in (annotation or {}).items():
        if not ANNOTATION_KEY_RE.match(str(key)) or "\n" in str(value):
            raise InvalidInput("annotation key %r is not usable." % (key,),
                               fix="Use keys of letters, digits, '_', '.', '-' and one-line values.")


def command(binary, stanza, name, config=None, options=None):
    """argv of ``pgbackrest [--config=C] --stanza=S [options...] <name>`` (options: a list of '--x=y' strings)."""
    argv = [binary]
    if config:
        argv.append("--config=%s" % config)
    argv.append("--stanza=%s" % stanza)
    argv.extend(options or [])
    argv.append(name)
    return argv


def backup_argv(binary, stanza, backup_type, repo=None, config=None, annotation=None):
    """argv of one backup into one repository (``repo=None``: pgBackRest's default, repo1)."""
    options = ["--type=%s" % backup_type]
    if repo is not None:
        options.append("--repo=%d" % repo)
    for key in sorted(annotation or {}):
        options.append("--annotation=%s=%s" % (key, annotation[key]))
    return command(binary, stanza, "backup", config, options)


def info_argv(binary, stanza, config=None):
    return command(binary, stanza, "info", config, ["--output=json"])


def parse_info(text, stanza):
    """The stanza's entry of ``pgbackrest info --output=json``.

    A stanza the configuration names but that was never created reports every repository
    as "missing stanza path": that is NotFound, with the fix.
    """
    try:
        # strict=False: a repository read with the wrong cipher pass puts raw bytes in its status message.
        entries = json.loads(text, strict=False)
    except ValueError as exc:
        raise KeneyappDeployError("pgbackrest info printed no JSON (%s): %s" % (exc, text[:300])) from exc
    found = [entry for entry in entries if entry.get("name") == stanza]
    if not found:
        raise NotFound("pgbackrest info does not list stanza '%s'." % stanza,
                       fix="Check the stanza name and the configuration file (config).")
    entry = found[0]
    repos = entry.get("repo") or []
    if repos and all((r.get("status") or {}).get("code") == 1 for r in repos):
        raise NotFound("Stanza '%s' has not been created in its repositories (%s)." % (
            stanza, (entry.get("status") or {}).get("message", "missing stanza path")),
            fix="Run the keneyapp.deploy.db_backup role (it runs stanza-create), or pgbackrest stanza-create.")
    for repo in repos:
        status = repo.get("status") or {}
        message = status.get("message") or ""
        if status.get("code") == 99 and ("FormatError" in message or "CryptoError" in message):
            raise KeneyappDeployError(
                "Stanza '%s': the files of repo%s cannot be decrypted or parsed." % (stanza, repo.get("key")),
                fix="Check that its cipher pass (keneyapp_backup_cipher_pass) is the one the repository was created with.")
        if status.get("code") == 99:
            raise KeneyappDeployError("Stanza '%s': repo%s cannot be read (%s)." % (stanza, repo.get("key"), message[:300]),
                                      fix="Check the repository path and its permissions for the cluster's owner.")
    return entry


def iso(epoch):
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def summarize_backup(backup):
    """One backup of the info JSON as the modules return it (sizes in bytes, times as epoch and ISO 8601 UTC)."""
    stamp = backup.get("timestamp") or {}
    info = backup.get("info") or {}
    repository = info.get("repository") or {}
    archive = backup.get("archive") or {}
    start, stop = stamp.get("start"), stamp.get("stop")
    return {
        "label": backup.get("label"),
        "type": backup.get("type"),
        "repo": (backup.get("database") or {}).get("repo-key"),
        "prior": backup.get("prior"),
        "size": info.get("size"),
        "delta": info.get("delta"),
        "repo_size": repository.get("size"),
        "repo_delta": repository.get("delta"),
        "start": start,
        "stop": stop,
        "start_iso": iso(start),
        "stop_iso": iso(stop),
        "duration_seconds": (stop - start) if start is not None and stop is not None else None,
        "wal_start": archive.get("start"),
        "wal_stop": archive.get("stop"),
        "lsn_start": (backup.get("lsn") or {}).get("start"),
        "lsn_stop": (backup.get("lsn") or {}).get("stop"),
        "annotation": backup.get("annotation") or {},
        "error": bool(backup.get("error")),
    }


def summarize_info(entry, now, max_age_seconds=None):
    """What pgbackrest_info returns for one stanza entry, ``now`` in epoch seconds.

    ``newest`` is the backup that finished last over every repository; ``age_seconds``
    counts from its stop time; ``rpo_ok`` compares it with ``max_age_seconds`` (None: not asked).
    """
    backups = sorted((summarize_backup(b) for b in entry.get("backup") or []),
                     key=lambda b: (b["stop"] or 0, b["repo"] or 0, b["label"] or ""))
    newest = dict(backups[-1]) if backups else None
    if newest:
        newest["age_seconds"] = max(0, int(now - newest["stop"]))
    repos = []
    for repo in entry.get("repo") or []:
        key = repo.get("key")
        mine = [b for b in backups if b["repo"] == key]
        repos.append({
            "key": key,
            "cipher": repo.get("cipher"),
            "status_code": (repo.get("status") or {}).get("code"),
            "status": (repo.get("status") or {}).get("message"),
            "backup_count": len(mine),
            "full_count": len([b for b in mine if b["type"] == "full"]),
            "newest_label": mine[-1]["label"] if mine else None,
        })
    archive = [{"repo": (a.get("database") or {}).get("repo-key"), "id": a.get("id"), "min": a.get("min"),
                "max": a.get("max")} for a in entry.get("archive") or []]
    status = entry.get("status") or {}
    result = {
        "stanza": entry.get("name"),
        "status_code": status.get("code"),
        "status": status.get("message"),
        "cipher": entry.get("cipher"),
        "repos": repos,
        "backups": backups,
        "backup_count": len(backups),
        "newest": newest,
        "archive": archive,
        "rpo_ok": None,
    }
    if max_age_seconds is not None:
        result["rpo_ok"] = bool(newest) and newest["age_seconds"] <= max_age_seconds
    return result


def new_backup(before_labels, entry, repo=None):
    """The backup in ``entry`` that ``before_labels`` did not have (in ``repo`` when given), newest first."""
    summaries = [summarize_backup(b) for b in entry.get("backup") or []]
    fresh = [b for b in summaries if (b["repo"], b["label"]) not in before_labels and (repo is None or b["repo"] == repo)]
    if not fresh:
        return None
    return sorted(fresh, key=lambda b: (b["stop"] or 0, b["label"]))[-1]


def labels(entry):
    """{(repo, label)} of every backup of a stanza entry."""
    return {((b.get("database") or {}).get("repo-key"), b.get("label")) for b in entry.get("backup") or []}


def repo_keys(entry):
    return sorted(r.get("key") for r in entry.get("repo") or [] if r.get("key") is not None)


def verify_result(rc, output):
    """(ok, problems) of ``pgbackrest verify``: its exit code and its WARN/ERROR lines (invalid files, missing WAL)."""
    problems = [line.strip() for line in (output or "").splitlines()
                if re.match(r"^\s*(\S+ \S+ P\d+\s+)?(WARN|ERROR)", line)]
    return rc == 0 and not problems, problems


def error_lines(output):
    """pgBackRest's ERROR lines with their HINTs, as one line."""
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    kept = [line for line in lines if line.startswith(("ERROR:", "HINT:"))]
    return " ".join(kept or lines[-3:])


def explain(verb, rc, output, stanza, config=None):
    """One clear KeneyappDeployError for a failed ``pgbackrest <verb>`` (exit ``rc``, its stdout+stderr).

    pgBackRest redacts cipher passes from what it prints, so its text can be quoted.
    """
    codes = [int(code) for code, _text in ERROR_RE.findall(output or "")]
    code = codes[0] if codes else None
    text = error_lines(output)
    where = "configuration %s" % config if config else "the default configuration (/etc/pgbackrest/pgbackrest.conf)"
    connect = CONNECT_RE.search(output or "")
    details = {"rc": rc, "pgbackrest_error": code}
    if code == 29 or "FormatError" in text or "CryptoError" in text:
        # Do not quote the text: it holds the bytes pgBackRest could not decrypt.
        fix = ("Check that the repository cipher pass in %s is the one the repository was created with "
               "(keneyapp_backup_cipher_pass)." % where)
        return KeneyappDeployError(
            "pgbackrest %s: the repository files of stanza '%s' cannot be decrypted or parsed (pgBackRest error %s)." % (
                verb, stanza, code), fix=fix, **details)
    if code == 55 and "unable to open missing file" in text and "info file" not in text:
        return NotFound("pgbackrest %s on stanza '%s': the %s cannot be read (%s)." % (verb, stanza, where, text),
                        fix="Pass config (the file the db_backup role renders) or run the keneyapp.deploy.db_backup role.",
                        **details)
    if code == 37 and ("pg1-path" in text or "does this stanza exist" in text):
        return NotFound("pgbackrest %s: stanza '%s' is not in %s." % (verb, stanza, where),
                        fix="Check the stanza name, or configure it with the keneyapp.deploy.db_backup role "
                            "(keneyapp_backup_stanza).", **details)
    if code == 55 and ("stanza-create" in text or "info file" in text):
        return NotFound("pgbackrest %s: stanza '%s' has not been created in its repositories." % (verb, stanza),
                        fix="Run the keneyapp.deploy.db_backup role (it runs stanza-create), or pgbackrest stanza-create.",
                        **details)
    if connect or code in (56,) or (code == 27 and "no database found" in text):
        cause = connect.group(1).strip() if connect else text
        return KeneyappDeployError(
            "pgbackrest %s: cannot connect to the PostgreSQL server of stanza '%s' (%s). Nothing was backed up." % (
                verb, stanza, cause),
            fix="Start the server, or fix pg1-port / pg1-socket-path / pg1-user in %s; pgBackRest connects as the OS "
                "user that owns the cluster (run_as, usually postgres)." % where, **details)
    if code == 82:
        return KeneyappDeployError(
            "pgbackrest %s: WAL did not reach the repository of stanza '%s' (%s)." % (verb, stanza, text),
            fix="Point archive_command at this stanza (the keneyapp.deploy.db_backup role sets it) and check the "
                "PostgreSQL log.", **details)
    if code == 68:
        return KeneyappDeployError("pgbackrest %s: PostgreSQL does not archive WAL with pgBackRest (%s)." % (verb, text),
                                   fix="Run the keneyapp.deploy.db_backup role: it sets archive_command and reloads.",
                                   **details)
    if code == 50:
        return KeneyappDeployError("pgbackrest %s: another pgBackRest command holds the lock of stanza '%s' (%s)." % (
            verb, stanza, text), fix="Wait for it to finish (a scheduled backup?) and run again.", **details)
    if code in (31, 32):
        return InvalidInput("pgbackrest %s refused an option (%s)." % (verb, text),
                            fix="Check repo (a configured repository number), type and annotation.", **details)
    return KeneyappDeployError("pgbackrest %s on stanza '%s' failed (exit %s): %s" % (verb, stanza, rc, text or "no output"),
                               **details)
