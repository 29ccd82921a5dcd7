# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Semantic Versioning 2.0.0: parsing, precedence and release type (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

# The regular expression of semver.org, without the optional leading "v".
_SEMVER = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


@dataclass(frozen=True)
class Version:
    """A parsed SemVer. Build metadata is kept for display, ignored in comparisons."""

    major: int
    minor: int
    patch: int
    prerelease: tuple = ()
    build: str = ""

    def __str__(self):
        text = "%d.%d.%d" % (self.major, self.minor, self.patch)
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    def _key(self):
        # semver.org section 11: a pre-release sorts below its release; numeric
        # identifiers sort numerically and below alphanumeric ones.
        if not self.prerelease:
            pre = (1,)
        else:
            pre = (0,) + tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, pre)

    def __lt__(self, other):
        return self._key() < other._key()

    def __le__(self, other):
        return self._key() <= other._key()

    def __gt__(self, other):
        return self._key() > other._key()

    def __ge__(self, other):
        return self._key() >= other._key()

    def same_as(self, other):
        """Equal precedence (build metadata ignored)."""
        return self._key() == other._key()

    def as_dict(self):
        """The parts, as a module returns them."""
        return {
            "full": str(self),
            "major": self.major,
            "minor": self.minor,
            "patch": self.patch,
            "prerelease": ".".join(str(p) for p in self.prerelease),
            "build": self.build,
            # Kubernetes label values and image tags cannot hold "+": the label carries the
            # version without its build metadata, which SemVer ignores in comparisons anyway.
            "label": str(Version(self.major, self.minor, self.patch, self.prerelease)),
        }


def parse(text, name="app_version"):
    """Parse ``text`` as SemVer 2.0.0, or raise InvalidInput naming ``name`` and the fix."""
    if text is None or str(text).strip() == "":
        raise InvalidInput("%s is required." % name, fix="Pass it with -e %s=X.Y.Z (for example 3.3.0)." % name)
    text = str(text).strip()
    if text[:1] in ("v", "V") and _SEMVER.match(text[1:]):
        raise InvalidInput(
            "%s=%s has a '%s' prefix, which SemVer does not allow." % (name, text, text[0]),
            fix="Use -e %s=%s." % (name, text[1:]),
        )
    match = _SEMVER.match(text)
    if not match:
        raise InvalidInput(
            "%s=%s is not a SemVer 2.0.0 version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])." % (name, text),
            fix="Use a version such as 3.3.0 or 3.3.0-rc.1.",
        )
    pre = ()
    if match.group("pre"):
        pre = tuple(int(p) if p.isdigit() else p for p in match.group("pre").split("."))
    return Version(
        int(match.group("major")), int(match.group("minor")), int(match.group("patch")),
        pre, match.group("build") or "",
    )


def release_type(running, requested):
    """Classify moving from ``running`` to ``requested`` (both Version or None).

    Returns one of ``initial`` (nothing runs yet), ``same``, ``downgrade``,
    ``major``, ``minor``, ``patch`` or ``prerelease`` (same X.Y.Z, different
    pre-release tag, upwards).
    """
    if running is None:
        return "initial"
    if requested.same_as(running):
        return "same"
    if requested < running:
        return "downgrade"
    if requested.major != running.major:
        return "major"
    if requested.minor != running.minor:
        return "minor"
    if requested.patch != running.patch:
        return "patch"
    return "prerelease"
