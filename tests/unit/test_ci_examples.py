"""The CI/CD hand-off examples (examples/ci/): linted, schema-valid, and handing off as issue 8 asks.

GitHub workflow: actionlint (tools/actionlint.sh, which runs shellcheck on the run: scripts) and
check-jsonschema's built-in ``vendor.github-workflows`` schema. GitLab file: ``vendor.gitlab-ci`` and
shellcheck on its scripts. Both: the hand-off read from the YAML (develop -> staging, a vX.Y.Z tag ->
production behind an approval, app_version/image_tag/commit_sha/commit_time passed, smoke tests and
a rollback), and the version each computes, run in a scratch git repository. Every check is also fed
a broken copy and must reject it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "examples" / "ci" / "github-actions" / "release.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci" / ".gitlab-ci.yml"
ACTIONLINT = ROOT / "tools" / "actionlint.sh"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
FOUR = ("app_version", "image_tag", "commit_sha", "commit_time")
SMOKE_PATHS = ("/health", "/health/db", "/health/redis")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KUBECONFIG|DSN|DATABASE_URL|REDIS_URL")


def load(path):
    return yaml.safe_load(path.read_text())


def edit(path, tmp_path, old, new, name=None):
    """A copy of ``path`` in tmp_path with ``old`` replaced by ``new`` (which must be there)."""
    text = path.read_text()
    assert old in text, old
    out = tmp_path / (name or path.name)
    out.write_text(text.replace(old, new, 1))
    return out


# --- the GitHub workflow: the hand-off read from its YAML ------------------------------------------------


def _run_scripts(job):
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def _release_step(job, inventory):
    for step in job.get("steps", []):
        if re.search(r"ansible-playbook release\.yml -i %s\b" % re.escape(inventory), step.get("run", "")):
            return step
    return None


def github_problems(doc):
    """What is wrong with the workflow's hand-off, one line each ([] when nothing is)."""
    problems = []
    on = doc.get("on", doc.get(True)) or {}  # YAML 1.1 reads the key "on" as True
    push = on.get("push") or {}
    if "develop" not in (push.get("branches") or []):
        problems.append("push to develop does not trigger the workflow")
    tags = push.get("tags") or []
    if not any(re.fullmatch(p.replace(".", r"\."), "v3.3.0") for p in tags):
        problems.append("a tag v3.3.0 does not trigger the workflow")
    jobs = doc.get("jobs") or {}
    build = jobs.get("build") or {}
    outputs = build.get("outputs") or {}

    def check_release(name, inventory, env_name, extra=()):
        job = jobs.get(name)
        if not job:
            problems.append("no job %s" % name)
            return
        step = _release_step(job, inventory)
        if not step:
            problems.append("%s does not run ansible-playbook release.yml -i %s" % (name, inventory))
            return
        environment = job.get("environment")
        if (environment or {}).get("name") != env_name:
            problems.append("%s does not run in the environment %s" % (name, env_name))
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        if "build" not in needs:
            problems.append("%s does not need build" % name)
        for var in FOUR + tuple(extra):
            match = re.search(r'-e "%s=\$(\w+)"' % var, step["run"])
            if not match:
                problems.append("%s does not pass -e %s=" % (name, var))
                continue
            value = str((step.get("env") or {}).get(match.group(1), ""))
            source = re.fullmatch(r"\$\{\{ needs\.build\.outputs\.(\w+) \}\}", value)
            if var in FOUR and not (source and source.group(1) in outputs):
                problems.append("%s passes %s from %r, not from an output of build" % (name, var, value))
        return job

    staging = check_release("deploy-staging", "inventories/staging", "staging")
    if staging and staging.get("if"):
        problems.append("deploy-staging has a condition (%s): it must run on develop and on tags" % staging["if"])
    production = check_release("deploy-production", "inventories/production", "production",
                               extra=("approved_by", "change_ticket"))
    if production:
        if production.get("if") != "github.ref_type == 'tag'":
            problems.append("deploy-production runs on more than a tag: %s" % production.get("if"))
        if "smoke-staging" not in (production.get("needs") or []):
            problems.append("deploy-production does not wait for the staging smoke tests")
        if "approvals" not in _run_scripts(production):
            problems.append("deploy-production does not read who approved the environment")
    for env_name in ("staging", "production"):
        job = jobs.get("smoke-" + env_name) or {}
        script = _run_scripts(job)
        if "deploy-" + env_name not in (job.get("needs") or []) or not all(p in script for p in SMOKE_PATHS) or "curl" not in script:
            problems.append("no smoke-%s job curling %s after deploy-%s" % (env_name, ", ".join(SMOKE_PATHS), env_name))
    rollback = jobs.get("rollback") or {}
    if "ansible-playbook rollback.yml -i \"inventories/$ROLLBACK_ENVIRONMENT\"" not in _run_scripts(rollback):
        problems.append("no rollback job running rollback.yml on the environment's inventory")
    condition = str(rollback.get("if", ""))
    if "workflow_dispatch" not in condition or "needs.smoke-production.result == 'failure'" not in condition:
        problems.append("the rollback runs neither by hand nor after failing smoke tests: %s" % condition)
    # Secrets only from the secret store: every secret-looking variable is ${{ secrets.X }} (or the job token).
    for name, job in jobs.items():
        for step in job.get("steps", []):
            for var, value in (step.get("env") or {}).items():
                if SECRET_NAME.search(var) and not re.fullmatch(r"\$\{\{ (secrets\.\w+|github\.token) \}\}", str(value)):
                    problems.append("%s: %s is not read from the secret store: %r" % (name, var, value))
    return problems


