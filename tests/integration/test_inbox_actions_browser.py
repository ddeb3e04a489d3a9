"""Acting on a notification in headless Chromium, on an exchange built and run through the `sgx` commands (the
embedded transport and the real router): the host LADO signs in, opens the provider's allegation referral,
acknowledges it and records a decision, with the mouse and then with the keyboard alone; the provider's
`sgx node status` then shows the LADO acknowledged and decided it. Screenshots kept."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from broker.inbox.app import ASSETS, create_app, secret_key
from broker.inbox.cli import open_responder, open_store
from standard import artefacts

SGX = str(Path(sys.executable).parent / "sgx")
PASSWORD = "correct horse battery staple"
PROVIDER, LADO = "provider-example-care", "lado-371"
REFERRAL = "allegation-referral-physical"


def _sgx(*args: str, env=None) -> str:
    done = subprocess.run([SGX, *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-1500:]
    return done.stdout


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    assert ASSETS.is_dir(), "GOV.UK Frontend is installed by scripts/setup (npm)"
    ex = str(tmp_path_factory.mktemp("exchange"))
    _sgx("directory", "init", "--dir", ex)
    _sgx("directory", "add-participant", "--dir", ex, "--id", PROVIDER, "--kind", "provider", "--name",
         "Example Care Ltd")
    for p in ("router", "la-371", LADO, "ofsted", PROVIDER):
        _sgx("directory", "keygen", "--dir", ex, "--participant", p)
    _sgx("directory", "add-setting", "--dir", ex, "--urn", "SC900001", "--name", "Example Lodge", "--host-la",
         "la-371", "--provider", PROVIDER)
    _sgx("directory", "sign", "--dir", ex)
    _sgx("node", "send", "--dir", ex, "--participant", PROVIDER, str(artefacts.EXAMPLES / f"{REFERRAL}.json"))
    _sgx("broker", "route", "--dir", ex, "--once")
    assert "received 1" in _sgx("node", "run", "--dir", ex, "--participant", LADO, "--once")
    _sgx("inbox", "add-user", "--dir", ex, "--participant", LADO, "--email", "lado@example.org", "--name",
         "Lee Officer", env={**os.environ, "SGX_INBOX_PASSWORD": PASSWORD})
    _sgx("inbox", "add-user", "--dir", ex, "--participant", PROVIDER, "--email", "care@example.org", "--name",
         "Cara Provider", env={**os.environ, "SGX_INBOX_PASSWORD": PASSWORD})
    root = Path(ex)
    servers, responders = [], []
    for participant in (LADO, PROVIDER):
        responders.append(open_responder(root, participant, None))
        app = create_app(open_store(root, participant), participant, key=secret_key(root, participant),
                         responder=responders[-1])
        servers.append(make_server("127.0.0.1", 0, app, threaded=True))
        threading.Thread(target=servers[-1].serve_forever, daemon=True).start()
    message_id = orjson.loads((artefacts.EXAMPLES / f"{REFERRAL}.json").read_bytes())["identifier"]["value"]
    yield ex, f"http://127.0.0.1:{servers[0].server_port}", message_id, f"http://127.0.0.1:{servers[1].server_port}"
    for server in servers:
        server.shutdown()
    for responder in responders:
        responder.close()


def _settled(browser, arrived) -> None:
    WebDriverWait(browser, 10).until(lambda b: arrived(b) and b.execute_script(
        "return document.readyState") == "complete")


def _sign_in(browser, served, email="lado@example.org") -> None:
    browser.delete_all_cookies()
    browser.get(served + "/sign-in")
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
    _settled(browser, lambda b: "/sign-in" not in b.current_url)


def _status_of_lado(ex: str, message_id: str) -> str:
    """What the provider sees: route what waits, take its node's mail, then `sgx node status`."""
    _sgx("broker", "route", "--dir", ex, "--once")
    _sgx("node", "run", "--dir", ex, "--participant", PROVIDER, "--once")
    return _sgx("node", "status", "--dir", ex, "--participant", PROVIDER, message_id)


