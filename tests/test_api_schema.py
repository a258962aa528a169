"""schemathesis against the API's OpenAPI document: whatever it sends, no server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.run import Paths, build_catalog
from serving.api.app import create_app
from serving.api.keys import KeyStore
from serving.api.resources import SCOPES


@pytest.fixture(scope="module")
def api(lake, warehouse, tmp_path_factory):
    state = tmp_path_factory.mktemp("api-schema")
    catalog = Paths(lake, warehouse, state / "quality", state / "catalog")
    assert build_catalog(catalog, server="").ok  # so that catalog search is fuzzed against a real catalog
    app = create_app(warehouse, state, rate_per_minute=10**9, quality=catalog.quality, catalog=catalog.catalog)
    token = KeyStore(state / "keys.sqlite").create("schemathesis", [f"{s}:read" for s in SCOPES], "1506")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    return operations, token


def test_every_operation_is_generated(api):
    operations, _ = api
    assert len(operations) >= 30  # every resource, the token, the subscriptions, health and ready


def test_no_server_error(api):
    operations, token = api
    cases = st.one_of(*[op.as_strategy() for op in operations])

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=cases, keyed=st.booleans())
    def run(case, keyed):
        response = case.call(headers={"X-API-Key": token} if keyed else {})
        assert response.status_code < 500, f"{case.method} {case.formatted_path} {case.query} {case.body}: {response.text[:300]}"

    run()
