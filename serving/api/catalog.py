"""/v1/catalog/search: find datasets, dashboards and glossary terms in the catalog (DataHub Lite).

Metadata only — names, descriptions, owners, scores, personal-data columns by name, never values —
under a scope of its own, `catalog:read`. The figures (rows, freshness, scores) are the whole
city's, and a delivery is one community's file whose rows count its people: a key bound to less
than the city finds neither, as the quality endpoints refuse it the city's scores.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query

from serving.api.keys import Principal
from serving.api.resources import CATALOG_SCOPE, CITY_AREA

log = logging.getLogger("linli.api")
SCOPE = f"{CATALOG_SCOPE}:read"
PROPERTIES = ("layer", "library", "owner", "rows", "freshness", "quality_score", "evaluation_score", "personal_data_columns",
              "consumers")
CITY_FIGURES = ("rows", "freshness", "quality_score", "evaluation_score")


def catalog_router(principal, catalog_dir: Path) -> APIRouter:
    router = APIRouter(prefix="/v1/catalog", tags=["catalog"])

    @router.get("/search", summary="Search the catalog (数据地图): datasets, dashboards and glossary terms")
    def search(
        q: str = Query(..., min_length=1, max_length=200, description="words, 中文 or English, all of which must match"),
        limit: int = Query(20, ge=1, le=100),
        who: Principal = Depends(principal),
    ):
        from catalog.facts import delivery_name
        from catalog.store import NoCatalog, dataset_properties, open_lite, search as find

        if SCOPE not in who.scopes:
            raise HTTPException(403, f"this key lacks the {SCOPE} scope")
        try:
            city = who.area == CITY_AREA
            shown = PROPERTIES if city else tuple(k for k in PROPERTIES if k not in CITY_FIGURES)
            with open_lite(catalog_dir) as lite:
                data = []
                for h in find(lite, q, limit, keep=lambda hit: city or not hit.name.startswith(delivery_name(""))):
                    props = dataset_properties(lite, h.urn).get("customProperties", {}) if h.type == "dataset" else {}
                    data.append({"name": h.name, "type": h.type, "urn": h.urn, "description": h.description, "matched": h.matched,
                                 **{k: props.get(k) or None for k in shown}})
        except NoCatalog as exc:
            log.error("%s", exc)  # where it was looked for is the operator's to know, not the caller's
            raise HTTPException(503, "no catalog has been published") from exc
        return {"data": data, "query": q}

    return router
