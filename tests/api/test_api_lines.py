"""Lines: list, detail as stored, 404 problem, ETag/304, tombstones, identifiers."""

from __future__ import annotations

import json

from conftest import Publisher, wait_until
from fastapi.testclient import TestClient
from statusdocs import status


def test_list_and_detail(client: TestClient, publish: Publisher) -> None:
    docs = [
        status("L1", level=3),
        status("site1.area2.line3", level=None, cpks=[None, None]),
        status("L0", level=5),
    ]
    for doc in docs:
        publish.status(doc)
    rows = wait_until(lambda: len(r := client.get("/api/v1/lines").json()) == 3 and r)
    assert [r["line"] for r in rows] == ["L0", "L1", "site1.area2.line3"]
    l1 = rows[1]
    assert l1 == {
        "line": "L1",
        "grade": {"level": 3, "name": "assurance"},
        "cpk": docs[0]["cpk"],
        "rty": docs[0]["rty"],
        "sigma_level": 4.25,
        "updated_at": "2026-11-20T08:15:02.125Z",
    }
    assert rows[2]["grade"] is None and rows[2]["cpk"] is None

    r = client.get("/api/v1/lines/L1")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == docs[0]  # the document as stored, every field
    assert r.content == json.dumps(docs[0]).encode()  # byte for byte


def test_unknown_line_is_404_problem(client: TestClient) -> None:
    r = client.get("/api/v1/lines/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 404 and body["title"] == "Not Found" and "nope" in body["detail"]
    assert body["type"] == "about:blank"


def test_bad_identifier_is_422_problem(client: TestClient) -> None:
    r = client.get("/api/v1/lines/" + "x" * 65)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 422
    assert client.get("/api/v1/lines/bad%20line").status_code == 422


def test_etag_and_304(client: TestClient, publish: Publisher) -> None:
    publish.status(status("L1"))
    wait_until(lambda: client.get("/api/v1/lines/L1").status_code == 200)
    first = client.get("/api/v1/lines/L1")
    tag = first.headers["etag"]
    assert tag.startswith('"') and not tag.startswith("W/")
    again = client.get("/api/v1/lines/L1", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    listing = client.get("/api/v1/lines")
    ltag = listing.headers["etag"]
    assert client.get("/api/v1/lines", headers={"If-None-Match": ltag}).status_code == 304

    publish.status(status("L1", level=4))  # a new document: new tags
    wait_until(lambda: client.get("/api/v1/lines/L1", headers={"If-None-Match": tag}).status_code == 200)
    assert client.get("/api/v1/lines/L1").headers["etag"] != tag
    assert client.get("/api/v1/lines", headers={"If-None-Match": ltag}).status_code == 200


def test_last_writer_wins_and_tombstone(client: TestClient, publish: Publisher) -> None:
    for level in (2, 3, 4):
        publish.status(status("L7", level=level))
    wait_until(lambda: client.get("/api/v1/lines/L7").json().get("grade", {}).get("level") == 4)
    publish.send(publish.settings.topic_line_status, "L7", None)
    wait_until(lambda: client.get("/api/v1/lines/L7").status_code == 404)
    assert client.get("/api/v1/lines").json() == []


def test_malformed_status_is_skipped(client: TestClient, publish: Publisher) -> None:
    publish.send(publish.settings.topic_line_status, "Lbad", b"{not json")
    publish.status(status("Lok"))
    wait_until(lambda: client.get("/api/v1/lines/Lok").status_code == 200)
    assert client.get("/api/v1/lines/Lbad").status_code == 404
    assert client.get("/healthz").json() == {"status": "ok"}
