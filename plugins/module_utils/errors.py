# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception family of keneyapp.deploy.

Module files catch :class:`KeneyappDeployError` in ``main()`` and turn it into
``fail_json``; nothing below a module file calls ``fail_json`` itself.
"""

from __future__ import annotations


class KeneyappDeployError(Exception):
    """An operation of the collection failed or was refused.

    The message names what was attempted, on what, and why; ``fix`` (optional) says
    what the user can do about it. ``details`` holds machine-readable context that
    module files return beside the message.
    """

    def __init__(self, text, fix=None, **details):
        # Not called "message": details (a rollout's evaluation, say) may carry that key.
        super().__init__(text)
        self.message = text
        self.fix = fix
        self.details = details

    def __str__(self):
        if self.fix:
            return "%s %s" % (self.message, self.fix)
        return self.message


class InvalidInput(KeneyappDeployError):
    """A user-supplied value is wrong; nothing was changed."""


class NotFound(KeneyappDeployError):
    """An object the operation needs does not exist."""
