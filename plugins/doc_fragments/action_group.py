# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The action group every Kubernetes module of the collection belongs to."""

    DOCUMENTATION = r"""
attributes:
  action_group:
    support: full
    membership: [keneyapp.deploy.kube]
    description: Use C(group/keneyapp.deploy.kube) in C(module_defaults) to set the connection once.
"""
