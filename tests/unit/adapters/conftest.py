"""An exchange folder with a placing LA (Kent, 886), a host LA (Doncaster, 371) with its LADO and ICB, and
one setting in Doncaster, for the adapter tests."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from sgx.cli import cli

SETTING_POSTCODE = "DN1 2AB"


def sgx(*args, code: int | None = 0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if code is not None:
        assert result.exit_code == code, result.output
    return result


def summary(*args, code: int = 0) -> dict:
    """Run an `sgx adapt` command; its summary (the last line on stdout)."""
    return orjson.loads(sgx(*args, code=code).stdout.strip().splitlines()[-1])


@pytest.fixture
def exchange(tmp_path):
    root = tmp_path / "ex"
    sgx("directory", "init", "--dir", root)
    for pid in ("la-886", "la-371", "lado-371", "icb-QF7", "router"):
        sgx("directory", "keygen", "--dir", root, "--participant", pid)
    sgx("directory", "add-setting", "--dir", root, "--urn", "SC900001", "--name", "Example Lodge", "--host-la",
        "la-371")
    draft = root / "directory.draft.json"
    data = orjson.loads(draft.read_bytes())
    for s in data["settings"]:
        s["postcode"] = SETTING_POSTCODE
    draft.write_bytes(orjson.dumps(data))
    sgx("directory", "sign", "--dir", root)
    return root


def routed(root) -> int:
    out = sgx("broker", "route", "--dir", root, "--once").output
    return int(out.split("routed ", 1)[1].split()[0])
