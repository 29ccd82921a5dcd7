"""Maintenance windows (pure): the page, the remembered selector, the plans, the drain; one table per behaviour."""

from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import maintenance, maintenance_runner
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, NotFound

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
APP = {"app.kubernetes.io/name": "web", "color": "blue"}
PAGE = {"app.kubernetes.io/name": "keneyapp-maintenance"}
ANN = maintenance.ANNOTATION


def svc(selector=None, annotation=None, annotations=None, target="http", rv="7"):
    meta = {"name": "web", "resourceVersion": rv}
    notes = dict(annotations or {})
    if annotation is not None:
        notes[ANN] = annotation
    if notes:
        meta["annotations"] = notes
    spec = {"ports": [{"name": "http", "port": 80, "targetPort": target}]}
    if selector is not None:
        spec["selector"] = dict(selector)
    return {"metadata": meta, "spec": spec}


def dep(replicas=0, checksum=None, ports=(("http", 8080),), selector=None):
    template = {"metadata": {"labels": dict(PAGE)},
                "spec": {"containers": [{"name": "page", "ports": [{"name": n, "containerPort": p} for n, p in ports]}]}}
    if checksum:
        template["metadata"]["annotations"] = {maintenance.PAGE_CHECKSUM: checksum}
    return {"metadata": {"name": "keneyapp-maintenance"},
            "spec": {"replicas": replicas, "selector": selector or {"matchLabels": dict(PAGE)}, "template": template}}


def cm(page="<p>old</p>"):
    return {"metadata": {"name": "keneyapp-maintenance"}, "data": {"index.html": page, "nginx.conf": "server {}"}}


def apply_patch(obj, ops):
    """A small RFC 6902 applier (add, replace, remove) so the tests check what the API server would store."""
    obj = copy.deepcopy(obj)
    for op in ops:
        *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].lstrip("/").split("/")]
        target = obj
        for token in parents:
            target = target[token]
        if op["op"] == "remove":
            del target[last]
        elif op["op"] == "replace":
            assert last in target, op
            target[last] = copy.deepcopy(op["value"])
        else:
            target[last] = copy.deepcopy(op["value"])
    return obj


# --- the page ---------------------------------------------------------------------------


def test_default_page_with_the_reference_eta_is_the_shipped_page():
    with open(os.path.join(REPO, "examples", "keneyapp", "k8s", "base", "maintenance", "index.html"), encoding="utf-8") as handle:
        assert maintenance.render_page(estimated_return="23:00 CET") == handle.read()


@pytest.mark.parametrize("kwargs, present, absent", [
    ({}, ["<title>KeneyApp - Maintenance en cours</title>", "<h1>Maintenance planifiée</h1>",
          "<p>KeneyApp est actuellement en maintenance.</p>", "<p>Merci de votre patience.</p>", '<html lang="fr">',
          '<meta charset="utf-8">'], ["Retour"]),
    ({"estimated_return": "  "}, [], ["Retour"]),
    ({"estimated_return": "dimanche 4:00 CET"}, ["<p>Retour estimé: dimanche 4:00 CET</p>"], []),
    ({"title": "A & B <script>alert(1)</script>"}, ["<title>A &amp; B &lt;script&gt;alert(1)&lt;/script&gt;</title>"], ["<script>"]),
    ({"message": "L'application \"KeneyApp\" revient"}, ["<p>L'application \"KeneyApp\" revient</p>"], []),
    ({"estimated_return": "</p><img src=x>"}, ["Retour estimé: &lt;/p&gt;&lt;img src=x&gt;</p>"], ["<img"]),
])
def test_render_page(kwargs, present, absent):
    page = maintenance.render_page(**kwargs)
    for text in present:
        assert text in page
    for text in absent:
        assert text not in page


@pytest.mark.parametrize("kwargs", [{"title": ""}, {"heading": "  "}, {"message": None}])
def test_render_page_refuses_empty_text(kwargs):
    with pytest.raises(InvalidInput, match="is empty"):
        maintenance.render_page(**kwargs)


