"""Superset over the small city: provisioned twice, every dashboard drawn in headless Chromium, RLS by area.

Real Superset (its own environment, installed by scripts/ensure-superset.sh) and real Chromium
(scripts/ensure-browser.sh). One PNG per dashboard lands in test-output/dashboards/.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from linli.net import free_port
from linli.settings import Settings
from serving.dashboards import server
from serving.dashboards.client import SupersetClient
from serving.dashboards.definitions import ACCESS, DATASETS, LOCKER_SALES, RESIDENTS
from serving.dashboards.layout import DASHBOARDS

OUT = Path(__file__).resolve().parent.parent / "test-output" / "dashboards"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  # with no GPU, WebGL (the deck.gl maps) needs Chromium's software renderer, no longer a silent fallback
                  "--enable-unsafe-swiftshader", "--window-size=1600,1400", "--lang=zh-CN"]
SETTINGS = Settings(superset_admin_password="admin-test-pw", superset_community_password="community-test-pw")


@pytest.fixture(scope="module")
def superset(lake, warehouse, tmp_path_factory):
    from expectations.run import connect, run_suites
    from linli.warehouse import current

    data = tmp_path_factory.mktemp("dashboards-data")
    (data / "warehouse").symlink_to(warehouse, target_is_directory=True)
    run_suites(connect(current(warehouse).resolve(), lake), data / "quality")
    server.ensure_installed()
    server.initialise(data, SETTINGS)
    started = time.monotonic()
    first = server.provision(data, settings=SETTINGS)
    provision_seconds = time.monotonic() - started
    second = server.provision(data, settings=SETTINGS)
    port = free_port()
    proc = server.start(data, port, settings=SETTINGS)
    yield {"url": f"http://127.0.0.1:{port}", "first": first, "second": second, "provision_seconds": provision_seconds, "data": data}
    proc.terminate()
    proc.wait(30)


def _login(superset, user: str, password: str) -> SupersetClient:
    return SupersetClient(superset["url"], user, password)


def test_a_community_role_sees_only_its_community(superset, warehouse):
    import duckdb

    from linli.warehouse import current

    community = superset["first"]["community"]
    with _login(superset, SETTINGS.superset_admin_user, SETTINGS.superset_admin_password) as admin_client, \
            _login(superset, SETTINGS.superset_community_user, SETTINGS.superset_community_password) as community_client:
        ids = admin_client.datasets()
        admin, mine = admin_client.counts_by_community(ids[RESIDENTS.key]), community_client.counts_by_community(ids[RESIDENTS.key])
        passes, sales = (admin_client.counts_by_community(ids[ds.key]) for ds in (ACCESS, LOCKER_SALES))
        # and the quality results, city-wide facts, are not theirs to see
        visible = set(community_client.datasets())
    con = duckdb.connect(str(current(warehouse).resolve()), read_only=True)
    truth = dict(con.execute("SELECT community_code, count(*) FROM people.resident GROUP BY 1").fetchall())
    # the city's figures count the events of devices placed in no community, as the API does
    (passes_truth, sales_truth, unplaced), = con.execute(
        """SELECT (SELECT count(*) FROM event.door_access) + (SELECT count(*) FROM event.vehicle_passage),
                  (SELECT count(*) FROM event.locker_sale),
                  (SELECT count(*) FROM event.door_access WHERE community_code IS NULL)
                  + (SELECT count(*) FROM event.locker_sale WHERE community_code IS NULL)""").fetchall()
    con.close()
    assert unplaced > 0, "devices the registry does not know must have events for this check to mean anything"
    assert (sum(passes.values()), sum(sales.values())) == (passes_truth, sales_truth)
    assert None not in mine
    assert admin == truth, "the admin sees every community's rows"
    assert len(admin) > 1, "the small city must have several communities for this test to mean anything"
    assert mine == {community["code"]: truth[community["code"]]}
    print(f"\nresidents seen: admin {sum(admin.values()):,} rows in {len(admin)} communities; "
          f"{community['name']} role {sum(mine.values()):,} rows")
    assert visible == {d.key for d in DATASETS if d.area}


def test_every_area_login_sees_only_its_area_in_every_area_dataset(superset, warehouse):
    """Row-level security for every banner, street and community of the city, each through a login granted
    by `linli dashboards grant`, on every dataset an area may see."""
    from bench.reliability.dashboard_access import area_logins, check

    users = area_logins(warehouse)
    granted = server.grant(superset["data"], users, "area-test-pw", settings=SETTINGS)
    assert set(granted) == set(users)
    with pytest.raises(server.SupersetError, match="no banner, street or community"):
        server.grant(superset["data"], {"nowhere": "150699999999"}, "area-test-pw", settings=SETTINGS)

    result = check(superset["url"], users, "area-test-pw", SETTINGS)
    print(f"\n{result.line()}")
    assert result.leaks == [] and result.missing == []
    assert result.banners > 0 and result.streets > 0 and result.communities > 1 and result.answers == len(users) * sum(d.area for d in DATASETS)
    assert result.rows_hidden > 0, "other areas must have rows for this test to mean anything"


def _chromium(base: str, user: str, password: str):
    """Headless Chromium logged in to Superset through its login form."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(90)
    # The login form is drawn by React: on a busy machine a first click can land before it listens.
    for _ in range(3):
        driver.get(f"{base}/login/")
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "username"))
        driver.find_element(By.ID, "username").send_keys(user)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        try:
            WebDriverWait(driver, 60).until(lambda d: "/login" not in d.current_url)
            return driver
        except TimeoutException:
            continue
    OUT.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(OUT / f"login-failed-{user}.png"))
    driver.quit()
    raise AssertionError(f"{user} could not log in to Superset (screenshot in {OUT})")


