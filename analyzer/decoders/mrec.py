"""ChargeX Minimum Required Error Codes (MREC) and the EVgo codes that preceded them: tables and lookups.

Sources (see ``/work/shared/docs/ocpp-mrec-and-peers.md`` §1): ChargeX MREC Rev 5 (2023-09-12), 26 codes
CX001–CX026, as transcribed in appspace/kwwhat ``seeds/chargex_mrec_codes.csv`` and used by EVerest; EVgo MREC
v1.0.1 (https://mrec.evgo.com/def/format.html), vendorId ``com.evgo.mrec``. Chargers report an MREC code in an
OCPP 1.6 StatusNotification (``vendorErrorCode`` = ``CXnnn``, ``vendorId`` = ``https://chargex.inl.gov``) or in an
OCPP 2.0.1/2.1 NotifyEvent (``eventData[].techCode``); several codes in one field are separated by ``;`` (MREC) or
``,`` (EVgo).
"""

from __future__ import annotations

import re

CHARGEX_VENDOR_ID = "https://chargex.inl.gov"
EVGO_VENDOR_ID = "com.evgo.mrec"

MREC_NAMES: dict[str, str] = {
    "CX001": "ConnectorLockFailure",
    "CX002": "GroundFailure",
    "CX003": "HighTemperature",
    "CX004": "OverCurrentFailure",
    "CX005": "OverVoltage",
    "CX006": "UnderVoltage",
    "CX007": "WeakSignal",
    "CX008": "EmergencyStop",
    "CX009": "AuthorizationTimeout",
    "CX010": "InvalidVehicleMode",
    "CX011": "CableCheckFailure",
    "CX012": "PreChargeFailure",
    "CX013": "NoInternet",
    "CX014": "PilotFault",
    "CX015": "PowerLoss",
    "CX016": "EVContactorFault",
    "CX017": "EVSEContactorFault",
    "CX018": "CableOverTempDerate",
    "CX019": "CableOverTempStop",
    "CX020": "PartialInsertion",
    "CX021": "CapacitanceFault",
    "CX022": "ResistanceFault",
    "CX023": "ProximityFault",
    "CX024": "ConnectorVoltageHigh",
    "CX025": "BrokenLatch",
    "CX026": "CutCable",
}

# OCPP 1.6 ChargePointErrorCode values that are the same-named MREC code (MREC table, "OCPP 1.6 errorCode" column;
# every other MREC code travels as OtherError + vendorErrorCode).
ERROR_CODE_16_TO_CX: dict[str, str] = {
    "ConnectorLockFailure": "CX001",
    "GroundFailure": "CX002",
    "HighTemperature": "CX003",
    "OverCurrentFailure": "CX004",
    "OverVoltage": "CX005",
    "UnderVoltage": "CX006",
    "WeakSignal": "CX007",
}

# EVgo code -> ChargeX code, from the "EVgo MREC analogue" column of the MREC table. F001, F002, F005 have no
# published page and no mapping.
EVGO_TO_CX: dict[str, str] = {
    "A000": "CX009",  # Authorization Timeout
    "A001": "CX020",  # Partial Insertion
    "A002": "CX001",  # Failed Vehicle Lock
    "A003": "CX010",  # Invalid Vehicle Mode
    "A004": "CX008",  # Emergency Stop Pressed
    "F000": "CX023",  # Proximity Voltage High
    "F003": "CX014",  # Pilot Voltage Low
    "F004": "CX025",  # Broken Latch
    "F006": "CX022",  # Chassis Resistance Low
    "F007": "CX021",  # Chassis Capacitance High
    "F008": "CX024",  # Connector Voltage High
    "F009": "CX019",  # Cable Over Temperature
}

_CX_RE = re.compile(r"CX\d{3}", re.IGNORECASE)
_SPLIT_RE = re.compile(r"[;,]")


def split_codes(text: str) -> list[str]:
    """``"CX002; CX015"`` → ``["CX002", "CX015"]``: tokens separated by ``;`` or ``,``, stripped, empty ones dropped."""
    return [t for t in (p.strip() for p in _SPLIT_RE.split(text)) if t]


def cx_code(token: str) -> str | None:
    """The MREC code a token names (``"cx002"`` → ``"CX002"``), or ``None`` when it is not one of CX001–CX026."""
    if _CX_RE.fullmatch(token):
        code = token.upper()
        if code in MREC_NAMES:
            return code
    return None


def evgo_cx_code(token: str) -> str | None:
    """The MREC code an EVgo code maps to (``"A000"`` → ``"CX009"``), or ``None``."""
    return EVGO_TO_CX.get(token.upper())
