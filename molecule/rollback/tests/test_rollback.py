"""Verify the database rollback from the database, pgBackRest and the audit ledger."""

from __future__ import annotations

import json
import os

STATE = os.path.join(os.environ.get("KENEYAPP_LAB_DIR") or os.path.join(
    os.environ.get("KENEYAPP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "keneyapp-deploy"), "lab"),
    "state.json")


def _lab():
    with open(STATE, encoding="utf-8") as handle:
        return json.load(handle)


def _records():
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ledger.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_the_database_is_at_the_revision_asked(host):
    url = _lab()["postgres"]["url"]
    assert host.check_output("psql '%s' -Atc 'SELECT version_num FROM alembic_version'" % url) == "0007_insurance_set_not_null"


def test_the_downgrade_was_recorded_once_after_a_backup_pgbackrest_knows(host):
    records = [r for r in _records() if r["event"] == "rollback"]
    downgrades = [r for r in records if r["db_revisions"]]
    assert len(downgrades) == 1, records
    record = downgrades[0]
    assert (record["outcome"], record["rollback_app"], record["db_revision_from"], record["db_revision_to"]) == (
        "success", False, "0008_appointments_patient_idx", "0007_insurance_set_not_null")
    assert record["db_revisions"] == ["0008_appointments_patient_idx"]
    # The rerun (idempotence) downgraded nothing and took no backup.
    assert records[-1]["db_revisions"] == [] and records[-1]["backup_label"] is None
    pgbr = _lab()["postgres"]["pgbackrest"]
    info = json.loads(host.run("runuser -u postgres -- pgbackrest --config=%s --stanza=%s --output=json info"
                               % (pgbr["config"], pgbr["stanza"])).stdout)
    assert record["backup_label"] in [b["label"] for b in info[0]["backup"]]
