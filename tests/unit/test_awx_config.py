"""AWX configuration as code (awx/), the execution environment and the project's collections.

What can be checked without an AWX server: the configuration playbook's syntax; every survey spec
against the question fields and types AWX documents, the README's variable table and what the
playbooks accept; every credential's inputs against the field ids of its type (AWX's own for the
built-in types, the type's ``inputs.fields`` for ours, whose injectors may only use those ids);
``ansible-builder create`` and the build context it writes; collections/requirements.yml against
the collections the ``ansible`` package bundles; the three inventories as AWX's project inventory
sources read them. Every checker is also fed a broken input and must reject it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ansible
import jinja2
import pytest
from jinja2 import meta as jinja_meta

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
AWX = ROOT / "awx"
SURVEYS = AWX / "surveys"
BIN = Path(sys.executable).parent

# AWX's survey spec, as its API documents it (ansible/awx awx/api/templates/api/job_template_survey_spec.md,
# stored commit 047880b5db910e02e28104633e10e8a94c50828f): `name` and `description` head the spec, `spec`
# is a list of questions, each with `question_name`, `question_description`, `variable`, `type` and the
# optional `required`, `min`, `max`, `default`, `choices`; the UI adds `new_question`. Types: the API
# page's six plus `textarea` (the UI's multi-line text).
SURVEY_KEYS = {"name", "description", "spec"}
QUESTION_KEYS = {"question_name", "question_description", "required", "type", "variable",
                 "min", "max", "default", "choices", "new_question"}
QUESTION_REQUIRED = {"question_name", "question_description", "type", "variable", "required"}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}

# The built-in credential types' input field ids and required ids, read from AWX's source:
# ansible/awx awx/main/models/credential/__init__.py (stored commit 000dbedaebf1f93be00de342380a08ccb3da99b8),
# ManagedCredentialType(namespace='vault', ...) and ManagedCredentialType(namespace='kubernetes_bearer_token', ...).
AWX_BUILTIN_TYPES = {
    "Vault": {"fields": {"vault_password", "vault_id"}, "required": {"vault_password"}},
    "OpenShift or Kubernetes API Bearer Token": {"fields": {"host", "bearer_token", "verify_ssl", "ssl_ca_cert"},
                                                 "required": {"host", "bearer_token"}},
}
# A custom type's field keys and field types (the same file's fields; CredentialTypeInputField's schema),
# its kinds (AWX accepts custom types of kind cloud or net) and its injector sections.
FIELD_KEYS = {"id", "label", "type", "secret", "multiline", "help_text", "choices", "format", "default", "ask_at_runtime"}
FIELD_TYPES = {"string", "boolean"}
CUSTOM_KINDS = {"cloud", "net"}
INJECTOR_SECTIONS = {"file", "env", "extra_vars"}
SOURCE = re.compile(r"^KENEYAPP_AWX_[A-Z0-9_]+$")
# Environment variables a credential injects that no file of the collection reads yet: the notify
# role does not read KENEYAPP_NOTIFY_URLS / KENEYAPP_STATUS_PAGE_URL (a change asked of its owner), and
# KENEYAPP_CREDENTIAL_ENVIRONMENT is for a preflight check not written yet. PGPASSWORD is libpq's.
INJECTED_NOT_READ = {"KENEYAPP_NOTIFY_URLS", "KENEYAPP_STATUS_PAGE_URL", "KENEYAPP_CREDENTIAL_ENVIRONMENT", "PGPASSWORD"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's !unsafe (a plain string here)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(path):
    return yaml.load(Path(path).read_text(), Loader=_Loader)


def awx_vars():
    data = {}
    for name in ("main.yml", "credential_types.yml", "credentials.yml"):
        data.update(load(AWX / "vars" / name))
    return data


def readme_variables():
    """Every backticked name in the first cell of the README's "Variables and inventory settings" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Variables and inventory settings", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_][a-z0-9_]*)`", line.split("|")[1]))
    return names


