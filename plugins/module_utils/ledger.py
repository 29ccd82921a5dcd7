# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit ledger's records and chain (pure): canonical form, hashes, scrubbing, verification.

A record is a JSON object. Its canonical line is ``json.dumps(sort_keys, compact,
ensure_ascii=False)``; ``hash`` is the SHA-256 of the canonical line of the record
without its ``hash`` key, and ``prev_hash`` is the previous record's ``hash`` (64 zeros
for the first), ``seq`` counts from 1. Editing a byte changes a hash; deleting or
swapping lines breaks ``seq`` and ``prev_hash``; a line cut short is not JSON.
Truncating the ledger after a record cannot be seen from the ledger alone: compare the
``head`` (count and last hash) :func:`verify_lines` reports with one kept elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import re

GENESIS = "0" * 64
REDACTED = "********"
# Keys whose values never reach a record, at any depth (lower case, substring match).
SECRET_KEYS = ("password", "passwd", "secret", "token", "cipher_pass", "api_key", "apikey", "private_key",
               "authorization", "credential", "vault", "dsn")
# user:password@ in URLs (postgresql://, https://, ...).
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@", re.I)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def canonical(record):
    """The one byte sequence a record hashes to (UTF-8 of compact, key-sorted JSON)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record):
    """SHA-256 (hex) of the record without its ``hash`` key."""
    body = dict(record)
    body.pop("hash", None)
    return hashlib.sha256(canonical(body)).hexdigest()


def scrub(value, secrets=()):
    """``value`` with secret-looking keys, URL passwords and the given secret strings replaced by ``********``."""
    if isinstance(value, dict):
        return {key: (REDACTED if any(s in str(key).lower() for s in SECRET_KEYS) and value[key] not in (None, "")
                      else scrub(value[key], secrets)) for key in value}
    if isinstance(value, (list, tuple)):
        return [scrub(item, secrets) for item in value]
    if isinstance(value, str):
        text = _URL_PASSWORD.sub(lambda m: "%s%s:%s@" % (m.group("scheme"), m.group("user"), REDACTED), value)
        for secret in secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, REDACTED)
        return text
    return value


def chain(fields, previous, secrets=()):
    """The record that follows ``previous`` (None for the first): scrubbed ``fields`` plus seq, prev_hash, hash."""
    record = scrub(dict(fields), secrets)
    for key in ("seq", "prev_hash", "hash"):
        record.pop(key, None)
    record["seq"] = previous["seq"] + 1 if previous else 1
    record["prev_hash"] = previous["hash"] if previous else GENESIS
    record["hash"] = record_hash(record)
    return record


def parse_line(line):
    """A stored line as a record dict, or raise ValueError saying why it is not one."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError("not JSON (%s)" % exc)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key in ("seq", "prev_hash", "hash"):
        if key not in record:
            raise ValueError("no %s" % key)
    return record


def check_next(record, previous):
    """Why ``record`` cannot follow ``previous`` in the chain (None when it can)."""
    expected_seq = previous["seq"] + 1 if previous else 1
    if record["seq"] != expected_seq:
        return "seq %s where %s was expected (a record deleted, inserted or moved)" % (record["seq"], expected_seq)
    expected_prev = previous["hash"] if previous else GENESIS
    if record["prev_hash"] != expected_prev:
        return "prev_hash does not match the hash of the record before it (records deleted, inserted or moved)"
    if not (isinstance(record["hash"], str) and _HEX64.match(record["hash"])) or record_hash(record) != record["hash"]:
        return "its content does not match its hash (the record was edited)"
    return None


def verify_lines(lines, torn_tail=None):
    """Verify a sequence of stored lines (``(number, text)``); return the report.

    ``torn_tail`` is ``(number, text)`` of bytes after the last newline of a file (a write
    cut short), reported apart: it never was a record.
    """
    previous = None
    count = 0
    broken = None
    for number, text in lines:
        try:
            record = parse_line(text)
            reason = check_next(record, previous)
        except ValueError as exc:
            reason = str(exc)
        if reason:
            broken = {"line": number, "reason": reason}
            break
        previous = record
        count += 1
    report = {
        "ok": broken is None and torn_tail is None,
        "records": count,
        "head": {"seq": previous["seq"], "hash": previous["hash"]} if previous else None,
        "first_broken": broken,
        "torn": {"line": torn_tail[0], "bytes": len(torn_tail[1].encode("utf-8"))} if torn_tail else None,
    }
    return report


def describe(report, where):
    """One line a person reads: the ledger verifies, or where and why it does not."""
    if report["first_broken"]:
        return "Ledger %s is broken at line %d: %s. %d record(s) before it verify." % (
            where, report["first_broken"]["line"], report["first_broken"]["reason"], report["records"])
    if report["torn"]:
        return ("Ledger %s ends with a torn line %d (%d bytes, a write cut short); the %d record(s) before it verify. "
                "The next append moves the torn bytes aside." % (
                    where, report["torn"]["line"], report["torn"]["bytes"], report["records"]))
    head = report["head"]
    return "Ledger %s verifies: %d record(s), head %s." % (
        where, report["records"], ("seq %d, hash %s" % (head["seq"], head["hash"])) if head else "empty")


def select(records, match=None, limit=1):
    """The newest ``limit`` records whose fields equal every item of ``match`` (newest first)."""
    match = match or {}
    found = []
    for record in reversed(list(records)):
        if all(record.get(key) == value for key, value in match.items()):
            found.append(record)
            if len(found) >= limit:
                break
    return found
