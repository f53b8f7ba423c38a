"""The browser page's static files, served from inside the package (no CDN, no disk paths).

`static_response(target)` answers one GET for the page: `/` (index.html), `/app.js`,
`/worker.js` (the page's feed side, a Web Worker) and `/style.css`, each with its content type,
an ETag and a Cache-Control header; anything else is 404. Only names in a fixed table are
served, so no request path can reach any other file.

index.html refers to its script, worker and style as `app.js?v=HASH`: those exact URLs never
change content, so browsers may keep them for a year (`immutable`); index.html itself is
revalidated on every load (`no-cache` + ETag, a 304 when unchanged), so an upgrade shows on the
next reload.

Pure functions over bytes: no trio, no sockets, no clock. Must never import trio.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qs, urlsplit

Headers = list[tuple[str, str]]
Response = tuple[int, Headers, bytes]

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page talks to the feed over ws(s):// (possibly another host, with ?url=); it loads nothing
# else from anywhere. The favicon is an inline data: URL.
_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_REVALIDATE = "no-cache"
_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: str
    etag: str


def _load() -> dict[str, _File]:
    """Read the page's files once; index.html gets its assets' content hashes in their URLs."""
    root = resources.files(__name__)
    files: dict[str, _File] = {}
    assets = {name: (root / name).read_bytes() for name in ("app.js", "worker.js", "style.css")}
    for name, body in assets.items():
        files["/" + name] = _file(name, body)
    index = (root / "index.html").read_bytes()
    for name, file in files.items():
        index = index.replace(f'"{name[1:]}"'.encode(), f'"{name[1:]}?v={file.etag}"'.encode())
    files["/"] = files["/index.html"] = _file("index.html", index)
    return files


def _file(name: str, body: bytes) -> _File:
    etag = hashlib.sha256(body).hexdigest()[:16]
    return _File(body, _TYPES[name[name.rindex(".") :]], etag)


_FILES = _load()


def static_response(target: str, *, if_none_match: str | None = None) -> Response:
    """The response to `GET target` for the page's files: 200, 304 (ETag matched) or 404.

    `target` is the request target as sent (path and query, e.g. `/?token=x` or `/app.js?v=..`);
    `if_none_match` is the request's If-None-Match header, if any. Headers are (name, value)
    strings; the body is returned for HEAD too (the HTTP layer drops it).
    """
    url = urlsplit(target)
    file = _FILES.get(url.path)
    if file is None:
        body = b"not found: this server has the page at / and the feed at /v1\n"
        return 404, _headers("text/plain; charset=utf-8", len(body), "no-store"), body
    quoted = f'"{file.etag}"'
    versioned = parse_qs(url.query).get("v") == [file.etag]
    headers = _headers(file.content_type, len(file.body), _FOREVER if versioned else _REVALIDATE)
    headers.append(("ETag", quoted))
    if file.content_type.startswith("text/html"):
        headers.append(("Content-Security-Policy", _CSP))
        headers.append(("Referrer-Policy", "no-referrer"))  # the URL may hold ?token=
    if if_none_match is not None and _matches(if_none_match, quoted):
        return 304, [(k, v) for k, v in headers if k != "Content-Length"], b""
    return 200, headers, file.body


def _headers(content_type: str, length: int, cache: str) -> Headers:
    return [
        ("Content-Type", content_type),
        ("Content-Length", str(length)),
        ("Cache-Control", cache),
        ("X-Content-Type-Options", "nosniff"),
    ]


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison over a list of tags, or `*`."""
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


__all__ = ["static_response"]
