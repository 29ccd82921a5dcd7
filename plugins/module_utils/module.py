# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one main() of the collection's modules: build, run, report."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule


def execute(argument_spec, runner, read_only=False, kubernetes=True):
    """Run ``runner(module)`` with kubernetes.core's connection options added to ``argument_spec``
    (``kubernetes=False``: a plain module without them).

    ``runner`` returns the result dict or raises KeneyappDeployError, which becomes
    ``fail_json`` with its message and details; anything else fails with its traceback.
    ``read_only`` modules always report ``changed=false``.
    """
    spec = dict(argument_spec)
    if kubernetes:
        spec.update(AUTH_ARG_SPEC)
        module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    else:
        module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    try:
        result = runner(module)
        if read_only:
            result["changed"] = False
        module.exit_json(**result)
    except KeneyappDeployError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    except Exception as exc:  # pylint: disable=broad-except
        # Anything unforeseen still ends as a failure with its traceback, never a crash.
        module.fail_from_exception(exc)


def run_command(module, argv):
    """``AnsibleModule.run_command`` (kubernetes.core's wrapper keeps the AnsibleModule in ``_module``)."""
    return getattr(module, "_module", module).run_command(argv)  # pylint: disable=protected-access