def strategy_choices():
    """The strategies release.yml accepts: the preflight role's argument spec (and its available list)."""
    spec = load(ROOT / "roles" / "preflight" / "meta" / "argument_specs.yml")
    available = load(ROOT / "roles" / "preflight" / "defaults" / "main.yml")["preflight_available_strategies"]
    choices = spec["argument_specs"]["main"]["options"]["strategy"]["choices"]
    assert set(choices) == set(available)
    return choices


def backup_type_choices():
    """The backup types playbooks/backup.yml's first assert accepts."""
    text = (ROOT / "playbooks" / "backup.yml").read_text()
    found = re.search(r"backup_type \| default\('full'\) in \[([^\]]*)\]", text)
    return [c.strip().strip("'\"") for c in found.group(1).split(",")]


# --- (a) the configuration playbook ---------------------------------------------------------------


def syntax_check(playbook):
    return subprocess.run([str(BIN / "ansible-playbook"), str(playbook), "--syntax-check"], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=120)


def test_configure_playbook_passes_syntax_check():
    result = syntax_check(AWX / "configure.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_syntax_check_rejects_a_broken_playbook(tmp_path):
    copy = tmp_path / "awx"
    shutil.copytree(AWX, copy)
    text = (copy / "configure.yml").read_text()
    broken = text.replace("      awx.awx.organization:\n", "      awx.awx.organization:\n      awx.awx.team:\n", 1)
    assert broken != text
    (copy / "configure.yml").write_text(broken)
    result = syntax_check(copy / "configure.yml")
    assert result.returncode != 0
    assert "conflicting action statements" in result.stdout + result.stderr


# --- (b) surveys ----------------------------------------------------------------------------------


def question_problems(q, known, strategies, backup_types):
    """What AWX would refuse, or what the playbooks would not accept, in one survey question."""
    problems = []
    var = q.get("variable", "?")
    for key in sorted(set(q) - QUESTION_KEYS):
        problems.append("%s: unknown question field %s" % (var, key))
    for key in sorted(QUESTION_REQUIRED - set(q)):
        problems.append("%s: no %s" % (var, key))
    qtype = q.get("type")
    if qtype not in SURVEY_TYPES:
        problems.append("%s: type %s is not one of AWX's %s" % (var, qtype, sorted(SURVEY_TYPES)))
    if not isinstance(q.get("required"), bool):
        problems.append("%s: required must be true or false" % var)
    if var not in known:
        problems.append("%s: not a variable of the README's table" % var)
    choices = q.get("choices")
    if qtype in ("multiplechoice", "multiselect"):
        if not (isinstance(choices, list) and choices and all(isinstance(c, str) and c for c in choices)):
            problems.append("%s: a %s needs a list of choices" % (var, qtype))
            choices = []
        if len(set(choices)) != len(choices):
            problems.append("%s: repeated choices" % var)
        if "default" in q:
            wanted = q["default"].split("\n") if qtype == "multiselect" else [q["default"]]
            if not set(wanted) <= set(choices):
                problems.append("%s: default %r is not one of the choices" % (var, q["default"]))
        if q.get("required") and "default" not in q:
            problems.append("%s: a required choice needs a default" % var)
    elif choices not in (None, ""):
        problems.append("%s: choices on a %s question" % (var, qtype))
    if qtype in ("text", "textarea", "password", "integer", "float"):
        number = float if qtype == "float" else int
        low, high = q.get("min"), q.get("max")
        for name, value in (("min", low), ("max", high)):
            if value is not None and not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append("%s: %s must be a number" % (var, name))
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            problems.append("%s: min %s > max %s" % (var, low, high))
        if "default" in q:
            default = q["default"]
            size = len(default) if isinstance(default, str) and qtype not in ("integer", "float") else None
            if qtype in ("integer", "float"):
                if not isinstance(default, number) or isinstance(default, bool):
                    problems.append("%s: default %r is not a%s %s" % (var, default, "n" if qtype == "integer" else "", qtype))
                else:
                    size = default
            if size is not None and (isinstance(low, (int, float)) and size < low or isinstance(high, (int, float)) and size > high):
                problems.append("%s: default %r outside min/max" % (var, default))
    # An empty default on an optional question reaches the playbook as "" (a defined variable).
    if not q.get("required") and "default" in q and q["default"] in ("", None):
        problems.append("%s: an optional question with an empty default" % var)
    if var == "strategy" and choices != strategies:
        problems.append("strategy: choices %s are not release.yml's %s" % (choices, strategies))
    if var == "backup_type" and choices != backup_types:
        problems.append("backup_type: choices %s are not playbooks/backup.yml's %s" % (choices, backup_types))
    if var in ("allow_older_version", "canary_abort", "break_lock") and choices != ["false", "true"]:
        problems.append("%s: a switch is the choices false/true" % var)
    return problems


def survey_problems(survey, known, strategies, backup_types):
    problems = ["unknown survey field %s" % k for k in sorted(set(survey) - SURVEY_KEYS)]
    problems += ["no %s" % k for k in sorted(SURVEY_KEYS - set(survey))]
    if not isinstance(survey.get("name"), str) or not isinstance(survey.get("description"), str):
        problems.append("name and description must be strings")
    spec = survey.get("spec")
    if not isinstance(spec, list) or not spec:
        return problems + ["spec must be a non-empty list of questions"]
    variables = [q.get("variable") for q in spec]
    problems += ["variable %s asked twice" % v for v in sorted({v for v in variables if variables.count(v) > 1})]
    for q in spec:
        problems += question_problems(q, known, strategies, backup_types)
    return problems


SURVEY_FILES = sorted(SURVEYS.glob("*.yml"))


@pytest.fixture(scope="module")
def survey_context():
    return readme_variables(), strategy_choices(), backup_type_choices()


def test_readme_table_and_playbooks_give_what_the_checks_need(survey_context):
    known, strategies, backup_types = survey_context
    # By hand from DESIGN.md section 8 / the README: names every survey below relies on.
    assert {"app_version", "image_tag", "strategy", "change_ticket", "approved_by", "break_lock", "backup_type"} <= known
    assert strategies == ["rolling", "blue_green", "canary", "maintenance"]
    assert backup_types == ["full", "diff", "incr"]


@pytest.mark.parametrize("path", SURVEY_FILES, ids=[p.stem for p in SURVEY_FILES])
def test_survey_spec_is_what_awx_and_the_playbooks_accept(path, survey_context):
    assert survey_problems(load(path), *survey_context) == []


def test_every_template_has_its_survey_and_playbook():
    data = awx_vars()
    used = {jt["survey"] for jt in data["keneyapp_awx_job_templates"]} | {data["keneyapp_awx_workflow_survey"]}
    assert used == {p.stem for p in SURVEY_FILES}
    for jt in data["keneyapp_awx_job_templates"]:
        assert (ROOT / jt["playbook"]).is_file(), jt["playbook"]
    playbooks = {jt["playbook"] for jt in data["keneyapp_awx_job_templates"]}
    assert playbooks == {"release.yml", "rollback.yml", "playbooks/backup.yml", "playbooks/restore_drill.yml",
                         "playbooks/maintenance.yml", "playbooks/audit_verify.yml"}
    release = load(SURVEYS / "release.yml")["spec"]
    assert [q["variable"] for q in release if q["required"] and "default" not in q] == ["app_version"]


def _release_question(survey, variable):
    return next(q for q in survey["spec"] if q["variable"] == variable)


def _bad_unknown_key(s):
    _release_question(s, "app_version")["question"] = "Version?"


def _bad_type(s):
    _release_question(s, "break_lock")["type"] = "boolean"


def _bad_no_choices(s):
    del _release_question(s, "strategy")["choices"]


def _bad_variable(s):
    _release_question(s, "change_ticket")["variable"] = "environment"


def _bad_strategy_choices(s):
    _release_question(s, "strategy")["choices"] = ["rolling", "blue-green", "canary", "maintenance"]


def _bad_default_not_a_choice(s):
    _release_question(s, "allow_older_version")["default"] = "no"


def _bad_empty_default(s):
    _release_question(s, "image_tag")["default"] = ""


def _bad_min_max(s):
    _release_question(s, "app_version")["min"] = 100


def _bad_missing_description(s):
    del _release_question(s, "app_version")["question_description"]


def _bad_duplicate(s):
    s["spec"].append(dict(_release_question(s, "app_version")))


def _bad_top_level(s):
    s["questions"] = s.pop("spec")


@pytest.mark.parametrize("breaker, expected", [
    (_bad_unknown_key, "unknown question field question"),
    (_bad_type, "type boolean is not one of"),
    (_bad_no_choices, "needs a list of choices"),
    (_bad_variable, "environment: not a variable of the README's table"),
    (_bad_strategy_choices, "strategy: choices"),
    (_bad_default_not_a_choice, "is not one of the choices"),
    (_bad_empty_default, "optional question with an empty default"),
    (_bad_min_max, "min 100 > max 64"),
    (_bad_missing_description, "no question_description"),
    (_bad_duplicate, "app_version asked twice"),
    (_bad_top_level, "unknown survey field questions"),
])
def test_survey_checks_reject_a_broken_spec(breaker, expected, survey_context):
    survey = load(SURVEYS / "release.yml")
    breaker(survey)
    problems = survey_problems(survey, *survey_context)
    assert any(expected in p for p in problems), problems


def test_backup_type_check_rejects_other_choices(survey_context):
    survey = load(SURVEYS / "backup.yml")
    survey["spec"][0]["choices"] = ["full", "differential", "incr"]
    assert any(p.startswith("backup_type: choices") for p in survey_problems(survey, *survey_context))


# --- (c) credential types and credentials ---------------------------------------------------------


def template_names(template):
    """Top-level names a Jinja template (an AWX injector) uses."""
    return jinja_meta.find_undeclared_variables(jinja2.Environment().parse(template))


def type_problems(ctype):
    name = ctype.get("name", "?")
    problems = []
    if ctype.get("kind") not in CUSTOM_KINDS:
        problems.append("%s: kind %s is not cloud or net" % (name, ctype.get("kind")))
    fields = ctype.get("inputs", {}).get("fields", [])
    ids = [f.get("id") for f in fields]
    if len(set(ids)) != len(ids):
        problems.append("%s: repeated field ids" % name)
    for field in fields:
        problems += ["%s: field %s has unknown key %s" % (name, field.get("id"), k) for k in sorted(set(field) - FIELD_KEYS)]
        if field.get("type") not in FIELD_TYPES:
            problems.append("%s: field %s type %s" % (name, field.get("id"), field.get("type")))
        if not field.get("label"):
            problems.append("%s: field %s has no label" % (name, field.get("id")))
    for req in ctype.get("inputs", {}).get("required", []):
        if req not in ids:
            problems.append("%s: required %s is not a field" % (name, req))
    injectors = ctype.get("injectors", {})
    problems += ["%s: unknown injector section %s" % (name, k) for k in sorted(set(injectors) - INJECTOR_SECTIONS)]
    files = {label.split(".", 1)[1] if "." in label else None for label in injectors.get("file", {})}
    templates = list(injectors.get("file", {}).values()) + list(injectors.get("env", {}).values()) \
        + list(injectors.get("extra_vars", {}).values())
    for template in templates:
        for used in template_names(template):
            if used != "tower" and used not in ids:
                problems.append("%s: injector uses %s, not a field id" % (name, used))
        for label in re.findall(r"tower\.filename\.(\w+)", template):
            if label not in files:
                problems.append("%s: injector uses tower.filename.%s, no file template.%s" % (name, label, label))
    for env in injectors.get("env", {}):
        if env.startswith("ANSIBLE_") or not re.match(r"^[A-Z][A-Z0-9_]*$", env):
            problems.append("%s: injected variable %s" % (name, env))
    return problems


def type_catalogue(types):
    """Field ids and required ids of every credential type a credential may name."""
    catalogue = {k: dict(v) for k, v in AWX_BUILTIN_TYPES.items()}
    for ctype in types:
        fields = ctype["inputs"]["fields"]
        catalogue[ctype["name"]] = {"fields": {f["id"] for f in fields}, "required": set(ctype["inputs"].get("required", [])),
                                    "choices": {f["id"]: f["choices"] for f in fields if "choices" in f}}
    return catalogue


def credential_problems(cred, catalogue):
    name = cred.get("name", "?")
    ctype = catalogue.get(cred.get("credential_type"))
    if ctype is None:
        return ["%s: unknown credential type %s" % (name, cred.get("credential_type"))]
    inputs = cred.get("inputs", {})
    problems = ["%s: input %s is not a field of %s" % (name, k, cred["credential_type"]) for k in sorted(set(inputs) - ctype["fields"])]
    problems += ["%s: required input %s missing" % (name, k) for k in sorted(ctype["required"] - set(inputs))]
    problems += ["%s: require names %s, not an input" % (name, k) for k in cred.get("require", []) if k not in inputs]
    for key, source in inputs.items():
        literal = key in ctype.get("choices", {}) or isinstance(source, bool)
        if not literal and not (isinstance(source, str) and SOURCE.match(source)):
            problems.append("%s: input %s must name its source KENEYAPP_AWX_..., not hold a value" % (name, key))
        if key in ctype.get("choices", {}) and source not in ctype["choices"][key]:
            problems.append("%s: input %s=%s is not one of %s" % (name, key, source, ctype["choices"][key]))
    if "environment" in ctype.get("choices", {}) and inputs.get("environment") != cred.get("environment"):
        problems.append("%s: input environment %s is not the credential's %s" % (name, inputs.get("environment"), cred.get("environment")))
    for key in ("optional", "kube_auth", "environment"):
        if key in cred and not isinstance(cred[key], (bool, str)):
            problems.append("%s: %s" % (name, key))
    return problems


def test_custom_credential_types_are_well_formed():
    types = awx_vars()["keneyapp_awx_credential_types"]
    assert [problem for t in types for problem in type_problems(t)] == []
    assert {t["name"] for t in types} == {"KeneyApp kubeconfig", "KeneyApp database", "KeneyApp app secrets", "KeneyApp notifications"}


def test_credentials_inputs_are_their_types_fields():
    data = awx_vars()
    catalogue = type_catalogue(data["keneyapp_awx_credential_types"])
    assert [p for cred in data["keneyapp_awx_credentials"] for p in credential_problems(cred, catalogue)] == []
    names = [c["name"] for c in data["keneyapp_awx_credentials"]]
    assert len(set(names)) == len(names)
    # What the playbook treats as required for the built-in types is what AWX requires.
    assert {k: set(v) for k, v in data["keneyapp_awx_builtin_required"].items()} == \
        {k: v["required"] for k, v in AWX_BUILTIN_TYPES.items()}
    # Each environment gets its Kubernetes (both kinds), database, app secrets and notifications credentials.
    for env in data["keneyapp_awx_credential_environments"]:
        kinds = {c["credential_type"] for c in data["keneyapp_awx_credentials"] if c.get("environment") == env}
        assert kinds == {"OpenShift or Kubernetes API Bearer Token", "KeneyApp kubeconfig", "KeneyApp database",
                         "KeneyApp app secrets", "KeneyApp notifications"}


def test_injected_variables_are_read_by_the_collection():
    """Each environment variable a custom type injects is read by the inventories, roles or playbooks."""
    text = "\n".join(p.read_text() for d in ("inventories", "roles", "playbooks", "plugins")
                     for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in (".yml", ".py"))
    for ctype in awx_vars()["keneyapp_awx_credential_types"]:
        for env in ctype["injectors"].get("env", {}):
            assert env in INJECTED_NOT_READ or "'%s'" % env in text or '"%s"' % env in text, env


def _kube_type(types):
    return next(t for t in types if t["name"] == "KeneyApp kubeconfig")


@pytest.mark.parametrize("credential, expected", [
    ({"name": "v", "credential_type": "Vault", "inputs": {"vault_password": "KENEYAPP_AWX_V", "password": "KENEYAPP_AWX_P"}},
     "input password is not a field of Vault"),
    ({"name": "k", "credential_type": "OpenShift or Kubernetes API Bearer Token",
      "inputs": {"host": "KENEYAPP_AWX_H", "api_key": "KENEYAPP_AWX_T"}}, "input api_key is not a field"),
    ({"name": "k", "credential_type": "OpenShift or Kubernetes API Bearer Token", "inputs": {"host": "KENEYAPP_AWX_H"}},
     "required input bearer_token missing"),
    ({"name": "d", "credential_type": "KeneyApp database", "environment": "staging",
      "inputs": {"environment": "staging", "database_url": "KENEYAPP_AWX_D", "ledger_dsn": "KENEYAPP_AWX_L", "dsn": "KENEYAPP_AWX_X"}},
     "input dsn is not a field of KeneyApp database"),
    ({"name": "d", "credential_type": "KeneyApp database", "environment": "staging",
      "inputs": {"environment": "qa", "database_url": "KENEYAPP_AWX_D", "ledger_dsn": "KENEYAPP_AWX_L"}}, "environment=qa is not one of"),
    ({"name": "d", "credential_type": "KeneyApp database", "environment": "production",
      "inputs": {"environment": "staging", "database_url": "KENEYAPP_AWX_D", "ledger_dsn": "KENEYAPP_AWX_L"}},
     "is not the credential's production"),
    ({"name": "s", "credential_type": "KeneyApp app secrets",
      "inputs": {"secret_key": "s3cr3t-in-git", "redis_url": "KENEYAPP_AWX_R"}}, "must name its source"),
    ({"name": "x", "credential_type": "KeneyApp secrets", "inputs": {}}, "unknown credential type"),
    ({"name": "k", "credential_type": "OpenShift or Kubernetes API Bearer Token", "require": ["ca_cert"],
      "inputs": {"host": "KENEYAPP_AWX_H", "bearer_token": "KENEYAPP_AWX_T"}}, "require names ca_cert, not an input"),
])
def test_credential_check_rejects_a_wrong_field(credential, expected):
    catalogue = type_catalogue(awx_vars()["keneyapp_awx_credential_types"])
    problems = credential_problems(credential, catalogue)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("change, expected", [
    (lambda t: t["injectors"]["env"].update(K8S_AUTH_CONTEXT="{{ context }}"), "injector uses context, not a field id"),
    (lambda t: t["injectors"]["env"].update(K8S_AUTH_KUBECONFIG="{{ tower.filename.config }}"), "no file template.config"),
    (lambda t: t["inputs"]["required"].append("token"), "required token is not a field"),
    (lambda t: t["inputs"]["fields"][0].update(type="text"), "type text"),
    (lambda t: t["inputs"]["fields"][0].update(hidden=True), "unknown key hidden"),
    (lambda t: t.update(kind="kubernetes"), "kind kubernetes is not cloud or net"),
    (lambda t: t["injectors"]["env"].update(ANSIBLE_CONFIG="{{ kubeconfig }}"), "injected variable ANSIBLE_CONFIG"),
    (lambda t: t["injectors"].update(files={}), "unknown injector section files"),
])
def test_type_check_rejects_a_broken_type(change, expected):
    ctype = _kube_type(awx_vars()["keneyapp_awx_credential_types"])
    change(ctype)
    problems = type_problems(ctype)
    assert any(expected in p for p in problems), problems


# --- (d) execution environment --------------------------------------------------------------------


def pins(lines):
    """{normalised name: 'name==version' as written} of the ``name[extras]==version`` lines."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)$", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return found


def builder_create(ee_file, context):
    return subprocess.run([str(BIN / "ansible-builder"), "create", "--file", str(ee_file), "--context", str(context)],
                          cwd=ee_file.parent, capture_output=True, text=True, check=False, timeout=120)


def context_problems(context):
    """What the build context must carry: the pinned requirements, the collections and this collection."""
    problems = []
    frozen = pins((ROOT / "requirements.txt").read_text().splitlines())
    wanted = pins((context / "_build" / "requirements.txt").read_text().splitlines())
    for name, version in wanted.items():
        if frozen.get(name) != version:
            problems.append("%s==%s is not requirements.txt's %s" % (name, version, frozen.get(name)))
    galaxy_yml = load(ROOT / "galaxy.yml")
    reqs = load(context / "_build" / "requirements.yml")["collections"]
    project = {c["name"]: str(c["version"]) for c in load(ROOT / "collections" / "requirements.yml")["collections"]
               if c.get("type") != "dir"}
    named = {c["name"]: str(c.get("version")) for c in reqs if c.get("type") != "git"}
    if named != project:
        problems.append("collections %s are not collections/requirements.yml's %s" % (named, project))
    own = [c for c in reqs if c.get("type") == "git"]
    if not (len(own) == 1 and own[0]["name"].rstrip("/").removesuffix(".git") == galaxy_yml["repository"]
            and str(own[0]["version"]) == galaxy_yml["version"]):
        problems.append("this collection (%s at %s) is not in the context: %s" % (galaxy_yml["repository"], galaxy_yml["version"], own))
    for dep in galaxy_yml["dependencies"]:
        if dep not in named:
            problems.append("galaxy.yml dependency %s is missing" % dep)
    return problems


@pytest.fixture(scope="module")
def ee_context(tmp_path_factory):
    context = tmp_path_factory.mktemp("ee") / "context"
    result = builder_create(ROOT / "execution-environment.yml", context)
    assert result.returncode == 0, result.stdout + result.stderr
    return context


def test_builder_context_lists_the_pins_and_collections(ee_context):
    assert context_problems(ee_context) == []
    requirements = (ee_context / "_build" / "requirements.txt").read_text().splitlines()
    # By hand, from requirements.in: the runtime pins the brief names.
    assert "ansible-core==2.20.10" in requirements
    assert "kubernetes==37.0.2" in requirements
    assert "psycopg[binary]==3.3.9" in requirements
    reqs = load(ee_context / "_build" / "requirements.yml")["collections"]
    assert {"name": "https://github.com/keneyapp/keneyapp.deploy.git", "type": "git", "version": "0.1.0"} in reqs
    assert {"name": "kubernetes.core", "version": "6.4.0"} in reqs
    assert (ee_context / "_build" / "bindep.txt").read_text() == (ROOT / "bindep.txt").read_text()
    containerfile = next(p for p in (ee_context / "Dockerfile", ee_context / "Containerfile") if p.exists()).read_text()
    assert 'ANSIBLE_INSTALL_REFS="ansible-core==2.20.10 ansible-runner==2.4.3"' in containerfile


def _edited_ee(tmp_path, old, new):
    text = (ROOT / "execution-environment.yml").read_text()
    assert old in text
    path = tmp_path / "execution-environment.yml"
    path.write_text(text.replace(old, new, 1))
    shutil.copy(ROOT / "bindep.txt", tmp_path / "bindep.txt")
    return path


@pytest.mark.parametrize("old, new, expected", [
    ("- kubernetes==37.0.2", "- kubernetes==36.1.0", "kubernetes==36.1.0 is not requirements.txt's 37.0.2"),
    ("        version: \"6.4.0\"", "        version: \"6.3.0\"", "are not collections/requirements.yml's"),
    ("        type: git\n        version: \"0.1.0\"", "        type: git\n        version: \"0.0.9\"", "is not in the context"),
])
def test_context_check_rejects_a_drifted_pin(tmp_path, old, new, expected):
    result = builder_create(_edited_ee(tmp_path, old, new), tmp_path / "context")
    assert result.returncode == 0, result.stdout + result.stderr
    problems = context_problems(tmp_path / "context")
    assert any(expected in p for p in problems), problems


def test_builder_rejects_a_broken_definition(tmp_path):
    result = builder_create(_edited_ee(tmp_path, "version: 3", "version: 3\nbuild_arg_defaults: {}\nimage: x"), tmp_path / "c")
    assert result.returncode != 0


# --- (e) the repository as an AWX project ---------------------------------------------------------


def installed_collections():
    """Versions of the collections the ``ansible`` package bundles (their MANIFEST.json)."""
    # The `ansible` package installs them beside ansible-core: site-packages/ansible_collections.
    found = {}
    for base in [Path(ansible.__file__).resolve().parents[1] / "ansible_collections"]:
        for manifest in base.glob("*/*/MANIFEST.json"):
            info = json.loads(manifest.read_text())["collection_info"]
            found["%s.%s" % (info["namespace"], info["name"])] = info["version"]
    return found


def used_collections():
    """Collections the playbooks, roles and awx/ call by FQCN (other than ansible.builtin and this one)."""
    used = set()
    for d in ("playbooks", "roles", "awx"):
        for path in (ROOT / d).rglob("*.yml"):
            text = path.read_text()
            # Task actions (`- name.space.module:` / `  name.space.module:`) and lookup('name.space.plugin', ...).
            used.update(re.findall(r"^\s*(?:- )?([a-z_]+\.[a-z_]+)\.[a-z_0-9]+:\s*$", text, re.M))
            used.update(re.findall(r"(?:lookup|query)\('([a-z_]+\.[a-z_]+)\.[a-z_0-9]+'", text))
    return used - {"ansible.builtin", "keneyapp.deploy"}


def collection_problems(project, bundled, used):
    problems = []
    named = {c["name"]: str(c.get("version")) for c in project if c.get("type") != "dir"}
    for name, version in named.items():
        if bundled.get(name) != version:
            problems.append("%s %s is not the bundled %s" % (name, version, bundled.get(name)))
    problems += ["%s is used but not required" % name for name in sorted(used - set(named))]
    if [c for c in project if c.get("type") == "dir"] != [{"name": ".", "type": "dir"}]:
        problems.append("the project itself (name: ., type: dir) is not required")
    return problems


def test_project_collections_are_pinned_to_the_bundled_versions():
    used = used_collections()
    # By hand: what the roles (kubernetes.core.k8s..., community.postgresql.postgresql_query) and awx/ call.
    assert {"kubernetes.core", "community.postgresql", "awx.awx"} <= used
    project = load(ROOT / "collections" / "requirements.yml")["collections"]
    assert collection_problems(project, installed_collections(), used) == []


@pytest.mark.parametrize("change, expected", [
    (lambda p: p[0].update(version="6.3.0"), "kubernetes.core 6.3.0 is not the bundled"),
    (lambda p: p.pop(1), "community.postgresql is used but not required"),
    (lambda p: p.pop(), "the project itself"),
])
def test_collection_check_rejects_a_wrong_requirements_file(change, expected):
    project = load(ROOT / "collections" / "requirements.yml")["collections"]
    change(project)
    problems = collection_problems(project, installed_collections(), used_collections())
    assert any(expected in p for p in problems), problems


def inventory_list(source, tmp_path):
    env = {"PATH": str(BIN) + ":/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path)}
    # AWX's inventory update runs `ansible-inventory -i <source_path> --list --export` in the project:
    # the group_vars stay on their group (AWX imports them as the group's variables).
    result = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(source), "--list", "--export"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def inventory_problems(data, environment):
    host = "keneyapp-" + environment
    if data.get("keneyapp", {}).get("hosts") != [host]:
        return ["group keneyapp is not [%s]: %s" % (host, data.get("keneyapp"))]
    hostvars = dict(data["keneyapp"].get("vars", {}), **data["_meta"]["hostvars"].get(host, {}))
    problems = [] if hostvars.get("keneyapp_deploy_environment") == environment else ["keneyapp_deploy_environment is not " + environment]
    problems += ["no %s" % k for k in ("keneyapp_namespace", "keneyapp_components", "keneyapp_ledger") if k not in hostvars]
    return problems + ([] if hostvars.get("ansible_connection") == "local" else ["%s is not a local host" % host])


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_inventory_reads_as_a_project_inventory_source(environment, tmp_path):
    """What AWX's inventory update runs: ansible-inventory -i <source_path> --list, from the project root."""
    assert environment in load(AWX / "vars" / "main.yml")["keneyapp_awx_environments"]
    assert inventory_problems(inventory_list("inventories/" + environment, tmp_path), environment) == []


def test_inventory_check_rejects_an_inventory_without_its_group_vars(tmp_path):
    copy = tmp_path / "staging"
    copy.mkdir()
    shutil.copy(ROOT / "inventories" / "staging" / "hosts.yml", copy / "hosts.yml")
    problems = inventory_problems(inventory_list(copy, tmp_path), "staging")
    assert "keneyapp_deploy_environment is not staging" in problems