def test_the_lado_acknowledges_and_decides_and_the_sender_sees_it(exchange, browser, screenshots):
    ex, served, message_id, provider = exchange
    _sign_in(browser, served)
    browser.find_element(By.CSS_SELECTOR, "tbody tr a").click()
    _settled(browser, lambda b: "/messages/" in b.current_url)
    assert "Allegation referral" in browser.find_element(By.TAG_NAME, "h1").text
    browser.save_screenshot(str(screenshots / "inbox-actions-message.png"))
    browser.find_element(By.ID, "acknowledge").click()
    _settled(browser, lambda b: "done=acknowledged" in b.current_url)
    assert "You acknowledged this message" in browser.find_element(By.ID, "done").text
    assert browser.find_element(By.ID, "status").text == "acknowledged"
    browser.find_element(By.CSS_SELECTOR, "label[for='decision-strategy-meeting']").click()
    browser.find_element(By.ID, "decision-text").send_keys("Invented: strategy meeting on Thursday.")
    browser.find_element(By.ID, "record-decision").click()
    _settled(browser, lambda b: "done=decided" in b.current_url)
    assert browser.find_element(By.ID, "status").text == "decided"
    browser.save_screenshot(str(screenshots / "inbox-actions-decided.png"))
    shown = _status_of_lado(ex, message_id)
    line = next(x for x in shown.splitlines() if x.strip().startswith(LADO))
    assert line.split()[:2] == [LADO, "decided"], shown
    steps = [x.split()[0] for x in shown.splitlines() if x.startswith("    ")]
    assert steps[:5] == ["accepted", "delivered", "read", "acknowledged", "decided"], shown  # each with its time
    assert "Threshold met: strategy meeting: Invented: strategy meeting on Thursday." \
        in shown
    # The provider's own inbox: its Sent page, then the message's page, per recipient.
    _sign_in(browser, provider, "care@example.org")
    browser.get(provider + "/sent")
    assert "decided" in browser.find_element(By.CSS_SELECTOR, "tbody tr").text
    browser.find_element(By.CSS_SELECTOR, "tbody tr a").click()
    _settled(browser, lambda b: "/sent/" in b.current_url)
    steps = browser.find_element(By.ID, f"steps-{LADO}")
    assert "strategy meeting" in steps.find_element(By.CSS_SELECTOR, "[data-step=decided]").text
    assert steps.find_element(By.CSS_SELECTOR, "[data-step=acknowledged]").text != "Not yet"
    browser.save_screenshot(str(screenshots / "inbox-actions-senders-view.png"))


def test_a_decision_can_be_recorded_with_the_keyboard_alone(exchange, browser):
    ex, served, message_id, _ = exchange
    _sign_in(browser, served)
    browser.get(f"{served}/messages/{message_id}")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.HOME)

    def tab_to(element_id: str) -> None:
        for _ in range(80):
            browser.switch_to.active_element.send_keys(Keys.TAB)
            if browser.switch_to.active_element.get_attribute("id") == element_id:
                return
        pytest.fail(f"#{element_id} cannot be reached with the Tab key")

    tab_to("decision-strategy-meeting")  # Tab enters a radio group at its first choice; arrows move and choose
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert browser.switch_to.active_element.get_attribute("id") == "decision-advice-only"
    assert browser.switch_to.active_element.is_selected()
    browser.switch_to.active_element.send_keys(Keys.TAB, "Invented: advice given to the employer.")
    assert browser.switch_to.active_element.get_attribute("id") == "decision-text"
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "record-decision"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    _settled(browser, lambda b: "done=decided" in b.current_url)
    assert "Advice only: Invented: advice given to the employer." in _status_of_lado(ex, message_id)


def test_the_action_forms_label_every_field_and_keep_one_main_heading(exchange, browser):
    _, served, message_id, provider = exchange
    _sign_in(browser, served)
    browser.get(f"{served}/messages/{message_id}")
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
    fields = browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea")
    assert len(fields) > 10  # the decisions, the texts, the colleague
    for field in fields:
        assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"), \
            field.get_attribute("id")
    # A decision without a choice: the error summary comes first and its link leads to the choices.
    browser.find_element(By.ID, "record-decision").click()
    _settled(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".govuk-error-summary"))
    link = browser.find_element(By.CSS_SELECTOR, ".govuk-error-summary__list a")
    assert link.text == "Select the decision or action" and link.get_attribute("href").endswith("#decision-decision")