def test_page_checksum_follows_the_text():
    assert maintenance.page_checksum("a") == maintenance.page_checksum("a") != maintenance.page_checksum("b")


# --- the remembered selector -----------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ('{"app.kubernetes.io/name":"web","color":"blue"}', APP),
    (maintenance.encode_selector(APP), APP),
    ("color=blue", None),
    ("{}", None),
    ("[]", None),
    ('{"replicas": 1}', None),
    ("", None),
    (None, None),
])
def test_decode_selector(text, expected):
    assert maintenance.decode_selector(text) == expected


@pytest.mark.parametrize("service, expect_annotations", [
    (svc(APP), {ANN: maintenance.encode_selector(APP)}),
    (svc(APP, annotations={"owner": "team"}), {"owner": "team", ANN: maintenance.encode_selector(APP)}),
])
def test_enable_ops_replace_the_whole_selector_and_remember_it(service, expect_annotations):
    ops = maintenance.enable_ops(service, PAGE, APP)
    assert ops[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "7"}
    after = apply_patch(service, ops)
    assert after["spec"]["selector"] == PAGE          # "color" is gone, not merged
    assert after["metadata"]["annotations"] == expect_annotations
    assert json.loads(after["metadata"]["annotations"][ANN]) == APP
    back = apply_patch(after, maintenance.disable_ops(after, APP))
    assert back["spec"]["selector"] == APP and ANN not in back["metadata"]["annotations"]


# --- enable ------------------------------------------------------------------------------


PAGE_HTML = maintenance.render_page(estimated_return="23:00 CET")


def plan_enable(services, deployment=None, configmap=None, page=PAGE_HTML, replicas=1):
    return maintenance.plan_enable("prod", services, dep() if deployment is None else deployment,
                                   cm() if configmap is None else configmap, page, replicas)


def test_plan_enable_switches_a_live_service():
    plan = plan_enable([("web", svc(APP))])
    entry = plan["services"][0]
    assert plan["changed"] and plan["selector"] == PAGE
    assert (entry["selector_before"], entry["selector_after"], entry["remembered"]) == (APP, PAGE, APP)
    assert apply_patch(svc(APP), entry["ops"])["spec"]["selector"] == PAGE
    assert plan["configmap_patch"] == {"data": {"index.html": PAGE_HTML}}  # a merge patch: nginx.conf stays
    assert plan["deployment_patch"]["spec"]["replicas"] == 1
    assert plan["deployment_patch"]["spec"]["template"]["metadata"]["annotations"] == {
        maintenance.PAGE_CHECKSUM: maintenance.page_checksum(PAGE_HTML)}
    assert (plan["replicas_before"], plan["replicas_after"]) == (0, 1)


@pytest.mark.parametrize("service, deployment, configmap, changed, ops, what", [
    # Already in maintenance, same page, same count: nothing to do (the remembered selector is kept).
    (svc(PAGE, maintenance.encode_selector(APP)), dep(1, maintenance.page_checksum(PAGE_HTML)), cm(PAGE_HTML), False, None, None),
    # Someone pointed it elsewhere by hand meanwhile: back to the page, the remembered selector untouched.
    (svc({"app.kubernetes.io/name": "x"}, maintenance.encode_selector(APP)), dep(1, maintenance.page_checksum(PAGE_HTML)),
     cm(PAGE_HTML), True, ["/metadata/resourceVersion", "/spec/selector"], None),
    # A new estimated return: the page is rewritten and its pods roll (checksum).
    (svc(PAGE, maintenance.encode_selector(APP)), dep(1, "0ld"), cm("<p>old</p>"), True, None, "page"),
    # Another replica count.
    (svc(PAGE, maintenance.encode_selector(APP)), dep(2, maintenance.page_checksum(PAGE_HTML)), cm(PAGE_HTML), True, None, "replicas"),
])
def test_plan_enable_is_idempotent(service, deployment, configmap, changed, ops, what):
    plan = plan_enable([("web", service)], deployment, configmap)
    entry = plan["services"][0]
    assert plan["changed"] is changed
    assert ([o["path"] for o in entry["ops"]] if entry["ops"] else None) == ops
    assert entry["remembered"] == APP
    assert (plan["configmap_patch"] is not None) is (what == "page")
    assert (plan["deployment_patch"] is not None) is (what in ("page", "replicas"))


