"""What an acknowledgement says, as a person reads it: which message it answers, its outcome, and the reasons
(each recipient it was queued for, or why it was refused, naming what was missing). Codes and texts the exchange
wrote only: an acknowledgement never carries a child's personal data."""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class Answer:
    message_id: str  # urn:uuid of the message answered
    ok: bool  # the exchange took it (accepted, duplicate) rather than refused it or failed to deliver it
    outcome: str  # the acknowledgement code: accepted, duplicate, delivery-failed, or the refusal's code
    reasons: tuple[str, ...]  # each issue's text: "recipient la-371: queued for delivery", a refusal's reason


def read(body: bytes | dict) -> Answer | None:
    """The answer an acknowledgement message gives; None if the message is not one (no response in its header)."""
    try:
        message = orjson.loads(body) if isinstance(body, bytes | bytearray) else body
        header = message["entry"][0]["resource"]
        response = header["response"]
        target = response.get("details", {}).get("reference")
        outcome = next((e["resource"] for e in message["entry"] if e.get("fullUrl") == target), None) or next(
            e["resource"] for e in message["entry"] if e["resource"].get("resourceType") == "OperationOutcome")
        issues = outcome.get("issue", [])
        codes = [i["details"]["coding"][0]["code"] for i in issues]
    except (KeyError, IndexError, TypeError, StopIteration, orjson.JSONDecodeError):
        return None
    reasons = tuple(i["diagnostics"] for i in issues if i.get("diagnostics"))
    # The first code that is not "accepted" says most (a refusal, a duplicate, a failed delivery); else accepted.
    main = next((c for c in codes if c != "accepted"), codes[0] if codes else response.get("code", ""))
    message_id = "urn:uuid:" + str(response.get("identifier", "")).removeprefix("urn:uuid:")
    return Answer(message_id, response.get("code") == "ok" or main == "duplicate", main, reasons)