def test_github_hands_off():
    assert github_problems(load(GITHUB)) == []


@pytest.mark.parametrize("old, new, problem", [
    ("branches: [develop]", "branches: [main]", "push to develop does not trigger"),
    ('tags: ["v[0-9]+.[0-9]+.[0-9]+"]', 'tags: ["release-*"]', "a tag v3.3.0 does not trigger"),
    ("release.yml -i inventories/staging", "release.yml -i inventories/production", "deploy-staging does not run ansible-playbook"),
    ('-e "image_tag=$IMAGE_TAG" \\\n            -e "commit_sha=$COMMIT_SHA" -e "commit_time=$COMMIT_TIME"\n\n  smoke-staging',
     '-e "commit_sha=$COMMIT_SHA" -e "commit_time=$COMMIT_TIME"\n\n  smoke-staging', "deploy-staging does not pass -e image_tag="),
    ("COMMIT_TIME: ${{ needs.build.outputs.commit_time }}", "COMMIT_TIME: ${{ github.event.head_commit.timestamp }}",
     "deploy-staging passes commit_time from"),
    ("      commit_time: ${{ steps.meta.outputs.commit_time }}\n", "", "passes commit_time from"),
    ("    if: github.ref_type == 'tag'\n", "", "deploy-production runs on more than a tag"),
    ("      name: production\n      url: ${{ env.PRODUCTION_URL }}", "      name: staging\n      url: ${{ env.PRODUCTION_URL }}",
     "deploy-production does not run in the environment production"),
    ('-e "approved_by=$APPROVED_BY" ', "", "deploy-production does not pass -e approved_by="),
    ("needs: [build, smoke-staging]", "needs: [build, deploy-staging]", "deploy-production does not wait"),
    ("for path in /health /health/db /health/redis /version", "for path in /version", "no smoke-staging job"),
    ("ansible-playbook rollback.yml", "ansible-playbook release.yml", "no rollback job"),
    ("KUBECONFIG_CONTENT: ${{ secrets.KUBECONFIG }}", "KUBECONFIG_CONTENT: apiVersion-v1-inline", "KUBECONFIG_CONTENT is not read from the secret store"),
])
def test_github_hand_off_check_rejects(tmp_path, old, new, problem):
    problems = github_problems(load(edit(GITHUB, tmp_path, old, new)))
    assert any(problem in p for p in problems), problems


# --- the GitLab pipeline: which jobs run, and how, for a develop push, a tag, a rollback request --------


def _expression(expr, variables):
    """GitLab rules:if for the subset the example uses: $V, $V == "s", $V =~ /re/, joined with &&."""
    def term(text):
        text = text.strip()
        match = re.fullmatch(r'\$(\w+)\s*(==|=~)\s*(?:"([^"]*)"|/(.*)/)', text)
        if match:
            value = variables.get(match.group(1))
            if match.group(2) == "==":
                return value == match.group(3)
            return value is not None and re.search(match.group(4), value) is not None
        match = re.fullmatch(r"\$(\w+)", text)
        assert match, "expression not understood by this test: %s" % text
        return bool(variables.get(match.group(1)))
    return all(term(part) for part in expr.split("&&"))


def _when(rules, variables):
    for rule in rules:
        if "if" not in rule or _expression(rule["if"], variables):
            return rule.get("when", "on_success")
    return "never"


