"""The one exception hierarchy of Safeguarding Exchange.

    SafeguardingExchangeError            root: catch this to catch anything we raise
    ├── StandardError                    the standard and its validator
    │   ├── BuildError                   generating the package, schemas or docs failed
    │   ├── CalendarNotCovered           a working-day count reached a year without shipped bank holidays
    │   └── MessageInvalid               a message broke the standard (carries findings)
    ├── BrokerError                      routing, signing, directory, transport
    │   ├── RecoverableBrokerError       try again later (broker down, confirm timed out)
    │   │   └── TransportUnavailable     the transport cannot be reached now
    │   ├── UnrecoverableBrokerError     retrying will not help (refused, misconfigured)
    │   │   ├── ExchangeFolderError      an exchange folder lacks what was asked of it (a key, a password)
    │   │   ├── DirectoryError           the directory is missing, expired or not signed by the operator
    │   │   │   └── DirectoryExpired     the directory in force has expired: stop routing, get a new one
    │   │   ├── Unroutable               the transport has no queue for some messages (the others went)
    │   │   ├── RoutingRuleUnknown       the catalogue names a routing role the exchange cannot resolve
    │   │   ├── BrokerNotTrusted         TLS: the broker's certificate does not verify against the CA given
    │   │   └── SignatureRejected        one class per reason: BadSignature, UnknownKey, RevokedKey,
    │   │                                ExpiredKey, AlgorithmNotAllowed, UnknownCritical, SenderMismatch,
    │   │                                Replay, IssuedAtOutsideWindow, MalformedSignature
    │   ├── InboxError                   the web inbox: accounts, sign-in, its database
    │   └── OversightError               oversight: its rules, a scenario or a timeline cannot be used
    ├── AdapterError                     reading legacy exports and building messages
    └── ConformanceError                 the conformance kit itself could not run

Every error says what happened and what to do next, and never carries a child's
personal data: findings hold paths and codes, not values.
"""

from __future__ import annotations


class SafeguardingExchangeError(Exception):
    """Root of every error raised by this project."""


class StandardError(SafeguardingExchangeError):
    """A problem with the standard or with validating against it."""


class CalendarNotCovered(StandardError):
    """A working-day count reached a year whose bank holidays the standard does not ship yet."""


class BuildError(StandardError):
    """Generating the standard's artefacts failed or they are stale."""


class MessageInvalid(StandardError):
    """A message does not conform to the standard.

    Attributes:
        findings: every finding that made the message invalid, most important first.
    """

    def __init__(self, findings):
        self.findings = list(findings)
        first = self.findings[0] if self.findings else None
        text = f"{first.code} at {first.location}: {first.message}" if first else "message is invalid"
        more = len(self.findings) - 1
        if more > 0:
            text += f" (and {more} more finding{'s' if more > 1 else ''})"
        super().__init__(text)


class BrokerError(SafeguardingExchangeError):
    """A problem in routing, signing, the directory or a transport."""


class RecoverableBrokerError(BrokerError):
    """A transient failure: the same operation may succeed if retried."""


class UnrecoverableBrokerError(BrokerError):
    """A permanent failure: retrying without a change will fail again."""


class TransportUnavailable(RecoverableBrokerError):
    """The broker or database behind a transport cannot be reached; messages wait in the outbox."""


class ExchangeFolderError(UnrecoverableBrokerError):
    """An exchange folder lacks what was asked of it (a participant's key, the operator's key, a broker password);
    the message names the file and the command that makes it."""


class DirectoryError(UnrecoverableBrokerError):
    """The participant directory cannot be trusted: missing, malformed, expired or badly signed."""


class DirectoryExpired(DirectoryError):
    """The directory in force has expired and no valid newer one has been published: routing stops."""


class Unroutable(UnrecoverableBrokerError):
    """The transport has no queue bound for some messages (AMQP basic.return); nothing was delivered there.

    Attributes:
        undelivered: for a batch publish, the positions of the messages that reached no queue; every other
            message of the batch is durable (the transport contract, same on every transport).
    """

    def __init__(self, message: str, undelivered: tuple[int, ...] = ()):
        super().__init__(message)
        self.undelivered = tuple(undelivered)


class RoutingRuleUnknown(UnrecoverableBrokerError):
    """The catalogue routes an event to a role (or resolves it from a source) the exchange has no resolver for:
    routing stops loudly rather than sending the message to nobody."""


class BrokerNotTrusted(UnrecoverableBrokerError):
    """The broker's TLS certificate did not verify against the certificate authority configured for it (or
    the TLS handshake failed); nothing was sent, and there is no fallback to plaintext."""


class SignatureRejected(UnrecoverableBrokerError):
    """A signature was refused. `reason` is the acknowledgement-style code recorded in the audit log."""

    reason = "signature-invalid"


class MalformedSignature(SignatureRejected):
    """The JWS is not a detached compact JWS with a JSON protected header."""


class BadSignature(SignatureRejected):
    """The signature does not verify over the bytes received."""


class UnknownKey(SignatureRejected):
    """The kid names no key of the sender in the directory."""


class RevokedKey(SignatureRejected):
    """The key was revoked before the message was signed."""


class ExpiredKey(SignatureRejected):
    """The key was not valid at the time the message was signed."""


class AlgorithmNotAllowed(SignatureRejected):
    """Only EdDSA (Ed25519) is accepted; `none`, HS256 and every other alg are refused."""


class UnknownCritical(SignatureRejected):
    """The header lists a critical extension we do not understand."""


class SenderMismatch(SignatureRejected):
    """The signer is not the sender the message or the connection names."""

    reason = "unknown-sender"


class Replay(SignatureRejected):
    """A message id already used for different content."""

    reason = "replay"


class IssuedAtOutsideWindow(SignatureRejected):
    """The issued-at time is too far from now."""

    reason = "replay"


class InboxError(BrokerError):
    """The web inbox cannot do what was asked (an account, its set-up or its database)."""


class OversightError(BrokerError):
    """Oversight cannot run: its published rules, a scenario or a timeline is not usable (the message says where)."""


class AdapterError(SafeguardingExchangeError):
    """A problem reading a legacy export or turning it into messages."""


class MappingError(AdapterError):
    """A mapping file for `sgx adapt mapped` is not usable; the message names the file, key and fix."""


class ConformanceError(SafeguardingExchangeError):
    """The conformance kit could not run (as opposed to a system failing a check)."""
