"""The control-room page (``GET /``) end to end: a real Tansu broker, the real API under uvicorn, headless
Chromium.

Status documents and alerts are produced to Kafka as a worker would publish them; the page must show each
line's grade, draw the control chart of a line with its violations, show a new alert and a new status without
a reload, and acknowledge an alert through the API. The test finishes with a screenshot (to its tmp dir; the
README's ``docs/dashboard.png`` is taken by ``test_dashboard_alarms.py``, which also fills the alarm panel).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import shutil
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cpkmon.broker import free_port
from cpkmon.capability.histogram import capability_histogram

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
# The README's screenshot; refreshed when CPKMON_UPDATE_SCREENSHOT=1, else the test writes to its tmp dir.
README_SCREENSHOT = REPO / "docs" / "dashboard.png"
CHROMIUM = os.environ.get("CPKMON_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CPKMON_CHROMEDRIVER", "/usr/bin/chromedriver")

LEVELS = [  # SPEC §5: level, name, Chinese, Cpk ≥, RTY ≥, DPMO ≤, internal loss <, external loss <
    (1, "experience", "经验级", None, None, None, None, None),
    (2, "inspection", "检验级", 1.00, 0.90, 66_807, math.inf, math.inf),
    (3, "assurance", "保证级", 1.33, 0.95, 6_210, 0.030, 0.023),
    (4, "prevention", "预防级", 1.67, 0.97, 233, 0.015, 0.010),
    (5, "excellence", "卓越级", 2.00, 0.98, 3.4, 0.0075, 0.005),
]
D2 = {1: 1.1283791670955126, 2: 1.1283791670955126, 5: 2.3259289472334}  # d2(2) for I-MR moving ranges
D3 = {2: 0.8525024664907147, 5: 0.8640819411369306}
Z975 = 1.959963984540054
NOW = datetime.now(UTC).replace(microsecond=0)


def rfc3339(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# ----------------------------------------------------------------------------------------------------------
# Realistic status documents (what the worker publishes to cpkmon.line-status): simulated measurements, a
# frozen baseline, Nelson test 1 on both charts and test 2 on the X̄/I chart, capability over the last 25
# subgroups.


def characteristic(
    rng: random.Random,
    name: str,
    station: str,
    *,
    lsl: float,
    usl: float,
    target: float,
    n: int,
    mean: float,
    sigma: float,
    count: int = 40,
    shift_at: int | None = None,
    shift: float = 0.0,
    bumps: dict[int, float] | None = None,
    spread: dict[int, float] | None = None,
    insufficient: bool = False,
    outliers: dict[int, float] | None = None,
) -> dict[str, Any]:
    """One characteristic's status object (design.md field names), from ``count`` simulated subgroups;
    ``outliers`` replaces the first value of subgroup i (0-based) by a given value."""
    t0 = NOW - timedelta(seconds=30 * count)
    groups: list[list[float]] = []
    for i in range(count):
        mu = mean + (shift * sigma if shift_at is not None and i >= shift_at else 0.0)
        mu += (bumps or {}).get(i, 0.0) * sigma
        sd = sigma * (spread or {}).get(i, 1.0)
        groups.append([rng.gauss(mu, sd) for _ in range(n)])
    for i, v in (outliers or {}).items():
        groups[i][0] = v
    xbar = [statistics.fmean(g) for g in groups]
    if n == 1:
        flat = [g[0] for g in groups]
        ranges: list[float | None] = [None] + [abs(b - a) for a, b in itertools.pairwise(flat)]
    else:
        ranges = [max(g) - min(g) for g in groups]
    base = 20
    center = statistics.fmean(xbar[:base])
    rbar = statistics.fmean([r for r in ranges[:base] if r is not None])
    sigma_w_base = rbar / D2[max(n, 2)]
    half = 3 * sigma_w_base / math.sqrt(n)
    ctl = {
        "chart": "i_mr" if n == 1 else "xbar_r",
        "center": center,
        "ucl": center + half,
        "lcl": center - half,
        "range_center": rbar,
        "range_ucl": rbar * (1 + 3 * D3[max(n, 2)] / D2[max(n, 2)]),
        "range_lcl": max(0.0, rbar * (1 - 3 * D3[max(n, 2)] / D2[max(n, 2)])),
        "sigma": sigma_w_base,
        "source": "baseline",
    }
    points: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    side_run = 0
    for i, (x, r) in enumerate(zip(xbar, ranges, strict=True)):
        seq = i + 1
        et = rfc3339(t0 + timedelta(seconds=30 * i))
        rules: list[int] = []
        if i >= base:  # phase II: rules only once the limits are frozen
            if x > ctl["ucl"] or x < ctl["lcl"]:
                rules.append(1)
                limit = ctl["ucl"] if x > ctl["ucl"] else ctl["lcl"]
                violations.append(
                    {
                        "rule": 1,
                        "chart": "x",
                        "seq": seq,
                        "subgroup": f"sg-{seq}",
                        "event_time": et,
                        "value": x,
                        "limit": limit,
                    }
                )
            side = 1 if x > center else -1
            side_run = side_run + side if side_run * side > 0 else side
            if abs(side_run) >= 9:
                rules.append(2)
                violations.append(
                    {
                        "rule": 2,
                        "chart": "x",
                        "seq": seq,
                        "subgroup": f"sg-{seq}",
                        "event_time": et,
                        "value": x,
                        "limit": center,
                    }
                )
            if r is not None and r > ctl["range_ucl"]:
                if 1 not in rules:
                    rules.append(1)
                violations.append(
                    {
                        "rule": 1,
                        "chart": "r",
                        "seq": seq,
                        "subgroup": f"sg-{seq}",
                        "event_time": et,
                        "value": r,
                        "limit": ctl["range_ucl"],
                    }
                )
        points.append(
            {
                "seq": seq,
                "subgroup": f"sg-{seq}",
                "event_time": et,
                "n": n,
                "x": x,
                "r": r,
                "rules": sorted(rules),
            }
        )
    window = groups[-25:]
    values = [v for g in window for v in g]
    mu = statistics.fmean(values)
    so = statistics.stdev(values)
    wr = [r for r in ranges[-25:] if r is not None]
    sw = statistics.fmean(wr) / D2[max(n, 2)]
    cp, cpk = (usl - lsl) / (6 * sw), min(usl - mu, mu - lsl) / (3 * sw)
    pp, ppk = (usl - lsl) / (6 * so), min(usl - mu, mu - lsl) / (3 * so)
    cpm = (usl - lsl) / (6 * math.sqrt(sw**2 + (mu - target) ** 2))
    nv = len(values)
    half_ci = Z975 * math.sqrt(1 / (9 * nv) + cpk**2 / (2 * (nv - 1)))
    stable = not any(v["seq"] > count - 25 for v in violations)
    doc: dict[str, Any] = {
        "characteristic": name,
        "station": station,
        "values_total": count * n,
        "n": nv,
        "subgroups": 25,
        "last_event_time": points[-1]["event_time"],
        "mean": mu,
        "sigma_within": sw,
        "sigma_overall": so,
        "cp": cp,
        "cpu": (usl - mu) / (3 * sw),
        "cpl": (mu - lsl) / (3 * sw),
        "cpk": cpk,
        "cpk_ci": [cpk - half_ci, cpk + half_ci],
        "pp": pp,
        "ppk": ppk,
        "cpm": cpm,
        "lsl": lsl,
        "usl": usl,
        "target": target,
        "subgroup_size": n,
        "sigma_method": "default",
        "state": "ok",
        "stable": stable,
        "control": ctl,
        "points": points,
        "violations": violations,
        # the window's individual values binned as the worker bins them (deviations from the spec midpoint)
        "histogram": capability_histogram([v - (lsl + usl) / 2 for v in values], (lsl + usl) / 2, lsl, usl),
    }
    if insufficient:
        doc.update(
            {
                "state": "insufficient_data",
                "subgroups": 12,
                "stable": None,
                "control": None,
                "points": points[:12],
                "violations": [],
                "values_total": 12 * n,
                "n": 12 * n,
                "histogram": capability_histogram(
                    [v - (lsl + usl) / 2 for g in groups[:12] for v in g], (lsl + usl) / 2, lsl, usl
                ),
            }
        )
        for k in ("cp", "cpu", "cpl", "cpk", "cpk_ci", "pp", "ppk", "cpm"):
            doc[k] = None
    return doc


def grade_of(
    metrics: dict[str, tuple[float | None, str | None]],
) -> tuple[int | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """SPEC §5: the highest level whose every assessed criterion meets its threshold, and the limiting one."""
    checks: dict[str, Callable[[float, tuple[Any, ...]], bool]] = {
        "cpk": lambda v, lv: v >= lv[3],
        "rty": lambda v, lv: v >= lv[4],
        "dpmo": lambda v, lv: v <= lv[5],
        "internal_loss_rate": lambda v, lv: v < lv[6],
        "external_loss_rate": lambda v, lv: v < lv[7],
    }
    column = {"cpk": 3, "rty": 4, "dpmo": 5, "internal_loss_rate": 6, "external_loss_rate": 7}
    assessed = {k: v for k, v in metrics.items() if v[0] is not None}
    criteria = []
    for k in checks:
        value, subject = metrics.get(k, (None, None))
        met = None if value is None else max(lv[0] for lv in LEVELS if lv[0] == 1 or checks[k](value, lv))
        nxt = None if met is None or met == 5 else LEVELS[met][column[k]]
        criteria.append(
            {
                "criterion": k,
                "assessed": value is not None,
                "value": value,
                "subject": subject,
                "met_level": met,
                "next_threshold": nxt,
            }
        )
    if not assessed:
        return None, None, criteria
    level = 1
    for lv in LEVELS[1:]:
        if all(checks[k](v, lv) for k, (v, _) in assessed.items()):
            level = lv[0]
        else:
            break
    limiting = None
    if level < 5:
        nxt = LEVELS[level]
        for k, (v, subject) in assessed.items():
            if not checks[k](v, nxt):
                limiting = {"criterion": k, "subject": subject, "value": v, "threshold": nxt[column[k]]}
                break
    return level, limiting, criteria


def status_doc(
    line: str,
    chars: list[dict[str, Any]],
    stations: list[tuple[str, int, float]],
    dpmo: float | None,
    losses: tuple[float, float] | None,
    updated: datetime,
) -> dict[str, Any]:
    ok = [c for c in chars if c["cpk"] is not None]
    worst = min(ok, key=lambda c: c["cpk"]) if ok else None
    st_docs = [
        {"station": s, "units": u, "units_total": u * 7, "first_pass_yield": fpy} for s, u, fpy in stations
    ]
    rty = math.prod(fpy for _, _, fpy in stations) if stations else None
    low = min(stations, key=lambda s: s[2])[0] if stations else None
    sigma_level = statistics.NormalDist().inv_cdf(1 - dpmo / 1e6) + 1.5 if dpmo is not None else None
    metrics: dict[str, tuple[float | None, str | None]] = {
        "cpk": (worst["cpk"] if worst else None, worst["characteristic"] if worst else None),
        "rty": (rty, low),
        "dpmo": (dpmo, None),
        "internal_loss_rate": (losses[0] if losses else None, None),
        "external_loss_rate": (losses[1] if losses else None, None),
    }
    level, limiting, criteria = grade_of(metrics)
    grade = (
        None
        if level is None
        else {"level": level, "name": LEVELS[level - 1][1], "name_zh": LEVELS[level - 1][2]}
    )
    return {
        "line": line,
        "grade": grade,
        "cpk": worst["cpk"] if worst else None,
        "rty": rty,
        "sigma_level": sigma_level,
        "dpmo": dpmo,
        "updated_at": rfc3339(updated),
        "limiting": limiting,
        "criteria": criteria,
        "characteristics": chars,
        "stations": st_docs,
        "internal_loss_rate": losses[0] if losses else None,
        "external_loss_rate": losses[1] if losses else None,
    }


def plant() -> dict[str, dict[str, Any]]:
    """Six lines, one per ladder level plus one with no grade yet."""
    rng = random.Random(20261120)
    bore = {"lsl": 73.95, "usl": 74.05, "target": 74.0, "n": 5}
    docs = {
        "machining-1": status_doc(
            "machining-1",
            [
                characteristic(rng, "bore_diameter", "S10", mean=74.002, sigma=0.0085, **bore),
                characteristic(
                    rng,
                    "shaft_length",
                    "S20",
                    lsl=119.8,
                    usl=120.2,
                    target=120.0,
                    n=1,
                    mean=120.01,
                    sigma=0.035,
                ),
            ],
            [("S10", 1000, 0.996), ("S20", 1000, 0.988)],
            150.0,
            (0.009, 0.004),
            NOW - timedelta(seconds=4),
        ),
        # Unstable: a sustained shift on bore_diameter (tests 1 and 2) and one wide subgroup (R chart).
        "machining-2": status_doc(
            "machining-2",
            [
                characteristic(
                    rng,
                    "bore_diameter",
                    "S10",
                    mean=74.0,
                    sigma=0.0125,
                    shift_at=30,
                    shift=1.6,
                    bumps={24: 2.2},
                    spread={27: 2.6},
                    outliers={24: 74.0505, 27: 73.9495},  # one part above the USL, one below the LSL
                    **bore,
                ),
            ],
            [("S10", 1000, 0.975), ("S30", 1000, 0.962)],
            5_200.0,
            (0.021, 0.012),
            NOW - timedelta(seconds=2),
        ),
        "assembly-1": status_doc(
            "assembly-1",
            [
                characteristic(
                    rng, "press_force", "A10", lsl=4.6, usl=5.4, target=5.0, n=5, mean=5.003, sigma=0.052
                ),
                characteristic(
                    rng, "torque", "A20", lsl=11.0, usl=13.0, target=12.0, n=5, mean=12.02, sigma=0.14
                ),
            ],
            [("A10", 1000, 0.998), ("A20", 1000, 0.996)],
            2.1,
            (0.004, 0.002),
            NOW - timedelta(seconds=9),
        ),
        "paint-1": status_doc(
            "paint-1",
            [
                characteristic(
                    rng,
                    "coating_thickness",
                    "<b>P10</b>",
                    lsl=80,
                    usl=120,
                    target=100,
                    n=5,
                    mean=101,
                    sigma=4.2,
                    insufficient=True,
                ),
            ],
            [],
            None,
            None,
            NOW - timedelta(seconds=30),
        ),
        "welding-1": status_doc(
            "welding-1",
            [
                characteristic(
                    rng, "nugget_diameter", "W10", lsl=5.6, usl=6.4, target=6.0, n=5, mean=6.08, sigma=0.13
                ),
            ],
            [("W10", 1000, 0.93)],
            71_000.0,
            (0.041, 0.02),
            NOW - timedelta(seconds=6),
        ),
        "stamping-1": status_doc(
            "stamping-1",
            [
                characteristic(
                    rng, "flange_height", "T10", lsl=24.7, usl=25.3, target=25.0, n=5, mean=25.01, sigma=0.068
                ),
            ],
            [("T10", 1000, 0.985), ("T20", 1000, 0.978)],
            3_900.0,
            (0.022, 0.011),
            NOW - timedelta(seconds=12),
        ),
    }
    return docs


# ----------------------------------------------------------------------------------------------------------
# Kafka and the API


def producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap,
        key_serializer=lambda k: k.encode(),
        value_serializer=lambda v: json.dumps(v, ensure_ascii=False).encode(),
        linger_ms=0,
    )


def grade_alert(doc: dict[str, Any], alert_id: str, from_level: int, detected: datetime) -> dict[str, Any]:
    lv = LEVELS[from_level - 1]
    return {
        "alert_id": alert_id,
        "type": "grade_degraded",
        "line": doc["line"],
        "from_grade": {"level": lv[0], "name": lv[1]},
        "to_grade": {"level": doc["grade"]["level"], "name": doc["grade"]["name"]},
        "limiting": doc["limiting"],
        "cpk": doc["cpk"],
        "rty": doc["rty"],
        "sigma_level": doc["sigma_level"],
        "event_time": rfc3339(detected - timedelta(milliseconds=400)),
        "detected_at": rfc3339(detected),
    }


def create_app_for(settings: Any) -> Any:
    from cpkmon.api.app import create_app

    return create_app(settings)


def http(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # a page or server still starting
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def retry_stale(check: Callable[[], None], timeout: float, what: str) -> None:
    """Run ``check`` (which finds its elements afresh) until it passes without a stale element reference.

    Only staleness is retried — the page replaced a node while it was being read; a failed assertion fails.
    """
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} kept being re-rendered for {timeout} s") from None
            time.sleep(0.2)


def click(driver: Any, element: Any) -> None:
    """Scroll an element to the middle of the viewport (clear of the sticky header), then click it."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    element.click()


