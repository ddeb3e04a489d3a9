"""The registry of test kits: each kit's name, what it needs, and the function that builds its suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.model import Suite


@dataclass(frozen=True)
class Kit:
    name: str
    title: str
    build: Callable[[], Suite]


def _messages() -> Suite:
    from conformance.kits.messages import suite

    return suite()


def _receiver() -> Suite:
    from conformance.kits.receiver import suite

    return suite()


def _sender() -> Suite:
    from conformance.kits.sender import suite

    return suite()


KITS: dict[str, Kit] = {
    "messages": Kit("messages", "Messages a system produced, checked offline against the standard and the "
                    "scenarios it was asked to produce", _messages),
    "receiver": Kit("receiver", "A running receiving system, sent messages by the kit playing the exchange, judged by "
                    "its acknowledgements", _receiver),
    "sender": Kit("sender", "A running sending system, asked by the kit playing the exchange to send each scenario, "
                  "judged by what arrives", _sender),
}