def gitlab_plan(doc, variables):
    """{job: when} for the jobs a pipeline with these variables holds (GitLab's rules, first match wins)."""
    variables = dict({k: str(v["value"] if isinstance(v, dict) else v) for k, v in doc.get("variables", {}).items()}, **variables)
    if _when(doc["workflow"]["rules"], variables) == "never":
        return {}
    plan = {}
    for name, job in doc.items():
        if not isinstance(job, dict) or name.startswith(".") or name in ("workflow", "variables"):
            continue
        when = _when(job.get("rules", [{}]), variables)
        if when != "never":
            plan[name] = when
    return plan


def _script(doc, name):
    """A job's before_script + script as GitLab runs them (a job's own keys win over its extends')."""
    job = doc[name]
    parts = {"before_script": [], "script": []}
    for parent in [job["extends"]] if isinstance(job.get("extends"), str) else job.get("extends", []):
        parent_parts = _script(doc, parent)
        parts.update({k: v for k, v in parent_parts.items() if v})
    parts.update({k: job[k] for k in ("before_script", "script") if k in job})
    return parts


def _script_text(doc, name):
    parts = _script(doc, name)
    return "\n".join(parts["before_script"] + parts["script"])


def gitlab_problems(doc):
    problems = []
    develop = gitlab_plan(doc, {"CI_COMMIT_BRANCH": "develop", "CI_PIPELINE_SOURCE": "push"})
    tag = gitlab_plan(doc, {"CI_COMMIT_TAG": "v3.3.0", "CI_PIPELINE_SOURCE": "push"})
    feature = gitlab_plan(doc, {"CI_COMMIT_BRANCH": "feature/x", "CI_PIPELINE_SOURCE": "push"})
    rollback = gitlab_plan(doc, {"CI_COMMIT_BRANCH": "main", "CI_PIPELINE_SOURCE": "web", "ROLLBACK_ENVIRONMENT": "production"})
    expect = {
        "develop": (develop, {"build": "on_success", "deploy-staging": "on_success", "smoke-staging": "on_success",
                              "rollback-staging": "on_failure"}),
        "tag v3.3.0": (tag, {"build": "on_success", "deploy-staging": "on_success", "smoke-staging": "on_success",
                             "deploy-production": "manual", "smoke-production": "on_success",
                             "rollback-staging": "on_failure", "rollback-production": "manual"}),
        "feature branch": (feature, {}),
        "Run pipeline ROLLBACK_ENVIRONMENT=production": (rollback, {"rollback-production": "manual"}),
    }
    for what, (plan, wanted) in expect.items():
        if plan != wanted:
            problems.append("%s pipeline: %s, expected %s" % (what, plan, wanted))
    checks = {
        "deploy-staging": ("ansible-playbook release.yml -i inventories/staging", "staging", ()),
        "deploy-production": ("ansible-playbook release.yml -i inventories/production", "production",
                              ('-e "approved_by=$GITLAB_USER_LOGIN"', '-e "change_ticket=$CHANGE_TICKET"')),
    }
    for name, (command, env_name, extra) in checks.items():
        job = doc.get(name) or {}
        script = _script_text(doc, name) if job else ""
        if command not in script:
            problems.append("%s does not run %s" % (name, command))
        if (job.get("environment") or {}).get("name") != env_name:
            problems.append("%s is not a deployment to the environment %s" % (name, env_name))
        if "build" not in (job.get("needs") or []):
            problems.append("%s does not need build (its dotenv report)" % name)
        for arg in tuple('-e "%s=$%s"' % (var, var.upper()) for var in FOUR) + extra:
            if arg not in script:
                problems.append("%s does not pass %s" % (name, arg))
        for part in ("pip install -r requirements.txt", "ansible-galaxy collection install -r collections/requirements.yml"):
            if part not in script:
                problems.append("%s does not install the dependencies (%s)" % (name, part))
    build = _script_text(doc, "build") if "build" in doc else ""
    for var in FOUR:
        if not re.search(r'echo "%s=\$' % var.upper(), build):
            problems.append("build does not write %s to its dotenv report" % var.upper())
    if "git show -s --format=%cI" not in build:
        problems.append("build does not take COMMIT_TIME from git")
    for env_name in ("staging", "production"):
        job = doc.get("smoke-" + env_name) or {}
        script = _script_text(doc, "smoke-" + env_name) if job else ""
        if "deploy-" + env_name not in (job.get("needs") or []) or "curl" not in script or not all(p in script for p in SMOKE_PATHS):
            problems.append("no smoke-%s job curling %s after deploy-%s" % (env_name, ", ".join(SMOKE_PATHS), env_name))
        name = "rollback-" + env_name
        if 'ansible-playbook rollback.yml -i "inventories/$CI_ENVIRONMENT_NAME"' not in (_script_text(doc, name) if name in doc else ""):
            problems.append("%s does not run rollback.yml on its environment's inventory" % name)
        elif (doc[name].get("environment") or {}).get("name") != env_name:
            problems.append("%s is not in the environment %s" % (name, env_name))
    # Secrets only from CI/CD variables: none of the file's own variables looks like one.
    for scope, variables in [("top level", doc.get("variables", {}))] + [
            (name, job.get("variables", {})) for name, job in doc.items() if isinstance(job, dict) and name != "variables"]:
        for var in variables or {}:
            if SECRET_NAME.search(var):
                problems.append("%s sets %s in the file: secrets belong in CI/CD variables" % (scope, var))
    return problems


