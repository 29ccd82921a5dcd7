# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration safety lint (pure): alembic's offline SQL split into statements attributed to
their revision, squawk's findings mapped onto them, the gaps squawk leaves filled by a
small statement classifier, each revision classed expand, contract or data, and the
allow list applied.

Nothing here runs alembic or squawk; ``migration_lint_runner`` does, and hands the
rendered SQL and squawk's JSON findings to :func:`lint`.
"""

from __future__ import annotations

import re

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

# squawk rules switched off (--exclude) because alembic's output trips them on every run
# without pointing at a backward-compatibility or locking problem. Reasons go to the README.
NOISE_RULES = {
    "transaction-nesting": "alembic writes its own BEGIN/COMMIT around each revision (and COMMIT/BEGIN around an "
                           "autocommit block); that nesting is by design.",
    "prefer-robust-stmts": "asks for IF NOT EXISTS / IF EXISTS so a half-applied file can be re-run; alembic runs each "
                           "revision in a transaction and stamps it, so a failed revision rolls back and re-runs cleanly.",
    "require-timeout-settings": "a reminder to SET lock_timeout/statement_timeout; the migration session sets them "
                                "(env.py, alembic_migration), not each revision.",
    "require-lock-timeout": "same reminder, lock_timeout alone.",
    "require-statement-timeout": "same reminder, statement_timeout alone.",
}

# squawk rules reported but never blocking: type and naming advice that neither breaks the
# running version nor holds a long lock.
ADVISORY_RULES = frozenset((
    "prefer-text-field", "prefer-bigint-over-int", "prefer-bigint-over-smallint", "prefer-identity",
    "prefer-timestamp-tz", "ban-char-field", "require-enum-value-ordering", "identifier-too-long",
    "unused-ignore", "require-table-schema",
    # Dropping a constraint only loosens what writers may do; step 3b of the NOT NULL pattern
    # drops its helper check on purpose.
    "ban-drop-constraint",
))

_NOT_NULL_STEPS = (
    "make a column NOT NULL in separate revisions: add it nullable; backfill it; ADD CHECK (col IS NOT NULL) NOT VALID "
    "(op.create_check_constraint(..., postgresql_not_valid=True)); then, in a later revision, VALIDATE CONSTRAINT, "
    "SET NOT NULL (PostgreSQL 12+ skips the scan thanks to the validated check) and drop the check "
    "(examples/keneyapp/migrations 0004-0007)."
)
_LATER_RELEASE = (
    "first ship a release whose code no longer uses it; drop it in a later release, with an allow entry "
    "{revision: <id>, rule: %s} or strategy=maintenance."
)

SAFE_ALTERNATIVES = {
    "adding-not-nullable-field": "A bare SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock: " + _NOT_NULL_STEPS,
    "adding-required-field": ("Add the column nullable (or with a constant server_default), backfill it, and only once "
                              "every running version writes it " + _NOT_NULL_STEPS),
    "constraint-missing-not-valid": ("Add the constraint NOT VALID in one revision (postgresql_not_valid=True) and run "
                                     "ALTER TABLE ... VALIDATE CONSTRAINT in a later revision: alembic gives each revision "
                                     "its own transaction, so the scan runs under SHARE UPDATE EXCLUSIVE only."),
    "adding-foreign-key-constraint": ("op.create_foreign_key(..., postgresql_not_valid=True) in one revision, "
                                      "VALIDATE CONSTRAINT in a later revision."),
    "disallowed-unique-constraint": ("Build the index first: op.create_index(name, table, cols, unique=True, "
                                     "postgresql_concurrently=True) inside op.get_context().autocommit_block(); then, in a "
                                     "later revision, ALTER TABLE ... ADD CONSTRAINT name UNIQUE USING INDEX name."),
    "adding-serial-primary-key-field": ("CREATE UNIQUE INDEX CONCURRENTLY (in an autocommit_block) first, then ALTER TABLE "
                                        "... ADD CONSTRAINT name PRIMARY KEY USING INDEX name in a later revision."),
    "require-concurrent-index-creation": ("op.create_index(..., postgresql_concurrently=True) inside "
                                          "`with op.get_context().autocommit_block():` (CONCURRENTLY cannot run in a "
                                          "transaction), as examples/keneyapp/migrations 0008 does."),
    "require-concurrent-index-deletion": ("op.drop_index(..., postgresql_concurrently=True) inside "
                                          "`with op.get_context().autocommit_block():`."),
    "ban-concurrent-index-creation-in-transaction": ("Wrap the CONCURRENTLY operation in "
                                                     "`with op.get_context().autocommit_block():`."),
    "require-concurrent-reindex": "REINDEX ... CONCURRENTLY inside `with op.get_context().autocommit_block():`.",
    "ban-drop-column": "Expand/contract: " + _LATER_RELEASE % "ban-drop-column",
    "ban-drop-table": "Expand/contract: " + _LATER_RELEASE % "ban-drop-table",
    "renaming-column": ("Never rename under running versions: add the new column, write both, backfill, move reads "
                        "over in a release, then drop the old column in a later release."),
    "renaming-table": ("Never rename under running versions: create the new table (or a view under the old name), "
                       "move readers and writers over in a release, drop the old name in a later release."),
    "renaming-object": ("Running code and later migrations name the old object: keep the name, or rename in a "
                        "maintenance window (strategy=maintenance)."),
    "changing-column-type": ("Add a column of the new type, write both, backfill in batches, move reads over, and "
                             "drop the old column in a later release. Widening varchar(n) or varchar to text rewrites "
                             "nothing: review it and allow it."),
    "ban-drop-not-null": ("Running code may not expect NULLs: ship code that handles them first, then allow the "
                          "revision ({revision: <id>, rule: ban-drop-not-null})."),
    "ban-drop-default": ("Running code may rely on the default: ship a release that always writes the column, then "
                         "allow the revision ({revision: <id>, rule: ban-drop-default})."),
    "adding-field-with-default": ("Add the column without that default (or with a constant one), backfill it in batches "
                                  "in a later revision, then SET DEFAULT for new rows."),
    "ban-drop-constraint": ("Dropping a constraint only loosens what writers may do: check that no running code relies "
                            "on it (step 3b of the NOT NULL pattern drops its helper check on purpose)."),
    "ban-truncate-cascade": "Name each table to truncate, without CASCADE.",
    "ban-create-domain-with-constraint": ("Put the rule in a table CHECK constraint instead (NOT VALID, then VALIDATE in "
                                          "a later revision)."),
    "ban-alter-domain-with-add-constraint": ("Put the rule in a table CHECK constraint instead (NOT VALID, then VALIDATE "
                                             "in a later revision)."),
    "ban-uncommitted-transaction": "Do not open transactions in op.execute; alembic manages them.",
    "syntax-error": ("squawk could not parse this statement: check that it is valid PostgreSQL 15; if it is, review it "
                     "by hand and allow it ({revision: <id>, rule: syntax-error})."),
    # Rules of this classifier (squawk 2.70 misses these).
    "adding-volatile-default": ("A volatile default (serial, gen_random_uuid(), random(), clock_timestamp(), nextval()) "
                                "rewrites the table under an ACCESS EXCLUSIVE lock: add the column without a default, "
                                "backfill it in batches in a later revision, then SET DEFAULT for new rows."),
    "table-rewrite": ("VACUUM FULL, CLUSTER, SET TABLESPACE and SET LOGGED/UNLOGGED rewrite the table under an ACCESS "
                      "EXCLUSIVE lock: run them in a maintenance window (strategy=maintenance), or use pg_repack "
                      "outside the migration."),
    "ddl-in-do-block": ("squawk cannot read SQL inside a DO block: write the DDL as op.* calls or plain op.execute "
                        "statements; if it must stay dynamic, review it and allow it "
                        "({revision: <id>, rule: ddl-in-do-block})."),
}
_DROP_OBJECT = "Expand/contract: " + _LATER_RELEASE

OWN_MESSAGES = {
    "adding-volatile-default": "Adding a column with a volatile default rewrites the whole table under an ACCESS "
                               "EXCLUSIVE lock.",
    "table-rewrite": "This statement rewrites the whole table under an ACCESS EXCLUSIVE lock.",
    "ddl-in-do-block": "A DO block runs DDL that squawk cannot check.",
}

_MARKER = re.compile(r"^-- Running upgrade (.*?) -> (\S+)\s*$")
_CONTROL = re.compile(r"^(BEGIN|COMMIT|END|ROLLBACK|ABORT|START TRANSACTION|SAVEPOINT|RELEASE|SET|RESET|SHOW)\b")
_DATA = re.compile(r"^(INSERT|UPDATE|DELETE|SELECT|WITH|COPY|VALUES|MERGE|CALL|ANALYZE|NOTIFY|LOCK|REFRESH|REINDEX|"
                   r"VACUUM|CLUSTER|DISCARD|CHECKPOINT|EXPLAIN|TABLE)\b")
_DDL_WORDS = re.compile(r"\b(ALTER|CREATE|DROP|TRUNCATE|RENAME|REINDEX|CLUSTER|VACUUM|COMMENT|GRANT|REVOKE)\b")
_IDENT = r'(?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?'
_ALTER_TABLE = re.compile(r"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?(%s)\s*\*?\s*(.*)$" % _IDENT, re.S)
_CREATE_TABLE = re.compile(r"^CREATE (?:(?:GLOBAL |LOCAL )?(?:TEMP|TEMPORARY|UNLOGGED) )?TABLE (?:IF NOT EXISTS )?(%s)"
                           % _IDENT)
_VOLATILE_TYPE = re.compile(r"^(?:%s) (SMALLSERIAL|SERIAL|BIGSERIAL|SERIAL2|SERIAL4|SERIAL8)\b" % _IDENT)
_VOLATILE_CALL = re.compile(r"\b(GEN_RANDOM_UUID|UUID_GENERATE_V1|UUID_GENERATE_V1MC|UUID_GENERATE_V4|RANDOM|"
                            r"CLOCK_TIMESTAMP|TIMEOFDAY|NEXTVAL|TXID_CURRENT|GEN_RANDOM_BYTES)\s*\(")
_REWRITE_SUB = re.compile(r"^SET (TABLESPACE|LOGGED|UNLOGGED)\b")
_EXCERPT = 160

KINDS = ("expand", "contract", "data")


def parse_stream(sql):
    """Split alembic's offline SQL into statements and revisions.

    Returns ``(revisions, statements)``: revisions in order as ``{revision, down_revision}``
    (from alembic's ``-- Running upgrade A -> B`` lines); statements as ``{text, start,
    end, revision}`` with 0-based first and last line numbers (squawk's numbering) and
    ``revision`` None before the first marker (session SETs, the alembic_version table).
    Quotes, dollar quotes and comments are honoured, so a ``;`` inside them ends nothing.
    """
    revisions, statements = [], []
    current = None
    buf, start = [], None
    i, line, length = 0, 0, len(sql)
    while i < length:
        char = sql[i]
        if char == "-" and sql.startswith("--", i):
            stop = sql.find("\n", i)
            stop = length if stop < 0 else stop
            marker = _MARKER.match(sql[i:stop]) if start is None else None
            if marker:
                current = marker.group(2)
                revisions.append({"revision": current, "down_revision": marker.group(1).strip() or None})
            elif start is not None:
                buf.append(sql[i:stop])
            i = stop
            continue
        if start is None and not char.isspace():
            start = line
        if char == "\n":
            line += 1
        if char in "'\"" or (char == "/" and sql.startswith("/*", i)) or char == "$":
            stop = _quoted_end(sql, i)
            if stop is not None:
                chunk = sql[i:stop]
                buf.append(chunk)
                line += chunk.count("\n")
                i = stop
                continue
        if char == ";":
            statements.append({"text": "".join(buf).strip(), "start": start, "end": line, "revision": current})
            buf, start = [], None
        else:
            buf.append(char)
        i += 1
    if start is not None and "".join(buf).strip():
        statements.append({"text": "".join(buf).strip(), "start": start, "end": line, "revision": current})
    return revisions, statements


def _quoted_end(sql, i):
    """Index just past the quoted span or comment opening at ``i`` (None: not one)."""
    char = sql[i]
    if char in "'\"":
        j = i + 1
        while True:
            j = sql.find(char, j)
            if j < 0:
                return len(sql)
            if sql.startswith(char * 2, j):
                j += 2
                continue
            return j + 1
    if char == "/":
        j = sql.find("*/", i + 2)
        return len(sql) if j < 0 else j + 2
    tag = re.match(r"\$(?:[A-Za-z_][\w]*)?\$", sql[i:])
    if not tag or (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        return None
    j = sql.find(tag.group(0), i + len(tag.group(0)))
    return len(sql) if j < 0 else j + len(tag.group(0))


def normalize(text):
    """Upper-case text of a statement, comments dropped, string contents and dollar bodies blanked."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if text.startswith("--", i):
            stop = text.find("\n", i)
            i = len(text) if stop < 0 else stop
            continue
        stop = _quoted_end(text, i) if char in "'\"/$" else None
        if stop is not None and (char != "/" or text.startswith("/*", i)):
            if char == "'":
                out.append("''")
            elif char == '"':
                out.append(text[i:stop])
            elif char == "$":
                out.append("$$ $$")
            else:
                out.append(" ")
            i = stop
            continue
        out.append(char)
        i += 1
    return re.sub(r"\s+", " ", "".join(out)).strip().upper()


def dollar_bodies(text):
    """The contents of the dollar-quoted bodies of a statement (a DO block's code)."""
    return [m.group(2) for m in re.finditer(r"(\$(?:[A-Za-z_]\w*)?\$)(.*?)\1", text, re.S)]


def _split_top(text):
    """Split at commas outside parentheses (an ALTER TABLE's sub-commands)."""
    parts, depth, buf = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(char)
    parts.append("".join(buf).strip())
    return [part for part in parts if part]


def _table_key(name):
    return name.replace('"', "").lower()


def classify_statement(text, created_tables=()):
    """Class one statement: ``(category, [(rule, message)])``.

    category: ``control`` (BEGIN, COMMIT, SET ...), ``bookkeeping`` (alembic's version
    table), ``data`` (no schema change), ``expand`` (adds or loosens: new table, index,
    nullable column, dropped NOT NULL ...) or ``contract`` (removes or narrows what the
    running version may use: drop, rename, type change, a new NOT NULL, CHECK, UNIQUE,
    FOREIGN KEY or PRIMARY KEY constraint or its validation, a dropped default, truncate).
    The findings are this classifier's own rules, for what squawk 2.70 misses; a table in
    ``created_tables`` (created earlier in the same stream, so empty) is never rewritten
    at a cost.
    """
    norm = normalize(text)
    if not norm or _CONTROL.match(norm):
        return "control", []
    if "VERSION_NUM" in norm and re.match(r"^(INSERT INTO|UPDATE|DELETE FROM|CREATE TABLE)\b", norm):
        return "bookkeeping", []
    if norm.startswith("DO "):
        if any(_DDL_WORDS.search(body.upper()) for body in dollar_bodies(text)):
            return "contract", [("ddl-in-do-block", OWN_MESSAGES["ddl-in-do-block"])]
        return "data", []
    if re.match(r"^(VACUUM \(?[^;]*\bFULL\b|CLUSTER\b)", norm):
        return "data", [("table-rewrite", OWN_MESSAGES["table-rewrite"])]
    if _DATA.match(norm):
        return "data", []
    if re.match(r"^(DROP|TRUNCATE|REVOKE)\b", norm) or re.match(r"^CREATE UNIQUE INDEX\b", norm):
        return "contract", []
    altered = _ALTER_TABLE.match(norm)
    if altered:
        return _classify_alter_table(altered.group(2), _table_key(altered.group(1)) in created_tables)
    if norm.startswith("ALTER ") and re.search(r"\b(RENAME|SET SCHEMA|DROP)\b", norm):
        return "contract", []
    return "expand", []


def _classify_alter_table(rest, new_table):
    kind, findings = "expand", []
    for sub in _split_top(rest):
        sub_kind = _alter_sub_kind(sub)
        if sub_kind == "contract":
            kind = "contract"
        if new_table:
            continue
        if re.match(r"^ADD (?!CONSTRAINT\b|PRIMARY KEY\b|UNIQUE\b|CHECK\b|FOREIGN KEY\b|EXCLUDE\b)", sub):
            column = re.sub(r"^ADD (COLUMN )?(IF NOT EXISTS )?", "", sub)
            if _VOLATILE_TYPE.match(column) or _VOLATILE_CALL.search(column.split(" DEFAULT ", 1)[1]
                                                                     if " DEFAULT " in column else ""):
                findings.append(("adding-volatile-default", OWN_MESSAGES["adding-volatile-default"]))
        elif _REWRITE_SUB.match(sub):
            findings.append(("table-rewrite", OWN_MESSAGES["table-rewrite"]))
    return kind, findings


def _alter_sub_kind(sub):
    if re.match(r"^(DROP|RENAME|VALIDATE|SET SCHEMA)\b", sub):
        return "contract"
    if re.match(r"^ADD (CONSTRAINT|PRIMARY KEY|UNIQUE|CHECK|FOREIGN KEY|EXCLUDE)\b", sub):
        return "contract"
    if sub.startswith("ADD "):
        if re.search(r"\b(UNIQUE|PRIMARY KEY|REFERENCES|CHECK)\b", sub):
            return "contract"
        if re.search(r"\bNOT NULL\b", sub) and not re.search(r"\b(DEFAULT|GENERATED)\b", sub):
            return "contract"
        return "expand"
    column = re.match(r'^ALTER (?:COLUMN )?(?:"[^"]+"|\S+) (.*)$', sub)
    if column and re.match(r"^(TYPE|SET DATA TYPE|SET NOT NULL|DROP DEFAULT|DROP EXPRESSION|DROP IDENTITY)\b",
                           column.group(1)):
        return "contract"
    return "expand"


def excerpt(text):
    """One line of a statement, cut to a readable length."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= _EXCERPT else flat[:_EXCERPT - 3] + "..."


def severity(rule):
    """``advisory`` for squawk's type and naming advice, ``blocking`` for every other rule."""
    return "advisory" if rule in ADVISORY_RULES else "blocking"


def safe_alternative(rule, squawk_help=None):
    """The safe form a finding's message teaches."""
    if rule in SAFE_ALTERNATIVES:
        return SAFE_ALTERNATIVES[rule]
    if rule.startswith("ban-drop-"):
        return _DROP_OBJECT % rule
    return squawk_help or "Review the statement; if it is safe for running versions, allow it ({revision: <id>, rule: %s})." % rule


def _statement_at(statements, line):
    for statement in statements:
        if statement["start"] is not None and statement["start"] <= line <= statement["end"]:
            return statement
    return None


def normalize_allow(entries):
    """Allow-list entries as ``(revision, rule or None)`` pairs.

    An entry is ``{revision: X, rule: Y}`` (rule optional: every rule of X), or the string
    ``X`` or ``X:Y``.
    """
    pairs = []
    for entry in entries or []:
        if isinstance(entry, str) and entry.strip():
            revision, _sep, rule = entry.strip().partition(":")
            pairs.append((revision.strip(), rule.strip() or None))
            continue
        if isinstance(entry, dict) and set(entry) <= {"revision", "rule"} and isinstance(entry.get("revision"), str) \
                and entry["revision"].strip() and (entry.get("rule") is None or isinstance(entry.get("rule"), str)):
            pairs.append((entry["revision"].strip(), (entry.get("rule") or "").strip() or None))
            continue
        raise InvalidInput("allow entry %r is not an allow-list entry." % (entry,),
                           fix="Give {revision: <revision id>, rule: <rule>} (rule optional: every rule of that "
                               "revision), or the string '<revision id>' or '<revision id>:<rule>'.")
    return pairs


def _allowed_by(finding, pairs):
    return any(finding["revision"] == revision and rule in (None, finding["rule"]) for revision, rule in pairs)


def lint(sql, squawk_findings, allow=None, maintenance=False):
    """The lint's verdict on a rendered stream and squawk's JSON findings on it.

    Returns ``{revisions, findings, blocking, allowed, advisory, unused_allow, passed}``:
    every finding is ``{revision, rule, source, severity, line, statement, message,
    safe_alternative}``; ``blocking`` holds the blocking findings no allow entry covers,
    ``allowed`` those one does; ``passed`` is true when nothing blocks, or when the
    release runs in a maintenance window (then the blocking findings are only reported).
    """
    pairs = normalize_allow(allow)
    revisions, statements = parse_stream(sql)
    by_revision = {item["revision"]: dict(item, kind="data", findings=[]) for item in revisions}
    findings, created = [], set()
    for statement in statements:
        category, own = classify_statement(statement["text"], created)
        statement["category"] = category
        made = _CREATE_TABLE.match(normalize(statement["text"]))
        if made:
            created.add(_table_key(made.group(1)))
        entry = by_revision.get(statement["revision"])
        if entry is not None and category in ("expand", "contract") and entry["kind"] != "contract":
            entry["kind"] = category
        for rule, message in own:
            findings.append(_finding(statement, rule, "keneyapp", message, None))
    squawk_keys = set()
    for item in squawk_findings or []:
        line = int(item.get("line") or 0)
        statement = _statement_at(statements, line)
        if statement is None:
            statement = {"text": "", "start": line, "end": line, "revision": _revision_at(sql, line)}
        elif statement["category"] in ("control", "bookkeeping"):
            continue
        rule = item.get("rule_name") or "unknown"
        squawk_keys.add((statement["start"], rule))
        findings.append(_finding(statement, rule, "squawk", item.get("message") or "", item.get("help")))
    # squawk's own adding-field-with-default already says what ours would.
    findings = [f for f in findings if not (f["source"] == "keneyapp" and f["rule"] == "adding-volatile-default"
                                            and (f["line"] - 1, "adding-field-with-default") in squawk_keys)]
    findings.sort(key=lambda f: (f["line"], f["rule"]))
    for finding in findings:
        if finding["revision"] in by_revision:
            by_revision[finding["revision"]]["findings"].append(finding)
    blocking = [f for f in findings if f["severity"] == "blocking" and not _allowed_by(f, pairs)]
    allowed = [f for f in findings if f["severity"] == "blocking" and _allowed_by(f, pairs)]
    known = set(by_revision)
    unused = [{"revision": r, "rule": rule} for r, rule in pairs
              if not any(f["revision"] == r and rule in (None, f["rule"]) for f in allowed) or r not in known]
    return {
        "revisions": [by_revision[item["revision"]] for item in revisions],
        "findings": findings,
        "blocking": blocking,
        "allowed": allowed,
        "advisory": [f for f in findings if f["severity"] == "advisory"],
        "unused_allow": unused,
        "passed": not blocking or bool(maintenance),
    }


def _revision_at(sql, line):
    current = None
    for text in sql.splitlines()[:line + 1]:
        marker = _MARKER.match(text)
        if marker:
            current = marker.group(2)
    return current


def _finding(statement, rule, source, message, squawk_help):
    return {
        "revision": statement["revision"],
        "rule": rule,
        "source": source,
        "severity": severity(rule),
        "line": statement["start"] + 1,
        "statement": excerpt(statement["text"]),
        "message": message,
        "safe_alternative": safe_alternative(rule, squawk_help),
    }


def failure_message(blocking):
    """The module's refusal: one line per blocking finding."""
    lines = ["%s: %s: %s -> %s" % (f["revision"] or "(before the first revision)", f["rule"], f["statement"],
                                   f["safe_alternative"]) for f in blocking]
    return ("The migration lint found %d backward-incompatible or locking step(s):\n%s\n"
            "Fix each revision as shown, or allow a reviewed step (allow: [{revision: <id>, rule: <rule>}]), or release "
            "in a maintenance window (strategy=maintenance)." % (len(blocking), "\n".join(lines)))
