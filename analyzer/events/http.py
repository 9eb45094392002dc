"""HTTP/1.x events: the request and response heads of a connection (in practice the WebSocket upgrade).

Credentials are never kept: of an ``Authorization`` header only the scheme and, for Basic, the user name survive;
a bearer token offered as a WebSocket subprotocol (``authorization.bearer.<token>``, as wstunnel and Kubernetes
clients send it) keeps its prefix and loses the token (see ``analyzer.decoders.http_upgrade.redact_subprotocol``).
"""

from __future__ import annotations

from typing import ClassVar

from analyzer.events.base import Event, event


@event
class HttpRequest(Event):
    """A request head (and its body, if any, skipped).

    Fields: ``method``; ``target`` (request-target as sent); ``path`` (target without query, absolute-form reduced
    to its path); ``station_id`` (last non-empty path segment, percent-decoded as UTF-8; ``None`` if the path has
    none); ``version`` (``"HTTP/1.1"``); ``host``; ``upgrade`` (``Upgrade`` header value); ``ws_protocols``
    (offered ``Sec-WebSocket-Protocol`` values, in order); ``ws_extensions`` (raw ``Sec-WebSocket-Extensions``);
    ``ws_key``; ``ws_version``; ``auth_scheme`` (``"Basic"``, ``"Bearer"``, another scheme as sent, or ``None``);
    ``auth_user`` (the user name of Basic credentials; the password is never kept); ``user_agent``;
    ``header_names`` (as sent, in order); ``body_size`` (bytes of body seen).
    """

    kind: ClassVar[str] = "http.request"
    layer: ClassVar[str] = "http"
    method: str
    target: str
    path: str
    station_id: str | None = None
    version: str = "HTTP/1.1"
    host: str | None = None
    upgrade: str | None = None
    ws_protocols: tuple[str, ...] = ()
    ws_extensions: str | None = None
    ws_key: str | None = None
    ws_version: str | None = None
    auth_scheme: str | None = None
    auth_user: str | None = None
    user_agent: str | None = None
    header_names: tuple[str, ...] = ()
    body_size: int = 0

    def summary(self) -> str:
        parts = [f"{self.method} {self.path}"]
        if self.upgrade is not None:
            parts.append(f"upgrade={self.upgrade}")
        if self.ws_protocols:
            parts.append("offers " + ",".join(self.ws_protocols))
        if self.auth_scheme is not None:
            parts.append(f"auth={self.auth_scheme}" + (f" user={self.auth_user}" if self.auth_user else ""))
        return " ".join(parts)


@event
class HttpResponse(Event):
    """A response head, with its body when the response has one (``frame`` is then the frame completing the body).

    Fields: ``status``; ``reason``; ``version``; ``upgrade``; ``ws_protocol`` (accepted subprotocol or ``None``);
    ``ws_extensions`` (raw accepted extensions or ``None``); ``ws_accept`` (``Sec-WebSocket-Accept`` as sent);
    ``ws_accept_expected`` (computed from the request's ``Sec-WebSocket-Key``, or ``None`` without one);
    ``ws_accept_ok`` (``ws_accept == ws_accept_expected``, or ``None`` when either is missing); ``date`` (raw
    ``Date``); ``server``; ``content_type``; ``www_authenticate`` (raw challenge); ``body_excerpt`` (first
    characters of the body, UTF-8 with replacement); ``body_size`` (bytes of body seen); ``request_frame`` (frame
    of the request this answers, or ``None`` when the capture has no such request); ``header_names``.
    """

    kind: ClassVar[str] = "http.response"
    layer: ClassVar[str] = "http"
    status: int
    reason: str = ""
    version: str = "HTTP/1.1"
    upgrade: str | None = None
    ws_protocol: str | None = None
    ws_extensions: str | None = None
    ws_accept: str | None = None
    ws_accept_expected: str | None = None
    ws_accept_ok: bool | None = None
    date: str | None = None
    server: str | None = None
    content_type: str | None = None
    www_authenticate: str | None = None
    body_excerpt: str = ""
    body_size: int = 0
    request_frame: int | None = None
    header_names: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = [f"{self.status} {self.reason}".rstrip()]
        if self.status == 101:
            parts.append(f"subprotocol={self.ws_protocol}" if self.ws_protocol is not None else "no subprotocol")
            if self.ws_extensions:
                parts.append(f"extensions={self.ws_extensions}")
            if self.ws_accept_ok is False:
                parts.append("accept differs from the expected value")
        elif self.body_excerpt:
            parts.append(repr(self.body_excerpt[:80]))
        return " ".join(parts)