class ApiServer:
    """The real API app (``create_app(settings)``) under uvicorn in a thread, on a fixed loopback port so it
    can be stopped and started again (the page must reconnect)."""

    def __init__(self, broker: Any, data_dir: Path) -> None:
        from cpkmon.settings import Settings

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.settings = Settings(
            broker=f"kafka://{broker.bootstrap}",
            api_keys=["op:secret"],  # name "op", bearer key "secret"
            api_port=self.port,
            data_dir=data_dir,
        )
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            create_app_for(self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,  # open SSE streams never end by themselves
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        wait_until(lambda: http("GET", self.base + "/readyz")[0] == 200, 30, "GET /readyz → 200")

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=15)
            assert not self.thread.is_alive(), "uvicorn did not stop"
        self.server = self.thread = None


@pytest.fixture()
def api(broker: Any, tmp_path: Path) -> Iterator[ApiServer]:
    server = ApiServer(broker, tmp_path / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip(f"needs Debian chromium + chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    import tempfile

    profile = tempfile.mkdtemp(prefix="cpkmon-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--lang=en-US",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_window_size(1600, 1000)
    # the viewport itself 1600×1000, whatever the headless window reserves
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1600, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------


def test_dashboard_end_to_end(broker: Any, api: ApiServer, browser: Any, tmp_path: Path) -> None:
    # the README's screenshot (CPKMON_UPDATE_SCREENSHOT=1) is test_dashboard_alarms.py's (the alarm panel)
    screenshot = tmp_path / "dash.png"
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    docs = plant()
    api_server = api.base
    prod = producer(broker.bootstrap)
    first_alert = grade_alert(docs["machining-2"], "a-test-degraded-0001", 3, NOW - timedelta(minutes=3))
    for line, doc in docs.items():
        prod.send("cpkmon.line-status", key=line, value=doc)
    prod.send("cpkmon.alerts", key="machining-2", value=first_alert)
    prod.flush(10)

    # The API serves the page (not in the OpenAPI schema) with a strict CSP, and its assets.
    status, body, headers = http("GET", api_server + "/")
    assert status == 200 and b'src="/static/app.js"' in body
    assert "script-src 'self'" in headers.get("content-security-policy", "")
    assert http("GET", api_server + "/static/app.js")[0] == 200
    assert http("GET", api_server + "/static/app.css")[0] == 200
    assert "/" not in json.loads(http("GET", api_server + "/openapi.json")[1])["paths"]
    wait_until(
        lambda: len(json.loads(http("GET", api_server + "/api/v1/lines")[1])) == len(docs),
        20,
        "the API to list every line",
    )

    b = browser
    b.get(api_server + "/")
    wait_until(
        lambda: len(found := b.find_elements(By.CSS_SELECTOR, ".tile[data-line]")) == len(docs) and found,
        20,
        "one tile per line",
    )
    b.execute_script("window.__noReload = 'still here';")

    # --- tiles: the right grade, name, Chinese name, limiting criterion and stability --------------------
    # body[data-ready] is set once the lines, their details and the alerts have loaded
    wait_until(
        lambda: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", 20, "page ready"
    )
    shown = {t.get_attribute("data-line"): t for t in b.find_elements(By.CSS_SELECTOR, ".tile[data-line]")}
    assert sorted(shown) == sorted(docs)
    expected_levels = {line: (doc["grade"] or {}).get("level") for line, doc in docs.items()}
    assert sorted(v for v in expected_levels.values() if v) == [1, 2, 3, 4, 5], expected_levels
    for line, doc in docs.items():
        tile = shown[line]
        text = tile.text
        if doc["grade"] is None:
            assert tile.get_attribute("data-grade-level") == "none"
            assert "no grade" in text.lower()
            continue
        level, name, zh = doc["grade"]["level"], doc["grade"]["name"], LEVELS[doc["grade"]["level"] - 1][2]
        assert tile.get_attribute("data-grade-level") == str(level), line
        assert name.upper() in text.upper() and zh in text and str(level) in text, (line, text)
        assert f"{doc['cpk']:.2f}" in text, (line, text)
        assert f"{doc['rty'] * 100:.1f} %" in text, (line, text)
        if doc["limiting"]:
            assert tile.find_element(By.CSS_SELECTOR, ".limiting .lim-crit").text, line
    assert (
        shown["machining-2"].find_element(By.CSS_SELECTOR, ".pill[data-stability]").text.lower() == "unstable"
    )
    assert (
        shown["machining-1"].find_element(By.CSS_SELECTOR, ".pill[data-stability]").text.lower() == "stable"
    )

    # --- text is escaped: a station named like markup stays text -----------------------------------------
    click(b, shown["paint-1"])
    wait_until(
        lambda: b.find_elements(By.CSS_SELECTOR, "#detail .detail-inner[data-line='paint-1'] .char"),
        10,
        "paint-1 detail",
    )
    assert "@ <b>P10</b>" in b.find_element(By.CSS_SELECTOR, "#detail .char-head").text
    assert not b.find_elements(By.CSS_SELECTOR, "#detail .char-head b")

    # --- line detail: control chart points, violations, histogram, stations ------------------------------
    click(b, b.find_element(By.CSS_SELECTOR, ".tile[data-line='machining-2']"))
    cdoc = docs["machining-2"]["characteristics"][0]

    def check_detail() -> None:
        char = wait_until(
            lambda: b.find_element(
                By.CSS_SELECTOR,
                "#detail .detail-inner[data-line='machining-2'] .char[data-characteristic='bore_diameter']",
            ),
            10,
            "machining-2 bore_diameter chart",
        )
        x_chart = char.find_element(By.CSS_SELECTOR, "svg.chart-x")
        assert len(x_chart.find_elements(By.CSS_SELECTOR, "circle.pt")) == len(cdoc["points"]) == 40
        x_bad = {v["seq"] for v in cdoc["violations"] if v["chart"] == "x"}
        r_bad = {v["seq"] for v in cdoc["violations"] if v["chart"] == "r"}
        assert x_bad and r_bad and r_bad - x_bad, "the fixture must exercise both charts"
        marked = {
            int(c.get_attribute("data-seq"))
            for c in x_chart.find_elements(By.CSS_SELECTOR, "circle.pt.violation")
        }
        assert marked == x_bad
        r_chart = char.find_element(By.CSS_SELECTOR, "svg.chart-r")
        r_marked = {
            int(c.get_attribute("data-seq"))
            for c in r_chart.find_elements(By.CSS_SELECTOR, "circle.violation")
        }
        assert r_marked == r_bad
        labels = {}
        for label in x_chart.find_elements(By.CSS_SELECTOR, "text.lbl"):
            for part in label.text.split("   "):
                words = part.replace("▲", "").replace("▼", "").split()
                if len(words) >= 2:
                    labels[words[0]] = words[1]
        limits = {
            "UCL": cdoc["control"]["ucl"],
            "CL": cdoc["control"]["center"],
            "LCL": cdoc["control"]["lcl"],
        }
        for name, value in {**limits, "LSL": cdoc["lsl"], "USL": cdoc["usl"]}.items():
            shown_value = labels[name]  # each limit is drawn and labelled with its value as rounded on screen
            decimals = len(shown_value.partition(".")[2])
            assert decimals >= 3 and abs(float(shown_value) - value) <= 0.5 * 10**-decimals + 1e-12, (
                name,
                labels,
            )
        # the capability histogram is drawn from the status's `histogram` (the window's 125 individual
        # values), not from the 40 plotted subgroup means
        hist = char.find_element(By.CSS_SELECTOR, "svg.histogram")
        hdoc = cdoc["histogram"]
        assert hdoc["n"] == cdoc["n"] == 125 and sum(hdoc["counts"]) == 125
        assert int(hist.get_attribute("data-values")) == 125
        assert int(hist.get_attribute("data-bins")) == len(hdoc["counts"])
        assert "individual values · n = 125" in hist.find_element(By.CSS_SELECTOR, ".axis-label").text
        assert len(hist.find_elements(By.CSS_SELECTOR, "path.curve")) == 2
        bars = hist.find_elements(By.CSS_SELECTOR, ".bars rect.bar")
        assert [int(r.get_attribute("data-count")) for r in bars] == [k for k in hdoc["counts"] if k]
        heights = [float(r.get_attribute("height")) for r in bars]
        tallest = max(range(len(bars)), key=lambda i: heights[i])
        assert heights[tallest] > 0 and all(  # bar heights proportional to the counts
            abs(h / heights[tallest] - int(r.get_attribute("data-count")) / max(hdoc["counts"])) < 1e-3
            for h, r in zip(heights, bars, strict=True)
        )
        # the normal curves are scaled to counts (n · bin width · pdf): σ_within's peak, in the bars' units
        base = float(bars[0].get_attribute("y")) + heights[0]
        px_per_count = heights[tallest] / max(hdoc["counts"])
        d = hist.find_element(By.CSS_SELECTOR, "path.curve-within").get_attribute("d")
        peak_px = base - min(float(p.split(",")[1]) for p in d.replace("M", "L").split("L") if p)
        want = 125 * hdoc["bin_width"] / (cdoc["sigma_within"] * math.sqrt(2 * math.pi)) * px_per_count
        assert abs(peak_px / want - 1) < 0.03, (peak_px, want)
        # out-of-spec values: their own bars beyond the limits, and the counts shown
        assert hdoc["below_lsl"] == 1 and hdoc["above_usl"] == 1
        out = hist.find_elements(By.CSS_SELECTOR, ".bars rect.bar.out")
        assert sum(int(r.get_attribute("data-count")) for r in out) == 2
        oos = hist.find_element(By.CSS_SELECTOR, "text.oos-count")
        assert oos.text == "< LSL 1 · > USL 1" and "bad" in oos.get_attribute("class")
        assert f"{cdoc['cpk']:.2f}" in char.find_element(By.CSS_SELECTOR, ".indices").text
        fpy = {
            li.get_attribute("data-station"): li.text
            for li in b.find_elements(By.CSS_SELECTOR, "#detail .fpy-row")
        }
        assert set(fpy) == {"S10", "S30"} and "96.2 %" in fpy["S30"]

    # the page re-renders the open detail on live status events: re-find and re-check on a stale element
    retry_stale(check_detail, 15, "the line detail")

    # --- the alert list: the stored alert, then a NEW alert from Kafka without a reload ------------------
    wait_until(
        lambda: b.find_elements(By.CSS_SELECTOR, f".alert[data-alert-id='{first_alert['alert_id']}']"),
        10,
        "the stored alert",
    )
    new_alert = {
        "alert_id": "a-test-ooc-0002",
        "type": "out_of_control",
        "line": "machining-2",
        "characteristic": "bore_diameter",
        "station": "S10",
        "rule": 1,
        "chart": "x",
        "value": cdoc["points"][-1]["x"],
        "limit": cdoc["control"]["ucl"],
        "subgroup": "sg-40",
        "event_time": rfc3339(datetime.now(UTC)),
        "detected_at": rfc3339(datetime.now(UTC)),
    }
    prod.send("cpkmon.alerts", key="machining-2", value=new_alert)
    prod.flush(10)
    item_text = wait_until(
        lambda: b.find_element(By.CSS_SELECTOR, ".alert[data-alert-id='a-test-ooc-0002']").text,
        15,
        "the new alert to appear live",
    )
    assert (
        b.find_elements(By.CSS_SELECTOR, "#alerts .alert")[0].get_attribute("data-alert-id")
        == "a-test-ooc-0002"
    )
    assert "OUT OF CONTROL" in item_text.upper() and "bore_diameter" in item_text and "rule 1" in item_text

    # --- a new status (grade change) reaches the tile live, and the open line's detail refreshes ---------
    degraded = status_doc(
        "machining-2",
        docs["machining-2"]["characteristics"],
        [("S10", 1000, 0.91), ("S30", 1000, 0.93)],
        5_200.0,
        (0.021, 0.012),
        datetime.now(UTC),
    )
    assert degraded["grade"]["level"] == 1
    prod.send("cpkmon.line-status", key="machining-2", value=degraded)
    third_alert = grade_alert(degraded, "a-test-degraded-0003", 2, datetime.now(UTC))
    prod.send("cpkmon.alerts", key="machining-2", value=third_alert)
    prod.flush(10)
    wait_until(
        lambda: (
            b.find_element(By.CSS_SELECTOR, ".tile[data-line='machining-2']").get_attribute(
                "data-grade-level"
            )
            == "1"
        ),
        15,
        "the tile to show the new grade",
    )
    wait_until(
        lambda: "93.0 %" in b.find_element(By.CSS_SELECTOR, "#detail .fpy-row[data-station='S30']").text,
        10,
        "the open detail to refresh",
    )
    assert b.execute_script("return window.__noReload") == "still here", "the page reloaded"

    # --- acknowledge: ask for the key once, POST with it, show who and when ------------------------------
    # The key is the secret of a CPKMON_API_KEYS entry "name:secret"; the ack is recorded under the name.
    click(b, b.find_element(By.CSS_SELECTOR, ".alert[data-alert-id='a-test-ooc-0002'] .ack-btn"))
    key_input = wait_until(
        lambda: (el := b.find_element(By.ID, "key-input")).is_displayed() and el, 5, "key input"
    )
    key_input.send_keys("not-the-key")
    b.find_element(By.ID, "key-save").click()
    wait_until(lambda: "rejected" in b.find_element(By.ID, "key-msg").text, 10, "a wrong key to be rejected")
    assert b.find_element(By.ID, "key-form").is_displayed()
    assert b.execute_script("return localStorage.getItem('cpkmon.apiKey')") is None
    key_input = b.find_element(By.ID, "key-input")
    key_input.clear()
    key_input.send_keys("secret")
    b.find_element(By.ID, "key-save").click()
    info_text = wait_until(
        lambda: b.find_element(By.CSS_SELECTOR, ".alert[data-alert-id='a-test-ooc-0002'] .ack-info").text,
        10,
        "the acknowledgement",
    )
    assert "acknowledged by op" in info_text
    assert not b.find_element(By.ID, "key-form").is_displayed()
    assert b.execute_script("return localStorage.getItem('cpkmon.apiKey')") == "secret"

    def acked(alert_id: str) -> dict[str, Any] | None:
        page = json.loads(http("GET", api_server + "/api/v1/alerts?limit=100")[1])
        mine = [a for a in page["items"] if a["alert_id"] == alert_id]
        assert len(mine) == 1
        return mine[0]["ack"]

    ack = wait_until(lambda: acked("a-test-ooc-0002"), 10, "GET /api/v1/alerts to show the ack")
    assert ack["by"] == "op" and ack["at"]
    assert acked(first_alert["alert_id"]) is None
    # A second ack uses the saved key without asking again.
    click(b, b.find_element(By.CSS_SELECTOR, f".alert[data-alert-id='{first_alert['alert_id']}'] .ack-btn"))
    wait_until(
        lambda: b.find_element(
            By.CSS_SELECTOR, f".alert[data-alert-id='{first_alert['alert_id']}'] .ack-info"
        ).text.startswith("✓ acknowledged by op"),
        10,
        "the second acknowledgement",
    )
    assert not b.find_element(By.ID, "key-form").is_displayed()
    assert wait_until(lambda: acked(first_alert["alert_id"]), 10, "the second ack in the API")["by"] == "op"
    assert b.execute_script("return window.__noReload") == "still here"
    errors = [
        e for e in b.get_log("browser") if e["level"] == "SEVERE" and "status of 403" not in e["message"]
    ]
    assert not errors, errors

    # --- the screenshot for the README: the degrading line open, the ack visible -------------------------
    click(b, b.find_element(By.CSS_SELECTOR, ".tile[data-line='machining-2']"))  # close
    click(b, b.find_element(By.CSS_SELECTOR, ".tile[data-line='machining-2']"))  # open again (fresh layout)
    wait_until(
        lambda: b.find_elements(
            By.CSS_SELECTOR, "#detail .detail-inner[data-line='machining-2'] svg.chart-x"
        ),
        10,
        "detail for the screenshot",
    )
    wait_until(
        lambda: b.find_elements(By.CSS_SELECTOR, ".alert[data-alert-id='a-test-degraded-0003'] .ack-btn"),
        10,
        "the third alert, left open",
    )
    ActionChains(b).move_to_element(b.find_element(By.ID, "clock")).perform()  # no hover effect on a tile
    time.sleep(3)  # the "fresh" highlight of the new alert and the tile flash settle
    b.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
    time.sleep(0.3)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert b.save_screenshot(str(screenshot))
    head = screenshot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == (1600, 1000)

    # --- the API goes away and comes back: the page says so, reconnects and catches up without a reload ----
    api.stop()
    wait_until(
        lambda: b.find_element(By.ID, "conn").get_attribute("data-state") == "reconnecting",
        15,
        "the page to notice the lost stream",
    )
    assert "reconnecting" in b.find_element(By.ID, "conn").text
    missed = dict(new_alert, alert_id="a-test-missed-0004", rule=5, detected_at=rfc3339(datetime.now(UTC)))
    prod.send("cpkmon.alerts", key="machining-2", value=missed)
    prod.flush(10)
    api.start()
    wait_until(lambda: b.find_element(By.ID, "conn").get_attribute("data-state") == "live", 40, "live again")
    wait_until(
        lambda: b.find_elements(By.CSS_SELECTOR, ".alert[data-alert-id='a-test-missed-0004']"),
        15,
        "the alert produced while the API was down",
    )
    assert b.execute_script("return window.__noReload") == "still here"
    prod.close()
