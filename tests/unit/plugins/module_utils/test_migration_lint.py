"""migration_lint's pure part: stream split, statement classes, own rules, attribution, allow list, verdict."""

from __future__ import annotations

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import migration_lint as ml
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

# Shaped like alembic's offline output (0-based line numbers are what squawk reports).
STREAM = """SET lock_timeout = '5s';

BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL
);

-- Running upgrade  -> r1

ALTER TABLE patients ADD COLUMN phone TEXT;

INSERT INTO alembic_version (version_num) VALUES ('r1') RETURNING alembic_version.version_num;

COMMIT;

BEGIN;

-- Running upgrade r1 -> r2

COMMIT;

DO $$
BEGIN
  UPDATE patients SET phone = 'n/a; none' WHERE phone IS NULL;
END $$;

BEGIN;

UPDATE alembic_version SET version_num='r2' WHERE alembic_version.version_num = 'r1';

COMMIT;

BEGIN;

-- Running upgrade r2 -> r3

ALTER TABLE patients
    DROP COLUMN legacy_insurance;

UPDATE alembic_version SET version_num='r3' WHERE alembic_version.version_num = 'r2';

COMMIT;
"""


def test_stream_split_attributes_statements_and_keeps_dollar_bodies_whole():
    revisions, statements = ml.parse_stream(STREAM)
    assert revisions == [{"revision": "r1", "down_revision": None}, {"revision": "r2", "down_revision": "r1"},
                         {"revision": "r3", "down_revision": "r2"}]
    by_text = {s["text"].split("\n")[0]: s for s in statements}
    assert by_text["CREATE TABLE alembic_version ("]["revision"] is None
    assert (by_text["CREATE TABLE alembic_version ("]["start"], by_text["CREATE TABLE alembic_version ("]["end"]) == (4, 6)
    assert by_text["ALTER TABLE patients ADD COLUMN phone TEXT"]["revision"] == "r1"
    do_block = by_text["DO $$"]
    assert do_block["revision"] == "r2" and "'n/a; none'" in do_block["text"] and do_block["text"].endswith("END $$")
    drop = by_text["ALTER TABLE patients"]
    assert (drop["revision"], drop["start"], drop["end"]) == ("r3", 37, 38)


def test_stream_split_ignores_semicolons_in_quotes_and_comments():
    sql = "SELECT ';' AS a, \"x;y\" /* ; */ FROM t; -- trailing ; comment\nSELECT $tag$ ; $tag$;\nSELECT 1"
    _revisions, statements = ml.parse_stream(sql)
    assert [s["text"] for s in statements] == ["SELECT ';' AS a, \"x;y\" /* ; */ FROM t", "SELECT $tag$ ; $tag$",
                                               "SELECT 1"]
    assert [(s["start"], s["end"]) for s in statements] == [(0, 0), (1, 1), (2, 2)]


def test_merge_revision_marker_keeps_both_parents():
    revisions, _statements = ml.parse_stream("-- Running upgrade a1, b1 -> m1\n\nSELECT 1;\n")
    assert revisions == [{"revision": "m1", "down_revision": "a1, b1"}]


