"""Superset's REST API as Linli's tools use it: log in as a user, ask a dataset for its rows per community.

The same question a dashboard's charts ask, so the tests and the concurrency run exercise row-level
security and the serving store the way a logged-in user's browser does.
"""

from __future__ import annotations

import httpx


class SupersetClient:
    def __init__(self, base: str, user: str, password: str, timeout: float = 120):
        self.http = httpx.Client(base_url=base, timeout=timeout)
        login = self.http.post("/api/v1/security/login", json={"username": user, "password": password, "provider": "db", "refresh": False})
        login.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        self.http.headers["X-CSRFToken"] = self.http.get("/api/v1/security/csrf_token/").json()["result"]
        self.http.headers["Referer"] = base

    def datasets(self) -> dict[str, int]:
        """The datasets this user may see: table name → id."""
        found = self.http.get("/api/v1/dataset/", params={"q": "(page_size:100)"}).json()["result"]
        return {d["table_name"]: d["id"] for d in found}

    def rows_by_community(self, dataset_id: int) -> httpx.Response:
        """The chart-data answer to `SELECT community_code, count(*) … GROUP BY 1`, uncached."""
        query = {"datasource": {"id": dataset_id, "type": "table"}, "force": True, "result_format": "json", "result_type": "full",
                 "queries": [{"columns": ["community_code"], "row_limit": 10000,
                              "metrics": [{"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "rows"}]}]}
        return self.http.post("/api/v1/chart/data", json=query)

    def counts_by_community(self, dataset_id: int) -> dict[str, int]:
        r = self.rows_by_community(dataset_id)
        r.raise_for_status()
        return {row["community_code"]: row["rows"] for row in r.json()["result"][0]["data"]}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "SupersetClient":
        return self

    def __exit__(self, *_) -> None:
        self.close()
