"""Tab completion for the magics: model names, and refs (``NAME@N``, ``@latest``, ``@ALIAS``).

An IPython matcher (API v2) rather than a ``complete_command`` hook, because the hook's
token stops at ``@``: the matcher replaces the whole ``clf@`` fragment with ``clf@3``.
"""

from __future__ import annotations

from typing import Any

from IPython.core.completer import (
    CompletionContext,
    SimpleCompletion,
    SimpleMatcherResult,
    context_matcher,
)

from nbmci.errors import NbmciError
from nbmci.results import ModelSummary

IDENTIFIER = "nbmci.magics"
# magic -> (what its free words are, what the value of each option is); "" means neither a
# model name nor a ref, which leaves the word to IPython (MODEL and --data are variables).
_ARGUMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "mci_commit": ("", {"--name": "name"}),
    "mci_log": ("name", {"-n": "", "--limit": "", "--metric": ""}),
    "mci_diff": ("ref", {}),
    "mci_checkout": ("ref", {"--as": ""}),
    "mci_ci": ("ref", {"-j": "", "--jobs": ""}),
    "mci_publish": ("ref", {}),
    "mci_rollback": ("name", {}),
}


def install(shell: Any) -> None:
    """Add the matcher to ``shell``'s completer, once even if the extension is reloaded."""
    matchers = shell.Completer.custom_matchers
    matchers[:] = [m for m in matchers if getattr(m, "matcher_identifier", None) != IDENTIFIER]
    matchers.append(complete_magic_argument)


@context_matcher(identifier=IDENTIFIER)
def complete_magic_argument(context: CompletionContext) -> SimpleMatcherResult:
    """Model names or refs for the word under the cursor on a ``%mci_*`` line."""
    text = context.text_until_cursor
    words = text.split() + ([""] if text[-1:].isspace() else [])
    if len(words) < 2 or words[0].lstrip("%") not in _ARGUMENTS:
        return {"completions": []}  # another line, or the magic's own name
    fragment, before = words[-1], words[-2]
    free, options = _ARGUMENTS[words[0].lstrip("%")]
    kind = "" if fragment.startswith("-") else options.get(before, free)
    found = _candidates(kind, fragment) if kind else []
    return {"completions": [SimpleCompletion(match, type=kind) for match in found],
            "suppress": bool(found), "matched_fragment": fragment, "ordered": True}


def _candidates(kind: str, fragment: str) -> list[str]:
    models = _models()
    name, at, _ = fragment.partition("@")
    if kind == "name" or not at:
        return [m.name for m in models if m.name.startswith(fragment)]
    refs = [ref for m in models if m.name == name for ref in _refs(m)]
    return [ref for ref in refs if ref.startswith(fragment)]


def _refs(model: ModelSummary) -> list[str]:
    """Newest version first, then ``@latest`` and the aliases; version numbers are gapless."""
    numbers = range(model.latest or 0, 0, -1)
    selectors = [*map(str, numbers), "latest", *sorted(model.aliases)]
    return [f"{model.name}@{s}" for s in selectors]


def _models() -> list[ModelSummary]:
    import nbmci

    project = nbmci.project()
    settings = project.settings
    if settings.registry_url.startswith("sqlite") and not settings.state_dir.is_dir():
        return []  # pressing Tab must never create a registry
    try:
        return project.models()
    except NbmciError:
        return []  # completion offers nothing rather than an error
