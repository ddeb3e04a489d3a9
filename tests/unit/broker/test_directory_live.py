"""Following the signed directory file: a newly signed one is taken up, a forged or older one never is, an
expired one stops everything, and a revocation applies to messages signed before it but checked after."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from broker import directory as d
from broker.keys import SigningKey
from standard.errors import DirectoryExpired, RevokedKey

NOW = datetime.now(UTC)


class Clock:
    """A monotonic clock the test moves by hand (the recheck interval)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _published(tmp_path, *, valid_for=timedelta(days=7)):
    operator = SigningKey.generate("operator-1")
    directory = d.Directory()
    directory.add(d.Participant("la-886", d.LA, "Kent"))
    key = SigningKey.generate("la-886-1")
    directory.add_key("la-886", key, valid_from=NOW - timedelta(days=1))
    path = tmp_path / "directory.json"
    path.write_bytes(directory.sign(operator, valid_for=valid_for, now=NOW))
    return operator, directory, key, path


def test_a_newly_signed_directory_is_taken_up_at_the_next_check(tmp_path):
    operator, directory, _, path = _published(tmp_path)
    live = d.LiveDirectory(d.load(path, operator.public, now=NOW))
    assert live.current(NOW).participants["la-886"].keys[0].get("revoked_at") is None
    directory.revoke_key("la-886", "la-886-1", at=NOW)
    directory.version += 1
    path.write_bytes(directory.sign(operator, now=NOW + timedelta(seconds=1)))
    assert live.current(NOW).participants["la-886"].keys[0]["revoked_at"]
    assert live.current(NOW).version == directory.version


def test_the_file_is_read_again_every_recheck_interval_even_if_it_looks_unchanged(tmp_path):
    operator, directory, _, path = _published(tmp_path)
    clock = Clock()
    live = d.LiveDirectory(d.load(path, operator.public, now=NOW), recheck_seconds=30, clock=clock)
    directory.add(d.Participant("la-383", d.LA, "Leeds"))
    path.write_bytes(directory.sign(operator, now=NOW))
    live._state = d._file_state(path)  # as if size and mtime had not changed (a coarse clock, a copy tool)
    assert "la-383" not in live.current(NOW).participants
    clock.t = 31
    assert "la-383" in live.current(NOW).participants


def test_a_forged_file_is_never_adopted_and_the_last_good_one_holds_until_its_expiry(tmp_path, caplog):
    operator, directory, _, path = _published(tmp_path, valid_for=timedelta(hours=1))
    live = d.LiveDirectory(d.load(path, operator.public, now=NOW))
    impostor = SigningKey.generate("operator-1")
    directory.add(d.Participant("la-999", d.LA, "Nowhere"))
    path.write_bytes(directory.sign(impostor, now=NOW))
    with caplog.at_level(logging.ERROR, logger="sgx.directory"):
        assert "la-999" not in live.current(NOW).participants
    assert "not adopted" in caplog.text and "does not verify" in caplog.text
    with pytest.raises(DirectoryExpired, match="expired"):
        live.current(NOW + timedelta(hours=1))


def test_an_older_signed_directory_is_not_adopted(tmp_path):
    operator, directory, _, path = _published(tmp_path)
    old = path.read_bytes()
    directory.revoke_key("la-886", "la-886-1", at=NOW)
    directory.version += 1
    path.write_bytes(directory.sign(operator, now=NOW + timedelta(seconds=1)))
    live = d.LiveDirectory(d.load(path, operator.public, now=NOW))
    path.write_bytes(old)  # the operator's genuine signature, from before the revocation
    assert live.current(NOW).participants["la-886"].keys[0]["revoked_at"]


def test_an_expired_directory_stops_everything_even_without_a_file():
    operator = SigningKey.generate("operator-1")
    directory = d.load(d.reference_directory().sign(operator, valid_for=timedelta(hours=1), now=NOW),
                       operator.public, now=NOW)
    live = d.LiveDirectory(directory)
    assert live.current(NOW + timedelta(minutes=59)) is directory
    with pytest.raises(DirectoryExpired):
        live.current(NOW + timedelta(hours=1))


def test_a_key_revoked_before_the_check_refuses_a_message_signed_before_the_revocation(tmp_path):
    operator, directory, _, path = _published(tmp_path)
    signed_at = int((NOW - timedelta(seconds=30)).timestamp())
    directory.revoke_key("la-886", "la-886-1", at=NOW)
    loaded = d.load(directory.sign(operator, now=NOW), operator.public, now=NOW)
    # By signing time alone the key was still good (what a node still accepts, hours later)...
    assert loaded.public_key_for("la-886-1", "la-886", signed_at)
    # ...but checked after the revocation (as the router checks), it is refused.
    with pytest.raises(RevokedKey, match="before the message was processed"):
        loaded.public_key_for("la-886-1", "la-886", signed_at, checked_at=NOW)
    assert loaded.public_key_for("la-886-1", "la-886", signed_at, checked_at=NOW - timedelta(seconds=1))


def test_an_expired_directory_can_be_read_to_check_old_signatures_only_when_asked(tmp_path):
    operator, _, _, path = _published(tmp_path, valid_for=timedelta(hours=1))
    later = NOW + timedelta(hours=2)
    with pytest.raises(DirectoryExpired):
        d.load(path, operator.public, now=later)
    assert d.load(path, operator.public, now=later, allow_expired=True).participants["la-886"]
