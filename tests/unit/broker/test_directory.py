"""The signed directory: built from the public reference tables, refused when stale or not the operator's."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from broker import directory as d
from broker.keys import SigningKey
from standard.errors import DirectoryError


def test_reference_directory_has_every_live_la_with_its_lado_and_every_icb():
    directory = d.reference_directory()
    las = [p for p in directory.participants.values() if p.kind == d.LA]
    assert len(las) >= 150
    assert directory.participants["la-371"].name.startswith("Doncaster")
    assert directory.lado_of("la-371") == "lado-371"
    assert len([p for p in directory.participants.values() if p.kind == d.ICB]) == 42
    assert d.la_to_icb()["371"] == "QF7"


def test_sign_and_load_round_trip(tmp_path):
    operator = SigningKey.generate("operator-1")
    directory = d.reference_directory()
    directory.add_setting(d.Setting("SC900001", "Example Lodge", "childrens-home", "la-371", "icb-QF7", ["ofsted"]))
    loaded = d.load(directory.sign(operator), operator.public)
    assert loaded.settings["SC900001"].host_icb == "icb-QF7"
    assert loaded.expires_at > loaded.issued_at


def test_expired_directory_is_refused():
    operator = SigningKey.generate("operator-1")
    signed = d.reference_directory().sign(operator, valid_for=timedelta(hours=1))
    with pytest.raises(DirectoryError, match="expired"):
        d.load(signed, operator.public, now=datetime.now(UTC) + timedelta(hours=2))


def test_directory_signed_by_another_key_or_edited_is_refused():
    operator, impostor = SigningKey.generate("operator-1"), SigningKey.generate("operator-1")
    with pytest.raises(DirectoryError, match="signature does not verify"):
        d.load(d.reference_directory().sign(impostor), operator.public)
    signed = orjson.loads(d.reference_directory().sign(operator))
    signed["payload"] = signed["payload"][:-4] + ("AAAA" if not signed["payload"].endswith("AAAA") else "BBBB")
    with pytest.raises(DirectoryError):
        d.load(orjson.dumps(signed), operator.public)


def test_setting_naming_an_unknown_participant_is_refused():
    with pytest.raises(DirectoryError, match="not in the directory"):
        d.reference_directory().add_setting(d.Setting("SC1", "X", "childrens-home", "la-000", None, ["ofsted"]))


def test_private_keys_are_written_owner_only(tmp_path):
    key = SigningKey.generate("k-1")
    path = tmp_path / "keys" / "k.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).public_jwk() == key.public_jwk()


def test_newest_key_file_is_found_by_number_not_by_text(tmp_path):
    from broker.keys import key_files

    for n in (1, 2, 10):
        SigningKey.generate(f"la-886-{n}").save(tmp_path / f"la-886-{n}.key")
    SigningKey.generate("lado-886-3").save(tmp_path / "lado-886-3.key")
    assert [p.stem for p in key_files(tmp_path, "la-886")] == ["la-886-1", "la-886-2", "la-886-10"]
    assert [p.stem for p in key_files(tmp_path)][-1] == "lado-886-3"
