"""Registry rows (dicts) into the Python API's result objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbmci.registry.queries import as_utc
from nbmci.results import UNKNOWN, CIStatus, DataInfo, ModelArtifact, Servability, Stored, Version

TRUST_KEY = "trust"  # lineage entry of a commit with trust=True: {"by": actor, "at": iso time}
KIND = "servable"  # the registry's check kind for servability


def version_from_row(row: Mapping[str, Any]) -> Version:
    return Version(
        name=row["name"],
        version=row["number"],
        created_at=as_utc(row["created_at"]),
        message=row["message"],
        author=row["author"],
        model=ModelArtifact(row["model_class"], row["model_format"], row["model_digest"],
                            row["model_size"], row["trusted"], list(row["trusted_types"]),
                            _vouched_by(row["lineage"])),
        data={
            d["key"]: DataInfo(d["key"], d["digest"], d["kind"], d["rows"], d["nbytes"],
                               d["schema"], d["stats"])
            for d in row["datasets"]
        },
        params=row["params"],
        metrics=row["metrics"],
        signature=row["signature"],
        lineage=row["lineage"],
        aliases=list(row["aliases"]),
        stored=Stored(**row["stored"]),
        ci=_ci_from_row(row.get("ci")),
        servability=servability_from_row((row.get("checks") or {}).get(KIND)) or UNKNOWN,
    )


def _vouched_by(lineage: Any) -> str | None:
    trust = lineage.get(TRUST_KEY) if isinstance(lineage, Mapping) else None
    if not isinstance(trust, Mapping):
        return None
    return str(trust.get("by") or "unknown")


def _ci_from_row(run: Mapping[str, Any] | None) -> CIStatus | None:
    if not run:
        return None
    notebooks = [{"notebook": n["notebook"], "status": n["status"], "cached": n["cached"],
                  "output_digest": n["output_digest"], "error": n["error"],
                  "duration": n["duration"]} for n in run["notebooks"]]
    return CIStatus(run["status"], run["metrics"], run["gates"], as_utc(run["started_at"]),
                    run["duration"], notebooks)




def servability_from_row(row: Mapping[str, Any] | None) -> Servability | None:
    if not row:
        return None
    detail = row.get("detail") or {}
    checked = row.get("checked_at")
    return Servability("servable" if row["passed"] else "not servable", detail.get("reason"),
                       detail.get("hint"), detail.get("where"),
                       as_utc(checked) if checked else None, detail.get("seconds"))
