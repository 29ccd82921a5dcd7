"""The release lock's decisions (pure), one table."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import lock
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

NOW = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)


def lease(holder, renewed_ago, duration=600, since="2026-11-26T11:00:00.000000Z", reason="release 3.3.0"):
    renewed = lock.fmt(NOW - datetime.timedelta(seconds=renewed_ago))
    return {"metadata": {"annotations": {lock.REASON: reason}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "acquireTime": since,
                     "renewTime": renewed, "leaseTransitions": 2}}


@pytest.mark.parametrize("current, state, holder, break_lock, action", [
    (None, "present", "me", False, "acquire"),
    (lease("", 10), "present", "me", False, "acquire"),
    (lease("me", 10), "present", "me", False, "renew"),
    (lease("other", 700), "present", "me", False, "take_over"),       # expired 100 s ago
    (lease("other", 10), "present", "me", True, "break"),
    (lease("me", 10), "absent", "me", False, "release"),
    (lease("other", 10), "absent", "me", True, "release"),
    (lease("other", 700), "absent", "me", False, "release"),          # an expired lock may be cleaned up
    (None, "absent", "me", False, "none"),
])
def test_plan_actions(current, state, holder, break_lock, action):
    result = lock.plan(current, state, holder, NOW, reason="release 3.4.0", duration=600, break_lock=break_lock)
    assert result["action"] == action
    if state == "present":
        assert result["spec"]["holderIdentity"] == holder
        assert result["spec"]["renewTime"] == lock.fmt(NOW)
    if action == "renew":
        assert result["spec"]["acquireTime"] == "2026-11-26T11:00:00.000000Z", "since stays when renewing"
        assert result["spec"]["leaseTransitions"] == 2
    if action in ("take_over", "break"):
        assert result["spec"]["leaseTransitions"] == 3
        assert result["annotations"][lock.BROKEN_BY].startswith("other since 2026-11-26T11:00:00.000000Z")


@pytest.mark.parametrize("state", ["present", "absent"])
def test_live_lock_of_another_is_refused_with_holder_and_since(state):
    with pytest.raises(lock.LockHeld) as err:
        lock.plan(lease("alice@runner-3", 10), state, "bob@laptop", NOW)
    text = str(err.value)
    assert "held by alice@runner-3 since 2026-11-26T11:00:00.000000Z" in text
    assert "reason: release 3.3.0" in text and "-e break_lock=true" in text
    assert err.value.details["holder"] == "alice@runner-3"


@pytest.mark.parametrize("holder, duration, fragment", [
    ("", 600, "holder is empty"),
    ("me", 0, "duration_seconds=0 must be a positive number"),
    ("me", -5, "duration_seconds=-5 must be a positive number"),
])
def test_bad_input(holder, duration, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        lock.plan(None, "present", holder, NOW, duration=duration)


def test_lease_name():
    assert lock.lease_name("keneyapp", "production") == "release-keneyapp-production"
    with pytest.raises(InvalidInput, match="do not make a valid Lease name"):
        lock.lease_name("KeneyApp", "prod env")
