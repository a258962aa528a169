"""/v1/catalog/search: find datasets, dashboards and glossary terms in the catalog (DataHub Lite).

Metadata only — names, descriptions, owners, scores, personal-data columns by name, never values —
under a scope of its own, `catalog:read`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query

from serving.api.keys import Principal
from serving.api.resources import CATALOG_SCOPE

SCOPE = f"{CATALOG_SCOPE}:read"


def catalog_router(principal, catalog_dir: Path) -> APIRouter:
    router = APIRouter(prefix="/v1/catalog", tags=["catalog"])

    @router.get("/search", summary="Search the catalog (数据地图): datasets, dashboards and glossary terms")
    def search(
        q: str = Query(..., min_length=1, max_length=200, description="words, 中文 or English, all of which must match"),
        limit: int = Query(20, ge=1, le=100),
        who: Principal = Depends(principal),
    ):
        from catalog.store import NoCatalog, dataset_properties, open_lite, search as find

        if SCOPE not in who.scopes:
            raise HTTPException(403, f"this key lacks the {SCOPE} scope")
        try:
            with open_lite(catalog_dir) as lite:
                hits = find(lite, q, limit)
                data = []
                for h in hits:
                    props = dataset_properties(lite, h.urn).get("customProperties", {}) if h.type == "dataset" else {}
                    data.append({
                        "name": h.name, "type": h.type, "urn": h.urn, "description": h.description, "matched": h.matched,
                        **{k: props.get(k) or None for k in ("layer", "library", "owner", "rows", "freshness", "quality_score",
                                                             "evaluation_score", "personal_data_columns", "consumers")},
                    })
        except NoCatalog as exc:
            raise HTTPException(503, str(exc)) from exc
        return {"data": data, "query": q}

    return router
