# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration_lint: render the pending revisions with alembic's offline mode, run squawk on the
stream once, and let migration_lint.py judge it. No database is touched."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile

from ansible_collections.keneyapp.deploy.plugins.module_utils import alembic_project as project
from ansible_collections.keneyapp.deploy.plugins.module_utils import migration_lint as lint
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError, NotFound
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import run_command

try:
    from alembic import command
except ImportError:
    pass  # alembic_project records the failure; run() stops on it first.

PG_VERSION = "15"


def _known(script):
    try:
        return ", ".join(script.get_heads()) or "none"
    except Exception:  # pylint: disable=broad-except
        return "unknown"


def resolve(script, name, value):
    """The revision ``value`` names (None for base), or one clear refusal listing the heads."""
    if value in ("base", None):
        return None
    try:
        found = script.get_revisions(value)
    except Exception as exc:  # pylint: disable=broad-except
        # alembic raises CommandError, ResolutionError or MultipleHeads here, depending on the name.
        raise InvalidInput("%s=%s is not a revision of %s: %s." % (name, value, script.dir, str(exc).rstrip(".")),
                           fix="Give a revision id (or a unique prefix), base or head; heads: %s." % _known(script))
    if len(found) != 1:
        raise InvalidInput("%s=%s names %d revisions (%s)." % (name, value, len(found), ", ".join(r.revision for r in found)),
                           fix="Merge the branches (alembic merge) or give one revision id.")
    return found[0].revision


def render(ini, from_revision, to_revision):
    """The offline SQL of ``from_revision:to_revision`` (alembic upgrade --sql), and the resolved range."""
    output = io.StringIO()
    config, script = project.open_project(ini, output)
    start = resolve(script, "from_revision", from_revision)
    end = resolve(script, "to_revision", to_revision)
    if start == end:
        return "", start, end
    if end is None:
        raise InvalidInput("to_revision=%s comes before from_revision=%s." % (to_revision, from_revision),
                           fix="The lint checks upgrades: give a later revision (or head) as to_revision.")
    if start is not None and end is not None and start not in {r.revision for r in script.iterate_revisions(end, "base")}:
        raise InvalidInput("to_revision=%s does not come after from_revision=%s." % (to_revision, from_revision),
                           fix="The lint checks upgrades: give the database's revision as from_revision and a later "
                               "one (or head) as to_revision.")
    try:
        command.upgrade(config, "%s:%s" % (start or "base", end or "base"), sql=True)
    except Exception as exc:  # pylint: disable=broad-except
        # env.py and the revisions are the project's code: anything may fail in them.
        raise KeneyappDeployError("alembic could not render %s:%s offline from %s: %s: %s" % (
            start or "base", end, ini, type(exc).__name__, exc),
            fix="Check that `alembic upgrade %s:%s --sql` works from that folder." % (start or "base", end))
    return output.getvalue(), start, end


def squawk_binary(path, module):
    """The squawk to run: ``path``, else the one beside this Python (its venv), else PATH."""
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise NotFound("squawk_path=%s is not an executable file." % path,
                           fix="Point squawk_path at squawk (pip install squawk-cli) or leave it unset.")
        return path
    beside = os.path.join(os.path.dirname(sys.executable), "squawk")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    found = module.get_bin_path("squawk")
    if not found:
        raise NotFound("squawk is not installed beside %s nor on PATH." % sys.executable,
                       fix="pip install squawk-cli (in the venv that runs Ansible), or set squawk_path.")
    return found


def squawk(module, binary, sql):
    """squawk's JSON findings on ``sql`` (PostgreSQL 15, noise rules off, no .squawk.toml picked up)."""
    workdir = tempfile.mkdtemp(prefix="keneyapp-migration-lint-")
    try:
        stream = os.path.join(workdir, "pending.sql")
        settings = os.path.join(workdir, "squawk.toml")
        with open(stream, "w", encoding="utf-8") as handle:
            handle.write(sql)
        # An empty config file: a .squawk.toml around the working directory must not change the verdict.
        with open(settings, "w", encoding="utf-8") as handle:
            handle.write("")
        argv = [binary, "--config", settings, "--pg-version", PG_VERSION, "--reporter", "json",
                "--exclude", ",".join(sorted(lint.NOISE_RULES)), stream]
        rc, out, err = run_command(module, argv)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        findings = json.loads(out)
    except ValueError:
        findings = None
    # 0: clean or warnings only; 1: at least one error-level finding (a syntax error). Both print JSON.
    if rc not in (0, 1) or not isinstance(findings, list):
        raise KeneyappDeployError("squawk (%s) failed with rc=%s: %s" % (binary, rc, (err or out).strip()[:500]),
                                  fix="Check that it is squawk-cli 2.x (squawk --version).")
    return findings


def run(module):
    """The migration_lint module: the verdict on the pending revisions, failing on blocking findings."""
    project.require(module)
    params = module.params
    # A malformed allow entry is refused before anything is rendered.
    lint.normalize_allow(params["allow"])
    ini = project.config_file(params["script_location"])
    from_revision = (params["from_revision"] or "base").strip()
    to_revision = (params["to_revision"] or "head").strip()
    sql, start, end = render(ini, from_revision, to_revision)
    findings = squawk(module, squawk_binary(params["squawk_path"], module), sql) if sql.strip() else []
    maintenance = params["strategy"] == "maintenance"
    verdict = lint.lint(sql, findings, params["allow"], maintenance)
    for entry in verdict.pop("unused_allow"):
        module.warn("allow entry %s%s matched no finding of the pending revisions." % (
            entry["revision"], ":" + entry["rule"] if entry["rule"] else ""))
    result = dict(verdict, changed=False, sql=sql, config_file=ini, from_revision=start or "base",
                  to_revision=end or "base")
    if verdict["blocking"] and not maintenance and params["fail_on_findings"]:
        raise KeneyappDeployError(lint.failure_message(verdict["blocking"]), **result)
    return result
