# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An alembic project as alembic_migration and migration_lint open it: alembic.ini, its scripts.

alembic is not part of ansible-core: its import is guarded here, once, and
:func:`require` turns a missing library into the usual ``missing_required_lib`` failure.
"""

from __future__ import annotations

import io
import os
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import NotFound

try:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
except ImportError:
    HAS_ALEMBIC = False
    ALEMBIC_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_ALEMBIC = True
    ALEMBIC_IMPORT_ERROR = None


def require(module, also=None):
    """Fail the module when alembic (or the import ``also`` recorded as failed) is missing."""
    if not HAS_ALEMBIC:
        module.fail_json(msg=missing_required_lib("alembic"), exception=ALEMBIC_IMPORT_ERROR)
    if also:
        module.fail_json(msg=missing_required_lib("SQLAlchemy and psycopg"), exception=also)


def config_file(script_location):
    """alembic.ini of ``script_location`` (the file itself, or the folder holding it)."""
    path = os.path.abspath(os.path.expanduser(script_location))
    fix = "Set script_location to the folder holding alembic.ini, or to the file itself."
    if not os.path.exists(path):
        raise NotFound("script_location=%s does not exist." % script_location, fix=fix)
    if os.path.isdir(path):
        path = os.path.join(path, "alembic.ini")
    if not os.path.isfile(path):
        raise NotFound("No alembic.ini at %s (script_location=%s)." % (path, script_location), fix=fix)
    return path


def open_project(ini, output=None):
    """``(Config, ScriptDirectory)`` of ``ini``; offline SQL goes to ``output``, never to stdout.

    ``configure_logger=False`` keeps the project's env.py from reconfiguring logging
    inside the module (the sample's env.py honours it).
    """
    config = Config(ini, output_buffer=output or io.StringIO(), stdout=io.StringIO())
    config.attributes["configure_logger"] = False
    try:
        script = ScriptDirectory.from_config(config)
        script.get_heads()
    except Exception as exc:  # pylint: disable=broad-except
        raise NotFound("alembic cannot read the scripts of %s: %s" % (ini, exc),
                       fix="Check script_location and version_locations in alembic.ini and that the folders exist.")
    return config, script
