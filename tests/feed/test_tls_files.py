"""`serve --certfile/--keyfile` mistakes in words: OpenSSL's own ("[SSL] PEM lib (_ssl.c:3905)")
tell a user nothing about which file is wrong or what it should hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from tickwire.feed.server.config import ServerConfig
from tickwire.simulators.errors import UserError


def _error(certfile: Path, keyfile: Path | None = None) -> str:
    config = ServerConfig(certfile=str(certfile), keyfile=str(keyfile) if keyfile else None)
    with pytest.raises(UserError) as caught:
        config.ssl_context()
    return str(caught.value)


def test_each_mistake_with_tls_files_says_what_the_files_must_hold(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    crt, key, other_key = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "other.pem"
    cert.cert_chain_pems[0].write_to_path(str(crt))
    cert.private_key_pem.write_to_path(str(key))
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other_key))
    not_pem = tmp_path / "ticks.csv"
    not_pem.write_text("symbol,ts\n")

    assert _error(crt) == (  # the key is in its own file, not given
        f"cannot load certificate {str(crt)!r}: --certfile takes a PEM certificate (chain)"
        " followed by its PEM private key, or give the key as --keyfile KEY.pem"
    )
    assert _error(crt, other_key) == (
        f"--keyfile {str(other_key)!r} is not the private key of --certfile {str(crt)!r}"
    )
    assert _error(crt, not_pem).endswith(
        "--certfile takes a PEM certificate (chain) and --keyfile its PEM private key"
    )
    assert _error(tmp_path / "missing.pem").endswith(": No such file or directory")
    for message in (_error(crt), _error(not_pem), _error(crt, not_pem)):
        assert "_ssl.c" not in message and "PEM lib" not in message
    assert ServerConfig(certfile=str(crt), keyfile=str(key)).ssl_context() is not None
