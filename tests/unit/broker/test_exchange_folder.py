"""ExchangeFolder, the one public way into an exchange folder: a participant's machine (its own key, the anchor and
the signed directory) opens the same way as the operator's folder, and what is missing is named with what to do."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from broker import directory as d
from broker.exchange_folder import ExchangeFolder
from standard.errors import DirectoryError, DirectoryExpired, ExchangeFolderError


@pytest.fixture
def operator_folder(tmp_path):
    return ExchangeFolder.create(tmp_path / "operator", [], [], keyed=["router", "la-886"])


def _participant_machine(operator_folder, tmp_path, pid="la-886"):
    """What a participant's machine holds: the anchor, the signed directory and its own key files only."""
    root = tmp_path / pid
    (root / "keys").mkdir(parents=True)
    for name in ("operator.pub.jwk", "directory.json"):
        shutil.copy(operator_folder.root / name, root / name)
    for key in (operator_folder.root / "keys").glob(f"{pid}-*"):
        shutil.copy(key, root / "keys" / key.name)
    return root


def test_a_participant_machine_signs_and_sends_with_its_own_key_only(operator_folder, tmp_path):
    folder = ExchangeFolder(_participant_machine(operator_folder, tmp_path))
    assert folder.has_key("la-886") and not folder.has_key("router")
    assert folder.outbox("la-886").key.kid == "la-886-1"
    assert "la-886" in folder.directory.participants
    folder.transport().close()  # the embedded queues, declared for the directory's participants
    with pytest.raises(ExchangeFolderError, match="operator.key is missing"):
        folder.operator_key  # noqa: B018
    with pytest.raises(ExchangeFolderError, match="sgx directory keygen .*--participant lado-371"):
        folder.outbox("lado-371")
    with pytest.raises(ExchangeFolderError, match="no router key"):
        folder.router(folder.transport())


def test_a_folder_without_its_anchor_is_not_trusted(operator_folder, tmp_path):
    root = _participant_machine(operator_folder, tmp_path)
    (root / "operator.pub.jwk").unlink()
    with pytest.raises(DirectoryError, match="operator.pub.jwk is missing"):
        ExchangeFolder(root).load_directory(read_only=True)


def test_an_expired_directory_is_read_with_a_warning_and_refused_for_sending(operator_folder):
    operator_folder.directory_file.write_bytes(operator_folder.directory.sign(operator_folder.operator_key,
                                                                              valid_for=timedelta(seconds=-1)))
    warnings: list[str] = []
    folder = ExchangeFolder(operator_folder.root, warn=warnings.append)
    assert folder.load_directory(read_only=True).participants
    assert warnings and "expired" in warnings[0] and f"sgx directory sign --dir {folder.root}" in warnings[0]
    with pytest.raises(DirectoryExpired):
        folder.directory  # noqa: B018 - what sending and routing use


def test_a_directory_close_to_expiry_warns_a_week_ahead(operator_folder):
    operator_folder.publish_directory(valid_for=timedelta(days=30))
    directory = operator_folder.directory
    expires = d.parse_time(directory.expires_at)
    assert operator_folder.expiry_notice(directory, now=expires - timedelta(days=8)) is None
    assert "expires at" in operator_folder.expiry_notice(directory, now=expires - timedelta(days=6))
    # A short validity is not "expiring" for most of its life: a quarter of it at most.
    operator_folder.publish_directory(valid_for=timedelta(days=4))
    directory = operator_folder.directory
    expires = d.parse_time(directory.expires_at)
    assert operator_folder.expiry_notice(directory, now=expires - timedelta(days=2)) is None
    assert "expires at" in operator_folder.expiry_notice(directory, now=expires - timedelta(hours=12))


def test_on_rabbitmq_a_participant_without_its_broker_password_is_told_to_run_setup(operator_folder):
    folder = ExchangeFolder(operator_folder.root, "amqp://admin:secret@127.0.0.1:9/%2F")
    with pytest.raises(ExchangeFolderError, match="sgx broker setup"):
        folder.transport(as_participant="la-886")


def test_open_reads_back_what_create_made(operator_folder):
    opened = ExchangeFolder.open(operator_folder.root)
    assert opened.keys["la-886"].kid == "la-886-1" and opened.keys["router"].kid == "router-1"
    assert opened.directory.version == operator_folder.directory.version
    assert isinstance(opened.directory, d.Directory)
