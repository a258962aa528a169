"""The query string of every resource endpoint: declared once, parsed in one pydantic call, and
documented in OpenAPI from the same model.

FastAPI's per-parameter extraction costs more than a small query against the serving store, so
the resource endpoints take their query string whole and validate it here.
"""

from __future__ import annotations

from typing import Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serving.api.query import MAX_LIMIT


class Filters(BaseModel):
    # a mistyped parameter (`are=`) is refused, not ignored: ignoring it would widen the answer
    model_config = ConfigDict(extra="forbid")

    area: str | None = Field(None, description="banner, street or community code (prefix), or a grid code")
    since: str | None = Field(None, alias="from", description="time from (ISO 8601, inclusive)")
    until: str | None = Field(None, alias="to", description="time to (ISO 8601, exclusive)")
    kind: str | None = Field(None, description="only this kind")
    fields: str | None = Field(None, description="comma-separated columns")
    sort: str | None = Field(None, description="key or time column; -column for descending")
    cursor: str | None = Field(None, description="next_cursor of the previous page")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="rows per page")
    format: Literal["json", "csv", "geojson"] = Field("json", description="json, csv, or geojson where the rows are located")

    @classmethod
    def parse(cls, query) -> Filters:
        """From a request's query string; a 422 in FastAPI's own shape when it does not fit."""
        try:
            return cls.model_validate(dict(query))
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None

    def given(self) -> dict:
        """The parameters the caller set (for the audit log)."""
        return self.model_dump(exclude_none=True, exclude_defaults=False)


def openapi_parameters(kind: str | None) -> list[dict]:
    """The OpenAPI parameters of a resource endpoint; `kind` names what its kind filter selects."""
    parameters = []
    for name, schema in Filters.model_json_schema(by_alias=True)["properties"].items():
        description = schema.pop("description", "")
        schema.pop("title", None)
        if name == "kind":
            description = f"only this {kind}" if kind else "not available here"
        parameters.append({"name": name, "in": "query", "required": False, "description": description, "schema": schema})
    return parameters