@pytest.mark.parametrize("services, deployment, configmap, replicas, error, fragments", [
    ([("web", None)], dep(), cm(), 1, NotFound, ["Service prod/web (in services) does not exist"]),
    ([("web", svc(APP))], False, cm(), 1, NotFound, ["Deployment prod/keneyapp-maintenance (deployment) does not exist"]),
    ([("web", svc(APP))], dep(), False, 1, NotFound, ["ConfigMap prod/keneyapp-maintenance (configmap) does not exist"]),
    ([("web", None)], False, False, 1, NotFound, ["Service prod/web", "Deployment prod/", "ConfigMap prod/"]),
    ([("web", svc(APP, "color=blue"))], dep(), cm(), 1, InvalidInput,
     ["which is not a JSON selector", "kubectl annotate service web %s- -n prod" % ANN]),
    ([("web", svc())], dep(), cm(), 1, InvalidInput, ["has no selector", "Leave it out of services"]),
    ([("web", svc(PAGE))], dep(), cm(), 1, InvalidInput, ["already selects the page pods but remembers no selector"]),
    ([("web", svc(APP, target="metrics"))], dep(), cm(), 1, InvalidInput, ["targets port(s) metrics"]),
    ([("web", svc(APP, target=8000))], dep(), cm(), 1, InvalidInput, ["targets port(s) 8000"]),
    ([("web", svc(APP))], dep(selector={"matchExpressions": [{"key": "a", "operator": "Exists"}]}), cm(), 1, InvalidInput,
     ["matchExpressions"]),
    ([("web", svc(APP))], dep(), cm(), 0, InvalidInput, ["replicas=0"]),
    ([], dep(), cm(), 1, InvalidInput, ["services is empty"]),
    ([("Web_1", svc(APP))], dep(), cm(), 1, InvalidInput, ["services='Web_1' is not a Kubernetes object name"]),
])
def test_plan_enable_refusals(services, deployment, configmap, replicas, error, fragments):
    with pytest.raises(error) as caught:
        maintenance.plan_enable("prod", services, None if deployment is False else deployment,
                                None if configmap is False else configmap, PAGE_HTML, replicas)
    message = str(caught.value)
    assert message.startswith("maintenance_mode state=enabled refused, nothing was changed:")
    for fragment in fragments:
        assert fragment in message


def test_plan_enable_names_every_problem_at_once():
    with pytest.raises(InvalidInput) as caught:
        maintenance.plan_enable("prod", [("web", None), ("api", svc(APP, "color=blue"))], None, None, PAGE_HTML, 0)
    assert len(caught.value.details["problems"]) == 5  # replicas, deployment, configmap, web, api


def test_numeric_target_port_the_page_exposes_is_fine():
    plan = plan_enable([("web", svc(APP, target=8080))])
    assert plan["services"][0]["ops"]


@pytest.mark.parametrize("port, expected", [
    ({"port": 80, "targetPort": "http"}, []),
    ({"port": 80, "targetPort": "web"}, ["web"]),
    ({"port": 8080}, []),                      # no targetPort: the port itself
    ({"port": 80}, ["80"]),
    ({"port": 80, "targetPort": "8080"}, []),  # a number written as a string
])
def test_unreachable_ports(port, expected):
    assert maintenance.unreachable_ports({"spec": {"ports": [port]}}, dep()) == expected


# --- disable -----------------------------------------------------------------------------


