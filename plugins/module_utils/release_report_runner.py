# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release_report module: read the ledger, compute the figures (dora.py), draw the page (report_html.py).

The ledger is only read. The two files are written only when their content differs
from what is there (``changed``), atomically (a temporary file renamed over the old
one), and never in check mode, which still reports whether they would change.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.keneyapp.deploy.plugins.module_utils import dora, ledger_store, report_html
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError

JSON_FORMAT = 1


def _write(path, content, check_mode):
    """Write ``content`` (bytes) to ``path`` unless it already holds it; True when it (would have) changed."""
    path = os.path.abspath(os.path.expanduser(path))
    try:
        with open(path, "rb") as handle:
            if handle.read() == content:
                return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KeneyappDeployError("Cannot read %s to compare the report with it: %s." % (path, exc.strerror),
                                  fix="Choose a path you can read and write.")
    if check_mode:
        return True
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        # mkstemp makes the file 0600; a report is meant to be shared like any file the user writes.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as exc:
        raise KeneyappDeployError("Cannot write the report to %s: %s." % (path, exc.strerror),
                                  fix="Choose a directory you can write (report_dir).")
    return True


def payload(report, release, where):
    """What the JSON file holds: the figures, the verdict lines, and the release reported (its seq and summary)."""
    summary = None
    if release:
        summary = {key: release.get(key) for key in ("seq", "timestamp", "environment", "version_from", "version_to",
                                                     "strategy", "release_type", "outcome", "duration_seconds",
                                                     "approved_by", "change_ticket", "backup_label", "migration",
                                                     "commit_sha", "commit_time", "hash")}
        summary["gates"] = report_html.gate_series(release)
    return dict(report, format=JSON_FORMAT, ledger=where, verdicts=dora.verdict_lines(report), release=summary)


def run(module):
    """Compute, render, write; return the figures."""
    params = module.params
    if params["html_path"] and report_html.MATPLOTLIB_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("matplotlib (for the HTML report's plots)"),
                         exception=report_html.MATPLOTLIB_IMPORT_ERROR)
    store = ledger_store.open_store(params["path"], params["dsn"], params["table"] or "keneyapp_ledger")
    records = store.records()
    now = datetime.datetime.now(datetime.timezone.utc)
    report = dora.compute(records, params["environment"], params["since"], params["before"], now=now)
    release = dora.select_release(records, params["environment"], params["release"]) if params["release"] else None
    data = payload(report, release, store.where)
    changed = False
    if params["json_path"]:
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        changed = _write(params["json_path"], text.encode("utf-8"), module.check_mode) or changed
    if params["html_path"]:
        page = report_html.render(report, release, store.where)
        changed = _write(params["html_path"], page.encode("utf-8"), module.check_mode) or changed
    return {
        "changed": changed,
        "ledger": store.where,
        "environment": report["environment"],
        "period": report["period"],
        "counts": report["counts"],
        "figures": report["figures"],
        "trend": report["trend"],
        "incidents": report["incidents"],
        "open_incidents": report["open_incidents"],
        "verdicts": data["verdicts"],
        "release": data["release"],
        "html_path": params["html_path"],
        "json_path": params["json_path"],
    }
