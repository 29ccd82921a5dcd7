# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The options that name the audit ledger (module_utils/ledger_runner.py STORE_OPTIONS)."""

    DOCUMENTATION = r"""
options:
  path:
    description: The ledger file (JSON lines). One of O(path) and O(dsn).
    type: path
  dsn:
    description:
      - The ledger database, C(postgresql://user@host:port/database). Keep the password in C(PGPASSWORD) or a C(.pgpass)
        file.
    type: str
  table:
    description: The ledger table in O(dsn).
    type: str
    default: keneyapp_ledger
"""
