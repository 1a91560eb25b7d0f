"""The panel's side of an action's refusal: a face-neutral reason and the panel's own hint.

The core's messages name versions as ``clf@3`` and its hints name CLI commands (``nbmci ci
clf@3``, ``nbmci publish NAME@N``), which is right for a terminal. The REST body keeps them in
``message`` and ``hint`` for scripts, and adds, for the actions the panel offers:

``reason``      why it did not happen, as a clause the panel puts after "publish clf v3
                failed: " (no reference in CLI form, no command);
``panel_hint``  what to do in the panel, or null when the panel has nothing to offer.

They are built from the facts (the error's class and fields, the version's CI result), never by
reading the core's text, so the CLI's wording can change without changing the panel's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from nbmci.errors import ConflictError, NbmciError, NotServableError

if TYPE_CHECKING:
    from nbmci.api import Project

FORCE_HINT = ("Run CI on it, or use \"Publish anyway\": force skips the CI gates "
              "(the override is recorded), never the servability check.")
_CLI = re.compile(r"`nbmci |\bNAME@N\b|nbmci/api/")


class ActionError(Exception):
    """An NbmciError raised by a panel action, with the panel's reason and hint."""

    def __init__(self, error: NbmciError, reason: str, panel_hint: str | None = None) -> None:
        super().__init__(reason)
        self.error, self.reason, self.panel_hint = error, reason, panel_hint

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "panel_hint": self.panel_hint}


def neutral_hint(hint: str | None) -> str | None:
    """``hint`` unless it points at a CLI command, a placeholder or a REST route."""
    return None if hint is None or _CLI.search(hint) else hint


def _sentence(text: str) -> str:
    return text.strip().rstrip(".")


def publish_refusal(project: Project, ref: str, force: bool, exc: NbmciError) -> ActionError:
    """Why ``publish ref`` was refused, for the panel."""
    if isinstance(exc, NotServableError):
        reason = _sentence(exc.reason).removesuffix("; production was not moved")
        return ActionError(exc, f"it is not servable: {reason}", neutral_hint(exc.hint))
    if isinstance(exc, ConflictError) and not force:
        try:
            ci = project.show(ref).ci
        except NbmciError:
            ci = None
        if ci is None or not ci.passed:
            status = "CI has not run on it" if ci is None else f"its CI {ci.status}"
            return ActionError(exc, f"it has not passed CI ({status})", FORCE_HINT)
    return generic(exc)


def rollback_refusal(project: Project, name: str, exc: NbmciError) -> ActionError:
    """Why ``rollback name`` was refused, for the panel."""
    if isinstance(exc, ConflictError) and rollback_target(project, name) is None:
        return ActionError(exc, "production has no earlier version to go back to",
                           "Roll back is possible after publishing a second version.")
    return generic(exc)


def generic(exc: NbmciError) -> ActionError:
    """The core's message as the reason, its hint only when it names no command."""
    return ActionError(exc, _sentence(exc.message), neutral_hint(exc.hint))


def rollback_target(project: Project, name: str) -> dict[str, int] | None:
    """``{"from": N, "to": M}``: where ``nbmci rollback NAME`` would move production now."""
    target = project.rollback_target(name)
    return None if target is None else {"from": target[0], "to": target[1]}
