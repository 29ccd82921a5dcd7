# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""alembic_migration: alembic's Python API over one psycopg 3 connection, one revision at a time.

The runner opens one connection with ``lock_timeout`` and ``statement_timeout`` in its
libpq options, hands it to the project's ``env.py`` through
``config.attributes["connection"]`` (alembic's documented way to share a connection) and
runs ``command.upgrade``/``downgrade`` once per revision: each revision is its own
transaction whatever ``env.py`` configures, the failing one is known exactly, and each
gets its own duration. An ``env.py`` that ignores the shared connection still gets the
timeouts, through ``PGOPTIONS``.
"""

from __future__ import annotations

import io
import os
import time
import traceback

from ansible_collections.keneyapp.deploy.plugins.module_utils import alembic_plan as plan
from ansible_collections.keneyapp.deploy.plugins.module_utils import alembic_project as project
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError

try:
    import sqlalchemy
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool
except ImportError:
    DRIVER_IMPORT_ERROR = traceback.format_exc()
else:
    DRIVER_IMPORT_ERROR = None

INVALID_INDEXES = ("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid "
                   "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")


def load_config(script_location, url, output):
    """The project's Config (``url`` as sqlalchemy.url, for an env.py that connects itself) and scripts."""
    config, script = project.open_project(project.config_file(script_location), output)
    # ConfigParser interpolation: a literal % (an escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return config, script


def database_url(value, password):
    """A SQLAlchemy URL on psycopg 3; ``password`` fills it in when the URL has none."""
    if not value:
        raise InvalidInput("No database_url given.",
                           fix="Pass database_url or set KENEYAPP_DATABASE_URL (postgresql://user@host:port/db); "
                               "the password may come from database_password or PGPASSWORD.")
    try:
        url = make_url(value)
    except Exception:  # pylint: disable=broad-except
        # The value may hold a password: never echo it.
        raise InvalidInput("database_url is not a URL of the form postgresql://user[:password]@host:port/database.")
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise InvalidInput("database_url names %r, not PostgreSQL." % url.get_backend_name(),
                           fix="alembic_migration works on PostgreSQL: postgresql://user@host:port/database.")
    url = url.set(drivername="postgresql+psycopg")
    if password and not url.password:
        url = url.set(password=password)
    return url


def connect(url, options, connect_timeout):
    """An engine and one open connection, with a message naming host and database when that fails."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool,
                                      connect_args={"options": options, "connect_timeout": connect_timeout})
    try:
        return engine, engine.connect()
    except sqlalchemy.exc.DBAPIError as exc:
        engine.dispose()
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        shown = url.render_as_string(hide_password=True)
        if "password authentication failed" in reason:
            fix = "Check the password (database_password, PGPASSWORD or the URL's) for that user."
        elif "does not exist" in reason:
            fix = "Check the database name and user in database_url."
        else:
            fix = "Check host, port and that PostgreSQL runs and accepts connections from here."
        raise KeneyappDeployError("Cannot connect to %s: %s." % (shown, reason.rstrip(".")), fix=fix)


def heads(connection):
    """The database's current revision (None: no alembic_version yet)."""
    current = MigrationContext.configure(connection).get_current_heads()
    connection.rollback()
    if len(current) > 1:
        raise KeneyappDeployError("The database has several alembic heads (%s)." % ", ".join(current),
                                  fix="Merge the branches (alembic merge) before migrating with this module.")
    return current[0] if current else None


def paths(script, target, current):
    """The revisions an upgrade and a downgrade to ``target`` would run, in order."""
    try:
        script.get_revisions(target if plan.relative_direction(target) is None else "heads")
    except Exception as exc:  # pylint: disable=broad-except
        known = ", ".join(script.get_heads())
        raise InvalidInput("Unknown revision %r: %s." % (target, exc),
                           fix="Use head, base, +N, -N or a revision id of %s (heads: %s)." % (script.dir, known))
    up = down = None
    try:
        up = [s.revision for s in reversed(list(script.iterate_revisions(target, current, implicit_base=True)))]
    except Exception:  # pylint: disable=broad-except
        up = None
    try:
        down = [s.revision for s in script.iterate_revisions(current, target, select_for_downgrade=True)]
    except Exception:  # pylint: disable=broad-except
        down = None
    if up is None and down is None:
        raise InvalidInput("Revision %r cannot be reached from the database's revision %s." % (target, current or "base"),
                           fix="Pick a target on the same branch, or a relative step that exists (+N, -N).")
    return plan.direction(target, up, down)


def offline_sql(config, direction, current, path, script):
    """Each revision's SQL as alembic renders it offline (--sql), without touching the database."""
    if not path:
        return []
    output = config.output_buffer
    output.seek(0)
    output.truncate()
    start = current or "base"
    if direction == plan.UPGRADE:
        command.upgrade(config, "%s:%s" % (start, path[-1]), sql=True)
    else:
        last = script.get_revision(path[-1]).down_revision
        command.downgrade(config, "%s:%s" % (start, last if isinstance(last, str) else "base"), sql=True)
    return [part for part in plan.split_offline_sql(output.getvalue()) if part["revision"] is not None]


def invalid_indexes(connection):
    """Names of the INVALID indexes in the database (left by a failed CONCURRENTLY build)."""
    names = [row[0] for row in connection.execute(sqlalchemy.text(INVALID_INDEXES))]
    connection.rollback()
    return names


def drop_indexes(connection, names):
    """DROP INDEX CONCURRENTLY each name (outside any transaction)."""
    autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
    preparer = connection.dialect.identifier_preparer
    for name in names:
        autocommit.exec_driver_sql("DROP INDEX CONCURRENTLY IF EXISTS %s" % preparer.quote(name))


def step_target(script, direction, revision):
    """What one step hands alembic: the revision itself (upgrade) or the one below it (downgrade)."""
    if direction == plan.UPGRADE:
        return revision
    down = script.get_revision(revision).down_revision
    if down is None:
        return "base"
    if isinstance(down, str):
        return down
    raise KeneyappDeployError("Revision %s merges %s: downgrading through a merge is not supported." % (
        revision, ", ".join(down)), fix="Downgrade to one of the merged revisions with the alembic command.")


def apply(config, script, connection, direction, path, drop_invalid):
    """Run ``path`` one revision per command (so one transaction each); return the steps done."""
    before = set(invalid_indexes(connection))
    config.attributes["connection"] = connection
    done = []
    for revision in path:
        started = time.monotonic()
        try:
            if direction == plan.UPGRADE:
                command.upgrade(config, step_target(script, direction, revision))
            else:
                command.downgrade(config, step_target(script, direction, revision))
            if connection.in_transaction():
                connection.commit()
        except KeneyappDeployError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            if connection.in_transaction():
                connection.rollback()
            raise failure(connection, direction, done, revision, exc, before, drop_invalid)
        script_ = script.get_revision(revision)
        done.append({"revision": revision, "description": (script_.doc or "").strip().splitlines()[0]
                     if script_.doc else "", "seconds": round(time.monotonic() - started, 3)})
    return done


def failure(connection, direction, done, revision, exc, before, drop_invalid):
    """The KeneyappDeployError for a revision that raised ``exc``, with what it left behind."""
    statement = getattr(exc, "statement", None)
    reason = str(getattr(exc, "orig", None) or exc)
    try:
        at = heads(connection)
        left = sorted(set(invalid_indexes(connection)) - before)
        dropped = False
        if left and drop_invalid:
            drop_indexes(connection, left)
            dropped = True
    except Exception as read_exc:  # pylint: disable=broad-except
        at, left, dropped = "unknown (%s)" % read_exc, [], False
    text, fix = plan.failure_message(revision, direction, statement, reason, left, dropped, at)
    return KeneyappDeployError(text, fix=fix, failed_revision=revision, statement=statement, applied=done,
                               to_revision=at, invalid_indexes=left, invalid_indexes_dropped=dropped)


def run(module):
    """The alembic_migration module."""
    project.require(module, also=DRIVER_IMPORT_ERROR)
    params = module.params
    started = time.monotonic()
    options = plan.session_options(params["lock_timeout"], params["statement_timeout"])
    url = database_url(params["database_url"], params["database_password"])
    config, script = load_config(params["script_location"], url, io.StringIO())
    # An env.py that opens its own connection still gets the timeouts.
    os.environ["PGOPTIONS"] = options
    engine, connection = connect(url, options, params["connect_timeout"])
    try:
        current = heads(connection)
        target = params["revision"]
        direction, path = paths(script, target, current)
        if direction == plan.DOWNGRADE and not params["allow_downgrade"]:
            raise plan.refuse_downgrade(current, target, path)
        result = {"from_revision": current, "target": target, "direction": direction, "pending": path,
                  "database": url.render_as_string(hide_password=True), "changed": bool(path)}
        if module.check_mode:
            result.update(to_revision=current, applied=[],
                          sql=offline_sql(config, direction, current, path, script) if path else [])
        else:
            result["applied"] = apply(config, script, connection, direction, path, params["drop_invalid_indexes"])
            result["to_revision"] = heads(connection)
        if module._diff:  # pylint: disable=protected-access
            result["diff"] = {"before": "revision: %s\n" % (current or "base"),
                              "after": "revision: %s\n" % ((path[-1] if direction == plan.UPGRADE else
                                                            step_target(script, direction, path[-1])) if path
                                                           else current or "base")}
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
    finally:
        connection.close()
        engine.dispose()
