"""Findings: what the validator reports. Each code is stable and documented on the standard's pages."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a message.

    Attributes:
        code: stable finding code (see FINDING_CODES).
        location: FHIRPath-style location, e.g. ``Bundle.entry[2].resource.period.start``.
        message: what is wrong and what to do; never contains values from the message.
        severity: "error" or "warning".
        layer: the validation layer that found it.
    """

    code: str
    location: str
    message: str
    severity: str = ERROR
    layer: str = ""

    @property
    def title(self) -> str:
        return FINDING_CODES.get(self.code, ("", ""))[1]

    @property
    def requirements(self) -> tuple[str, ...]:
        from standard.catalogue import REQUIREMENTS

        return tuple(r.id for r in REQUIREMENTS if self.code in r.findings)

    def as_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "location": self.location, "message": self.message,
                "layer": self.layer, "title": self.title, "requirements": list(self.requirements)}


# code -> (layer, title)
FINDING_CODES: dict[str, tuple[str, str]] = {
    "json-invalid": ("parse", "Not a JSON object"),
    "json-duplicate-key": ("parse", "A key given twice in one JSON object"),
    "message-too-large": ("parse", "Message larger than the exchange accepts"),
    "event-unknown": ("parse", "No MessageHeader with a known event"),
    "profile-cardinality": ("schema", "Element missing, repeated too often or not allowed"),
    "profile-fixed-value": ("schema", "Element does not have the value the profile fixes"),
    "profile-binding": ("schema", "Code not in the bound value set"),
    "profile-format": ("schema", "Value does not have the required format"),
    "profile-type": ("schema", "Value has the wrong JSON type"),
    "profile-unexpected-resource": ("schema", "Resource type not allowed in this message"),
    "ofsted-urn-invalid": ("schema", "Ofsted URN is not SC + 6 digits or 7 digits"),
    "fhir-structure": ("fhir", "Not valid FHIR R4"),
    "contained-not-allowed": ("fhir", "Contained resource in a message"),
    "bdl-7": ("profile", "fullUrl not unique (bdl-7)"),
    "bdl-12": ("profile", "MessageHeader is not the first entry (bdl-12)"),
    "focus-missing": ("profile", "MessageHeader.focus does not resolve inside the Bundle"),
    "ref-unresolved": ("profile", "Reference does not resolve inside the Bundle"),
    "ref-target-type": ("profile", "Reference resolves to a resource of the wrong type"),
    "resource-id-duplicate": ("profile", "Two resources of the same type with the same id"),
    "nhs-number-invalid": ("business", "NHS number is not 10 digits with a valid modulus 11 check digit"),
    "ods-code-invalid": ("business", "ODS code is not 3 to 6 upper-case letters and digits"),
    "la-code-unknown": ("business", "Unknown DfE LA code"),
    "icb-code-unknown": ("business", "Unknown ICB ODS code"),
    "period-order": ("business", "Period ends before it starts"),
    "incident-after-notification": ("business", "Incident dated after it was notified"),
    "date-in-future": ("business", "Date of birth or of an event in the future"),
    "timestamp-out-of-window": ("business", "Bundle.timestamp in the future or before the standard existed"),
    "questionnaire-item-unknown": ("business", "Answer to a question the Questionnaire does not ask"),
    "questionnaire-item-missing": ("business", "Required question not answered"),
}
