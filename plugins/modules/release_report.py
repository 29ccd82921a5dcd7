#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_report
short_description: DORA figures and an HTML release report with plots, from the audit ledger
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Reads the audit ledger (a JSON-lines file or the PostgreSQL table) and computes, for O(environment) over a period,
    the reference's deployment figures - deployment frequency (per day and per week), median and P90 deployment
    duration, change failure rate, mean time to recovery (MTTR), rollback rate and, when releases carry a
    C(commit_time), the median lead time - each next to the reference's goal with a verdict (C(meets), C(misses),
    C(no data) or C(no goal)), and per-week trend buckets.
  - "Definitions. A deployment is a C(release) record whose C(release_type) is not C(same) (a re-release of the running
    version delivers nothing new; it is counted apart as C(noop_releases)). Frequency - successful deployments per day
    of the period. Duration - of the successful deployments (P90 by nearest rank). A deployment is rolled back when it
    ended C(rolled_back) or a later successful C(rollback) record undid it (its C(last_release_seq)). Change failure
    rate - deployments that ended C(failed), C(rolled_back) or C(held), or were rolled back later, over all
    deployments. MTTR - the mean time from a failed, rolled-back or held release to the next successful release or
    rollback of the environment. Lead time - C(commit_time) to the successful release's timestamp."
  - Optionally writes O(json_path) (the same figures as JSON) and O(html_path), a self-contained page (no network
    needed - plots are inline PNG images drawn with matplotlib, no script, no external style or font) showing the
    release O(release) - its timeline, approval, change ticket, backup label, migration revisions and, for a canary,
    the weight and each gate's measured values per evaluation against its thresholds as plots - and the figures with
    their trend plots.
  - Reads the ledger only. A file is written only when its content changes (C(changed)); in check mode nothing is
    written and C(changed) says whether it would be.
options:
  environment:
    description: The environment the figures are for (the records' C(environment)).
    type: str
    required: true
  since:
    description:
      - Start of the period - an ISO 8601 time (C(2026-11-01), C(2026-11-01T08:00:00Z)), a duration back from now
        (C(30d), C(12w), C(24h), C(90m)), or V(all) (from the environment's first record).
      - Default 30 days before now.
    type: str
  before:
    description:
      - End of the period - records before it count, not at or after it - in the same forms as O(since); default now.
      - "(Not C(until): that name is a task keyword.)"
    type: str
  release:
    description:
      - The release the HTML page shows - V(last) (the environment's newest release) or the C(seq) of a release
        record. Without it the page shows the period only.
    type: str
  html_path:
    description: Where to write the HTML report; its directory is created. Needs matplotlib.
    type: path
  json_path:
    description: Where to write the figures as JSON; its directory is created.
    type: path
extends_documentation_fragment:
  - keneyapp.deploy.ledger
attributes:
  check_mode:
    support: full
    description: Computes and renders everything, reports whether the files would change, writes nothing.
  diff_mode:
    support: none
    description: The files are reports, not configuration; no diff is shown.
requirements:
  - matplotlib (only with O(html_path))
notes:
  - With a relative period (the default) the figures move with time, so the files change from one run to the next;
    give O(since) and O(before) as times for a report that stays the same.
  - The ledger records when a run ended and how long it took, not when each step ran; the page says so, and shows
    C(not recorded) for any step the record does not hold.
seealso:
  - module: keneyapp.deploy.audit_query
  - module: keneyapp.deploy.audit_verify
"""

EXAMPLES = r"""
- name: Figures of the last 30 days and the page of the last release
  keneyapp.deploy.release_report:
    dsn: "{{ keneyapp_ledger }}"
    environment: production
    release: last
    html_path: reports/report.html
    json_path: reports/dora.json
  delegate_to: localhost
  run_once: true
  register: report

- name: Say how the figures compare with the goals
  ansible.builtin.debug:
    msg: "{{ report.verdicts }}"

- name: Figures of one quarter, from a file ledger
  keneyapp.deploy.release_report:
    path: ~/.cache/keneyapp-deploy/ledger-staging.jsonl
    environment: staging
    since: "2026-07-01"
    before: "2026-10-01"
    json_path: reports/staging-q3.json
"""

RETURN = r"""
verdicts:
  description: One readable line per figure (after a heading line), with its value, goal and verdict.
  returned: always
  type: list
  elements: str
  sample:
    - "production, 2026-10-27T12:00:00Z to 2026-11-26T12:00:00Z (30.0 days): 9 deployment(s), 8 successful, ..."
    - "Change failure rate: 11.1 % (1 of 9) - goal < 5 % - misses"
figures:
  description:
    - Each figure by name (C(deployment_frequency_per_day), C(deployment_frequency_per_week), C(duration_median),
      C(duration_p90), C(change_failure_rate), C(mttr), C(rollback_rate), C(lead_time_median)) with C(value) (seconds,
      a ratio, or a count per day or week; null when there is no data), C(unit), C(goal) (text, null when the
      reference sets none), C(goal_value), C(goal_op), C(verdict) and what it was computed from (C(count), C(of)).
  returned: always
  type: dict
period:
  description: The period, C(since) and C(until) (UTC, ISO 8601; C(until) is O(before)) and its length in C(days).
  returned: always
  type: dict
counts:
  description: Records, releases, deployments, no-op re-releases, outcomes, rollback runs in the period.
  returned: always
  type: dict
trend:
  description: Per-week buckets (Monday to Monday, UTC) with deployments, successful, change failures, rolled back,
    change failure rate and median duration.
  returned: always
  type: list
  elements: dict
incidents:
  description: The closed incidents MTTR averages (opened and closed seq and time, seconds).
  returned: always
  type: list
  elements: dict
open_incidents:
  description: An incident still open at the period's end (at most one).
  returned: always
  type: list
  elements: dict
release:
  description: The release reported (seq, versions, strategy, outcome, approval, backup, migration, gates); null without
    O(release).
  returned: always
  type: dict
environment:
  description: The environment of the figures.
  returned: always
  type: str
ledger:
  description: Where the ledger is (the file, or the table and database without the password).
  returned: always
  type: str
html_path:
  description: The HTML file (null when not asked for).
  returned: always
  type: str
json_path:
  description: The JSON file (null when not asked for).
  returned: always
  type: str
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.ledger_runner import STORE_OPTIONS
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.release_report_runner import run


def main():
    argument_spec = dict(
        STORE_OPTIONS,
        environment=dict(type="str", required=True),
        since=dict(type="str"),
        before=dict(type="str"),
        release=dict(type="str"),
        html_path=dict(type="path"),
        json_path=dict(type="path"),
    )
    execute(argument_spec, run, kubernetes=False)


if __name__ == "__main__":
    main()
