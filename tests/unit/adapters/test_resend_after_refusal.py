"""A refusal that a change elsewhere lifts is not final: a placement refused because nobody in the setting's area
was onboarded yet is sent again by the adapter's next run once the host authority has its key."""

from __future__ import annotations

import sqlite3

import pytest

from broker.outbox import Outbox
from tests.unit.adapters.conftest import sgx, summary

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nC1,1,27/03/2010,WBRI,,,\n"
EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n"
            "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")


@pytest.fixture
def early(tmp_path):
    """An exchange where Kent is onboarded and Doncaster, the setting's host, is not yet (no key)."""
    root = tmp_path / "ex"
    sgx("directory", "init", "--dir", root)
    for pid in ("la-886", "router"):
        sgx("directory", "keygen", "--dir", root, "--participant", pid)
    sgx("directory", "add-setting", "--dir", root, "--urn", "SC900001", "--name", "Example Lodge", "--host-la",
        "la-371")
    sgx("directory", "sign", "--dir", root)
    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES)
    return root, header, episodes


def _held_by_doncaster(root) -> int:
    if not (root / "inbox" / "la-371.db").exists():
        return 0
    with sqlite3.connect(root / "inbox" / "la-371.db") as db:
        return db.execute("SELECT COUNT(*) FROM inbox WHERE event = 'placement-started'").fetchone()[0]


def _run(early, *, onboard_between: bool = True) -> tuple[dict, dict, int]:
    root, header, episodes = early
    first = summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes)
    sgx("broker", "route", "--dir", root, "--once")
    sgx("node", "run", "--dir", root, "--participant", "la-886", "--once")  # Kent's node takes the refusal
    if onboard_between:
        sgx("directory", "keygen", "--dir", root, "--participant", "la-371")
        sgx("directory", "sign", "--dir", root)
    second = summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes)
    sgx("broker", "route", "--dir", root, "--once")
    sgx("node", "run", "--dir", root, "--participant", "la-371", "--once")
    return first, second, _held_by_doncaster(root)


def test_a_placement_refused_before_the_host_was_onboarded_goes_with_the_next_run(early):
    first, second, held = _run(early)
    assert first["sent"] == 1 and first["resent"] == 0
    assert second["messages_built"] == {} and second["unchanged"] == 1  # nothing new was built ...
    assert second["resent"] == 1 and second["sent"] == 1  # ... but the refused message went again
    assert held == 1


def test_the_refusal_is_kept_with_its_reason_until_then(early):
    root, header, episodes = early
    summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes)
    sgx("broker", "route", "--dir", root, "--once")
    sgx("node", "run", "--dir", root, "--participant", "la-886", "--once")
    outbox = Outbox(root / "outbox" / "la-886.db", "la-886", None)
    (message_id,) = [r[0] for r in outbox.db.execute("SELECT message_id FROM outbox")]
    status = outbox.status(message_id)
    assert status.state == "refused" and status.reason.startswith("no-recipients")
    # The exchange said the cause lies elsewhere (FHIR issue type transient), and the outbox kept it.
    assert outbox.db.execute("SELECT transient FROM outbox WHERE message_id = ?", (message_id,)).fetchone() == (1,)


def test_broken_twin_an_adapter_that_never_resends_leaves_the_host_untold(early, monkeypatch):
    monkeypatch.setattr(Outbox, "resend_recoverable", lambda self: [])
    first, second, held = _run(early)
    assert second["sent"] == 0 and held == 0  # the refusal was final: the failure the test above rules out


def test_only_refusals_a_change_elsewhere_lifts_are_sent_again(tmp_path):
    from broker.keys import SigningKey

    outbox = Outbox(tmp_path / "o.db", "la-886", SigningKey.generate("la-886-1"))
    outbox.db.execute("INSERT INTO outbox (message_id, event, body, state, reason, sent_at) VALUES "
                      "('urn:uuid:a', 'placement-started', x'7b7d', 'refused', 'payload-invalid: bad', 'x'), "
                      "('urn:uuid:b', 'placement-started', x'7b7d', 'refused', 'no-recipients: no participant could "
                      "be resolved for its routing roles; not onboarded yet (no key): la-371', 'x'), "
                      "('urn:uuid:c', 'allegation-referral', x'7b7d', 'refused', 'no-recipients: wrong-owner: "
                      "lado-886 is not the host LADO', 'x'), "
                      "('urn:uuid:d', 'decision-recorded', x'7b7d', 'refused', 'unauthorised-sender: not a "
                      "recipient', 'x'), "
                      "('urn:uuid:e', 'placement-started', x'7b7d', 'refused', 'no-recipients: not reachable: "
                      "la-371 (no queue on the exchange)', 'x')")
    assert sorted(outbox.resend_recoverable()) == ["urn:uuid:b", "urn:uuid:e"]
    assert [outbox.status(f"urn:uuid:{x}").state for x in "abcde"] == ["refused", "queued", "refused", "refused",
                                                                       "queued"]


def _refusal(message_id: str, kind: str, text: str) -> dict:
    from standard import compose

    return compose.acknowledgement(message_id, "router", "no-recipients", details=[("error", kind, "no-recipients",
                                                                                     text)])


@pytest.mark.parametrize("by_words", [False, True], ids=["issue-type", "twin-reading-the-words"])
def test_what_is_resent_follows_the_exchanges_issue_type_not_its_words(tmp_path, by_words):
    """A refusal the exchange marks `transient` is sent again whatever its words; one marked `invalid` is not,
    unless it reads as the recoverable refusals of an exchange not yet upgraded (which types every issue
    `invalid`). A twin that goes by the words alone misses the transient one."""
    from broker.keys import SigningKey

    outbox = Outbox(tmp_path / "o.db", "la-886", SigningKey.generate("la-886-1"))
    outbox.db.execute("INSERT INTO outbox (message_id, event, body, state, sent_at) VALUES "
                      "('urn:uuid:f', 'placement-started', x'7b7d', 'sent', 'x'), "
                      "('urn:uuid:g', 'placement-started', x'7b7d', 'sent', 'x'), "
                      "('urn:uuid:h', 'placement-started', x'7b7d', 'sent', 'x')")
    outbox.record_acknowledgement(_refusal("urn:uuid:f", "transient", "no-recipients: recipients wait for keys"))
    outbox.record_acknowledgement(_refusal("urn:uuid:g", "invalid", "no-recipients: wrong-owner: lado-886 is not "
                                                                    "the host LADO"))
    outbox.record_acknowledgement(_refusal("urn:uuid:h", "invalid", "no-recipients: not reachable: la-371 (no "
                                                                    "queue on the exchange)"))  # an older exchange
    if by_words:
        outbox.db.execute("UPDATE outbox SET transient = NULL")  # the twin: what the exchange said is not kept
    resent = sorted(outbox.resend_recoverable())
    assert resent == (["urn:uuid:h"] if by_words else ["urn:uuid:f", "urn:uuid:h"])
