"""Run an entry playbook as AWX runs a job: `ansible-runner run` over a private data dir laid out as AWX lays it.

AWX checks the project out into ``<private_data_dir>/project``, writes the job's inventory
(imported from the project's inventory source, variables unrendered) as an executable
``inventory/hosts`` script, the launch's extra vars with its own ``awx_*``/``tower_*``
variables into ``env/extravars``, and the credentials' injected environment into
``env/envvars``; then runs ``ansible-runner run`` with the playbook relative to the project.
Here the project is a symlink to this checkout and the credentials are the lab's settings.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field

from keneyapp_lab import state as lab_state

BIN = os.path.dirname(sys.executable)


@dataclass
class Job:
    """What a user of AWX sees of a job: its status, its output and its events."""

    status: str
    rc: int
    stdout: str
    events: list = field(default_factory=list)
    artifacts: str = ""

    def event_lines(self):
        """The text of every job event, in order (AWX's job output is made of these)."""
        return [e.get("stdout", "") for e in self.events if e.get("stdout")]


def inventory_script(env_name):
    """The inventory as AWX imports it from the project (ansible-inventory --list --export), as a script."""
    out = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", "inventories/%s" % env_name, "--list", "--export"],
                         cwd=lab_state.REPO, capture_output=True, text=True, check=True,
                         env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"))).stdout
    data = json.loads(out)
    data.setdefault("_meta", {}).setdefault("hostvars", {})
    return "#!%s\nimport sys\nprint(%r if '--list' in sys.argv else '{}')\n" % (sys.executable, json.dumps(data))


def awx_job(lab, pdd, playbook, env_name="development", extravars=None, job_id=1, user="awx-operator",
            template="KeneyApp release", envvars=None, timeout=900, cmdline=None):
    """Run ``playbook`` (relative to the project) as AWX job ``job_id`` launched by ``user``; returns a Job."""
    os.makedirs(os.path.join(pdd, "inventory"), exist_ok=True)
    os.makedirs(os.path.join(pdd, "env"), exist_ok=True)
    if not os.path.lexists(os.path.join(pdd, "project")):
        os.symlink(lab_state.REPO, os.path.join(pdd, "project"))
    hosts = os.path.join(pdd, "inventory", "hosts")
    with open(hosts, "w", encoding="utf-8") as handle:
        handle.write(inventory_script(env_name))
    os.chmod(hosts, 0o755)
    awx = {"awx_job_id": job_id, "awx_user_name": user, "awx_job_template_name": template,
           "awx_job_launch_type": "manual", "awx_inventory_name": "KeneyApp %s" % env_name,
           "tower_job_id": job_id, "tower_user_name": user, "tower_job_template_name": template}
    with open(os.path.join(pdd, "env", "extravars"), "w", encoding="utf-8") as handle:
        json.dump(dict(awx, **(extravars or {})), handle)
    # The credentials' injectors (a kubeconfig file, the lab's endpoints), as AWX would set them.
    env = {"KUBECONFIG": lab.kubeconfig, "KENEYAPP_LAB_STATE": lab_state.STATE_FILE, "ANSIBLE_NOCOLOR": "1"}
    env.update(envvars or {})
    with open(os.path.join(pdd, "env", "envvars"), "w", encoding="utf-8") as handle:
        json.dump(env, handle)
    with open(os.path.join(pdd, "env", "settings"), "w", encoding="utf-8") as handle:
        json.dump({"job_timeout": timeout, "suppress_ansible_output": True}, handle)
    if cmdline:
        # AWX's job type "check" and "show changes" become --check and --diff.
        with open(os.path.join(pdd, "env", "cmdline"), "w", encoding="utf-8") as handle:
            handle.write(" ".join(shlex.quote(arg) for arg in cmdline))
    ident = str(job_id)
    run_env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    for key in ("ANSIBLE_CONFIG", "KUBECONFIG"):
        run_env.pop(key, None)
    subprocess.run([os.path.join(BIN, "ansible-runner"), "run", pdd, "-p", playbook, "--ident", ident],
                   env=run_env, capture_output=True, text=True, timeout=timeout + 60, check=False)
    art = os.path.join(pdd, "artifacts", ident)

    def read(name, default=""):
        path = os.path.join(art, name)
        return open(path, encoding="utf-8").read() if os.path.exists(path) else default

    events = []
    for path in glob.glob(os.path.join(art, "job_events", "*.json")):
        with open(path, encoding="utf-8") as handle:
            events.append(json.load(handle))
    events.sort(key=lambda e: e.get("counter", 0))
    return Job(status=read("status").strip(), rc=int(read("rc", "-1").strip() or -1), stdout=read("stdout"),
               events=events, artifacts=art)


_JOBS = iter(range(1001, 1000000))


def awx_playbook(lab, workdir, book, *args, env=None):
    """``playbook(lab, *args, book=...)`` as an AWX job: the ``-e`` values become the job's extra vars (as a
    survey and the template give them), ``--check``/``--diff`` its job type and diff mode, ``env`` what its
    credentials inject. Returns what ``subprocess.run`` would (``returncode``, ``stdout``), so a test reads
    it the same way."""
    extravars, cmdline = {}, []
    items = list(args)
    while items:
        item = items.pop(0)
        if item in ("-e", "--extra-vars"):
            value = items.pop(0)
            if value.lstrip().startswith("{"):
                extravars.update(json.loads(value))
            else:
                for pair in shlex.split(value):
                    key, _sep, val = pair.partition("=")
                    extravars[key] = val
        elif item in ("--check", "--diff", "-C", "-D"):
            cmdline.append(item)
        else:
            raise ValueError("awx_playbook: %r is not something an AWX job template passes" % item)
    job_id = next(_JOBS)
    pdd = os.path.join(str(workdir), "job-%d" % job_id)
    job = awx_job(lab, pdd, book, extravars=extravars, job_id=job_id, envvars=env, cmdline=cmdline,
                  template="KeneyApp %s" % os.path.splitext(os.path.basename(book))[0].replace("_", " "))
    return subprocess.CompletedProcess(args=[book] + list(args), returncode=job.rc, stdout=job.stdout, stderr="")
