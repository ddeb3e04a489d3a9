"""`sgx inbox` on an exchange folder: only participants of the directory, files readable by their owner only,
and a port in use said plainly."""

from __future__ import annotations

import socket
import stat

from click.testing import CliRunner

from sgx.cli import cli

ENV = {"SGX_INBOX_PASSWORD": "a long enough passphrase"}


def _exchange(tmp_path):
    root = tmp_path / "ex"
    runner = CliRunner()
    runner.invoke(cli, ["directory", "init", "--dir", str(root)])
    runner.invoke(cli, ["directory", "sign", "--dir", str(root)])
    return root


def _add(root, participant):
    return CliRunner().invoke(cli, ["inbox", "add-user", "--dir", str(root), "--participant", participant,
                                    "--email", "o@example.org", "--name", "O"], env=ENV)


def test_only_a_participant_of_the_directory_gets_an_inbox(tmp_path):
    root = _exchange(tmp_path)
    for wrong in ("la-999", "x/../../evil", "../lado-371"):
        result = _add(root, wrong)
        assert result.exit_code == 2 and "not a participant" in result.output, wrong
    assert not list(root.rglob("*.web.db")) and not (root / "evil.web.db").exists()
    assert _add(root, "lado-371").exit_code == 0


def test_the_inbox_files_are_readable_by_their_owner_only(tmp_path):
    root = _exchange(tmp_path)
    _add(root, "lado-371")
    made = root / "inbox" / "lado-371.web.db"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600


def test_a_port_in_use_is_named_with_what_to_do(tmp_path):
    root = _exchange(tmp_path)
    _add(root, "lado-371")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["inbox", "serve", "--dir", str(root), "--participant", "lado-371",
                                          "--port", str(port)])
    assert result.exit_code == 2 and f"127.0.0.1:{port}" in result.output and "--port" in result.output


def test_a_password_can_be_piped_in_by_a_script_without_noise(tmp_path):
    root = _exchange(tmp_path)
    result = CliRunner().invoke(cli, ["inbox", "add-user", "--dir", str(root), "--participant", "lado-371",
                                      "--email", "p@example.org", "--name", "P"], input="a long enough passphrase\n")
    assert result.exit_code == 0 and "added p@example.org" in result.output and "Warning" not in result.output


def test_the_session_key_is_made_once_owner_only_and_kept(tmp_path):
    from broker.inbox.app import secret_key

    first, again = secret_key(tmp_path, "lado-371"), secret_key(tmp_path, "lado-371")
    made = tmp_path / "keys" / "inbox-lado-371.secret"
    assert first == again and len(first) == 32 and stat.S_IMODE(made.stat().st_mode) == 0o600
    assert [p.name for p in made.parent.iterdir()] == [made.name]  # nothing half-written left behind


def test_serve_acts_with_the_participants_key_and_says_when_it_can_only_read(tmp_path):
    root = _exchange(tmp_path)
    _add(root, "lado-371")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        serve = ["inbox", "serve", "--dir", str(root), "--participant", "lado-371", "--port", port]
        reading = CliRunner().invoke(cli, serve)
        assert "can read but not acknowledge" in reading.output
        CliRunner().invoke(cli, ["directory", "keygen", "--dir", str(root), "--participant", "lado-371"])
        acting = CliRunner().invoke(cli, serve)
    assert "can read but not acknowledge" not in acting.output and acting.exit_code == 2  # only the port stops it
    assert (root / "outbox" / "lado-371.db").exists()  # its actions leave from the participant's own outbox
