"""The main job runs end to end on the embedded transport and shows what it promises."""

from __future__ import annotations

from click.testing import CliRunner

from sgx.cli import cli
from sgx.demo import run_demo


def test_demo_command_runs_and_reports_refusals_and_an_intact_audit_log(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "a provider notifies a placement          rejected: unauthorised-sender" in result.output
    assert "a byte changed after signing             rejected: signature-invalid" in result.output
    assert "a captured message sent again            duplicate" in result.output
    assert "intact" in result.output
    assert "9990000" not in result.output  # no NHS number, no child id in what a person sees


def test_each_participant_receives_exactly_what_the_catalogue_routes_to_it(tmp_path):
    received = run_demo(tmp_path, echo=lambda *_: None)
    events = {pid: sorted(e for e, _ in items if e != "acknowledgement") for pid, items in received.items()}
    assert events["la-371"] == ["placement-started"] * 3 + ["serious-incident"] * 2  # host LA of the Lodge
    assert events["la-373"] == ["placement-started"]  # host LA of the House: only its own setting
    assert events["icb-QF7"] == ["placement-started"] * 4 + ["serious-incident"]  # only the health-related one
    assert events["la-886"] == ["allegation-notification", "serious-incident"]
    assert events["la-383"] == ["allegation-notification", "serious-incident"]
    assert events["la-352"] == []  # Manchester has no child at the Lodge
    assert events["lado-371"] == ["allegation-referral"]
    assert events["lado-886"] == events["lado-383"] == ["allegation-notification"]
    assert events["ofsted"] == ["allegation-notification", "serious-incident", "serious-incident"]
    assert all(v.startswith("signature by ") for items in received.values() for _, v in items)
