"""DORA figures (pure): a generated ledger of 287 staging releases whose answers are worked out by hand below,
plus empty and one-record ledgers, periods, and the choice of a release."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import dora, ledger
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, NotFound

UTC = datetime.timezone.utc
SINCE = datetime.datetime(2026, 1, 5, tzinfo=UTC)  # a Monday (ISO week 2026-W02)
UNTIL = SINCE + datetime.timedelta(days=56)  # 8 whole weeks

# The generated ledger (see generated()): deployment i (0..279) runs on day i // 5 at 08:00 + 2 h * (i % 5).
FAILED = set(range(7, 280, 20))  # 14: 7, 27, ..., 267
ROLLED_BACK = set(range(13, 280, 40))  # 7: 13, 53, ..., 253
HELD = {30, 86, 142, 198, 254}  # 5
UNDONE_SUCCESSES = {4, 74, 144, 214, 100}  # a successful rollback 30 min later (100: without last_release_seq)
NOOP_AFTER = {25, 75, 125, 175, 225, 275}  # a 'same' re-release 1 h later
COMMIT_TIMES = 101  # the first 101 successful deployments carry a commit time (lead time 60 s * (j + 1))


def _ts(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at(i, minutes=0):
    return SINCE + datetime.timedelta(days=i // 5, hours=8 + 2 * (i % 5), minutes=minutes)


def generated():
    """The ledger: 280 staging deployments, 7 no-op re-releases, 7 rollback runs, and noise to ignore."""
    events = []
    success_number = 0
    for i in range(280):
        outcome = ("failed" if i in FAILED else "rolled_back" if i in ROLLED_BACK else "held" if i in HELD else "success")
        record = {"event": "release", "environment": "staging", "timestamp": _ts(at(i)), "outcome": outcome,
                  "release_type": "minor", "strategy": "canary", "version_from": "1.%d.0" % i, "version_to": "1.%d.0" % (i + 1)}
        if outcome == "success":
            # Durations by the order of the successes: 100 s + 10 s * (j % 100).
            record["duration_seconds"] = 100 + 10 * (success_number % 100)
            if success_number < COMMIT_TIMES:
                commit = at(i) - datetime.timedelta(seconds=60 * (success_number + 1))
                # Half of them in another time zone (+02:00): the same instant.
                record["commit_time"] = (_ts(commit) if success_number % 2 else
                                         commit.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat())
            elif success_number == COMMIT_TIMES:
                record["commit_time"] = _ts(at(i) + datetime.timedelta(seconds=60))  # after the release: ignored
            success_number += 1
        else:
            # Failed runs are long and carry commit times: neither may count.
            record["duration_seconds"] = 5000
            record["commit_time"] = _ts(at(i) - datetime.timedelta(days=3))
        events.append(record)
        if i in UNDONE_SUCCESSES or i == 27:
            events.append({"event": "rollback", "environment": "staging", "timestamp": _ts(at(i, 30)), "outcome": "success",
                           "trigger": "manual", "duration_seconds": 40, "_undoes": None if i == 100 else i})
        if i == 160:
            events.append({"event": "rollback", "environment": "staging", "timestamp": _ts(at(i, 30)), "outcome": "failed",
                           "trigger": "manual", "_undoes": i})
        if i in NOOP_AFTER or i == 47:
            events.append({"event": "release", "environment": "staging", "timestamp": _ts(at(i, 20 if i == 47 else 60)),
                           "outcome": "success", "release_type": "same", "strategy": "rolling", "duration_seconds": 15,
                           "commit_time": _ts(at(i) - datetime.timedelta(days=9))})
        # Noise: another environment, other events.
        events.append({"event": "release", "environment": "production", "timestamp": _ts(at(i, 1)), "outcome": "failed",
                       "release_type": "minor", "duration_seconds": 1})
        if i % 50 == 0:
            events.append({"event": "backup", "environment": "staging", "timestamp": _ts(at(i, 2)), "outcome": "success"})
    # Outside the period: never counted.
    events.insert(0, {"event": "release", "environment": "staging", "timestamp": _ts(SINCE - datetime.timedelta(hours=1)),
                      "outcome": "failed", "release_type": "minor", "duration_seconds": 1})
    events.append({"event": "release", "environment": "staging", "timestamp": _ts(UNTIL), "outcome": "success",
                   "release_type": "minor", "duration_seconds": 1})
    events.sort(key=lambda r: r["timestamp"])
    records, previous, seq_of = [], None, {}
    for fields in events:
        undoes = fields.pop("_undoes", "absent")
        if undoes not in ("absent", None):
            fields["last_release_seq"] = seq_of[undoes]
        previous = ledger.chain(fields, previous)
        records.append(previous)
        if fields["event"] == "release" and fields["environment"] == "staging" and fields.get("release_type") == "minor":
            seq_of[_index(fields)] = previous["seq"]
    return records


def _index(fields):
    """The deployment number i of a generated staging release (from its timestamp)."""
    moment = dora.parse_time(fields["timestamp"])
    if moment < SINCE or moment >= UNTIL:
        return None
    delta = moment - SINCE
    return delta.days * 5 + (delta.seconds // 3600 - 8) // 2


@pytest.fixture(scope="module")
def report():
    return dora.compute(generated(), "staging", since="2026-01-05", until="2026-03-02T00:00:00Z")


def test_counts_of_the_generated_ledger(report):
    counts = report["counts"]
    assert report["period"] == {"since": "2026-01-05T00:00:00Z", "until": "2026-03-02T00:00:00Z", "days": 56.0}
    assert counts["deployments"] == 280
    assert counts["noop_releases"] == 7
    assert counts["releases"] == 287
    assert (counts["failed"], counts["rolled_back"], counts["held"]) == (14, 7, 5)
    assert counts["successful"] == 280 - 14 - 7 - 5 == 254
    # 5 successes and the failed release 27 were undone by a successful rollback run; the failed run undoes nothing.
    assert counts["undone_by_rollback"] == 6
    assert (counts["rollback_events"], counts["rollback_events_failed"]) == (7, 1)


def test_deployment_frequency(report):
    per_day, per_week = report["figures"]["deployment_frequency_per_day"], report["figures"]["deployment_frequency_per_week"]
    assert per_day["value"] == pytest.approx(254 / 56.0)
    assert per_week["value"] == pytest.approx(254 / 8.0)
    # Staging's goal is daily: the per-day figure carries it, the per-week one none.
    assert (per_day["verdict"], per_day["goal_value"]) == ("meets", 1.0)
    assert per_week["verdict"] == "no goal"


def test_duration_median_and_p90_of_the_successful_deployments(report):
    # 254 successes, durations 100 + 10 * (j % 100): offsets 0..53 three times (162 values), 54..99 twice.
    # Median: values 127 and 128 of the sorted list are both offset 42 (0..41 fill 126) -> 520 s.
    # P90, nearest rank: value ceil(0.9 * 254) = 229; 229 - 162 = 67 -> the 34th of the doubled offsets, 54 + 33 = 87 -> 970 s.
    figures = report["figures"]
    assert (figures["duration_median"]["value"], figures["duration_median"]["count"]) == (520.0, 254)
    assert figures["duration_p90"]["value"] == 970.0
    assert (figures["duration_median"]["verdict"], figures["duration_p90"]["verdict"]) == ("meets", "misses")


def test_change_failure_rate_and_rollback_rate(report):
    figures = report["figures"]
    # 14 failed + 7 rolled back + 5 held + 5 successes undone later = 31 of 280 deployments.
    assert (figures["change_failure_rate"]["count"], figures["change_failure_rate"]["of"]) == (31, 280)
    assert figures["change_failure_rate"]["value"] == pytest.approx(31 / 280.0)
    assert figures["change_failure_rate"]["verdict"] == "misses"
    # 7 rolled back by the gates + 5 successes and 1 failure undone by rollback runs = 13.
    assert (figures["rollback_rate"]["count"], figures["rollback_rate"]["value"]) == (13, pytest.approx(13 / 280.0))
    assert figures["rollback_rate"]["verdict"] == "misses"


def test_mttr_pairs(report):
    # 26 failing releases; 86+87 and 253+254 follow each other, so 24 incidents:
    # 27 -> rollback 30 min later (1800 s); 47 -> 'same' re-release 20 min later (1200 s);
    # 86 (10:00) -> 88 (14:00) = 14400 s; 253 (14:00) -> 255 (next day 08:00) = 64800 s; 20 others -> next release 2 h later.
    figure = report["figures"]["mttr"]
    expected = [1800.0, 1200.0, 14400.0, 64800.0] + [7200.0] * 20
    assert sorted(i["seconds"] for i in report["incidents"]) == sorted(expected)
    assert figure["value"] == pytest.approx(226200 / 24.0)
    assert (figure["count"], figure["open"], figure["verdict"]) == (24, 0, "misses")
    by_opening = {i["opened_at"]: i for i in report["incidents"]}
    streak = by_opening[at(86).strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert (streak["failures"], streak["closed_at"]) == (2, at(88).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert by_opening[at(27).strftime("%Y-%m-%dT%H:%M:%SZ")]["closed_by"] == "rollback"


def test_lead_time(report):
    # The first 101 successes: 60 s * (j + 1), j = 0..100 -> median 60 * 51; one commit after its release is ignored.
    figure = report["figures"]["lead_time_median"]
    assert (figure["value"], figure["count"], figure["ignored_negative"]) == (3060.0, 101, 1)
    assert figure["verdict"] == "misses"


def test_weekly_trend(report):
    trend = report["trend"]
    assert [b["week"] for b in trend] == ["2026-W%02d" % n for n in range(2, 10)]
    assert all(b["deployments"] == 35 for b in trend)
    # Week one, deployments 0..34: failures 7, 27 (failed), 13 (rolled back), 30 (held), and 4 undone later;
    # rolled back: 13 (by the gates), 4 and 27 (by rollback runs).
    assert (trend[0]["successful"], trend[0]["change_failures"], trend[0]["rolled_back"]) == (31, 5, 3)
    assert trend[0]["change_failure_rate"] == pytest.approx(5 / 35.0)
    assert sum(b["successful"] for b in trend) == 254


def test_verdict_lines_name_each_figure(report):
    lines = dora.verdict_lines(report)
    assert len(lines) == 1 + len(dora.FIGURES)
    assert "Change failure rate: 11.1 % (31 of 280) - goal < 5 % - misses" in lines
    assert "Mean time to recovery: 2 h 37 min (24 incident(s) closed, 0 open) - goal < 30 min - misses" in lines


@pytest.mark.parametrize("records", [[], [{"event": "backup", "environment": "staging", "timestamp": "2026-01-06T00:00:00Z",
                                           "seq": 1}]], ids=["empty", "no-release"])
def test_an_empty_ledger_says_no_data(records):
    report = dora.compute(records, "staging", since="all", until="2026-02-01")
    assert {f["verdict"] for f in report["figures"].values()} == {"no data", "no goal"}
    assert report["figures"]["deployment_frequency_per_day"]["verdict"] == "no data"
    assert all(f["value"] is None for f in report["figures"].values())
    assert report["trend"] == [] or all(b["deployments"] == 0 for b in report["trend"])
    assert len(dora.verdict_lines(report)) == 9


@pytest.mark.parametrize("outcome, failure_rate, cfr_verdict, open_incidents, duration", [
    ("success", 0.0, "meets", 0, 42.0),
    ("failed", 1.0, "misses", 1, None),
])
def test_a_one_record_ledger(outcome, failure_rate, cfr_verdict, open_incidents, duration):
    record = ledger.chain({"event": "release", "environment": "production", "timestamp": "2026-01-06T10:00:00Z",
                           "outcome": outcome, "release_type": "major", "duration_seconds": 42}, None)
    report = dora.compute([record], "production", since="2026-01-05", until="2026-01-19")
    figures = report["figures"]
    assert (figures["change_failure_rate"]["value"], figures["change_failure_rate"]["verdict"]) == (failure_rate, cfr_verdict)
    assert (figures["mttr"]["value"], figures["mttr"]["verdict"]) == (None, "no data")
    assert len(report["open_incidents"]) == open_incidents
    assert figures["duration_median"]["value"] == duration
    # Production's goal is weekly: 1 success in 2 weeks is 0.5 a week.
    assert figures["deployment_frequency_per_week"]["value"] == (0.5 if outcome == "success" else 0.0)
    assert figures["deployment_frequency_per_week"]["verdict"] == "misses"
    assert figures["deployment_frequency_per_day"]["verdict"] == "no goal"
    assert dora.verdict_lines(report)


def test_a_record_with_an_unreadable_timestamp_is_counted_not_fatal():
    report = dora.compute([{"event": "release", "environment": "staging", "timestamp": "yesterday", "seq": 1}], "staging")
    assert report["counts"]["unreadable_timestamps"] == 1 and report["counts"]["releases"] == 0


@pytest.mark.parametrize("since, until, expected", [
    ("30d", None, ("2026-01-01T12:00:00Z", "2026-01-31T12:00:00Z")),
    ("2w", "1d", ("2026-01-17T12:00:00Z", "2026-01-30T12:00:00Z")),
    ("90m", "now", ("2026-01-31T10:30:00Z", "2026-01-31T12:00:00Z")),
    ("2026-01-10T10:00:00+02:00", "2026-01-20", ("2026-01-10T08:00:00Z", "2026-01-20T00:00:00Z")),
    (None, None, ("2026-01-01T12:00:00Z", "2026-01-31T12:00:00Z")),
    ("all", None, ("2026-01-06T10:00:00Z", "2026-01-31T12:00:00Z")),
])
def test_periods(since, until, expected):
    now = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    records = [{"event": "release", "environment": "staging", "timestamp": "2026-01-06T10:00:00.5Z", "seq": 1,
                "outcome": "success"}]
    report = dora.compute(records, "staging", since=since, until=until, now=now)
    assert (report["period"]["since"], report["period"]["until"]) == expected


@pytest.mark.parametrize("since, until, words", [
    ("last week", None, "The period's start (since) last week is neither a time nor a duration"),
    (None, "tomorrow", "(before, or until in playbooks/report.yml) tomorrow is neither a time nor a duration"),
    ("2026-02-01", "2026-01-01", "start (since) 2026-02-01T00:00:00Z is not before its end 2026-01-01T00:00:00Z"),
])
def test_bad_periods_are_refused_with_the_fix(since, until, words):
    with pytest.raises(InvalidInput) as caught:
        dora.compute([], "staging", since=since, until=until)
    assert words in str(caught.value) and caught.value.fix


def test_select_release():
    records = generated()
    last = dora.select_release(records, "staging", "last")
    assert last["timestamp"] == _ts(UNTIL)
    chosen = records[5]
    assert chosen["event"] == "release"
    assert dora.select_release(records, chosen["environment"], str(chosen["seq"])) is chosen
    with pytest.raises(InvalidInput, match="not a release"):
        dora.select_release(records, "staging", str([r for r in records if r["event"] == "backup"][0]["seq"]))
    with pytest.raises(InvalidInput, match="not of staging"):
        dora.select_release(records, "staging", str([r for r in records if r["environment"] == "production"][0]["seq"]))
    with pytest.raises(NotFound):
        dora.select_release(records, "staging", "99999")
    with pytest.raises(NotFound):
        dora.select_release([], "staging", "last")
    with pytest.raises(InvalidInput, match="neither 'last'"):
        dora.select_release(records, "staging", "newest")


@pytest.mark.parametrize("values, share, expected", [
    ([5.0], 0.9, 5.0), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9.0), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.9, 10.0),
])
def test_percentile_nearest_rank(values, share, expected):
    assert dora.percentile(values, share) == expected


@pytest.mark.parametrize("value, expected", [
    ("2026-11-26T18:37:16.211883Z", datetime.datetime(2026, 11, 26, 18, 37, 16, 211883, tzinfo=UTC)),
    ("2026-11-26T18:37:16.2Z", datetime.datetime(2026, 11, 26, 18, 37, 16, 200000, tzinfo=UTC)),
    ("2026-11-26 19:37:16+01:00", datetime.datetime(2026, 11, 26, 18, 37, 16, tzinfo=UTC)),
    (1764182236, datetime.datetime(2025, 11, 26, 18, 37, 16, tzinfo=UTC)),
    ("", None), ("soon", None), (True, None), (None, None),
])
def test_parse_time(value, expected):
    assert dora.parse_time(value) == expected


@pytest.mark.parametrize("names, undone", [
    ("a", "a"),  # last_release_seq names an older deployment than the newest one: that one was rolled back
    ("s", "b"),  # it names a 'same' re-release: the deployment before it was rolled back
    (None, "b"),  # an older record without last_release_seq: the newest deployment before the rollback
])
def test_which_deployment_a_rollback_undid(names, undone):
    fields = {
        "a": {"event": "release", "timestamp": "2026-01-06T10:00:00Z", "release_type": "minor", "outcome": "success"},
        "b": {"event": "release", "timestamp": "2026-01-06T11:00:00Z", "release_type": "minor", "outcome": "success"},
        "s": {"event": "release", "timestamp": "2026-01-06T11:30:00Z", "release_type": "same", "outcome": "success"},
    }
    records, previous, seqs = [], None, {}
    for key in ("a", "b", "s"):
        previous = ledger.chain(dict(fields[key], environment="staging"), previous)
        records.append(previous)
        seqs[key] = previous["seq"]
    rollback = {"event": "rollback", "environment": "staging", "timestamp": "2026-01-06T12:00:00Z", "outcome": "success"}
    if names:
        rollback["last_release_seq"] = seqs[names]
    records.append(ledger.chain(rollback, previous))
    report = dora.compute(records, "staging", since="2026-01-05", until="2026-01-12")
    assert [r["seq"] for r in report["releases"] if r["rolled_back"]] == [seqs[undone]]
    assert report["figures"]["rollback_rate"]["value"] == 0.5 and report["figures"]["change_failure_rate"]["value"] == 0.5