def test_gitlab_hands_off():
    assert gitlab_problems(load(GITLAB)) == []


@pytest.mark.parametrize("old, new, problem", [
    ('    - if: $CI_COMMIT_BRANCH == "develop"\n', "", "develop pipeline"),
    ("    - if: $CI_COMMIT_TAG =~ /^v\\d+\\.\\d+\\.\\d+$/\n      when: manual\n      allow_failure: false\n",
     "    - if: $CI_COMMIT_TAG =~ /^v\\d+\\.\\d+\\.\\d+$/\n", "tag v3.3.0 pipeline"),
    ("release.yml -i inventories/staging", "release.yml -i inventories/production", "deploy-staging does not run"),
    ("    name: production\n    url: $PRODUCTION_URL", "    name: prod\n    url: $PRODUCTION_URL", "deploy-production is not a deployment"),
    ('-e "approved_by=$GITLAB_USER_LOGIN" ', "", "deploy-production does not pass -e \"approved_by"),
    ('-e "commit_sha=$COMMIT_SHA" -e "commit_time=$COMMIT_TIME"\n      -e "approved_by',
     '-e "commit_sha=$COMMIT_SHA"\n      -e "approved_by', "deploy-production does not pass -e \"commit_time"),
    ('echo "COMMIT_TIME=$(git show -s --format=%cI "$CI_COMMIT_SHA")"', 'echo "COMMIT_TIME=$CI_PIPELINE_CREATED_AT"',
     "build does not take COMMIT_TIME from git"),
    ("    - ansible-galaxy collection install -r collections/requirements.yml\n", "", "does not install the dependencies"),
    ("for path in /health /health/db /health/redis /version", "for path in /version", "no smoke-production job"),
    ("ansible-playbook rollback.yml", "ansible-playbook release.yml", "rollback-staging does not run rollback.yml"),
    ("  DEPLOY_REF: main\n", "  DEPLOY_REF: main\n  REGISTRY_PASSWORD: hunter2\n", "sets REGISTRY_PASSWORD in the file"),
])
def test_gitlab_hand_off_check_rejects(tmp_path, old, new, problem):
    problems = gitlab_problems(load(edit(GITLAB, tmp_path, old, new)))
    assert any(problem in p for p in problems), problems


def test_paths_the_pipelines_use_exist():
    for path in ("release.yml", "rollback.yml", "requirements.txt", "tools/bootstrap.sh",
                 "inventories/staging/hosts.yml", "inventories/production/hosts.yml"):
        assert (ROOT / path).is_file(), path
    for text in (GITHUB.read_text(), GITLAB.read_text()):
        assert "tools/bootstrap.sh collections" in text and "-i inventories/production" in text


# --- linters and schemas, each also shown a broken copy ------------------------------------------------


def run(argv):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False)


def actionlint(path):
    if not shutil.which("go") and not (Path(os.environ.get("KENEYAPP_CACHE", Path.home() / ".cache/keneyapp-deploy"))
                                       / "bin" / "actionlint-1.7.12" / "actionlint").exists():
        pytest.skip("Go is needed to build actionlint")
    return run([ACTIONLINT, "-no-color", "-oneline", path])


