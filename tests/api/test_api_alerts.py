"""The alert feed: cursor paging exactly once (duplicates, restarts, replicas), acks, auth."""

from __future__ import annotations

import base64

from conftest import AUTH, Publisher, running, wait_until
from fastapi.testclient import TestClient
from statusdocs import grade_alert, ooc_alert

from cpkmon.settings import Settings


def poll_all(client: TestClient, since: str | None = None, limit: int = 3, **params: str) -> tuple[list, str]:
    """Follow ``next`` until a page comes back empty; returns the items and the final cursor."""
    items: list = []
    cursor = since
    while True:
        query = {"limit": str(limit), **params}
        if cursor is not None:
            query["since"] = cursor
        page = client.get("/api/v1/alerts", params=query).json()
        items.extend(page["items"])
        cursor = page["next"]
        if not page["items"]:
            return items, cursor


def test_cursor_exactly_once_with_duplicates_restart_and_replicas(
    settings: Settings, publish: Publisher
) -> None:
    first = [
        grade_alert("L1", 1),
        ooc_alert("L2", 2),
        grade_alert("L3", 3, kind="grade_recovered", frm=3, to=4),
    ]
    base = 1_795_162_500_000
    with running(settings) as app1:
        for i, doc in enumerate(first):
            publish.alert(doc, partition=i % 3, ts_ms=base + i)
        publish.alert(first[0], partition=0, ts_ms=base + 10)  # a worker replay: same alert_id, later offset
        publish.alert(first[1], partition=2, ts_ms=base + 11)  # even in another partition
        wait_until(lambda: len(app1.get("/api/v1/alerts").json()["items"]) == 3)
        items, cursor = poll_all(app1, limit=2)
        assert [a["alert_id"] for a in items] == [
            a["alert_id"] for a in first
        ]  # record time order, once each
        assert all(a["ack"] is None for a in items)
        assert items[0] == {**first[0], "ack": None}

        # more alerts while the client is away, one with an OLDER timestamp in a partition it already read
        second = [ooc_alert("L1", 4, rule=2), grade_alert("L2", 5), ooc_alert("L3", 6, rule=5)]
        publish.alert(second[0], partition=0, ts_ms=base - 1000)
        publish.alert(second[1], partition=1, ts_ms=base + 20)
        wait_until(lambda: len(app1.get("/api/v1/alerts").json()["items"]) == 5)

    with running(settings) as app2:  # a restarted API: a fresh view over the same topics
        publish.alert(second[2], partition=2, ts_ms=base + 30)
        publish.alert(second[1], partition=1, ts_ms=base + 31)  # duplicate again
        wait_until(lambda: app2.get("/readyz").json()["alerts"] == 6)
        rest, cursor2 = poll_all(app2, since=cursor, limit=2)
        assert sorted(a["alert_id"] for a in rest) == sorted(a["alert_id"] for a in second)
        assert not {a["alert_id"] for a in rest} & {a["alert_id"] for a in items}  # no repeats
        assert app2.get("/api/v1/alerts", params={"since": cursor2}).json()["items"] == []

        with running(settings) as replica:  # side by side: identical pages, identical cursors
            for limit in (1, 2, 5, 100):
                for since in (None, cursor):
                    q = {"limit": limit} | ({"since": since} if since else {})
                    assert (
                        app2.get("/api/v1/alerts", params=q).json()
                        == replica.get("/api/v1/alerts", params=q).json()
                    )
            every, _ = poll_all(replica, limit=4)
            assert len(every) == 6 and len({a["alert_id"] for a in every}) == 6


def test_line_filter_and_limits(client: TestClient, publish: Publisher) -> None:
    for i in range(6):
        publish.alert(ooc_alert(f"L{i % 2}", i))
    wait_until(lambda: len(client.get("/api/v1/alerts").json()["items"]) == 6)
    only, cursor = poll_all(client, limit=1, line="L1")
    assert [a["line"] for a in only] == ["L1"] * 3
    publish.alert(ooc_alert("L1", 99))
    publish.alert(ooc_alert("L0", 100))
    wait_until(lambda: len(client.get("/api/v1/alerts").json()["items"]) == 8)
    more = client.get("/api/v1/alerts", params={"since": cursor, "line": "L1"}).json()["items"]
    assert [a["subgroup"] for a in more] == ["s-99"]
    assert client.get("/api/v1/alerts", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/alerts", params={"limit": 1001}).status_code == 422


def test_bad_cursor_is_400_problem(client: TestClient) -> None:
    for bad in ("garbage!", "eyJ2IjoxfQ", base64.urlsafe_b64encode(b'{"v":1,"o":{"x":1}}').decode()):
        r = client.get("/api/v1/alerts", params={"since": bad})
        assert r.status_code == 400, bad
        assert r.headers["content-type"] == "application/problem+json"


def test_ack_auth_and_survives_restart(settings: Settings, publish: Publisher) -> None:
    alert = grade_alert("L1", 1)
    with running(settings) as c:
        publish.alert(alert)
        wait_until(lambda: c.get("/readyz").json()["alerts"] == 1)
        url = f"/api/v1/alerts/{alert['alert_id']}/ack"

        r = c.post(url, json={"comment": "x"})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"] == "application/problem+json"
        assert c.post(url, headers={"Authorization": "Basic b3BzOnMzY3JldA=="}).status_code == 401
        assert c.post(url, headers={"Authorization": "Bearer"}).status_code == 401
        r = c.post(url, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403 and r.json()["status"] == 403
        assert c.post("/api/v1/alerts/a-unknown/ack", headers=AUTH).status_code == 404
        bad = c.post(url, headers=AUTH, json={"comment": 5})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert (
            c.post(
                url,
                headers=AUTH,
                content=b"{nope",
            ).status_code
            == 422
        )

        r = c.post(url, headers=AUTH, json={"comment": "tool changed on S10"})
        assert r.status_code == 200
        ack = r.json()
        assert ack["alert_id"] == alert["alert_id"] and ack["by"] == "ops"
        assert ack["comment"] == "tool changed on S10" and ack["at"].endswith("Z")
        # read-your-writes: the very next GET shows it
        item = c.get("/api/v1/alerts").json()["items"][0]
        assert item["ack"] == {"by": "ops", "at": ack["at"], "comment": "tool changed on S10"}
        # a bare secret is named key-N (its position in CPKMON_API_KEYS)
        r = c.post(url, headers={"Authorization": "Bearer plain-secret"})
        assert r.status_code == 200 and r.json()["by"] == "key-2" and r.json()["comment"] is None
        assert c.get("/api/v1/alerts").json()["items"][0]["ack"]["by"] == "key-2"

    with running(settings) as c2:  # the ack lives in Kafka
        item = c2.get("/api/v1/alerts").json()["items"][0]
        assert item["ack"]["by"] == "key-2"


def test_no_keys_configured_refuses_writes(settings: Settings, publish: Publisher) -> None:
    alert = grade_alert("L1", 1)
    publish.alert(alert)
    with running(settings.model_copy(update={"api_keys": []})) as c:
        r = c.post(f"/api/v1/alerts/{alert['alert_id']}/ack", headers=AUTH)
        assert r.status_code == 403 and "CPKMON_API_KEYS" in r.json()["detail"]
