"""The FastAPI application: /v1 resources over the latest complete build, /health, /ready.

Each request reads the build `current.duckdb` points to when the request starts, so a build in
progress is never seen and a published one is picked up without a restart.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import secrets
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote_plus

import duckdb
import orjson
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.exceptions import HTTPException as StarletteHTTPException

from expectations import store as quality_store
from linli.settings import get_settings
from linli.warehouse import build_name, current
from pydantic import AnyHttpUrl, BaseModel

from serving.api.alarms import ALARM_KINDS, Refused, Subscriptions, check_area, check_webhook, city_instant, newest
from serving.api.audit import AuditLog
from serving.api.catalog import catalog_router
from serving.api.dispatch import Dispatcher, request_shape
from serving.api.filters import Filters, openapi_parameters
from serving.api.keys import KeyStore, Principal, issue_jwt, read_jwt
from serving.api.limits import RateLimiter
from serving.api.query import BadRequest, OutsideArea, Page, select, table_columns
from serving.api.resources import CITY_TIME, RESOURCES, Resource

log = logging.getLogger("linli.api")


def _plain(v):
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (list, dict)):  # a CSV cell holds them as JSON, as the JSON rendering does
        return json.dumps(v, ensure_ascii=False, default=_plain)
    return v


def _orjson_default(v):
    if isinstance(v, Decimal):
        return float(v)
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


class JSON(JSONResponse):
    """JSON through orjson: it writes datetimes as ISO 8601 itself, and several times faster."""

    def render(self, content) -> bytes:
        return orjson.dumps(content, default=_orjson_default)


class GeoJSON(JSON):
    media_type = "application/geo+json"


REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIds:
    """Every response carries a request id (the caller's X-Request-ID or a new one), and every
    request is logged as one JSON line. Plain ASGI: no per-request task or body copy."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        # the caller's id is echoed and logged: a short plain token only, or it could forge log lines
        rid = given if REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = rid  # request.state.request_id downstream
        started, status = time.perf_counter(), [500]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*(h for h in message.get("headers", []) if h[0] != b"x-request-id"),
                                      (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(json.dumps({"request_id": rid, "method": scope["method"], "path": scope["path"], "status": status[0],
                                     "ms": round(1000 * (time.perf_counter() - started), 1)}))


def _error(status: int, message: str, request: Request) -> JSONResponse:
    """The one error shape of the API."""
    rid = getattr(request.state, "request_id", None)
    return JSONResponse({"error": {"status": status, "message": message, "request_id": rid}}, status_code=status,
                        headers={"X-Request-ID": rid or ""})


class SubscriptionIn(BaseModel):
    url: AnyHttpUrl
    kinds: list[str]
    area: str | None = None  # within the key's area; default: all of it
    # deliver alarms after this time (one without an offset is the city's); default: only those newer than now in the store
    since: datetime | None = None


class Builds:
    """Read-only connections to published builds, one per build file, opened on first use; each
    worker thread keeps a cursor on the newest build, set up once rather than per request."""

    def __init__(self, warehouse: Path, quality: Path, threads: int):
        self.warehouse, self.quality = Path(warehouse), Path(quality)
        self.link = str(current(self.warehouse))
        self.threads = threads
        self.open: dict[Path, duckdb.DuckDBPyConnection] = {}
        self.columns: dict[tuple[str, str], dict[str, str]] = {}  # (build link target, table) -> columns
        self.lock = threading.Lock()
        self.local = threading.local()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.read()[0]

    def read(self, r: Resource | None = None) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
        """A cursor on the latest build (or the quality results), and the resource's columns;
        503 when there is no readable build."""
        if r is not None and r.store == "quality":  # results files come and go: read them afresh
            con = quality_store.attach(duckdb.connect(), self.quality)
            con.execute(CITY_TIME)
            return con, table_columns(con, r)
        try:
            target = os.readlink(self.link)  # one system call, not a walk of the whole path
            kept = getattr(self.local, "cursor", None)
            if kept is None or kept[0] != target:
                if kept is not None:
                    kept[1].close()
                self.local.cursor = kept = (target, self._open(target).cursor())
                kept[1].execute(CITY_TIME)
        except (OSError, duckdb.Error) as exc:
            log.error("no published build to serve: %s", exc)
            raise HTTPException(503, "no published build to serve") from exc
        cur = kept[1]
        if r is None:
            return cur, {}
        columns = self.columns.get((target, r.table))
        if columns is None:
            self.columns[(target, r.table)] = columns = table_columns(cur, r)
        return cur, columns

    def _open(self, target: str) -> duckdb.DuckDBPyConnection:
        """The connection to a build, opened once. Once a newer build is published, those to older
        ones are let go, not closed (closing would close the cursors made from them): a thread still
        reading an older build holds it through its own cursor until it moves on, and the file is
        closed, its space freed once pruned, when the last cursor goes."""
        path = self.warehouse / target
        with self.lock:
            if path not in self.open:
                con = duckdb.connect(str(path), read_only=True)
                # set, not passed as configuration: a process may hold the file open already (tests)
                con.execute(f"SET threads = {self.threads}")
                self.open = {path: con}
                self.columns = {k: v for k, v in self.columns.items() if k[0] == target}
            return self.open[path]


def _jwt_secret(state: Path) -> str:
    configured = get_settings().api_jwt_secret
    if configured:
        return configured
    kept = state / "jwt.secret"
    if not kept.exists():
        # Workers start at once: each writes a whole secret of its own aside and links it into
        # place, and the first link wins. Written in place, one worker could read another's
        # half-written file, or keep a secret the others never see.
        state.mkdir(parents=True, exist_ok=True)
        mine = state / f".jwt.secret.{os.getpid()}"
        with os.fdopen(os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(secrets.token_urlsafe(32))
        try:
            os.link(mine, kept)
        except FileExistsError:
            pass
        finally:
            mine.unlink()
    return kept.read_text().strip()


def create_app(warehouse: Path, state: Path, rate_per_minute: int | None = None, quality: Path | None = None,
               catalog: Path | None = None) -> FastAPI:
    app = FastAPI(title="Linli data services", version="1",
                  description="The libraries of Linli (人 地 物 事 组织, topics, profiles, metrics) by key: scoped by library and "
                              "area, personal data as pseudonymous keys and masked forms only, access to people audited.")
    settings = get_settings()
    builds = Builds(warehouse, quality or settings.data_dir / "quality", settings.api_duckdb_threads)
    keys, audit = KeyStore(state / "keys.sqlite"), AuditLog(state / "audit.jsonl")
    secret = _jwt_secret(state)
    limiter = RateLimiter(rate_per_minute or settings.api_rate_per_minute)

    app.add_middleware(RequestIds)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        response = _error(exc.status_code, str(exc.detail), request)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return _error(422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()), request)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("request %s failed", getattr(request.state, "request_id", None))
        return _error(500, "internal error; quote the request id when reporting it", request)

    def who_is(request: Request) -> Principal:
        """The caller's principal, or a 401 (or 429 when its key is over its rate)."""
        token = request.headers.get("X-API-Key")
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        who = None
        if token:
            who = keys.authenticate(token)
        elif scheme.lower() == "bearer":  # an auth scheme is case-insensitive (RFC 9110)
            key_id = read_jwt(credentials.strip(), secret)
            who = keys.principal(key_id) if key_id else None
        if who is None:
            raise HTTPException(401, "a valid X-API-Key header or Bearer token is required")
        wait = limiter.allow(who.key_id)
        if wait:
            raise HTTPException(429, f"rate limit of {limiter.rate * 60:.0f} requests a minute reached",
                                headers={"Retry-After": str(max(1, round(wait)))})
        return who

    async def principal(request: Request) -> Principal:  # a key lookup is quick: no thread hop
        return who_is(request)

    # The resources first: a request is matched against the routes in the order they were added.
    dispatcher = Dispatcher()
    for resource in RESOURCES:
        app.router.add_api_route(f"/v1/{resource.path}", _endpoint(resource, builds, audit, who_is, dispatcher), methods=["GET"],
                                 route_class_override=_RequestRoute, tags=[resource.scope], summary=resource.description,
                                 name=resource.path.replace("/", "_"), openapi_extra={"parameters": openapi_parameters(resource.kind)})

    @app.get("/health", tags=["service"])
    async def health():
        return {"status": "ok"}

    @app.get("/ready", tags=["service"])
    def ready():
        try:
            build = current(warehouse).resolve(strict=True)
            builds.cursor().execute("SELECT 1").fetchone()
        except (OSError, duckdb.Error) as exc:
            log.error("no published build to serve: %s", exc)
            raise HTTPException(503, "no published build to serve") from exc
        return {"status": "ready", "build": build_name(build)}

    @app.post("/v1/oauth/token", tags=["auth"])
    def token(grant_type: str = Form(...), client_id: str | None = Form(None), client_secret: str | None = Form(None),
              basic: HTTPBasicCredentials | None = Depends(HTTPBasic(auto_error=False))):
        """OAuth2 client credentials: client_id is the key id, client_secret the rest of the key,
        sent as HTTP Basic (RFC 6749 §2.3.1) or in the form."""
        if grant_type != "client_credentials":
            raise HTTPException(400, "grant_type must be client_credentials")
        if basic is not None:
            client_id, client_secret = unquote_plus(basic.username), unquote_plus(basic.password)  # form-encoded first, says the RFC
        if not client_id or not client_secret:
            raise HTTPException(401, "client credentials are required: HTTP Basic, or client_id and client_secret in the form")
        who = keys.principal(client_id, client_secret)
        if who is None:
            raise HTTPException(401, "unknown client or wrong secret")
        access, expires = issue_jwt(who, secret)
        return {"access_token": access, "token_type": "bearer", "expires_in": expires}

    subs = Subscriptions(state / "alarms.sqlite")

    def events_reader(who: Principal = Depends(principal)) -> Principal:
        if "events:read" not in who.scopes:
            raise HTTPException(403, "alarm subscriptions need the events:read scope")
        return who

    @app.post("/v1/subscriptions", tags=["alarms"], status_code=201)
    def subscribe(body: SubscriptionIn, who: Principal = Depends(events_reader)):
        """Register a webhook for alarm kinds in an area; the signing secret is shown once."""
        area = body.area or who.area
        unknown = sorted(set(body.kinds) - set(ALARM_KINDS))
        if unknown or not body.kinds:
            raise HTTPException(400, f"kinds must be among {sorted(ALARM_KINDS)}")
        try:
            check_area(area, body.kinds)
            if not area.startswith(who.area):
                raise HTTPException(403, f"area {area} is outside this key's area {who.area}")
            check_webhook(str(body.url))
        except Refused as exc:
            raise HTTPException(422, str(exc)) from exc
        con = builds.cursor()
        since = {k: city_instant(body.since).isoformat() if body.since else newest(con, k, area) for k in body.kinds}
        return subs.create(who.key_id, str(body.url), body.kinds, area, since)

    @app.get("/v1/subscriptions", tags=["alarms"])
    def subscriptions(who: Principal = Depends(events_reader)):
        return {"data": [{k: v for k, v in s.items() if k != "secret"} for s in subs.active(who.key_id)]}

    @app.delete("/v1/subscriptions/{sub_id}", tags=["alarms"], status_code=204)
    def unsubscribe(sub_id: str, who: Principal = Depends(events_reader)):
        if not subs.delete(sub_id, who.key_id):
            raise HTTPException(404, f"no subscription {sub_id} of this key")
        return Response(status_code=204)

    @app.get("/v1/subscriptions/{sub_id}/deliveries", tags=["alarms"])
    def deliveries(sub_id: str, who: Principal = Depends(events_reader)):
        """Every delivery attempt: batch, attempt number, time, HTTP status or error."""
        if sub_id not in {s["id"] for s in subs.active(who.key_id)}:
            raise HTTPException(404, f"no subscription {sub_id} of this key")
        return {"data": subs.attempts(sub_id)}

    app.include_router(catalog_router(principal, catalog or settings.data_dir / "catalog"))
    return app


class _RequestRoute(APIRoute):
    """A route whose endpoint takes the request and returns the response itself: FastAPI's
    dependency solving, a tenth of a small request, is skipped (the OpenAPI entry is unchanged)."""

    def get_route_handler(self):
        return self.endpoint


def _endpoint(r: Resource, builds: Builds, audit: AuditLog, who_is, dispatcher: Dispatcher):
    def respond(request: Request) -> Response:
        who = who_is(request)
        status, rows, filters = 200, 0, None
        try:
            filters = Filters.parse(request.query_params)
            if f"{r.scope}:read" not in who.scopes:
                raise HTTPException(403, f"this key lacks the {r.scope}:read scope")
            if filters.format == "geojson" and not (r.lonlat or r.geometry):
                raise HTTPException(400, f"{r.path} has no geometry")
            try:
                con, columns = builds.read(r)
                fields = filters.fields.split(",") if filters.fields else None
                if fields and filters.format == "geojson":  # a feature's geometry, whatever fields were chosen
                    fields += [c for c in (r.geometry, *(r.lonlat or ())) if c]
                page = select(con, r, who, columns, area=filters.area, since=filters.since, until=filters.until, kind=filters.kind,
                              fields=fields, sort=filters.sort, cursor=filters.cursor, limit=filters.limit)
            except BadRequest as exc:
                raise HTTPException(400, str(exc)) from exc
            except OutsideArea as exc:
                raise HTTPException(403, str(exc)) from exc
            except duckdb.ConversionException as exc:
                raise HTTPException(400, f"a filter value does not fit: {str(exc).splitlines()[0]}") from exc
            rows = len(page.rows)
            return _render(page, filters.format, r)
        except HTTPException as exc:
            status = exc.status_code
            raise
        except RequestValidationError:
            status = 422
            raise
        except Exception:
            status = 500
            raise
        finally:
            if r.personal:  # a request refused for its parameters is audited with those it asked for
                audit.append(who.key_id, r.path, filters.given() if filters else dict(request.query_params), rows, status)

    async def endpoint(request: Request):
        return await dispatcher.run(request_shape(r.path, request.query_params), respond, request)

    endpoint.__doc__ = r.description
    return endpoint


def _render(page: Page, format: str, r: Resource) -> Response:
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(page.columns)
        writer.writerows([map(_plain, row) for row in page.rows])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    records = [dict(zip(page.columns, row)) for row in page.rows]
    if format == "geojson":
        features = []
        for rec in records:
            if r.geometry:
                geometry = json.loads(rec.pop(r.geometry)) if rec.get(r.geometry) else None
            else:
                lon, lat = rec.get(r.lonlat[0]), rec.get(r.lonlat[1])
                geometry = {"type": "Point", "coordinates": [lon, lat]} if lon is not None and lat is not None else None
            features.append({"type": "Feature", "geometry": geometry, "properties": rec})
        return GeoJSON({"type": "FeatureCollection", "features": features, "next_cursor": page.next_cursor}, headers=headers)
    return JSON({"data": records, "next_cursor": page.next_cursor}, headers=headers)
