"""Backport of CPython gh-98078 (fixed upstream by python/cpython#153620) for the lab's asyncio stacks.

On Python 3.11 an asyncio SSL transport whose handshake fails closes the TCP connection without sending the
fatal TLS alert OpenSSL prepared (the alert stays in the outgoing MemoryBIO). Blocking ``ssl`` sockets and
OpenSSL-based charger stacks do send it. The lab applies the upstream fix -- flush the outgoing BIO before
reporting the error -- so its TLS scenarios show the alerts real chargers send; one scenario runs without it
to show the stock behaviour (a bare FIN).
"""

from __future__ import annotations

import ssl
from asyncio import sslproto
from typing import Any


def apply() -> None:
    if getattr(sslproto.SSLProtocol, "_ghostcap_alert_fix", False):
        return

    def _do_handshake(self: Any) -> None:
        try:
            self._sslobj.do_handshake()
        except sslproto.SSLAgainErrors:
            self._process_outgoing()
        except ssl.SSLError as exc:
            self._process_outgoing()  # gh-98078: send the fatal alert before closing
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    sslproto.SSLProtocol._do_handshake = _do_handshake  # type: ignore[method-assign]
    sslproto.SSLProtocol._ghostcap_alert_fix = True  # type: ignore[attr-defined]
