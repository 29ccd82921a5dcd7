"""The collection builds into a tarball that installs, and its playbooks run by FQCN."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from keneyapp_lab import state as lab_state

BIN = os.path.dirname(sys.executable)


def neutral_env(**extra):
    """The environment without this checkout's ansible.cfg (whose collections_path links the checkout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ["PATH"], **extra)
    return env


def run(argv, cwd, env=None):
    env = env or neutral_env()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, "%s\n%s\n%s" % (" ".join(argv), result.stdout[-3000:], result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the tarball from this checkout and install it into an empty collections path."""
    out = tmp_path_factory.mktemp("build")
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), lab_state.REPO], cwd=str(out))
    tarball = glob.glob(str(out / "keneyapp-deploy-*.tar.gz"))
    assert len(tarball) == 1
    target = tmp_path_factory.mktemp("collections")
    # --no-deps --offline: Galaxy is unreachable; the dependencies come from the `ansible` package.
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force",
         "-p", str(target), tarball[0]], cwd=str(out))
    # Run from a neutral folder without ansible.cfg, so nothing resolves from this checkout.
    env = neutral_env(ANSIBLE_COLLECTIONS_PATH=str(target))
    return {"path": target, "env": env, "tarball": tarball[0]}


def test_tarball_leaves_out_local_state(installed):
    listing = run(["tar", "-tzf", installed["tarball"]], cwd=str(installed["path"])).stdout.splitlines()
    assert "MANIFEST.json" in listing and "plugins/modules/release_info.py" in listing
    assert not [n for n in listing if n.startswith((".venv", ".collections", "tests/output")) or "__pycache__" in n]


def test_installed_module_docs(installed):
    doc = run([os.path.join(BIN, "ansible-doc"), "keneyapp.deploy.release_info"], cwd=str(installed["path"]),
              env=installed["env"]).stdout
    assert "keneyapp.deploy.release_info" in doc and "app_version" in doc
    assert str(installed["path"]) in doc, "documented from the installed copy"


@pytest.mark.lab
def test_playbook_runs_by_fqcn(lab, installed):
    inventory = os.path.join(installed["path"], "ansible_collections", "keneyapp", "deploy", "inventories", "development")
    env = dict(installed["env"], KUBECONFIG=lab.kubeconfig, KENEYAPP_LAB_STATE=lab_state.STATE_FILE)
    result = run([os.path.join(BIN, "ansible-playbook"), "keneyapp.deploy.release", "-i", inventory,
                  "-e", "app_version=999.0.0", "--check"], cwd=str(installed["path"]), env=env)
    assert "keneyapp.deploy.preflight : Read what runs" in result.stdout
    assert "check mode, nothing changed" in result.stdout
    assert "failed=0" in result.stdout
