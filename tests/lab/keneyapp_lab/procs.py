"""Start and stop the lab's processes (argv lists only, never a shell)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from keneyapp_lab.state import pid_alive


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


def run(argv, user=None, env=None, check=True, timeout=120, cwd=None):
    """Run a short command; return its CompletedProcess (text). Raise with its output on failure."""
    kwargs = {}
    if user:
        kwargs.update(user=user, group=user, extra_groups=[])
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False,
                            stdin=subprocess.DEVNULL, cwd=cwd, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError("%s exited %d: %s%s" % (" ".join(argv[:3]), result.returncode,
                                                   result.stdout[-2000:], result.stderr[-2000:]))
    return result


def stop(pid, sig=signal.SIGTERM, timeout=20.0, group=True):
    """Send ``sig`` to the process (and its group), wait, then SIGKILL what is left."""
    if not pid_alive(pid):
        _reap(pid)
        return True
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    time.sleep(0.1)
    _reap(pid)
    return False


def _reap(pid):
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=0.01)
        except subprocess.TimeoutExpired:
            _CHILDREN[pid] = proc
