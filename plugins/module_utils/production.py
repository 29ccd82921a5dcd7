# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a production release must satisfy before anything changes (pure).

Each check returns problems as one line each: what is wrong, and the fix. The module
(production_preflight) reports them all at once, so one run shows everything to fix.
"""

from __future__ import annotations

import datetime

TRUE = ("1", "true", "yes", "on")
# Markers of a development or example secret.
WEAK_SECRET_MARKERS = ("dev", "change-me", "changeme", "insecure", "example", "secret", "test", "default", "password")
MIN_SECRET_LENGTH = 32


def _on(value):
    return str(value).strip().lower() in TRUE


def settings_problems(settings, secret_key):
    """DEBUG, the bootstrap admin, origins and the secret key of production settings."""
    problems = []
    if _on(settings.get("DEBUG", "False")):
        problems.append("DEBUG is on (keneyapp_app_settings.DEBUG=%s): set it to \"False\" for production."
                        % settings.get("DEBUG"))
    if _on(settings.get("ENABLE_BOOTSTRAP_ADMIN", "False")):
        problems.append("The bootstrap admin is enabled (keneyapp_app_settings.ENABLE_BOOTSTRAP_ADMIN): set it to "
                        "\"False\"; create administrators through the app.")
    origins = [o.strip() for o in str(settings.get("ALLOWED_ORIGINS", "")).split(",") if o.strip()]
    plain = [o for o in origins if not o.lower().startswith("https://")]
    if not origins:
        problems.append("keneyapp_app_settings.ALLOWED_ORIGINS is empty: list the https origins of the frontend.")
    elif plain:
        problems.append("keneyapp_app_settings.ALLOWED_ORIGINS has origins that are not https: %s. Production serves "
                        "https only." % ", ".join(plain))
    secret = secret_key or ""
    if not secret:
        problems.append("keneyapp_secret_key is empty: set KENEYAPP_SECRET_KEY (from the vault) for the run.")
    elif len(secret) < MIN_SECRET_LENGTH or any(m in secret.lower() for m in WEAK_SECRET_MARKERS):
        # Never repeat the value: say only what is wrong with it.
        problems.append("keneyapp_secret_key looks like a development secret (shorter than %d characters or a word "
                        "such as dev, test, example, change-me): use the production key from the vault."
                        % MIN_SECRET_LENGTH)
    return problems


def approval_problems(approved_by, change_ticket, awx_workflow_job_id=None):
    """An approver and a change ticket, or an AWX workflow (its approval node) with a ticket."""
    problems = []
    if not (approved_by or "").strip() and not awx_workflow_job_id:
        problems.append("No approval: add -e approved_by=<who approved> (or run from the AWX workflow with its "
                        "approval node).")
    if not (change_ticket or "").strip():
        problems.append("No change ticket: add -e change_ticket=<ticket id>.")
    return problems


def _when(text, name):
    try:
        value = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("%s=%r is not an ISO 8601 time such as 2026-12-24T00:00:00+00:00" % (name, text))
    if value.tzinfo is None:
        raise ValueError("%s=%r has no time zone: write it with +00:00 or Z" % (name, text))
    return value


def freeze_problems(windows, now):
    """The change freeze windows (``{start, end, reason}``, ISO 8601 with a zone) that hold ``now``."""
    problems = []
    for number, window in enumerate(windows or [], 1):
        try:
            start = _when(window.get("start"), "keneyapp_change_freeze[%d].start" % number)
            end = _when(window.get("end"), "keneyapp_change_freeze[%d].end" % number)
        except ValueError as exc:
            problems.append("%s." % exc)
            continue
        if start <= now < end:
            problems.append("A change freeze is in force until %s (%s): release after it, or change "
                            "keneyapp_change_freeze with the change board's agreement." % (
                                end.isoformat(), window.get("reason") or "no reason given"))
    return problems


def staged(records, version, staging="staging"):
    """The ledger record of a successful release of ``version`` to ``staging`` (None when there is none)."""
    found = None
    for record in records:
        if (record.get("event") == "release" and record.get("environment") == staging
                and record.get("outcome") == "success" and record.get("version_to") == version):
            found = record
    return found


def ledger_problems(report, where):
    """A broken chain (``ledger.verify_lines``'s report) cannot prove a staging release: refuse, naming the line."""
    broken = report.get("first_broken")
    if not broken:
        return []
    return ["The audit ledger %s is broken at line %d: %s. It cannot prove the staging release: run "
            "playbooks/audit_verify.yml -e keneyapp_ledger=<the same ledger> to see the damage, and restore the ledger "
            "from a copy you trust (never edit it by hand) before releasing." % (where, broken["line"], broken["reason"])]


def staging_problems(records, version, staging="staging"):
    if staged(records, version, staging):
        return []
    return ["%s was never released successfully to %s (no such record in the audit ledger): release it there first."
            % (version, staging)]


def _hours(seconds):
    return "%d s" % seconds if seconds < 120 else "%d min" % (seconds // 60) if seconds < 7200 else "%.1f h" % (seconds / 3600.0)


def backup_problems(backup, rpo_seconds):
    """The newest backup against the RPO; ``backup`` is pgbackrest_info's result (or ``{"error": ...}``)."""
    if backup is None:
        return []
    if backup.get("error") or backup.get("failed"):
        return ["The backups could not be read (%s): check keneyapp_backup_stanza and keneyapp_backup_config_path."
                % (backup.get("error") or backup.get("msg") or "unknown error")]
    newest = backup.get("newest")
    if not newest:
        return ["There is no backup of stanza %s: run playbooks/backup.yml, then release."
                % backup.get("stanza", "?")]
    age = int(newest.get("age_seconds") or 0)
    if age > rpo_seconds:
        return ["The newest backup (%s) is %s old, older than the RPO of %s (keneyapp_rpo_seconds=%d): run "
                "playbooks/backup.yml, then release." % (newest.get("label"), _hours(age), _hours(rpo_seconds), rpo_seconds)]
    return []


def migration_problems(blocking):
    """One line per blocking lint finding on the pending revisions."""
    return ["Migration %s is not backward compatible (%s): split it into expand and contract releases, allow the "
            "reviewed finding in keneyapp_migration_allow, or release with -e strategy=maintenance."
            % (finding.get("revision", "?"), finding.get("rule", "?")) for finding in blocking]