@pytest.fixture(scope="module")
def browser(superset):
    driver = _chromium(superset["url"], SETTINGS.superset_admin_user, SETTINGS.superset_admin_password)
    yield driver
    driver.quit()


def _open(driver, base: str, board) -> list[dict]:
    """Open a dashboard and wait (up to 2 minutes) until each of its charts has stopped loading."""
    driver.get(f"{base}/superset/dashboard/{board.slug}/")
    deadline, states = time.monotonic() + 120, []
    while time.monotonic() < deadline:
        states = driver.execute_script(CHART_STATES)
        if len(states) == len(board.charts) and not any(s["loading"] for s in states):
            break
        time.sleep(1)
    time.sleep(3)  # the maps' WebGL frame and the charts' animations settle
    return driver.execute_script(CHART_STATES)


# Every chart's state, read from the page: still loading, showing an error, and for maps how many
# of the canvas's pixels differ from its blank ground (legends and tooltips hidden first).
CHART_STATES = """
return Array.from(document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')).map(holder => {
  const title = (holder.querySelector('[data-test="editable-title"]') || holder).innerText.trim();
  const loading = !!holder.querySelector('[data-test="loading-indicator"], .loading');
  const error = Array.from(holder.querySelectorAll('.ant-alert-error, .ant-alert-warning, [role="alert"], [data-test="error-tooltip"]'))
      .map(e => e.innerText.trim() || e.className).join(' | ');
  const canvas = holder.querySelector('canvas');
  const numbers = Array.from(holder.querySelectorAll('[class*="header-line"]')).map(e => e.innerText.trim());
  return {title, loading, error, canvas: !!canvas, number: numbers[0] || null};
});
"""


