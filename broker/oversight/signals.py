"""Signals (one fact about a setting, from one message) and findings (input that oversight would not count)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def day_number(moment: datetime) -> float:
    """Days since 1970-01-01 UTC as a float: windows are compared on this line."""
    return (moment - EPOCH).total_seconds() / 86400.0


@dataclass(frozen=True, slots=True)
class Signal:
    """One fact about a setting, as oversight counts it.

    Attributes:
        message_id: the id of the standard message it came from (urn:uuid), named in every escalation.
        kind: a signal kind of the published rules (e.g. ``allegation``, ``whistleblowing``).
        setting: the setting's Ofsted URN.
        at: when the message says it happened or was reported (its own date, not when it arrived).
        sender: the participant id that signed the message.
        staff: the setting's local staff identifier (allegations), never a name.
        case: the case reference shared by referrer and LADO (allegations).
        child: the child's pseudonym, where the message names a child (counts children placed).
        occurred: for incidents, when the incident happened (the notification clock runs from it).
    """

    message_id: str
    kind: str
    setting: str
    at: datetime
    sender: str
    staff: str | None = None
    case: str | None = None
    child: str | None = None
    occurred: datetime | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A signal oversight did not count, or counted with a remark, and why: codes, ids and dates, never a value."""

    code: str
    message_id: str
    setting: str
    at: datetime
    detail: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message_id": self.message_id, "setting": self.setting,
                "at": self.at.isoformat(), "detail": self.detail}


FINDING_CODES = {
    "duplicate": "The same message id was seen before; counted once.",
    "same-case": "A second referral of an allegation already counted (same case reference); counted once.",
    "out-of-order": "Dated before signals already seen for the setting; counted at its own date.",
    "unknown-setting": "The setting is not one of the host authority's settings; not counted.",
    "unknown-sender": "The sender is not a participant of the directory; not counted.",
    "sender-not-entitled": "The sender may not report this kind of signal about the setting; not counted.",
    "unknown-kind": "The kind is not one of the published rules' signal kinds; not counted.",
}
