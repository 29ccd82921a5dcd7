# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The production_preflight module: every production check at once, one line per problem."""

from __future__ import annotations

import datetime

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger_store, production
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError


def run(module):
    params = module.params
    problems = production.settings_problems(params["settings"], params["secret_key"])
    if params["require_approval"]:
        problems += production.approval_problems(params["approved_by"], params["change_ticket"],
                                                 params["awx_workflow_job_id"])
    problems += production.freeze_problems(params["change_freeze"], datetime.datetime.now(datetime.timezone.utc))
    staged = None
    if params["require_staging"]:
        store = ledger_store.open_store(params["path"], params["dsn"], params["table"])
        # Only a verified chain counts: a record after a broken line (or in a torn tail) proves nothing.
        report, records = store.verified()
        broken = production.ledger_problems(report, store.where)
        if broken:
            problems += broken
        else:
            staged = production.staged(records, params["app_version"], params["staging_environment"])
            problems += production.staging_problems(records, params["app_version"], params["staging_environment"])
    problems += production.backup_problems(params["backup"], params["rpo_seconds"])
    problems += production.migration_problems(params["migration_blocking"])
    summary = {"seq": staged["seq"], "timestamp": staged.get("timestamp"), "who": staged.get("who")} if staged else None
    result = {"problems": problems, "staged": summary}
    if problems:
        raise KeneyappDeployError("Production release of %s refused, nothing was changed:\n- %s" % (
            params["app_version"], "\n- ".join(problems)), **result)
    return result
