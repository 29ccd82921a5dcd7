# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the collection's read-only modules."""

    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    description: Reads only, so check mode runs it as usual.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
"""
