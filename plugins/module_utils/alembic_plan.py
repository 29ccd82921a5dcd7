# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of alembic_migration: which way a target lies, durations, what a failure says.

No alembic, SQLAlchemy or Ansible import here: the runner hands over plain values.
"""

from __future__ import annotations

import re

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

UPGRADE, DOWNGRADE, NONE = "upgrade", "downgrade", "none"
# PostgreSQL durations as the SET command takes them: 5s, 500ms, 2min, 0 (no limit).
_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")
_RELATIVE = re.compile(r"^(?:(.+?)@)?(\w+)?([+-]\d+)$")
# The header alembic writes before each revision of an offline (--sql) script.
_RUNNING = re.compile(r"^-- Running (upgrade|downgrade) (.*?) -> (.*)$")


def check_duration(name, value):
    """Return ``value`` when PostgreSQL accepts it as a duration, else raise InvalidInput."""
    text = str(value).strip()
    if not _DURATION.match(text):
        raise InvalidInput("%s=%r is not a PostgreSQL duration." % (name, value),
                           fix="Write it as 5s, 500ms, 2min or 0 (no limit).")
    return text


def session_options(lock_timeout, statement_timeout):
    """The libpq ``options`` string that sets both timeouts on every connection of the run."""
    return "-c lock_timeout=%s -c statement_timeout=%s" % (
        check_duration("lock_timeout", lock_timeout).replace(" ", ""),
        check_duration("statement_timeout", statement_timeout).replace(" ", ""))


def relative_direction(target):
    """``upgrade`` for ``+N``/``head``, ``downgrade`` for ``-N``/``base``, None for a revision id."""
    if target in ("head", "heads"):
        return UPGRADE
    if target == "base":
        return DOWNGRADE
    match = _RELATIVE.match(target)
    if match:
        return UPGRADE if match.group(3).startswith("+") else DOWNGRADE
    return None


def direction(target, upgrade_path, downgrade_path):
    """Pick the direction from the two paths alembic computed from the current revision.

    ``upgrade_path``/``downgrade_path`` are the revisions an upgrade/downgrade to ``target``
    would run (None when alembic refused that direction).
    """
    relative = relative_direction(target)
    if relative == UPGRADE:
        return (UPGRADE, upgrade_path) if upgrade_path else (NONE, [])
    if relative == DOWNGRADE:
        return (DOWNGRADE, downgrade_path) if downgrade_path else (NONE, [])
    if upgrade_path:
        return UPGRADE, upgrade_path
    if downgrade_path:
        return DOWNGRADE, downgrade_path
    return NONE, []


def refuse_downgrade(current, target, path):
    """The message for a downgrade asked without allow_downgrade=true."""
    return InvalidInput(
        "Revision %r is below the database's revision %s: reaching it means downgrading %s." % (
            target, current or "base", ", ".join(path)),
        fix="Downgrades drop data written since; take a backup first and set allow_downgrade=true to proceed.")


def split_offline_sql(text):
    """Split an offline alembic script into ``[{revision, direction, from, sql}]`` plus the preamble.

    Lines before the first ``-- Running`` header (session SETs, the alembic_version table)
    form the preamble, returned under revision None.
    """
    parts = [{"revision": None, "direction": None, "from": None, "lines": []}]
    for line in text.splitlines():
        match = _RUNNING.match(line.strip())
        if match:
            kind, frm, to = match.groups()
            # An upgrade runs "from -> to"; a downgrade undoes "from" and lands on "to".
            parts.append({"revision": to if kind == UPGRADE else frm, "direction": kind,
                          "from": frm, "lines": [line]})
        else:
            parts[-1]["lines"].append(line)
    result = []
    for part in parts:
        sql = "\n".join(part.pop("lines")).strip()
        if part["revision"] is None and not sql:
            continue
        part["sql"] = sql + "\n" if sql else ""
        result.append(part)
    return result


def failing_revision(path, applied):
    """The revision that failed: the first of ``path`` that ``applied`` does not hold."""
    for revision in path:
        if revision not in applied:
            return revision
    return None


def failure_message(revision, direction_, statement, reason, invalid_indexes, dropped, at_revision):
    """One message: which revision, which statement, why, what was left, and where the database is."""
    text = "Revision %s failed during %s" % (revision, direction_)
    if statement:
        text += " at the statement: %s" % " ".join(statement.split())[:500]
    # PostgreSQL's reason and its DETAIL line (the duplicated key, the blocking lock).
    lines = [line.strip() for line in (reason or "").strip().splitlines()[:2] if line.strip()]
    text += (". %s." % " ".join(lines).rstrip(".")) if lines else "."
    text += " The database stays at revision %s (the failing revision was rolled back and not stamped)." % (
        at_revision or "base")
    fix = "Fix the revision, then run again."
    if invalid_indexes:
        if dropped:
            text += " Its CONCURRENTLY build left the INVALID index(es) %s, now dropped." % ", ".join(invalid_indexes)
        else:
            text += " Its CONCURRENTLY build left the INVALID index(es) %s." % ", ".join(invalid_indexes)
            fix = ("Drop them before retrying (DROP INDEX CONCURRENTLY %s;) or run again with drop_invalid_indexes=true."
                   % ", ".join(invalid_indexes))
    return text, fix
