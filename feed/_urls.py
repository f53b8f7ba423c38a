"""URLs as we show them: every URL the project prints (ready lines, logs, `/readyz`,
`--print-config`, error messages) goes through `redact` first, so a password in `--bus
redis://:PASSWORD@host` or a `?token=` in a URL is never on a screen, in a log or on an
unauthenticated HTTP path. Pure text; imports nothing of ours.
"""

from __future__ import annotations

import re

MASK = "***"
# scheme://USERINFO@ : the userinfo runs to the authority's last '@' (an unencoded '@' in a
# password still ends up masked), and never past '/', '?', '#', whitespace or a quote.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s'\"<>]*)@")
_SECRET_PARAM = re.compile(r"(?i)([?&](?:password|passwd|pass|token|secret)=)([^&#\s'\"<>]*)")


def redact(text: str) -> str:
    """`text` (a URL, or a line holding URLs) with URL credentials masked: the password of
    `user:password@` (`redis://:***@host`, `redis://user:***@host`), a userinfo without a colon
    as a whole (some clients read it as the password), and secret query parameters."""
    return _SECRET_PARAM.sub(_mask_param, _USERINFO.sub(_mask_userinfo, text))


def _mask_userinfo(m: re.Match[str]) -> str:
    scheme, userinfo = m.group(1), m.group(2)
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{user}:{MASK}@" if colon else f"{scheme}{MASK}@"


def _mask_param(m: re.Match[str]) -> str:
    return f"{m.group(1)}{MASK}" if m.group(2) else m.group(0)
