"""The lab fixtures (keneyapp_lab.testing): reuse a running lab or start one for the session."""

from __future__ import annotations

from canary_runs import canary_runs  # noqa: F401  pylint: disable=unused-import,import-error
from keneyapp_lab.testing import lab, namespace, pg_archiving, pg_database  # noqa: F401  pylint: disable=unused-import
