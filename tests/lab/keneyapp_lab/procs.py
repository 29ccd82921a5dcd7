"""Start and stop the lab's processes (argv lists only, never a shell)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from keneyapp_lab.state import group_alive, pid_alive


def spawn(argv, log_path, env=None, user=None, cwd=None):
    """Start a long-running process in its own session, output to ``log_path``; return its PID."""
    with open(log_path, "ab") as log:
        kwargs = {}
        if user:
            kwargs.update(user=user, group=user, extra_groups=[])
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True, **kwargs)
    # Remember the child so stop() can reap it when this same process stops it.
    _CHILDREN[proc.pid] = proc
    return proc.pid


_CHILDREN = {}


def run(argv, user=None, env=None, check=True, timeout=120, cwd=None, stdin_text=None):
    """Run a short command; return its CompletedProcess (text). Raise with its output on failure.

    ``stdin_text`` is fed on standard input: the way to pass SQL holding a password,
    which must never appear in a process's arguments (``ps`` shows those).
    """
    kwargs = {}
    if user:
        kwargs.update(user=user, group=user, extra_groups=[])
    if stdin_text is None:
        kwargs["stdin"] = subprocess.DEVNULL
    else:
        kwargs["input"] = stdin_text
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False,
                            cwd=cwd, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError("%s exited %d: %s%s" % (" ".join(argv[:3]), result.returncode,
                                                   result.stdout[-2000:], result.stderr[-2000:]))
    return result


def stop(pid, sig=signal.SIGTERM, timeout=20.0, group=True):
    """Send ``sig`` to the process (and its process group), wait, then SIGKILL what is left.

    With ``group``, the group is signalled even when its leader is already gone, so
    the children of a crashed leader (the node agent's app processes) are not left.
    """
    if not pid:
        return True

    def alive():
        _reap(pid)
        return pid_alive(pid) or (group and group_alive(pid))

    if not alive():
        return True
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return True
        time.sleep(0.05)
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(0.1)
    return not alive()


def stop_spawned():
    """Stop every process this Python process spawned and has not stopped (a failed start)."""
    for pid in list(_CHILDREN):
        stop(pid, timeout=10)


def _reap(pid):
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=0.01)
        except subprocess.TimeoutExpired:
            _CHILDREN[pid] = proc
