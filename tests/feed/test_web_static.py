"""The page's static files: content types, caching headers, 304s, and nothing else served."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tickwire.feed.web import static_response


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/worker.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ],
)
def test_files_have_their_content_type_and_length(path: str, content_type: str) -> None:
    status, headers, body = static_response(path)
    assert status == 200
    assert header(headers, "Content-Type") == content_type
    assert header(headers, "Content-Length") == str(len(body)) and body
    assert header(headers, "X-Content-Type-Options") == "nosniff"
    assert re.fullmatch(r'"[0-9a-f]{16}"', header(headers, "ETag") or "")


def test_query_string_is_ignored_for_the_page() -> None:
    assert static_response("/?token=s3cret&url=ws://x/v1")[2] == static_response("/")[2]


def test_absolute_form_targets_mean_their_path() -> None:
    """RFC 9112 3.2.2: a server must accept absolute-form; only the path selects the file."""
    assert static_response("http://127.0.0.1:8765/app.js")[2] == static_response("/app.js")[2]


def test_index_is_revalidated_and_points_at_versioned_assets() -> None:
    _, headers, body = static_response("/")
    assert header(headers, "Cache-Control") == "no-cache"
    assert "connect-src 'self' ws: wss:" in (header(headers, "Content-Security-Policy") or "")
    page = body.decode()
    for name in ("app.js", "worker.js", "style.css"):
        match = re.search(rf'"{re.escape(name)}\?v=([0-9a-f]{{16}})"', page)
        assert match, f"{name} is not referenced with its hash"
        status, asset_headers, _ = static_response(f"/{name}?v={match.group(1)}")
        assert status == 200
        assert header(asset_headers, "Cache-Control") == "public, max-age=31536000, immutable"
        assert header(asset_headers, "ETag") == f'"{match.group(1)}"'


def test_unversioned_or_stale_asset_urls_are_revalidated() -> None:
    assert header(static_response("/app.js")[1], "Cache-Control") == "no-cache"
    assert header(static_response("/app.js?v=0000")[1], "Cache-Control") == "no-cache"


def test_matching_etag_gives_304_without_body() -> None:
    _, headers, _ = static_response("/style.css")
    etag = header(headers, "ETag")
    assert etag
    for sent in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        status, h304, body = static_response("/style.css", if_none_match=sent)
        assert (status, body) == (304, b"")
        assert header(h304, "ETag") == etag and header(h304, "Content-Length") is None
    assert static_response("/style.css", if_none_match='"other"')[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2",
        "/metrics.html",
        "/../pyproject.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f__init__.py",
        "/__init__.py",
        "/assets/page.png",
        "//etc/passwd",
        "/app.js/",
        "/web/app.js",
        "",
        "http://evil/etc/passwd",
        "/\x00",
    ],
)
def test_anything_else_is_404(path: str) -> None:
    status, headers, body = static_response(path)
    assert status == 404
    assert header(headers, "Content-Type") == "text/plain; charset=utf-8"
    assert b"not found" in body


def test_page_loads_nothing_from_elsewhere() -> None:
    """No CDN: every URL the page's files name is its own (or the feed's ws:// URL)."""
    for path in ("/", "/app.js", "/worker.js", "/style.css"):
        text = static_response(path)[2].decode()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "@import" not in text and "url(http" not in text, path


def test_static_module_does_not_import_trio() -> None:
    code = (
        "import sys, tickwire.feed.web, tickwire.feed.server.metrics, tickwire.feed.ws.drain; "
        "assert 'trio' not in sys.modules, 'trio imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
