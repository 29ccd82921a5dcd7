"""migration_lint through `ansible localhost -m`, on the sample migrations and on revisions written for each case.

No lab needed: alembic renders offline and squawk reads the stream; nothing touches a database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "keneyapp" / "migrations"
BINDIR = os.path.dirname(sys.executable)
SQUAWK = os.path.join(BINDIR, "squawk")

# Each case is one revision on top of the sample's head, in a chain 0009 -> 0013 so one folder serves them all
# (each run lints one step: from_revision = the one before).
CASES = {
    "0009_literal_not_null": """
        op.alter_column("patients", "email", existing_type=sa.Text(), nullable=False)
    """,
    "0010_check_validated_same": """
        op.create_check_constraint("ck_patients_email_set", "patients", "email IS NOT NULL", postgresql_not_valid=True)
        op.execute("ALTER TABLE patients VALIDATE CONSTRAINT ck_patients_email_set")
    """,
    "0011_drop_legacy_insurance": """
        op.drop_column("patients", "legacy_insurance")
    """,
    "0012_add_mrn_required": """
        op.add_column("patients", sa.Column("mrn", sa.Text(), nullable=False))
    """,
    # squawk 2.70 flags volatile defaults (adding-field-with-default) but not serial's nextval(): ours does.
    "0013_add_visit_counter": """
        op.execute("ALTER TABLE patients ADD COLUMN visit_counter bigserial")
    """,
}


def lint(args):
    """Run keneyapp.deploy.migration_lint as Ansible does; return its result dict."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", PATH=BINDIR + os.pathsep + os.environ.get("PATH", ""))
    env.pop("DATABASE_URL", None)
    argv = [os.path.join(BINDIR, "ansible"), "localhost", "-m", "keneyapp.deploy.migration_lint", "-a", json.dumps(args)]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except ValueError:
        pytest.fail("migration_lint printed no JSON: %s %s" % (proc.stdout[-2000:], proc.stderr[-2000:]))


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    """A copy of the sample migrations with the case revisions on top."""
    root = tmp_path_factory.mktemp("migrations")
    shutil.copytree(SAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    previous = "0008_appointments_patient_idx"
    for revision, body in CASES.items():
        source = '"""Lint case %s."""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n' % revision
        source += "revision = %r\ndown_revision = %r\nbranch_labels = None\ndepends_on = None\n\n\n" % (revision, previous)
        source += "def upgrade():\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n\n\n"
        source += "def downgrade():\n    pass\n"
        (root / "versions" / ("%s.py" % revision)).write_text(source)
        previous = revision
    return root


def before(revision):
    names = ["0008_appointments_patient_idx"] + list(CASES)
    return names[names.index(revision) - 1]


def one_step(scripts, revision, **extra):
    return lint(dict({"script_location": str(scripts), "from_revision": before(revision), "to_revision": revision}, **extra))


def test_the_samples_safe_insurance_number_pattern_passes():
    result = lint({"script_location": str(SAMPLE), "from_revision": "0003_prescriptions"})
    assert not result.get("failed"), result.get("msg")
    assert result["passed"] is True and result["blocking"] == [] and result["changed"] is False
    kinds = {r["revision"]: r["kind"] for r in result["revisions"]}
    assert kinds == {"0004_insurance_add_nullable": "expand", "0005_insurance_backfill": "data",
                     "0006_insurance_check_not_valid": "contract", "0007_insurance_set_not_null": "contract",
                     "0008_appointments_patient_idx": "expand"}
    assert "CREATE INDEX CONCURRENTLY ix_appointments_patient_id_starts_at" in result["sql"]
    # What squawk still says about the safe form is advice only, attributed to its revision.
    assert {(f["revision"], f["rule"]) for f in result["advisory"]} == {
        ("0004_insurance_add_nullable", "prefer-text-field"), ("0007_insurance_set_not_null", "ban-drop-constraint")}
    assert result["from_revision"] == "0003_prescriptions" and result["to_revision"] == "0008_appointments_patient_idx"


def test_a_first_release_linted_from_base_passes():
    """A fresh database lints 0001-0008: the plain CREATE INDEXes of 0001-0003 are on tables created in the same
    revision (nothing reads them yet), so squawk does not flag them; the safe insurance_number steps pass as above."""
    result = lint({"script_location": str(SAMPLE), "from_revision": "base"})
    assert not result.get("failed"), result.get("msg")
    assert result["passed"] is True and result["blocking"] == []
    assert result["from_revision"] == "base" and result["to_revision"] == "0008_appointments_patient_idx"
    assert [r["revision"] for r in result["revisions"]][:3] == ["0001_patients", "0002_appointments", "0003_prescriptions"]
    assert {r["kind"] for r in result["revisions"][:3]} == {"expand"}
    # The non-concurrent index builds were in the stream squawk read.
    for statement in ("CREATE TABLE patients (", "CREATE INDEX ix_patients_last_name ON patients (last_name)",
                      "CREATE INDEX ix_prescriptions_appointment_id ON prescriptions (appointment_id)"):
        assert statement in result["sql"], statement
    assert {(f["revision"], f["rule"]) for f in result["advisory"]} == {
        ("0004_insurance_add_nullable", "prefer-text-field"), ("0007_insurance_set_not_null", "ban-drop-constraint")}


@pytest.mark.parametrize("revision, rule, statement, safe_form", [
    ("0009_literal_not_null", "adding-not-nullable-field", "ALTER TABLE patients ALTER COLUMN email SET NOT NULL",
     "ADD CHECK (col IS NOT NULL) NOT VALID"),
    ("0010_check_validated_same", "constraint-missing-not-valid",
     "ALTER TABLE patients VALIDATE CONSTRAINT ck_patients_email_set", "VALIDATE CONSTRAINT in a later revision"),
    ("0011_drop_legacy_insurance", "ban-drop-column", "ALTER TABLE patients DROP COLUMN legacy_insurance",
     "no longer uses it"),
    ("0012_add_mrn_required", "adding-required-field", "ALTER TABLE patients ADD COLUMN mrn TEXT NOT NULL",
     "Add the column nullable"),
    ("0013_add_visit_counter", "adding-volatile-default", "ADD COLUMN visit_counter bigserial", "backfill it in batches"),
])
def test_unsafe_steps_fail_with_revision_rule_statement_and_safe_form(scripts, revision, rule, statement, safe_form):
    result = one_step(scripts, revision)
    assert result.get("failed") is True and result["passed"] is False
    assert [(f["revision"], f["rule"]) for f in result["blocking"]] == [(revision, rule)]
    line = [text for text in result["msg"].splitlines() if text.startswith("%s: %s: " % (revision, rule))]
    assert len(line) == 1 and statement in line[0] and safe_form in line[0].split(" -> ", 1)[1], result["msg"]
    assert result["revisions"][0]["kind"] == "contract" if rule != "adding-volatile-default" else "expand"


def test_an_allowed_drop_passes_and_maintenance_reports_without_failing(scripts):
    allowed = one_step(scripts, "0011_drop_legacy_insurance",
                       allow=[{"revision": "0011_drop_legacy_insurance", "rule": "ban-drop-column"}])
    assert not allowed.get("failed") and allowed["passed"] is True and allowed["blocking"] == []
    assert [f["rule"] for f in allowed["allowed"]] == ["ban-drop-column"]
    window = lint({"script_location": str(scripts / "alembic.ini"), "from_revision": "0008_appointments_patient_idx",
                   "strategy": "maintenance"})
    assert not window.get("failed") and window["passed"] is True
    assert sorted({f["revision"] for f in window["blocking"]}) == sorted(CASES)


def test_report_only_keeps_the_verdict(scripts):
    result = one_step(scripts, "0011_drop_legacy_insurance", fail_on_findings=False)
    assert not result.get("failed") and result["passed"] is False and len(result["blocking"]) == 1


@pytest.mark.parametrize("args, expected", [
    ({"from_revision": "0042_nope"}, "from_revision=0042_nope is not a revision of"),
    ({"to_revision": "0099_missing"}, "to_revision=0099_missing is not a revision of"),
    ({"from_revision": "0007_insurance_set_not_null", "to_revision": "0005_insurance_backfill"},
     "does not come after from_revision"),
    ({"script_location": "/nonexistent/migrations"}, "script_location=/nonexistent/migrations does not exist"),
    ({"script_location": str(SAMPLE / "versions")}, "No alembic.ini at %s" % (SAMPLE / "versions" / "alembic.ini")),
    ({"allow": [{"rule": "ban-drop-column"}]}, "is not an allow-list entry"),
])
def test_bad_inputs_give_one_clear_message(args, expected):
    result = lint(dict({"script_location": str(SAMPLE)}, **args))
    assert result.get("failed") is True and expected in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"] and len(result["msg"].splitlines()) == 1


def test_squawk_2_70_reports_the_rules_the_safe_forms_are_keyed_to(tmp_path):
    """squawk itself, on the statements the lint relies on it for (a squawk upgrade that renames a rule fails here)."""
    cases = {
        "ALTER TABLE t ALTER COLUMN c SET NOT NULL": "adding-not-nullable-field",
        "ALTER TABLE t ADD COLUMN c TEXT NOT NULL": "adding-required-field",
        "ALTER TABLE t DROP COLUMN c": "ban-drop-column",
        "DROP TABLE t": "ban-drop-table",
        "ALTER TABLE t RENAME COLUMN a TO b": "renaming-column",
        "ALTER TABLE t RENAME TO u": "renaming-table",
        "ALTER TABLE t ALTER COLUMN c TYPE BIGINT": "changing-column-type",
        "CREATE INDEX ix ON t (c)": "require-concurrent-index-creation",
        "ALTER TABLE t ADD CONSTRAINT ck CHECK (c > 0)": "constraint-missing-not-valid",
        "ALTER TABLE t ADD CONSTRAINT uq UNIQUE (c)": "disallowed-unique-constraint",
    }
    for sql, rule in cases.items():
        path = tmp_path / "case.sql"
        path.write_text("BEGIN;\n%s;\nCOMMIT;\n" % sql)
        out = subprocess.run([SQUAWK, "--pg-version", "15", "--reporter", "json", str(path)], capture_output=True, text=True,
                             check=False).stdout
        assert rule in {f["rule_name"] for f in json.loads(out)}, (sql, out)
