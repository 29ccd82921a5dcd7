#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: notify
short_description: Tell people about a release - Slack, Microsoft Teams, e-mail, webhooks (apprise) and a status page
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Sends one notification of O(event) - a one-line title and a body of details built from O(facts) (version from and
    to, environment, strategy, who, approval and change ticket, the canary weight and gate decision, the reason of a
    failure, the estimated return time of a maintenance) - to every apprise URL of O(urls), all at once.
  - "Optionally tells a status page what users should see: O(status_page_url) receives a JSON C(POST) of
    C({\"status\": ..., \"event\": ..., \"title\": ..., \"message\": ..., \"environment\": ..., \"version\": ...,
    \"timestamp\": ...}) where C(status) is C(maintenance) (V(maintenance_started)), C(degraded) (V(release_failed),
    V(rollback)) or C(operational) (V(release_succeeded), V(maintenance_ended)); the other events leave the status
    page alone. It carries no internal detail (who, change ticket, reason); for a maintenance, C(message) is the
    reference's French text for users."
  - B(It never fails on a delivery problem.) A receiver that is down, refuses, times out, a URL apprise cannot use, or
    apprise not installed - each ends as C(delivered=false) with the reason in RV(deliveries) and a warning naming the
    masked target, and the module returns C(failed=false). A release or a rollback must never fail or wait on its
    notifications. Only an invalid input (an unknown O(event), O(timeout) not above 0) fails the module; the
    C(keneyapp.deploy.notify) role turns even that into a warning.
  - Deliveries run in parallel, and the module waits for them at most O(timeout) seconds in all - a receiver that
    refuses the connection costs milliseconds, a black-holed one O(timeout). A delivery still running at the deadline
    is reported as not delivered.
  - Secrets never appear in a message or in the result - the URLs hold tokens, so a target is reported as
    C(scheme://host[:port]) only (C(json://127.0.0.1:8080), C(mailtos://smtp.example.com)), and as C(scheme://***)
    where the host part of the URL is itself a token (C(slack://***)). Values of O(facts) under keys that look secret
    (password, token, secret, api_key, vault, dsn, url, ...) are left out, and they, the URLs' tokens and O(secrets)
    are replaced by C(********) wherever else they occur.
  - C(changed) is true when at least one target got the message. In check mode nothing is sent; the result shows the
    message and the targets it would go to.
options:
  event:
    description:
      - What happened. V(release_started), V(canary_step) (one per canary step, with the weight and the gate
        decision), V(release_succeeded), V(release_failed), V(rollback), V(maintenance_scheduled) (the announcement
        users get before a maintenance window), V(maintenance_started), V(maintenance_ended).
    type: str
    required: true
    choices: [release_started, canary_step, release_succeeded, release_failed, rollback, maintenance_scheduled,
              maintenance_started, maintenance_ended]
  facts:
    description:
      - "What the message says. Known keys, shown in this order - C(version) (the version released, or rolled back
        to), C(version_from), C(environment), C(namespace), C(strategy), C(release_type), C(who) (default - the local
        user), C(approved_by), C(change_ticket), C(step) and C(steps), C(weight) (canary, in percent), C(decision) (the
        canary gate decision - promote, inconclusive, rollback), C(gates) (a dict of measured values), C(reason),
        C(start) and C(eta) (maintenance window start and estimated return), C(duration_seconds), C(job_url),
        C(app) (default C(KeneyApp)). Any other key is shown as C(key: value) after them."
    type: dict
    default: {}
  urls:
    description:
      - apprise URLs, one per receiver - C(slack://TokenA/TokenB/TokenC/#channel) or a Slack webhook's https URL,
        C(workflows://host/workflow/signature) or a Microsoft Teams (Power Automate) workflow's https URL,
        C(mailtos://user:password@smtp.example.com?to=ops@example.com), C(json://host:port/path) /
        C(jsons://host/path) (a generic JSON webhook, see the notes), and every other
        service apprise knows.
      - They hold tokens - keep them in ansible-vault. Give a list; an empty list sends nothing.
    type: list
    elements: str
    default: []
  status_page_url:
    description:
      - An optional status-page webhook, C(https://...) (or C(jsons://) / C(json://)), that receives the state
        users see as JSON (see the description). May hold a token.
    type: str
  timeout:
    description: Seconds to wait for the deliveries, in all (they run in parallel; also each connect and read timeout).
    type: float
    default: 5
  secrets:
    description: More strings that must not appear in a message (replaced wherever they occur).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Builds the message and reports the targets it would go to; sends nothing.
  diff_mode:
    support: none
    description: A notification has no before and after to compare.
requirements:
  - apprise (Python library; without it the status page still works and every other delivery reports it)
notes:
  - Microsoft Teams - apprise 2 speaks to Power Automate / Logic Apps workflows (C(workflows://)); the retired Office
    365 connectors (C(msteams://)) are not supported.
  - A C(json://) receiver gets apprise's JSON object, with the keys C(version) (C(1.0)), C(title), C(message), C(type)
    and C(attachments); C(type) is C(failure) for a failed release and for a canary step whose decision is
    C(rollback), C(warning) for a rollback, a held canary step and a maintenance start, C(success) for a release or
    a maintenance that ended well, else C(info).
seealso:
  - name: apprise URLs
    description: The services apprise knows and their URL forms.
    link: https://appriseit.com/services/
  - module: keneyapp.deploy.audit_event
    description: The audit ledger - the record of a release; notifications only tell people about it.
"""

EXAMPLES = r"""
- name: Tell Slack, Teams, the on-call mailbox and a webhook that the release started
  keneyapp.deploy.notify:
    event: release_started
    facts:
      version: 3.3.0
      version_from: 3.2.1
      environment: production
      strategy: canary
      release_type: minor
      who: "{{ awx_user_name | default(lookup('ansible.builtin.env', 'USER')) }}"
      change_ticket: CHG-1234
    urls:
      - "{{ vault_keneyapp_slack_url }}"        # slack://TokenA/TokenB/TokenC/#deployments
      - "{{ vault_keneyapp_teams_url }}"        # workflows://prod-01.westeurope.logic.azure.com/<workflow>/<signature>
      - "{{ vault_keneyapp_smtp_url }}"         # mailtos://deploy:<password>@smtp.example.com?to=oncall@example.com
      - json://127.0.0.1:8080/notifications     # any JSON webhook

- name: One canary step, with the gate decision and the measured values
  keneyapp.deploy.notify:
    event: canary_step
    facts: {version: 3.3.0, environment: production, strategy: canary, step: 2, steps: 5, weight: 25,
            decision: promote, gates: {error_rate: 0.0004, p95: 0.21}}
    urls: "{{ keneyapp_notify_urls }}"

- name: The maintenance window starts - Slack, and the status page shows "maintenance"
  keneyapp.deploy.notify:
    event: maintenance_started
    facts: {version: 4.0.0, environment: production, strategy: maintenance, eta: "23:00 CET"}
    urls: "{{ keneyapp_notify_urls }}"
    status_page_url: "{{ vault_keneyapp_status_page_url }}"   # https://status.example.com/api/hooks/<token>

- name: The release failed - "degraded" on the status page; never fails the play
  keneyapp.deploy.notify:
    event: release_failed
    facts: {version: 3.3.0, version_from: 3.2.1, environment: production, reason: "P95 2.4 s > 2 s"}
    urls: "{{ keneyapp_notify_urls }}"
    status_page_url: "{{ keneyapp_status_page_url | default(omit) }}"
    timeout: 3
  register: notified

- name: Show which receivers did not get it
  ansible.builtin.debug:
    msg: "{{ notified.deliveries | rejectattr('delivered') | map(attribute='target') | list }}"
"""

RETURN = r"""
event:
  description: The event sent.
  returned: always
  type: str
  sample: release_failed
title:
  description: The message's one-line title.
  returned: always
  type: str
  sample: "KeneyApp 3.3.0: release FAILED on production (canary)"
body:
  description: "The message's details, one C(Label: value) line each."
  returned: always
  type: str
  sample: "Version: 3.2.1 -> 3.3.0\nEnvironment: production\nStrategy: canary\nWho: alice\nReason: P95 2.4 s > 2 s"
notify_type:
  description: The apprise notification type - C(info), C(success), C(warning) or C(failure).
  returned: always
  type: str
  sample: failure
status:
  description: The status-page state the event sets (null when it sets none).
  returned: always
  type: str
  sample: degraded
status_payload:
  description: What the status page gets (without its C(timestamp)); null when the event sets no state.
  returned: always
  type: dict
  sample: {status: degraded, event: release_failed, title: "KeneyApp 3.3.0: release FAILED on production",
           message: "KeneyApp 3.3.0: release FAILED on production", environment: production, version: 3.3.0}
deliveries:
  description:
    - One entry per target, in the order of O(urls), then the status page - C(target) (masked), C(kind)
      (C(notification) or C(status_page)), C(delivered), C(error) (null when delivered) and C(seconds).
    - In check mode, the targets it would go to, none delivered.
  returned: always
  type: list
  elements: dict
  sample:
    - {target: "slack://***", kind: notification, delivered: true, error: null, seconds: 0.31}
    - {target: "json://127.0.0.1:8080", kind: notification, delivered: false, error: "[Errno 111] Connection refused",
       seconds: 0.004}
    - {target: "https://status.example.com", kind: status_page, delivered: true, error: null, seconds: 0.12}
msg:
  description: How many targets got the message.
  returned: always
  type: str
  sample: Notified 2 of 3 target(s).
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.notify import EVENTS
from ansible_collections.keneyapp.deploy.plugins.module_utils.notify_runner import run


def main():
    argument_spec = dict(
        event=dict(type="str", required=True, choices=list(EVENTS)),
        facts=dict(type="dict", default={}),
        urls=dict(type="list", elements="str", default=[], no_log=True),
        status_page_url=dict(type="str", no_log=True),
        timeout=dict(type="float", default=5),
        secrets=dict(type="list", elements="str", default=[], no_log=True),
    )
    execute(argument_spec, run, kubernetes=False)


if __name__ == "__main__":
    main()
