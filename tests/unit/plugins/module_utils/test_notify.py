"""Release notifications: messages, status-page states, masked targets, secrets (pure)."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import notify, notify_runner

FACTS = {"version": "3.3.0", "version_from": "3.2.1", "environment": "production", "namespace": "keneyapp-prod",
         "strategy": "canary", "release_type": "minor", "who": "alice", "approved_by": "bob", "change_ticket": "CHG-1234"}


@pytest.mark.parametrize("event, status, kind", [
    ("release_started", None, "info"),
    ("canary_step", None, "info"),
    ("release_succeeded", "operational", "success"),
    ("release_failed", "degraded", "failure"),
    ("rollback", "degraded", "warning"),
    ("maintenance_scheduled", None, "info"),
    ("maintenance_started", "maintenance", "warning"),
    ("maintenance_ended", "operational", "success"),
])
def test_each_event_has_its_status_page_state_and_type(event, status, kind):
    assert notify.status_for(event) == status
    assert notify.notify_type(event, {}) == kind
    message = notify.build(event, FACTS)
    assert message["status"] == status and message["notify_type"] == kind and message["event"] == event
    assert (message["status_payload"] is None) == (status is None)
    if status:
        assert message["status_payload"]["status"] == status and message["status_payload"]["event"] == event
    assert set(notify.STATUSES) >= {s for s in [status] if s}


def test_every_event_is_listed_once():
    assert list(notify.EVENTS) == ["release_started", "canary_step", "release_succeeded", "release_failed", "rollback",
                                   "maintenance_scheduled", "maintenance_started", "maintenance_ended"]
    with pytest.raises(ValueError):
        notify.build("release_exploded", FACTS)


@pytest.mark.parametrize("event, facts, title", [
    ("release_started", FACTS, "KeneyApp 3.3.0: release started on production (canary)"),
    ("release_started", {}, "KeneyApp: release started"),
    ("canary_step", dict(FACTS, weight=25, decision="promote"), "KeneyApp 3.3.0: canary at 25 % on production - promote"),
    ("release_succeeded", FACTS, "KeneyApp 3.3.0: released on production (canary)"),
    ("release_failed", dict(FACTS, strategy=None), "KeneyApp 3.3.0: release FAILED on production"),
    ("rollback", {"version_from": "3.3.0", "version": "3.2.1", "environment": "staging"},
     "KeneyApp: rolled back on staging: 3.3.0 -> 3.2.1"),
    ("rollback", {"version": "3.2.1"}, "KeneyApp: rolled back to 3.2.1"),
    ("maintenance_scheduled", {"environment": "production", "start": "2026-12-05 02:00 CET"},
     "KeneyApp: maintenance planned on production at 2026-12-05 02:00 CET"),
    ("maintenance_started", {"environment": "production", "eta": "23:00 CET"},
     "KeneyApp: maintenance started on production, back at 23:00 CET"),
    ("maintenance_ended", {"environment": "production", "app": "Portal"}, "Portal: maintenance ended on production"),
])
def test_title_is_one_short_line(event, facts, title):
    assert notify.build(event, facts)["title"] == title


def test_title_stays_short():
    line = notify.build("release_failed", {"version": "1.0.0", "environment": "x" * 500})["title"]
    assert len(line) == notify.TITLE_MAX and line.endswith("...") and "\n" not in line


def test_body_has_the_known_facts_in_order_then_the_others():
    facts = dict(FACTS, step=2, steps=5, weight=25, decision="promote", gates={"p95": 0.21, "error_rate": 0.0004},
                 duration_seconds=12.0, zone="eu-west", empty="", nothing=None)
    assert notify.build("canary_step", facts)["body"].split("\n") == [
        "Version: 3.2.1 -> 3.3.0",
        "Environment: production (namespace keneyapp-prod)",
        "Strategy: canary (minor release)",
        "Who: alice",
        "Approved by: bob",
        "Change ticket: CHG-1234",
        "Canary step: 2/5",
        "Canary weight: 25 %",
        "Gate decision: promote",
        "Gates: error_rate 0.0004, p95 0.21",
        "Duration: 12 s",
        "zone: eu-west",
    ]


def test_failure_says_why_and_maintenance_speaks_french_to_users():
    assert "Reason: P95 2.4 s > 2 s" in notify.build("release_failed", dict(FACTS, reason="P95 2.4 s > 2 s"))["body"]
    started = notify.build("maintenance_started", {"environment": "production", "eta": "23:00 CET"})
    french = ("Maintenance planifiée. KeneyApp est actuellement en maintenance. Retour estimé: 23:00 CET. "
              "Merci de votre patience.")
    assert started["body"].endswith("Users (fr): " + french)
    assert started["status_payload"] == {"status": "maintenance", "event": "maintenance_started", "title": started["title"],
                                         "message": french, "environment": "production", "eta": "23:00 CET"}
    assert "Users (fr)" not in notify.build("release_failed", FACTS)["body"]


def test_status_page_gets_no_internal_detail():
    payload = notify.build("release_failed", dict(FACTS, reason="db password rejected"))["status_payload"]
    text = json.dumps(payload)
    assert payload["status"] == "degraded" and payload["version"] == "3.3.0"
    for internal in ("alice", "bob", "CHG-1234", "rejected", "keneyapp-prod"):
        assert internal not in text


@pytest.mark.parametrize("decision, kind", [
    ("promote", "info"), ("inconclusive", "warning"), ("rollback", "failure"), (None, "info"),
])
def test_canary_step_type_follows_the_gate_decision(decision, kind):
    assert notify.build("canary_step", {"decision": decision})["notify_type"] == kind


@pytest.mark.parametrize("url, masked", [
    ("json://127.0.0.1:8080/hook?-token=s3cr3tT0ken", "json://127.0.0.1:8080"),
    ("jsons://user:pa55word@hooks.example.com/x", "jsons://hooks.example.com"),
    ("mailtos://deploy:pa55word@smtp.example.com?to=ops@example.com", "mailtos://smtp.example.com"),
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", "https://hooks.slack.com"),
    ("workflows://prod-01.westeurope.logic.azure.com:443/wf/sig", "workflows://prod-01.westeurope.logic.azure.com:443"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#deploys", "slack://***"),
    ("discord://webhook_id/webhook_token", "discord://***"),
    ("JSON://[::1]:99/x", "json://[::1]:99"),
    ("json://host:notaport/x", "json://host"),
    ("json:///nohost", "json://***"),
    ("not a url", "(not a URL)"),
    ("", "(not a URL)"),
])
def test_targets_are_masked_to_scheme_and_host(url, masked):
    assert notify.mask_url(url) == masked


@pytest.mark.parametrize("url, secret, kept", [
    ("json://127.0.0.1:8080/hook?-token=s3cr3tT0ken", "s3cr3tT0ken", "hook"),
    ("mailtos://deploy:pa55word@smtp.example.com", "pa55word", "smtp.example.com"),
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXX", "services"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#deploys", "T1JJ3T3L2", "deploys"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#deploys", "TIiajkdnlazkcOXrIdevi7FQ", "deploys"),
])
def test_url_tokens_are_secrets_but_plain_words_are_not(url, secret, kept):
    pieces = notify.url_secrets(url)
    assert url in pieces and secret in pieces and kept not in pieces
    scrubbed = notify.scrub("could not reach %s (%s) at %s" % (url, secret, kept), pieces)
    assert secret not in scrubbed and url not in scrubbed and kept in scrubbed


def test_secret_facts_never_reach_a_message():
    facts = dict(FACTS, db_password="hunter2-pw", api_token="tok-123456", nested={"vault_pass": "v-987654", "ok": "yes"},
                 url="https://user:urlpass99@example.com", reason="login as admin/hunter2-pw failed")
    assert sorted(notify.secret_values(facts)) == sorted(["hunter2-pw", "https://user:urlpass99@example.com", "tok-123456",
                                                          "v-987654"])
    message = notify.build("release_failed", facts, secrets=["CHG-1234"])
    text = json.dumps(message)
    for secret in ("hunter2-pw", "tok-123456", "v-987654", "urlpass99", "db_password", "api_token", "CHG-1234"):
        assert secret not in text
    assert "Reason: login as admin/******** failed" in message["body"]
    assert 'nested: {"ok": "yes"}' in message["body"]


def test_public_facts_drops_secret_keys_at_any_depth():
    assert notify.public_facts({"a": 1, "Password": "x", "b": {"secret_key": "y", "c": [{"token": "z", "d": 2}]},
                                "e": ""}) == {"a": 1, "b": {"c": [{"d": 2}]}}


# The runner's delivery loop, with stand-in senders (no network).

def _job(target, delay=0.0, outcome=(True, None), raises=None):
    def send(_capture):
        time.sleep(delay)
        if raises:
            raise raises
        return outcome
    return (target, "notification", send)


def test_deliveries_run_in_parallel_and_stop_waiting_at_the_timeout():
    jobs = [_job("json://a", 0.05), _job("json://b", 5.0), _job("json://c", 0.05, (False, "HTTP 500")),
            _job("json://d", raises=RuntimeError("plugin bug"))]
    start = time.monotonic()
    results = notify_runner.deliver(jobs, 0.4)
    assert time.monotonic() - start < 0.8, "one timeout in all, not one per delivery"
    assert [(r["target"], r["delivered"], r["error"]) for r in results] == [
        ("json://a", True, None), ("json://b", False, "no answer within 0.4 s"), ("json://c", False, "HTTP 500"),
        ("json://d", False, "RuntimeError: plugin bug")]


def test_without_apprise_a_delivery_reports_it(monkeypatch):
    monkeypatch.setattr(notify_runner, "APPRISE_IMPORT_ERROR", "No module named 'apprise'")
    delivered, error = notify_runner._apprise_send("json://127.0.0.1:1/x", {}, 1, None)  # pylint: disable=protected-access
    assert not delivered and "apprise Python library is not installed" in error


@pytest.mark.parametrize("url, endpoint", [
    ("https://status.example.com/hook", "https://status.example.com/hook"),
    ("jsons://status.example.com/hook?k=v", "https://status.example.com/hook?k=v"),
    ("JSON://127.0.0.1:8080/s", "http://127.0.0.1:8080/s"),
    ("slack://a/b/c", None),
])
def test_status_page_takes_http_and_apprise_json_urls(url, endpoint):
    assert notify_runner.status_page_endpoint(url) == endpoint


@pytest.mark.parametrize("lines, reason", [
    ([(30, "A Connection error occurred sending JSON notification to 127.0.0.1."),
      (10, "Socket Exception: HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /x?t=abc "
           "(Caused by NewConnectionError(\"<urllib3.connection.HTTPConnection object>: Failed to establish a new "
           "connection: [Errno 111] Connection refused\"))")], "[Errno 111] Connection refused"),
    ([(30, "A Connection error occurred sending JSON notification to 10.0.0.1."),
      (10, "Socket Exception: HTTPConnectionPool(host='10.0.0.1', port=80): Read timed out. (read timeout=1)")], "timed out"),
    ([(30, "Failed to send JSON POST notification: Internal Server Error, error=500.")],
     "Failed to send JSON POST notification: Internal Server Error, error=500."),
    ([], "fallback"),
])
def test_a_failed_delivery_says_why_in_few_words(lines, reason):
    assert notify_runner._reason(lines, "fallback") == reason  # pylint: disable=protected-access