def test_actionlint_accepts_the_workflow():
    result = actionlint(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("old, new, finding", [
    # shellcheck, through actionlint, on a run: script (SC2086: word splitting)
    ('done\n          echo "image_tag=$image_tag" >>"$GITHUB_OUTPUT"', 'done\n          echo image_tag=$image_tag >>$GITHUB_OUTPUT', "SC2086"),
    ("needs: [build, smoke-staging]", "needs: [build, smoke-stage]", 'needs job "smoke-stage" which does not exist'),
    ("${{ needs.build.outputs.image_tag }}", "${{ needs.build.outputs.image_digest }}", 'property "image_digest" is not defined'),
    ("fetch-depth: 0", "fetch-depth: 0\n          depth: 0", 'input "depth" is not defined in action "actions/checkout@v5"'),
])
def test_actionlint_rejects(tmp_path, old, new, finding):
    result = actionlint(edit(GITHUB, tmp_path, old, new))
    assert result.returncode == 1 and finding in result.stdout, result.stdout + result.stderr


def check_jsonschema(schema, *paths):
    if not CHECK_JSONSCHEMA.exists():
        pytest.skip("check-jsonschema is not in the virtualenv")
    return run([CHECK_JSONSCHEMA, "--builtin-schema", schema, *paths])


@pytest.mark.parametrize("schema, path", [("vendor.github-workflows", GITHUB), ("vendor.gitlab-ci", GITLAB)])
def test_schema_accepts(schema, path):
    result = check_jsonschema(schema, path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("schema, path, old, new", [
    ("vendor.github-workflows", GITHUB, "    runs-on: ubuntu-24.04\n    environment:\n      name: staging",
     "    environment:\n      name: staging"),
    ("vendor.github-workflows", GITHUB, "permissions:\n  contents: read", "permissions:\n  contents: readwrite"),
    ("vendor.gitlab-ci", GITLAB, "      when: manual\n      allow_failure: false", "      when: approval\n      allow_failure: false"),
    ("vendor.gitlab-ci", GITLAB, "  resource_group: keneyapp-staging\n  script:", "  resource_group: keneyapp-staging\n  scripts:"),
])
def test_schema_rejects(tmp_path, schema, path, old, new):
    result = check_jsonschema(schema, edit(path, tmp_path, old, new))
    assert result.returncode == 1 and "Schema validation errors" in result.stdout + result.stderr, result.stdout + result.stderr


def gitlab_shellcheck(doc):
    """shellcheck -s sh on each GitLab job's scripts (GitLab does not lint them)."""
    findings = {}
    for name in doc:
        if isinstance(doc[name], dict) and "script" in doc[name]:
            result = subprocess.run(["shellcheck", "-s", "sh", "-f", "gcc", "-"], input=_script_text(doc, name),
                                    capture_output=True, text=True, check=False)
            if result.returncode:
                findings[name] = result.stdout
    return findings


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_gitlab_scripts_pass_shellcheck(tmp_path):
    assert gitlab_shellcheck(load(GITLAB)) == {}
    broken = load(edit(GITLAB, tmp_path, '"$BASE_URL$path"', "$BASE_URL$path"))
    assert "SC2086" in gitlab_shellcheck(broken).get(".smoke", "")


# --- the version each pipeline computes, run in a scratch git repository --------------------------------


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="ci", GIT_AUTHOR_EMAIL="ci@example.invalid", GIT_COMMITTER_NAME="ci",
               GIT_COMMITTER_EMAIL="ci@example.invalid", GIT_COMMITTER_DATE="2026-11-20T10:11:12+01:00",
               GIT_AUTHOR_DATE="2026-11-20T10:11:12+01:00")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A clone of an origin with main (tagged v1.2.3, v1.10.0 with a change ticket, v2.0.0-rc.1) and develop."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    base = tmp_path_factory.mktemp("ci-repo")
    origin, work = base / "origin.git", base / "work"
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(base, "clone", "-q", str(origin), str(work))
    git(work, "checkout", "-q", "-b", "main")
    git(work, "commit", "-q", "--allow-empty", "-m", "one")
    git(work, "tag", "v1.2.3")
    git(work, "commit", "-q", "--allow-empty", "-m", "two")
    git(work, "tag", "-a", "v1.10.0", "-m", "Version 1.10.0", "-m", "Change-Ticket: CHG-1234")
    git(work, "tag", "v2.0.0-rc.1")
    git(work, "checkout", "-q", "-b", "develop")
    git(work, "commit", "-q", "--allow-empty", "-m", "three")
    git(work, "tag", "-a", "v1.11.0", "-m", "not on main")
    git(work, "push", "-q", "origin", "main", "develop", "--tags")
    return work


def _github_step(name):
    for step in load(GITHUB)["jobs"]["build"]["steps"]:
        if step.get("name") == name:
            return step["run"]
    raise AssertionError(name)


def run_github_version(work, tmp_path, ref_type, ref_name, sha):
    output = tmp_path / "output"
    output.write_text("")
    env = dict(os.environ, REF_TYPE=ref_type, REF_NAME=ref_name, RUN_NUMBER="42", GITHUB_SHA=sha, GITHUB_OUTPUT=str(output))
    # GitHub runs it with bash --noprofile --norc -eo pipefail {0} (defaults.run.shell: bash)
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _github_step("Version and commit")],
                            cwd=work, env=env, capture_output=True, text=True, check=False)
    return result, dict(line.split("=", 1) for line in output.read_text().splitlines())