def _map_pixels(driver, holder) -> int:
    """Pixels of a map's canvas that are not its background, with every overlay hidden."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    canvas = holder.find_element(By.TAG_NAME, "canvas")
    driver.execute_script("""
      const canvas = arguments[0], holder = arguments[1];
      holder.querySelectorAll('*').forEach(e => { if (e !== canvas && !e.contains(canvas)) e.style.visibility = 'hidden'; });
    """, canvas, holder)
    image = Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB")
    driver.execute_script("arguments[0].querySelectorAll('*').forEach(e => { e.style.visibility = ''; });", holder)
    background = image.getpixel((1, 1))
    return sum(1 for p in image.get_flattened_data() if max(abs(a - b) for a, b in zip(p, background)) > 40)


@pytest.mark.parametrize("board", DASHBOARDS, ids=[b.slug for b in DASHBOARDS])
def test_every_dashboard_draws_every_chart_offline(superset, browser, board):
    from selenium.webdriver.common.by import By

    OUT.mkdir(parents=True, exist_ok=True)
    browser.get_log("browser")  # drop what earlier pages logged
    states = _open(browser, superset["url"], board)
    browser.set_window_size(1600, max(1400, browser.execute_script("return document.body.scrollHeight") + 200))
    shot = OUT / f"{board.slug}.png"
    browser.save_screenshot(str(shot))
    browser.set_window_size(1600, 1400)

    assert [s["title"] for s in states] == [c.title for c in board.charts]
    assert not [s["title"] for s in states if s["loading"]], "charts still loading after 2 minutes"
    assert not {s["title"]: s["error"] for s in states if s["error"]}, "charts showing errors"
    holders = browser.find_elements(By.CSS_SELECTOR, '[data-test="dashboard-component-chart-holder"]')
    for chart, holder, state in zip(board.charts, holders, states):
        if chart.is_map:
            assert state["canvas"], f"{chart.title}: no map canvas"
            drawn = _map_pixels(browser, holder)
            assert drawn > 20, f"{chart.title}: the map drew nothing ({drawn} pixels)"
    # Nothing left this machine: no base-map tiles; Superset's telemetry pixel is refused by the CSP.
    log = browser.get_log("browser")
    blocked = " ".join(e["message"] for e in log if e.get("source") == "security" and "Content Security Policy" in e["message"])
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [u for u in fetched if not u.startswith(superset["url"]) and u not in blocked], fetched
    assert not [e["message"] for e in log if e.get("source") == "network" and not e["message"].startswith(superset["url"])]
    assert shot.stat().st_size > 10_000


def test_metadata_in_postgresql(superset, warehouse, tmp_path):
    """LINLI_SUPERSET_METADATA_URI moves Superset's metadata to PostgreSQL; provisioning is the same there."""
    import uuid

    import psycopg

    admin_url, db = "postgresql://postgres@127.0.0.1:5432/postgres", f"linli_superset_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {db}")
    try:
        settings = SETTINGS.model_copy(update={"superset_metadata_uri": f"postgresql://postgres@127.0.0.1:5432/{db}"})
        (tmp_path / "warehouse").symlink_to(warehouse, target_is_directory=True)
        server.initialise(tmp_path, settings)
        provisioned = server.provision(tmp_path, settings=settings)
        assert not (tmp_path / "dashboards" / "superset.db").exists(), "metadata went to SQLite"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}") as con:
            titles = [r[0] for r in con.execute("SELECT dashboard_title FROM dashboards ORDER BY id")]
            rls = con.execute("SELECT count(*) FROM row_level_security_filters").fetchone()[0]
        assert titles == [b.title for b in DASHBOARDS]
        assert rls == provisioned["area_roles"]
        assert {k: v for k, v in provisioned.items() if k != "seconds"} == {k: v for k, v in superset["first"].items() if k != "seconds"}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_a_community_user_sees_its_own_dashboards(superset, warehouse):
    """In the browser, as the community's user: four dashboards (not 数据质量), numbers of its community only."""
    import duckdb

    from linli.warehouse import current

    community = superset["first"]["community"]
    con = duckdb.connect(str(current(warehouse).resolve()), read_only=True)
    residents = con.execute("SELECT count(*) FROM people.resident WHERE community_code = ?", [community["code"]]).fetchone()[0]
    everyone = con.execute("SELECT count(*) FROM people.resident").fetchone()[0]
    con.close()
    assert residents < everyone
    driver = _chromium(superset["url"], SETTINGS.superset_community_user, SETTINGS.superset_community_password)
    try:
        board = next(b for b in DASHBOARDS if b.slug == "population")
        states = _open(driver, superset["url"], board)
        driver.save_screenshot(str(OUT / f"{board.slug}-{community['code']}.png"))
        assert not {s["title"]: s["error"] for s in states if s["error"]}
        total = next(s for s in states if s["title"] == "实有人口")
        assert total["number"].replace(",", "") == str(residents)
        listed = driver.execute_script("return fetch('/api/v1/dashboard/').then(r => r.json())")["result"]
        assert sorted(d["dashboard_title"] for d in listed) == sorted(b.title for b in DASHBOARDS if b.area_filters)
    finally:
        driver.quit()


