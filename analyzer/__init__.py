"""ghostcap: packet-capture forensic analyzer for EV chargers (OCPP)."""

__version__ = "0.1.0"
