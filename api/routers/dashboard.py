"""``GET /``: the control-room page.

The page itself is static (``api/static/index.html``, ``app.js``, ``app.css``: vanilla ES modules and
hand-drawn SVG, no build step, no external requests); the app mounts ``api/static`` at ``/static`` and the
page reads everything else from the JSON API and the server-sent events of ``/api/v1/alerts/stream``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
INDEX = STATIC_DIR / "index.html"

router = APIRouter(include_in_schema=False)

# The page is data-free HTML: strict enough that a stray data value could never load a script or reach out.
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
}


@lru_cache(maxsize=1)
def _index_html() -> str:
    return INDEX.read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    """The control-room dashboard (one HTML page; its data comes from ``/api/v1``)."""
    return HTMLResponse(_index_html(), headers=_HEADERS)
