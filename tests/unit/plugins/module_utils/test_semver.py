"""SemVer parsing, precedence and release type: one table per behaviour."""

from __future__ import annotations

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import semver
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput


@pytest.mark.parametrize("text, parts", [
    ("0.1.0", (0, 1, 0, (), "")),
    ("3.3.0", (3, 3, 0, (), "")),
    ("1.0.0-rc.1", (1, 0, 0, ("rc", 1), "")),
    ("1.0.0-alpha+001", (1, 0, 0, ("alpha",), "001")),
    ("1.0.0+20130313144700", (1, 0, 0, (), "20130313144700")),
    ("10.20.30-0A.is.legal", (10, 20, 30, ("0A", "is", "legal"), "")),
])
def test_parse_valid(text, parts):
    v = semver.parse(text)
    assert (v.major, v.minor, v.patch, v.prerelease, v.build) == parts
    assert str(v) == text


@pytest.mark.parametrize("text, fragment", [
    ("v3.3.0", "Use -e app_version=3.3.0."),
    ("V1.2.3", "Use -e app_version=1.2.3."),
    ("3.3", "not a SemVer 2.0.0 version"),
    ("01.2.3", "not a SemVer 2.0.0 version"),
    ("1.2.3-01", "not a SemVer 2.0.0 version"),
    ("latest", "not a SemVer 2.0.0 version"),
    ("", "app_version is required"),
    (None, "app_version is required"),
])
def test_parse_invalid_names_input_and_fix(text, fragment):
    with pytest.raises(InvalidInput) as err:
        semver.parse(text)
    assert fragment in str(err.value)
    assert "app_version" in str(err.value)


# semver.org section 11's own ordering example, plus build metadata being ignored.
ORDERED = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
           "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]


@pytest.mark.parametrize("lower, higher", list(zip(ORDERED, ORDERED[1:])))
def test_precedence(lower, higher):
    assert semver.parse(lower) < semver.parse(higher)
    assert semver.parse(higher) > semver.parse(lower)
    assert not semver.parse(lower).same_as(semver.parse(higher))


def test_build_metadata_ignored_in_comparison():
    assert semver.parse("1.2.3+abc").same_as(semver.parse("1.2.3+def"))


@pytest.mark.parametrize("running, requested, expected", [
    (None, "0.1.0", "initial"),
    ("3.2.1", "3.2.1", "same"),
    ("3.2.1", "3.2.1+sha.abc", "same"),
    ("3.2.1", "3.2.0", "downgrade"),
    ("3.2.1", "3.2.1-rc.1", "downgrade"),
    ("3.2.1", "3.2.2", "patch"),
    ("3.2.1", "3.3.0", "minor"),
    ("3.2.1", "4.0.0", "major"),
    ("3.2.1-rc.1", "3.2.1-rc.2", "prerelease"),
    ("3.2.1-rc.2", "3.2.1", "prerelease"),
])
def test_release_type(running, requested, expected):
    run = semver.parse(running) if running else None
    assert semver.release_type(run, semver.parse(requested)) == expected
