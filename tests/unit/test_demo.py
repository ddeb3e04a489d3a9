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


def test_the_demo_leaves_each_lados_inbox_ready_with_a_sign_in(tmp_path):
    import re

    from broker.inbox.app import create_app
    from broker.inbox.cli import open_store

    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    found = re.search(r"--participant lado-886 --port 8025\n\s+then open (http://\S+) and sign in as (\S+) with "
                      r"(\S+)", result.output)
    assert found, result.output[-800:]
    url, email, password = found.groups()
    assert url == "http://127.0.0.1:8025/" and "--participant lado-371 --port 8026" in result.output
    app = create_app(open_store(tmp_path / "demo", "lado-886"), "lado-886", key=b"k" * 32)
    client = app.test_client()
    page = client.get("/sign-in", base_url="https://localhost").data
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    signed = client.post("/sign-in", base_url="https://localhost", headers={"Referer": "https://localhost/sign-in"},
                         data={"email": email, "password": password, "csrf_token": token})
    assert signed.status_code == 302
    inbox = client.get("/", base_url="https://localhost").data.decode()
    assert "Cross-boundary allegation notification" in inbox and "<strong>1</strong> new" in inbox
    link = re.search(r'href="(/messages/[^"]+)"', inbox).group(1)
    page = client.get(link, base_url="https://localhost").data.decode()
    why = re.search(r'id="why">([^<]+)<', page).group(1)
    assert "2 of your own children at the setting" in why


def test_kents_lado_acknowledges_the_demo_notification_and_doncaster_sees_it(tmp_path, request):
    import re
    from urllib.parse import unquote

    from broker.inbox.app import create_app
    from broker.inbox.cli import open_responder, open_store

    demo = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(demo)])
    assert result.exit_code == 0, result.output
    email, password = re.search(r"--participant lado-886 --port 8025\n\s+then open \S+ and sign in as (\S+) with "
                                r"(\S+)", result.output).groups()
    responder = open_responder(demo, "lado-886", None)
    request.addfinalizer(responder.close)  # its sender thread
    app = create_app(open_store(demo, "lado-886"), "lado-886", key=b"k" * 32, responder=responder)
    client = app.test_client()
    https = {"base_url": "https://localhost"}
    page = client.get("/sign-in", **https).data
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    client.post("/sign-in", **https, headers={"Referer": "https://localhost/sign-in"},
                data={"email": email, "password": password, "csrf_token": token})
    link = re.search(r'href="(/messages/[^"]+)"', client.get("/", **https).data.decode()).group(1)
    page = client.get(link, **https).data
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    done = client.post(f"{link}/acknowledge", **https, headers={"Referer": "https://localhost/"},
                       data={"csrf_token": token})
    assert "done=acknowledged" in done.headers["Location"]
    # The commands the demo prints, then Doncaster's view of the notification it sent.
    for args in (["broker", "route", "--dir", str(demo), "--once"],
                 ["node", "run", "--dir", str(demo), "--participant", "lado-371", "--once"]):
        assert CliRunner().invoke(cli, args).exit_code == 0
    status = CliRunner().invoke(cli, ["node", "status", "--dir", str(demo), "--participant", "lado-371",
                                      unquote(link.removeprefix("/messages/"))])
    assert status.exit_code == 0, status.output
    kent = next(line for line in status.output.splitlines() if line.strip().startswith("lado-886"))
    assert kent.split()[:2] == ["lado-886", "acknowledged"], status.output


def test_the_demo_never_clears_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("not the demo's")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "did not make" in result.output
    assert (tmp_path / "mine.txt").exists()
