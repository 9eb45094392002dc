"""Clock readings found in traffic: what one side's clock said at the moment a packet was captured."""

from __future__ import annotations

from typing import ClassVar

from analyzer.events.base import Event, event


@event
class ClockSample(Event):
    """One side's clock as a packet shows it.

    Fields: ``side`` (``"charger"`` = the connection's client, ``"csms"`` = its server); ``source`` (where it was
    read, dotted: ``tls.client_random``, ``http.date``, ``ocpp.StatusNotification.timestamp``,
    ``ocpp.BootNotificationResponse.currentTime``, ...); ``value_ns`` (the time the clock showed, ns since the
    epoch, negative before 1970); ``raw`` (the text as sent, e.g. ``2000-01-01T00:03:12Z``). The capture's own time
    of the packet is ``ts_ns``.
    """

    kind: ClassVar[str] = "clock.sample"
    layer: ClassVar[str] = "clock"
    side: str
    source: str
    value_ns: int
    raw: str = ""

    def summary(self) -> str:
        shown = self.raw or self.value_ns
        if self.source.startswith("tls."):  # RFC 5246 gmt_unix_time; most stacks send random bytes there
            hello = "ClientHello" if self.source == "tls.client_random" else "ServerHello"
            return f"{self.side}: the {hello} random's first 4 bytes read as {shown} (a clock only if not random)"
        return f"{self.side} clock {shown} ({self.source})"
