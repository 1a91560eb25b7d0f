"""What ``%mci_status`` reports: where the registry is, the models, their production versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbmci.errors import redact_url
from nbmci.results import ModelSummary

PRODUCTION = "production"


@dataclass(frozen=True)
class Status:
    """The project's registry location (credentials redacted) and a summary of each model."""

    root: str
    store: str
    registry: str
    models: list[ModelSummary]

    def production(self, model: ModelSummary) -> int | None:
        """The version number ``model``'s ``production`` alias points at, if any."""
        return model.aliases.get(PRODUCTION)

    def newer_than_production(self, model: ModelSummary) -> list[str]:
        """Refs of ``model``'s versions committed after its production version (all if none)."""
        first = (self.production(model) or 0) + 1
        return [f"{model.name}@{n}" for n in range(first, (model.latest or 0) + 1)]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "store": self.store, "registry": self.registry,
                "models": [m.to_dict() for m in self.models]}


def read_status() -> Status:
    """The status of the project holding the working directory."""
    import nbmci

    project = nbmci.project()
    settings = project.settings
    return Status(str(settings.root), redact_url(settings.store_url),
                  redact_url(settings.registry_url), project.models())