def test_no_database_connection_reaches_a_file_but_the_quality_results(superset, city, tmp_path):
    """As the admin, in SQL Lab: the libraries answer, but no connection reads a delivery (clear
    identifiers), the secret key or any other file, or writes one."""
    registry = next((city / "deliveries" / "registry").glob("*.csv"))
    written = tmp_path / "written.csv"
    with _login(superset, SETTINGS.superset_admin_user, SETTINGS.superset_admin_password) as admin:
        databases = {d["database_name"]: d["id"] for d in admin.http.get("/api/v1/database/").json()["result"]}
        assert len(databases) == 2, databases

        def run(database_id: int, sql: str):
            return admin.http.post("/api/v1/sqllab/execute/", json={"database_id": database_id, "sql": sql, "runAsync": False,
                                                                    "schema": "main"})
        served = run(min(databases.values()), "SELECT count(*) AS n FROM people.resident")
        assert served.status_code == 200 and served.json()["data"][0]["n"] > 0, served.text
        for name, database_id in databases.items():
            for sql in (f"SELECT * FROM read_csv('{registry}')", f"SELECT * FROM read_text('{superset['data'] / 'dashboards' / 'secret_key'}')",
                        "SELECT * FROM read_text('/etc/passwd')", f"COPY (SELECT 1 AS x) TO '{written}'"):
                answer = run(database_id, sql)
                assert answer.status_code != 200 and "data" not in answer.json(), (name, sql, answer.text[:300])
    assert not written.exists()
    assert oct((superset["data"] / "dashboards" / "superset.db").stat().st_mode & 0o777) == "0o600", "it holds password hashes"


def test_provisioning_again_leaves_an_operators_password_as_it_is(superset):
    """Provisioning runs at every start: a login that exists keeps its password, whatever the settings say."""
    import httpx

    def status(password: str) -> int:
        return httpx.post(f"{superset['url']}/api/v1/security/login", json={"username": SETTINGS.superset_community_user,
                                                                             "password": password, "provider": "db"}).status_code

    again = server.provision(superset["data"], settings=SETTINGS.model_copy(update={"superset_community_password": "another-password"}))
    assert (status(SETTINGS.superset_community_password), status("another-password")) == (200, 401)
    assert superset["first"]["published_passwords"] == again["published_passwords"] == []
    # so a login can keep a published demo password whatever the settings say: provisioning tells,
    # and Superset is not served beyond this machine while one does
    community = superset["first"]["community"]["code"]
    server.grant(superset["data"], {"demo-like": community}, Settings.model_fields["superset_community_password"].default, settings=SETTINGS)
    told = server.provision(superset["data"], settings=SETTINGS.model_copy(update={"superset_community_user": "demo-like"}))
    assert told["published_passwords"] == ["demo-like"]
    with pytest.raises(server.SupersetError, match="demo-like still have the published"):
        server.refuse_published_passwords(SETTINGS, "0.0.0.0", told["published_passwords"])
    server.refuse_published_passwords(SETTINGS, "127.0.0.1", told["published_passwords"])


def test_an_area_login_makes_no_chart_or_dashboard(superset):
    """An area login only looks: a dashboard it published would be listed to every other area."""
    with _login(superset, SETTINGS.superset_community_user, SETTINGS.superset_community_password) as community:
        dataset = next(iter(community.datasets().values()))
        made = (community.http.post("/api/v1/dashboard/", json={"dashboard_title": "社区治理一张图", "published": True}),
                community.http.post("/api/v1/chart/", json={"slice_name": "mine", "viz_type": "table", "datasource_id": dataset,
                                                            "datasource_type": "table"}))
        assert [r.status_code for r in made] == [403, 403], [r.text[:200] for r in made]
        assert community.counts_by_community(dataset), "and it still reads its area"


def test_superset_serves_beyond_this_machine_only_with_passwords_of_its_own():
    with pytest.raises(server.SupersetError, match="published demo password"):
        server.refuse_published_passwords(Settings(), "0.0.0.0")
    for loopback in ("127.0.0.1", "::1", "localhost"):
        server.refuse_published_passwords(Settings(), loopback)
    server.refuse_published_passwords(SETTINGS, "0.0.0.0")


def test_superset_metadata_holds_no_clear_identifier(superset, city, manifest):
    """Superset's metadata (datasets' SQL, charts, roles, query history) and the quality views it reads."""
    from tests.privacy import duckdb_target, run_scan, sqlite_target
    from tests.test_ingest import _clear_names

    home = superset["data"] / "dashboards"
    report = run_scan(_clear_names(city, manifest), {"superset metadata": sqlite_target(home / "superset.db", "superset metadata"),
                                                     "quality views": duckdb_target(home / "quality_views.duckdb", "quality views")})
    print(report.line())
    assert report.scanned["superset metadata"] > 0
    assert not report.leaks, report.leaks[:5]