@pytest.mark.parametrize("sql, category, rules", [
    ("BEGIN", "control", []),
    ("SET statement_timeout = '60s'", "control", []),
    ("COMMIT", "control", []),
    ("UPDATE alembic_version SET version_num='b' WHERE alembic_version.version_num = 'a'", "bookkeeping", []),
    ("INSERT INTO alembic_version (version_num) VALUES ('a') RETURNING alembic_version.version_num", "bookkeeping", []),
    ("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)", "bookkeeping", []),
    ("UPDATE patients SET insurance_number = 'x' WHERE insurance_number IS NULL", "data", []),
    ("DO $$ BEGIN UPDATE patients SET a = 1; COMMIT; END $$", "data", []),
    ("DO $$ BEGIN EXECUTE 'ALTER TABLE patients DROP COLUMN a'; END $$", "contract", ["ddl-in-do-block"]),
    ("CREATE TABLE visits (id BIGINT)", "expand", []),
    ("CREATE INDEX CONCURRENTLY ix ON patients (email)", "expand", []),
    ("CREATE UNIQUE INDEX CONCURRENTLY ux ON patients (email)", "contract", []),
    ("ALTER TABLE patients ADD COLUMN insurance_number VARCHAR(50)", "expand", []),
    ("ALTER TABLE patients ADD COLUMN status TEXT DEFAULT 'new' NOT NULL", "expand", []),
    ("ALTER TABLE patients ADD COLUMN mrn TEXT NOT NULL", "contract", []),
    ("ALTER TABLE patients ADD COLUMN ref BIGINT REFERENCES visits (id)", "contract", []),
    ("ALTER TABLE patients ADD CONSTRAINT ck CHECK (a IS NOT NULL) NOT VALID", "contract", []),
    ("ALTER TABLE patients VALIDATE CONSTRAINT ck", "contract", []),
    ("ALTER TABLE patients ALTER COLUMN insurance_number SET NOT NULL", "contract", []),
    ("ALTER TABLE patients ALTER COLUMN email DROP NOT NULL", "expand", []),
    ("ALTER TABLE patients ALTER COLUMN email SET DEFAULT 'x'", "expand", []),
    ("ALTER TABLE patients ALTER COLUMN email DROP DEFAULT", "contract", []),
    ("ALTER TABLE patients ALTER COLUMN email TYPE VARCHAR(200)", "contract", []),
    ('ALTER TABLE patients ALTER COLUMN "type" SET DEFAULT \'a\'', "expand", []),
    ("ALTER TABLE patients RENAME COLUMN email TO mail", "contract", []),
    ("ALTER TABLE patients RENAME TO people", "contract", []),
    ("ALTER TABLE patients DROP COLUMN legacy_insurance", "contract", []),
    ("ALTER TABLE patients ADD COLUMN a TEXT, DROP COLUMN b", "contract", []),
    ("DROP TABLE prescriptions", "contract", []),
    ("DROP INDEX CONCURRENTLY ix", "contract", []),
    ("TRUNCATE patients", "contract", []),
    ("ALTER INDEX ix RENAME TO ix2", "contract", []),
    ("ALTER TYPE status ADD VALUE 'x' AFTER 'y'", "expand", []),
    ("COMMENT ON TABLE patients IS 'drop me'", "expand", []),
    # This classifier's own rules: what squawk 2.70 does not flag.
    ("ALTER TABLE patients ADD COLUMN ext_id UUID DEFAULT gen_random_uuid()", "expand", ["adding-volatile-default"]),
    ("ALTER TABLE patients ADD COLUMN seq serial", "expand", ["adding-volatile-default"]),
    ("ALTER TABLE patients ADD COLUMN created TIMESTAMPTZ DEFAULT now()", "expand", []),
    ("ALTER TABLE patients ADD COLUMN note TEXT DEFAULT 'random()'", "expand", []),
    ("ALTER TABLE patients SET TABLESPACE slow", "expand", ["table-rewrite"]),
    ("VACUUM FULL patients", "data", ["table-rewrite"]),
    ("VACUUM (FULL, ANALYZE) patients", "data", ["table-rewrite"]),
    ("VACUUM patients", "data", []),
    ("CLUSTER patients USING ix", "data", ["table-rewrite"]),
])
def test_statement_classes(sql, category, rules):
    kind, findings = ml.classify_statement(sql)
    assert (kind, [rule for rule, _message in findings]) == (category, rules)


def test_a_table_created_earlier_in_the_stream_is_rewritten_at_no_cost():
    kind, findings = ml.classify_statement("ALTER TABLE visits ADD COLUMN seq serial", created_tables={"visits"})
    assert (kind, findings) == ("expand", [])


def squawk(line, rule, message="m", help_text=None):
    return {"line": line, "rule_name": rule, "message": message, "help": help_text, "level": "Warning"}


def test_findings_are_attributed_and_bookkeeping_dropped():
    found = [squawk(5, "prefer-text-field"), squawk(4, "prefer-robust-stmts"), squawk(38, "ban-drop-column", "Dropping")]
    verdict = ml.lint(STREAM, found)
    assert [(f["revision"], f["rule"], f["line"]) for f in verdict["findings"]] == [("r3", "ban-drop-column", 38)]
    blocking = verdict["blocking"][0]
    assert blocking["statement"] == "ALTER TABLE patients DROP COLUMN legacy_insurance"
    assert blocking["severity"] == "blocking" and blocking["source"] == "squawk" and blocking["message"] == "Dropping"
    assert "ban-drop-column" in blocking["safe_alternative"] and "later release" in blocking["safe_alternative"]
    assert [(r["revision"], r["kind"], len(r["findings"])) for r in verdict["revisions"]] == [
        ("r1", "expand", 0), ("r2", "data", 0), ("r3", "contract", 1)]
    assert verdict["passed"] is False