def run_gitlab_build(work, tmp_path, variables):
    """The GitLab build job's script with a stand-in docker that records what it was asked."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text('#!/bin/sh\necho "docker $*" >> "$DOCKER_LOG"\ncat > /dev/null\n')
    (fake / "docker").chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"]), DOCKER_LOG=str(tmp_path / "docker.log"),
               KENEYAPP_IMAGE_REGISTRY="registry.example/keneyapp", REGISTRY_USER="ci", REGISTRY_PASSWORD="test-fixture",
               CI_PIPELINE_IID="42", **variables)
    if "CI_COMMIT_TAG" not in variables:
        env.pop("CI_COMMIT_TAG", None)
    (work / "build.env").unlink(missing_ok=True)
    result = subprocess.run(["sh", "-c", "\n".join(load(GITLAB)["build"]["script"])], cwd=work, env=env,
                            capture_output=True, text=True, check=False)
    dotenv = (work / "build.env").read_text() if (work / "build.env").exists() else ""
    log = (tmp_path / "docker.log").read_text() if (tmp_path / "docker.log").exists() else ""
    return result, dict(line.split("=", 1) for line in dotenv.splitlines()), log


# Newest release tag on the repository: v1.10.0 (v1.11.0 is an annotated tag off main, but still the
# newest vX.Y.Z tag, so develop's pre-release is 1.11.1-dev.42; v2.0.0-rc.1 is not a release tag).
@pytest.mark.parametrize("ref, expected", [
    ("develop", {"app_version": "1.11.1-dev.42", "change_ticket": ""}),
    ("v1.10.0", {"app_version": "1.10.0", "change_ticket": "CHG-1234"}),
    ("v1.2.3", {"app_version": "1.2.3", "change_ticket": ""}),
    ("v1.11.0", None),  # not on main: refused
])
def test_github_version(repo, tmp_path, ref, expected):
    sha = git(repo, "rev-parse", ref + "^{commit}")
    ref_type = "branch" if ref == "develop" else "tag"
    result, outputs = run_github_version(repo, tmp_path, ref_type, ref, sha)
    if expected is None:
        assert result.returncode == 1 and "is not on main" in result.stdout, result.stdout + result.stderr
        return
    assert result.returncode == 0, result.stdout + result.stderr
    assert outputs == dict(expected, commit_sha=sha, commit_time="2026-11-20T10:11:12+01:00")


@pytest.mark.parametrize("ref, expected", [
    ("develop", "1.11.1-dev.42"),
    ("v1.10.0", "1.10.0"),
    ("v1.11.0", None),
])
def test_gitlab_build(repo, tmp_path, ref, expected):
    sha = git(repo, "rev-parse", ref + "^{commit}")
    git(repo, "checkout", "-q", sha)
    variables = {"CI_COMMIT_SHA": sha}
    if ref.startswith("v"):
        variables["CI_COMMIT_TAG"] = ref
    result, dotenv, log = run_gitlab_build(repo, tmp_path, variables)
    if expected is None:
        assert result.returncode == 1 and "is not on main" in result.stdout, result.stdout + result.stderr
        return
    assert result.returncode == 0, result.stdout + result.stderr
    image_tag = "%s-%s" % (expected, sha[:12])
    assert dotenv == {"APP_VERSION": expected, "IMAGE_TAG": image_tag, "COMMIT_SHA": sha,
                      "COMMIT_TIME": "2026-11-20T10:11:12+01:00"}
    pushed = re.findall(r"^docker push (\S+)$", log, re.M)
    assert pushed == ["registry.example/keneyapp/%s:%s" % (c, image_tag) for c in ("backend", "worker", "frontend")]
    assert "docker login registry.example --username ci --password-stdin" in log
    # release.yml's own checks: SemVer without "v", an image tag it accepts (roles/preflight/tasks/main.yml)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", image_tag)