@pytest.mark.parametrize("service, deployment, changed, after, patch, warnings", [
    (svc(PAGE, maintenance.encode_selector(APP)), dep(1), True, APP, {"spec": {"replicas": 0}}, 0),
    (svc(APP), dep(0), False, APP, None, 0),                        # nothing remembered: nothing to restore
    (svc(APP), dep(1), True, APP, {"spec": {"replicas": 0}}, 0),    # the page left running is scaled down
    (svc(PAGE, maintenance.encode_selector(APP)), None, True, APP, None, 1),   # after a crash, without the page
])
def test_plan_disable(service, deployment, changed, after, patch, warnings):
    plan = maintenance.plan_disable("prod", [("web", service)], deployment)
    entry = plan["services"][0]
    assert plan["changed"] is changed and entry["selector_after"] == after
    assert plan["deployment_patch"] == patch and len(plan["warnings"]) == warnings
    if entry["ops"]:
        restored = apply_patch(service, entry["ops"])
        assert restored["spec"]["selector"] == APP and ANN not in restored["metadata"]["annotations"]


def test_plan_disable_keeps_the_page_for_services_still_in_maintenance():
    plan = maintenance.plan_disable("prod", [("web", svc(PAGE, maintenance.encode_selector(APP)))], dep(1),
                                    still_served=["web", "api"])
    assert plan["services"][0]["ops"] and plan["deployment_patch"] is None and plan["replicas_after"] == 1
    assert plan["warnings"] == ["Deployment prod/keneyapp-maintenance (the page) keeps running: Service(s) api still serve it."]


@pytest.mark.parametrize("services, error, fragment", [
    ([("web", None)], NotFound, "Service prod/web (in services) does not exist"),
    ([("web", svc(PAGE, "{oops"))], InvalidInput, "which is not a JSON selector"),
    ([("web", svc(PAGE))], InvalidInput, "selects the page pods but remembers no selector"),
])
def test_plan_disable_refusals(services, error, fragment):
    with pytest.raises(error, match="state=disabled refused, nothing was changed") as caught:
        maintenance.plan_disable("prod", services, dep(1))
    assert fragment in str(caught.value)


@pytest.mark.parametrize("durations, ok", [
    ({"timeout": 1, "drain_timeout": 0, "drain_seconds": 0}, True),
    ({"timeout": 0, "drain_timeout": 0, "drain_seconds": 0}, False),
    ({"timeout": 5, "drain_timeout": -1, "drain_seconds": 0}, False),
])
def test_check_inputs_durations(durations, ok):
    if ok:
        maintenance.check_inputs("enabled", "prod", "keneyapp-maintenance", "keneyapp-maintenance", "index.html", ["web"], durations)
    else:
        with pytest.raises(InvalidInput, match="is not a number of seconds"):
            maintenance.check_inputs("enabled", "prod", "keneyapp-maintenance", "keneyapp-maintenance", "index.html", ["web"], durations)


@pytest.mark.parametrize("page_key, ok", [("index.html", True), ("page/index.html", False), ("", False)])
def test_check_inputs_page_key(page_key, ok):
    durations = {"timeout": 1}
    if ok:
        maintenance.check_inputs("enabled", "prod", "d", "c", page_key, ["web"], durations)
    else:
        with pytest.raises(InvalidInput, match="is not a ConfigMap key"):
            maintenance.check_inputs("enabled", "prod", "d", "c", page_key, ["web"], durations)


# --- drain -------------------------------------------------------------------------------


@pytest.mark.parametrize("entries, apps", [
    ([{"name": "keneyapp-backend", "selector_before": {"app.kubernetes.io/name": "keneyapp-backend", "color": "blue"}}],
     ["keneyapp-backend"]),
    ([{"name": "web", "selector_before": {"app": "x"}}, {"name": "web", "selector_before": {"app": "y"}}], ["web"]),
])
def test_drain_apps(entries, apps):
    assert maintenance.drain_apps(entries) == apps


def test_in_flight_selector():
    assert maintenance.in_flight_selector("http_requests_in_flight", "prod", ["a", "b.c"]) == \
        'http_requests_in_flight{namespace="prod",app=~"a|b\\\\.c"}'
    with pytest.raises(InvalidInput, match="not a Prometheus metric name"):
        maintenance.in_flight_selector("in-flight", "prod", ["a"])