@pytest.mark.parametrize("allow, maintenance, blocking, allowed, passed, unused", [
    ([], False, 1, 0, False, []),
    ([], True, 1, 0, True, []),
    ([{"revision": "r3", "rule": "ban-drop-column"}], False, 0, 1, True, []),
    ([{"revision": "r3"}], False, 0, 1, True, []),
    (["r3:ban-drop-column"], False, 0, 1, True, []),
    (["r3"], False, 0, 1, True, []),
    ([{"revision": "r3", "rule": "renaming-column"}], False, 1, 0, False, [{"revision": "r3", "rule": "renaming-column"}]),
    (["r2:ban-drop-column", "r9"], False, 1, 0, False,
     [{"revision": "r2", "rule": "ban-drop-column"}, {"revision": "r9", "rule": None}]),
])
def test_allow_list_and_maintenance(allow, maintenance, blocking, allowed, passed, unused):
    verdict = ml.lint(STREAM, [squawk(37, "ban-drop-column")], allow, maintenance)
    assert (len(verdict["blocking"]), len(verdict["allowed"]), verdict["passed"], verdict["unused_allow"]) == (
        blocking, allowed, passed, unused)


def test_advisory_findings_never_block():
    verdict = ml.lint(STREAM, [squawk(10, "prefer-text-field"), squawk(37, "ban-drop-constraint")])
    assert verdict["passed"] and not verdict["blocking"]
    assert [f["rule"] for f in verdict["advisory"]] == ["prefer-text-field", "ban-drop-constraint"]


def test_own_volatile_default_yields_to_squawks_rule_on_the_same_statement():
    sql = "-- Running upgrade a -> b\n\nALTER TABLE t ADD COLUMN u UUID DEFAULT gen_random_uuid();\n"
    assert [f["rule"] for f in ml.lint(sql, [])["blocking"]] == ["adding-volatile-default"]
    assert [f["rule"] for f in ml.lint(sql, [squawk(2, "adding-field-with-default")])["blocking"]] == [
        "adding-field-with-default"]


def test_no_pending_revision_passes():
    assert ml.lint("", []) == {"revisions": [], "findings": [], "blocking": [], "allowed": [], "advisory": [],
                               "unused_allow": [], "passed": True}


@pytest.mark.parametrize("entry", [{"rule": "ban-drop-column"}, {"revision": "r3", "rules": "x"}, 3, "", {"revision": ""},
                                   {"revision": "r3", "rule": 5}])
def test_malformed_allow_entries_are_refused(entry):
    with pytest.raises(InvalidInput, match="is not an allow-list entry"):
        ml.normalize_allow([entry])


@pytest.mark.parametrize("rule, fragment", [
    ("adding-not-nullable-field", "ADD CHECK (col IS NOT NULL) NOT VALID"),
    ("adding-required-field", "nullable"),
    ("constraint-missing-not-valid", "VALIDATE CONSTRAINT in a later revision"),
    ("require-concurrent-index-creation", "autocommit_block"),
    ("ban-drop-view", "ban-drop-view"),
    ("some-future-rule", "squawk's help"),
])
def test_every_rule_has_a_safe_alternative(rule, fragment):
    assert fragment in ml.safe_alternative(rule, "squawk's help")


def test_failure_message_has_one_line_per_blocking_finding():
    verdict = ml.lint(STREAM, [squawk(37, "ban-drop-column")])
    lines = ml.failure_message(verdict["blocking"]).splitlines()
    assert lines[1].startswith("r3: ban-drop-column: ALTER TABLE patients DROP COLUMN legacy_insurance -> Expand/contract")
    assert len(lines) == 3 and "strategy=maintenance" in lines[2]


def test_noise_rules_are_documented():
    assert set(ml.NOISE_RULES) == {"transaction-nesting", "prefer-robust-stmts", "require-timeout-settings",
                                   "require-lock-timeout", "require-statement-timeout"}
    assert all(reason for reason in ml.NOISE_RULES.values())
    assert not set(ml.NOISE_RULES) & ml.ADVISORY_RULES
