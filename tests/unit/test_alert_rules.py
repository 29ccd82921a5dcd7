"""The alert rules (roles/alert_rules/files/keneyapp-alerts.yml) and their promtool tests.

- promtool check rules and promtool test rules (tests/promtool/keneyapp-alerts-test.yml) pass;
- the rules carry the reference's thresholds (the table below is copied from the reference by hand);
- every alert has a promtool case that fires and one that stays silent (an alert added without
  both fails here), and the checker that says so is itself shown to catch each kind of gap;
- mutants of the rules (a threshold, a window or a `for:` changed) fail promtool test rules.

The role that installs the file is tested in tests/integration/test_alert_rules_role.py (no lab
either, but an ansible-playbook run takes longer than this file's budget).
Needs promtool (Debian's prometheus package; tools/bootstrap.sh installs it).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "roles" / "alert_rules" / "files" / "keneyapp-alerts.yml"
PROMTOOL_TESTS = REPO / "tests" / "promtool" / "keneyapp-alerts-test.yml"

# The reference's rollback triggers and key metrics (deployment-strategy.md "Automated Rollback
# Triggers", "Monitoring Deployment", goal "deployment duration < 15 minutes"; DESIGN.md section 3),
# as fragments each rule's expression must contain, with its `for:` and severity.
SPEC = {
    "KeneyappHighErrorRate": (['rate(http_requests_total{status=~"5.."}[5m])', "rate(http_requests_total[5m])", "> 0.01\n"],
                              "2m", "critical"),
    "KeneyappSlowResponses": (["histogram_quantile(0.95, ", "rate(http_request_duration_seconds_bucket[5m])", "> 2\n"], "2m", "critical"),
    "KeneyappHealthCheckFailures": (['rate(keneyapp_health_checks_total{result="fail"}[5m])', "rate(keneyapp_health_checks_total[5m])",
                                     "> 0.1\n"], "2m", "critical"),
    "KeneyappDatabaseConnectionErrors": (["(increase(keneyapp_db_connection_errors_total[5m])) > 0\n"], "0m", "critical"),
    "KeneyappCriticalExceptions": (["(increase(keneyapp_critical_exceptions_total[5m])) > 0\n"], "0m", "critical"),
    "KeneyappPodRestarts": (["(increase(kube_pod_container_status_restarts_total[15m]) > 0)"], "0m", "warning"),
    "KeneyappReleaseOverBudget": (["(time() - keneyapp_release_started_timestamp_seconds", "- on (environment, namespace) keneyapp_release_budget_seconds",
                                   "> 0\n", "keneyapp_release_in_progress", "== 1\n"], "1m", "warning"),
}
APP_ALERTS = [name for name in SPEC if name != "KeneyappReleaseOverBudget"]


def tool(name):
    path = shutil.which(name) or os.path.join("/usr/bin", name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not installed: it comes with Debian's prometheus package (tools/bootstrap.sh installs it)." % name)
    return path


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def alerts_of(rules_doc):
    return {rule["alert"]: rule for group in rules_doc["groups"] for rule in group["rules"] if "alert" in rule}


def promtool(*args):
    proc = subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout + proc.stderr


# --- promtool on the shipped files ---------------------------------------------------------------


def test_promtool_check_rules_passes():
    code, output = promtool("check", "rules", str(RULES))
    assert code == 0, output
    assert "SUCCESS: 7 rules found" in output


def test_promtool_test_rules_passes():
    code, output = promtool("test", "rules", str(PROMTOOL_TESTS))
    assert code == 0, output
    assert "SUCCESS" in output


# --- the rules say what the reference says -------------------------------------------------------


def test_the_rules_are_the_specified_alerts():
    assert sorted(alerts_of(load(RULES))) == sorted(SPEC)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_rule_has_the_reference_threshold_for_and_severity(name):
    rule = alerts_of(load(RULES))[name]
    fragments, for_, severity = SPEC[name]
    for fragment in fragments:
        assert fragment in rule["expr"], "%s: %r not in %r" % (name, fragment, rule["expr"])
    assert rule["for"] == for_
    assert rule["labels"] == {"severity": severity}
    annotations = rule["annotations"]
    assert sorted(annotations) == ["description", "runbook", "summary"]
    assert "rollback.yml" in annotations["runbook"]
    named = ["$labels.namespace", "$labels.app", "$labels.track"] if name in APP_ALERTS else ["$labels.namespace", "$labels.environment"]
    for key in ("summary", "description"):
        for label in named:
            assert label in annotations[key], "%s %s does not name %s" % (name, key, label)


# --- every alert has a case that fires and one that stays silent ---------------------------------

_METRIC = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]")


def coverage_problems(rules_doc, tests_doc):
    """What is missing for every alert to have a firing and a silent promtool case (empty: nothing)."""
    alerts = alerts_of(rules_doc)
    fires, silent, problems = set(), set(), []
    for group in tests_doc.get("tests") or []:
        series = {item["series"].split("{", 1)[0].strip() for item in group.get("input_series") or []}
        for case in group.get("alert_rule_test") or []:
            name = case.get("alertname")
            if name not in alerts:
                problems.append("test group %r tests %s, which is not a rule" % (group.get("name"), name))
            elif case.get("exp_alerts"):
                if all(alert.get("exp_labels") and alert.get("exp_annotations") for alert in case["exp_alerts"]):
                    fires.add(name)
            elif series & set(_METRIC.findall(alerts[name]["expr"])):
                silent.add(name)
    for name in alerts:
        if name not in fires:
            problems.append("%s has no case that fires (exp_alerts with exp_labels and exp_annotations)" % name)
        if name not in silent:
            problems.append("%s has no case that stays silent (exp_alerts: [] with series of its metrics)" % name)
    return problems


def test_every_alert_has_a_firing_and_a_silent_case():
    assert coverage_problems(load(RULES), load(PROMTOOL_TESTS)) == []


def _add_untested_alert(rules, tests):
    rule = copy.deepcopy(rules["groups"][0]["rules"][0])
    rule["alert"] = "KeneyappUntested"
    rules["groups"][0]["rules"].append(rule)


def _drop_silent_cases(name):
    def mutate(rules, tests):
        for group in tests["tests"]:
            group["alert_rule_test"] = [case for case in group.get("alert_rule_test", [])
                                        if case["alertname"] != name or case["exp_alerts"]]
    return mutate


def _drop_fired_annotations(name):
    def mutate(rules, tests):
        for group in tests["tests"]:
            for case in group.get("alert_rule_test", []):
                if case["alertname"] == name:
                    for alert in case["exp_alerts"]:
                        alert.pop("exp_annotations", None)
    return mutate


def _silent_without_series(name, metric):
    def mutate(rules, tests):
        for group in tests["tests"]:
            if any(case["alertname"] == name and not case["exp_alerts"] for case in group.get("alert_rule_test", [])):
                group["input_series"] = [item for item in group["input_series"] if not item["series"].startswith(metric)]
    return mutate


def _test_of_unknown_alert(rules, tests):
    tests["tests"][0]["alert_rule_test"][0]["alertname"] = "KeneyappTypo"


@pytest.mark.parametrize("mutate, expected", [
    (_add_untested_alert, ["KeneyappUntested has no case that fires (exp_alerts with exp_labels and exp_annotations)",
                           "KeneyappUntested has no case that stays silent (exp_alerts: [] with series of its metrics)"]),
    (_drop_silent_cases("KeneyappSlowResponses"),
     ["KeneyappSlowResponses has no case that stays silent (exp_alerts: [] with series of its metrics)"]),
    (_drop_fired_annotations("KeneyappPodRestarts"),
     ["KeneyappPodRestarts has no case that fires (exp_alerts with exp_labels and exp_annotations)"]),
    # A silent case is only one if the alert's metric is there to be judged.
    (_silent_without_series("KeneyappCriticalExceptions", "keneyapp_critical_exceptions_total"),
     ["KeneyappCriticalExceptions has no case that stays silent (exp_alerts: [] with series of its metrics)"]),
    (_test_of_unknown_alert, ["test group 'KeneyappHighErrorRate fires' tests KeneyappTypo, which is not a rule"]),
], ids=["alert-without-tests", "no-silent-case", "firing-case-without-annotations", "silent-case-without-data", "unknown-alert"])
def test_coverage_check_catches(mutate, expected):
    rules, tests = load(RULES), load(PROMTOOL_TESTS)
    mutate(rules, tests)
    assert coverage_problems(rules, tests) == expected


# --- mutants of the rules fail the promtool tests ------------------------------------------------

MUTANTS = [
    # (alert, field, from, to): each must make `promtool test rules` fail.
    ("KeneyappHighErrorRate", "expr", "> 0.01", "> 0.03"),          # the 2 % case no longer fires
    ("KeneyappHighErrorRate", "expr", "> 0.01", "> 0.008"),         # the 0.9 % case fires
    ("KeneyappHighErrorRate", "expr", '{status=~"5.."}', '{status=~"[45].."}'),  # 404s counted as errors
    ("KeneyappHighErrorRate", "for", "2m", "1m"),
    ("KeneyappHighErrorRate", "for", "2m", "3m"),
    ("KeneyappSlowResponses", "expr", "> 2", "> 3"),
    ("KeneyappSlowResponses", "expr", "> 2", "> 1.5"),
    ("KeneyappSlowResponses", "expr", "histogram_quantile(0.95", "histogram_quantile(0.9"),
    ("KeneyappSlowResponses", "for", "2m", "1m"),
    ("KeneyappHealthCheckFailures", "expr", "> 0.1", "> 0.2"),
    ("KeneyappHealthCheckFailures", "expr", "> 0.1", "> 0.08"),
    ("KeneyappHealthCheckFailures", "for", "2m", "3m"),
    ("KeneyappDatabaseConnectionErrors", "expr", "> 0", "> 1"),
    ("KeneyappDatabaseConnectionErrors", "expr", "> 0", ">= 0"),
    ("KeneyappDatabaseConnectionErrors", "expr", "[5m]", "[3m]"),
    ("KeneyappDatabaseConnectionErrors", "for", "0m", "1m"),
    ("KeneyappCriticalExceptions", "expr", "> 0", "> 2"),
    ("KeneyappCriticalExceptions", "expr", "> 0", ">= 0"),
    ("KeneyappPodRestarts", "expr", "> 0", "> 1"),
    ("KeneyappPodRestarts", "expr", "> 0", ">= 0"),
    ("KeneyappPodRestarts", "expr", "[15m]", "[10m]"),
    ("KeneyappPodRestarts", "expr", 'up{app!="", track!=""}', "up"),   # other teams' pods alert
    ("KeneyappReleaseOverBudget", "expr", "> 0", "> 120"),
    ("KeneyappReleaseOverBudget", "expr", "> 0", "> -60"),
    ("KeneyappReleaseOverBudget", "expr", "== 1", "== 0"),
    ("KeneyappReleaseOverBudget", "for", "1m", "0m"),
    ("KeneyappReleaseOverBudget", "for", "1m", "2m"),
]


def run_promtool_tests(tmp_path, rules_doc, alert=None):
    """promtool test rules on the shipped tests (those of ``alert``, else all), against ``rules_doc`` written to tmp_path."""
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(yaml.safe_dump(rules_doc, sort_keys=False), encoding="utf-8")
    tests_doc = load(PROMTOOL_TESTS)
    tests_doc["rule_files"] = [str(rules_path)]
    if alert:
        # Only the alert's own groups ("<alert> fires", "<alert> stays silent ..."): a fraction of the time.
        tests_doc["tests"] = [group for group in tests_doc["tests"] if group["name"].split(" ", 1)[0] == alert]
        assert tests_doc["tests"], "no test group of %s" % alert
    tests_path = tmp_path / "tests.yml"
    tests_path.write_text(yaml.safe_dump(tests_doc, sort_keys=False), encoding="utf-8")
    return promtool("test", "rules", str(tests_path))


def test_rewritten_rules_still_pass(tmp_path):
    """The control for the mutants: writing the rules back unchanged keeps the tests passing."""
    code, output = run_promtool_tests(tmp_path, load(RULES))
    assert code == 0, output


@pytest.mark.parametrize("name, field, before, after", MUTANTS, ids=["%s:%s->%s" % (m[0], m[2], m[3]) for m in MUTANTS])
def test_mutated_rule_fails_the_promtool_tests(tmp_path, name, field, before, after):
    rules = load(RULES)
    rule = alerts_of(rules)[name]
    if field == "expr":
        assert rule["expr"].count(before) == 1, "the mutant must change exactly one place"
        rule["expr"] = rule["expr"].replace(before, after)
    else:
        assert rule[field] == before
        rule[field] = after
    code, output = run_promtool_tests(tmp_path, rules, alert=name)
    assert code != 0, "promtool test rules passed with %s %s changed from %r to %r" % (name, field, before, after)
    assert "alertname: %s," % name in output
