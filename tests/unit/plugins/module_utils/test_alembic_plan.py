"""alembic_migration's pure decisions: direction, durations, offline SQL split, failure text."""

from __future__ import annotations

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import alembic_plan as plan
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput


@pytest.mark.parametrize("target, up, down, expected", [
    ("head", ["a", "b"], None, ("upgrade", ["a", "b"])),
    ("head", [], None, ("none", [])),
    ("+1", ["a"], None, ("upgrade", ["a"])),
    ("-1", None, ["b"], ("downgrade", ["b"])),
    ("base", [], ["b", "a"], ("downgrade", ["b", "a"])),
    ("0007_x", ["c"], [], ("upgrade", ["c"])),
    ("0005_y", [], ["c", "b"], ("downgrade", ["c", "b"])),
    ("0005_y", [], [], ("none", [])),
    ("-1", None, [], ("none", [])),
])
def test_direction_follows_what_alembic_computed(target, up, down, expected):
    assert plan.direction(target, up, down) == expected


@pytest.mark.parametrize("value", ["5s", "500ms", "2min", "0", "1.5 s", "1h"])
def test_durations_postgresql_accepts(value):
    assert plan.check_duration("lock_timeout", value) == value


@pytest.mark.parametrize("value", ["soon", "5 seconds", "-1s", "5s; DROP TABLE patients", ""])
def test_durations_refused_with_the_fix(value):
    with pytest.raises(InvalidInput, match="lock_timeout=.* is not a PostgreSQL duration") as exc:
        plan.check_duration("lock_timeout", value)
    assert "5s, 500ms" in exc.value.fix


def test_session_options_carry_both_timeouts():
    assert plan.session_options("5s", "1.5 min") == "-c lock_timeout=5s -c statement_timeout=1.5min"


OFFLINE = """SET lock_timeout = '5s';

CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);

-- Running upgrade  -> 0001_a

CREATE TABLE a (id int);

-- Running upgrade 0001_a -> 0002_b

ALTER TABLE a ADD COLUMN b text;

COMMIT;
"""


def test_offline_sql_is_split_per_revision_with_the_preamble_apart():
    parts = plan.split_offline_sql(OFFLINE)
    assert [(p["revision"], p["direction"], p["from"]) for p in parts] == [
        (None, None, None), ("0001_a", "upgrade", ""), ("0002_b", "upgrade", "0001_a")]
    assert "ADD COLUMN b" in parts[2]["sql"] and "CREATE TABLE a" not in parts[2]["sql"]
    assert parts[0]["sql"].startswith("SET lock_timeout")


def test_a_downgrade_is_attributed_to_the_revision_it_undoes():
    parts = plan.split_offline_sql("-- Running downgrade 0002_b -> 0001_a\nALTER TABLE a DROP COLUMN b;\n")
    assert [(p["revision"], p["direction"]) for p in parts] == [("0002_b", "downgrade")]


def test_failure_message_names_revision_statement_reason_and_leftover_index():
    text, fix = plan.failure_message("0009_x", "upgrade", "CREATE UNIQUE INDEX CONCURRENTLY uq\n ON t (c)",
                                     'could not create unique index "uq"\nDETAIL: Key (c)=(x) is duplicated.',
                                     ["uq"], False, "0008_y")
    assert text.startswith("Revision 0009_x failed during upgrade at the statement: CREATE UNIQUE INDEX CONCURRENTLY uq ON t (c).")
    assert 'could not create unique index "uq" DETAIL: Key (c)=(x) is duplicated.' in text
    assert "stays at revision 0008_y" in text and "INVALID index(es) uq." in text
    assert "DROP INDEX CONCURRENTLY uq" in fix and "drop_invalid_indexes=true" in fix
    text, fix = plan.failure_message("0009_x", "upgrade", None, "boom", ["uq"], True, None)
    assert "now dropped" in text and "stays at revision base" in text and fix == "Fix the revision, then run again."


def test_refused_downgrade_lists_what_would_be_undone():
    exc = plan.refuse_downgrade("0008_y", "-2", ["0008_y", "0007_x"])
    assert "0008_y, 0007_x" in exc.message and "allow_downgrade=true" in exc.fix
