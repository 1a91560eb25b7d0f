"""What ``%mci_status`` reports: where the registry is, the models, their production versions
and the versions that await CI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbmci.errors import redact_url
from nbmci.results import ModelSummary, Version

PRODUCTION = "production"


@dataclass(frozen=True)
class Status:
    """The project's registry location (credentials redacted), a summary of each model, each
    model's production version (with its CI result) and the refs with no CI result yet."""

    root: str
    store: str
    registry: str
    models: list[ModelSummary]
    production_versions: list[Version] = field(default_factory=list)
    awaiting_ci: list[str] = field(default_factory=list)  # by model, oldest first

    def production(self, model: ModelSummary) -> int | None:
        """The version number ``model``'s ``production`` alias points at, if any."""
        return model.aliases.get(PRODUCTION)

    def newer_than_production(self, model: ModelSummary) -> list[str]:
        """Refs of ``model``'s versions committed after its production version (all if none)."""
        first = (self.production(model) or 0) + 1
        return [f"{model.name}@{n}" for n in range(first, (model.latest or 0) + 1)]

    def awaiting(self, model: ModelSummary) -> list[str]:
        """Refs of ``model``'s versions that have no CI result, oldest first."""
        return [ref for ref in self.awaiting_ci if ref.rpartition("@")[0] == model.name]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "store": self.store, "registry": self.registry,
                "models": [m.to_dict() for m in self.models],
                "production": {v.name: {"ref": v.ref, "ci": v.ci.status if v.ci else None}
                               for v in self.production_versions},
                "awaiting_ci": list(self.awaiting_ci)}


def read_status() -> Status:
    """The status of the project holding the working directory."""
    import nbmci

    project = nbmci.project()
    settings = project.settings
    models = project.models()
    production = [project.show(f"{m.name}@{PRODUCTION}") for m in models
                  if PRODUCTION in m.aliases]
    # the query `%mci_ci` (and `nbmci ci`) take their default targets from, so this list is
    # exactly what they would run
    awaiting = project.versions_without_ci()
    return Status(str(settings.root), redact_url(settings.store_url),
                  redact_url(settings.registry_url), models, production, awaiting)
