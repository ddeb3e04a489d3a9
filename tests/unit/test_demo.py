"""The main job runs end to end and says what it promises."""

from __future__ import annotations

from click.testing import CliRunner

from sgx.cli import cli


def test_demo_validates_every_example_and_writes_the_site(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--site", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "INVALID" not in result.output
    assert sum(" valid   -> " in line for line in result.output.splitlines()) == 16
    assert "nhs-number-invalid" in result.output and "9990000019" not in result.output
    assert (tmp_path / "index.html").exists()
