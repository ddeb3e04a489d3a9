"""Small hand-built areas and signals for the oversight tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from broker.oversight.engine import LA_KIND, Area, SettingInfo
from broker.oversight.signals import Signal

START = datetime(2024, 1, 1, tzinfo=UTC)
HOME, OTHER_HOME = "SC100001", "SC100002"
PROVIDER, OTHER_PROVIDER = "provider-a", "provider-b"


def area(children: int = 4) -> Area:
    settings = {
        HOME: SettingInfo(HOME, "childrens-home", PROVIDER, children, "Test home"),
        OTHER_HOME: SettingInfo(OTHER_HOME, "childrens-home", OTHER_PROVIDER, children, "Other home"),
    }
    people = {"la-371": LA_KIND, "lado-371": "lado", "lado-886": "lado", "la-886": LA_KIND, "icb-QF7": "icb",
              "ofsted": "ofsted", PROVIDER: "provider", OTHER_PROVIDER: "provider", "police-1": "police-force"}
    return Area("la-371", "lado-371", settings, people)


_counter = iter(range(1, 10**9))


def signal(kind: str, day: float, *, setting: str = HOME, sender: str = "la-886", staff: str | None = None,
           case: str | None = None, occurred: datetime | None = None, message_id: str | None = None) -> Signal:
    at = START + timedelta(days=day)
    return Signal(message_id or f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'test/{next(_counter)}')}", kind,
                  setting, at, sender, staff=staff, case=case, occurred=occurred)