def vector(value, when=100.0):
    return {"status": "success", "data": {"resultType": "vector", "result": [] if value is None else [{"metric": {}, "value": [when, str(value)]}]}}


@pytest.mark.parametrize("answer, expected", [
    (vector(3, 12.5), (3.0, 12.5)),
    (vector(None), (None, None)),
    ({"status": "success", "data": {"resultType": "scalar", "result": [7.0, "1"]}}, (1.0, 7.0)),
])
def test_scalar_answer(answer, expected):
    assert maintenance.scalar_answer(answer) == expected


@pytest.mark.parametrize("answer", ["URLError: refused", {"status": "error", "error": "parse error"}, None])
def test_scalar_answer_errors(answer):
    with pytest.raises(ValueError):
        maintenance.scalar_answer(answer)


@pytest.mark.parametrize("in_flight, oldest, drained", [
    (0.0, 101.0, True),
    (0.0, 99.0, False),    # a zero scraped before the switch says nothing
    (2.0, 101.0, False),
    (None, None, True),    # the old pods are gone
    (0.0, None, False),
])
def test_drain_verdict(in_flight, oldest, drained):
    assert maintenance.drain_verdict(in_flight, oldest, 100.0) is drained


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def params(**extra):
    return dict({"prometheus_url": "http://prom", "prometheus_bearer_token": None, "prometheus_validate_certs": True,
                 "in_flight_metric": "http_requests_in_flight", "namespace": "prod", "drain_timeout": 10, "drain_seconds": 4}, **extra)


def prometheus(totals, scraped_at):
    """A fake Prometheus: the sum answers come from ``totals`` in turn; every series was last scraped at ``scraped_at(clock)``."""
    clock, answers = FakeClock(), iter(totals)

    def ask(_url, query, _request):
        if query.startswith("min(timestamp("):
            return vector(scraped_at(clock.now), clock.now)
        value = next(answers)
        return value if isinstance(value, str) else vector(value, 1000 + clock.now)
    return clock, ask


@pytest.mark.parametrize("totals, scraped_at, expected, warned", [
    # 3 in flight at the switch, draining; the last zero is read from a fresh scrape.
    ([3, 1, 0], lambda now: 1000 + now, {"method": "prometheus", "drained": True, "in_flight_start": 3, "in_flight_end": 0}, 0),
    # Zeros from scrapes older than the switch do not count; it waits for a fresh one.
    ([0, 0, 0, 0], lambda now: 999 if now < 1.5 else 1000 + now, {"drained": True, "in_flight_start": 0, "in_flight_end": 0}, 0),
    # Never drained within drain_timeout: a warning, not a failure.
    ([5] * 40, lambda now: 1000 + now, {"drained": False, "in_flight_end": 5, "seconds": 10.0}, 1),
    # No series at all: it cannot measure, so it waits the grace and says why.
    ([None], lambda now: 0, {"method": "grace", "drained": False, "seconds": 4.0}, 1),
    # Prometheus down.
    (["URLError: connection refused"], lambda now: 0, {"method": "grace", "drained": False}, 1),
])
def test_drain(totals, scraped_at, expected, warned):
    clock, ask = prometheus(totals, scraped_at)
    warnings = []
    result = maintenance_runner.drain(params(), ["web"], warnings.append, ask=ask, clock=clock, sleep=clock.sleep)
    assert {k: result[k] for k in expected} == expected, result
    assert len(warnings) == warned, warnings
    assert result["query"] == 'sum(http_requests_in_flight{namespace="prod",app=~"web"})'


def test_drain_without_prometheus_waits_the_grace():
    clock = FakeClock()
    result = maintenance_runner.drain(params(prometheus_url=None), ["web"], pytest.fail, ask=pytest.fail, clock=clock,
                                      sleep=clock.sleep)
    assert clock.now == 4 and result["method"] == "grace" and result["drained"] is False
    assert "no prometheus_url" in result["note"] and result["query"] is None
