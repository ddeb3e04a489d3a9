"""The web inbox in headless Chromium, on an exchange built and run through the `sgx` commands: sign in, filter,
open a notification as a case note, move through the main flow with the keyboard alone; screenshots kept."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait
from werkzeug.serving import make_server

from broker.inbox.app import ASSETS, create_app, secret_key
from broker.inbox.cli import open_store
from standard import artefacts

SGX = str(Path(sys.executable).parent / "sgx")
PASSWORD = "correct horse battery staple"
SENT = {"la-886": ["placement-started-childrens-home", "placement-ended-allegation"],
        "provider-example-care": ["serious-incident-police"]}


def _sgx(*args: str, env=None) -> str:
    done = subprocess.run([SGX, *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-1500:]
    return done.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    assert ASSETS.is_dir(), "GOV.UK Frontend is installed by scripts/setup (npm)"
    ex = str(tmp_path_factory.mktemp("exchange"))
    _sgx("directory", "init", "--dir", ex)
    _sgx("directory", "add-participant", "--dir", ex, "--id", "provider-example-care", "--kind", "provider",
         "--name", "Example Care Ltd")
    for p in ("router", "la-886", "la-371", "icb-QF7", "ofsted", "provider-example-care"):
        _sgx("directory", "keygen", "--dir", ex, "--participant", p)
    _sgx("directory", "add-setting", "--dir", ex, "--urn", "SC900001", "--name", "Example Lodge", "--host-la",
         "la-371", "--provider", "provider-example-care")
    _sgx("directory", "sign", "--dir", ex)
    for sender, names in SENT.items():
        _sgx("node", "send", "--dir", ex, "--participant", sender,
             *[str(artefacts.EXAMPLES / f"{n}.json") for n in names])
    _sgx("broker", "route", "--dir", ex, "--once")
    assert "received 3" in _sgx("node", "run", "--dir", ex, "--participant", "la-371", "--once")
    _sgx("inbox", "add-user", "--dir", ex, "--participant", "la-371", "--email", "officer@example.org", "--name",
         "Olu Officer", "--role", "manager", env={**os.environ, "SGX_INBOX_PASSWORD": PASSWORD})
    root = Path(ex)
    app = create_app(open_store(root, "la-371"), "la-371", key=secret_key(root, "la-371"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _settled(browser, arrived) -> None:
    """Wait (10 s at most) until the browser has arrived where a click leads and the page has loaded."""
    WebDriverWait(browser, 10).until(lambda b: arrived(b) and b.execute_script(
        "return document.readyState") == "complete")


def _shot(browser, screenshots, name):
    path = screenshots / f"inbox-{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 5000


def test_sign_in_filter_and_read_a_notification(served, browser, screenshots):
    browser.delete_all_cookies()
    browser.get(served + "/")
    assert browser.current_url.startswith(served + "/sign-in")
    _shot(browser, screenshots, "sign-in")
    browser.find_element(By.ID, "email").send_keys("officer@example.org")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    _settled(browser, lambda b: "/sign-in" not in b.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Inbox"
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 3
    assert "3 new" in browser.find_element(By.ID, "counts").text
    # GOV.UK Frontend's stylesheet is loaded from its package: the header has its dark background.
    header = browser.find_element(By.CSS_SELECTOR, ".govuk-header")
    assert header.value_of_css_property("background-color") in ("rgba(11, 12, 12, 1)", "rgb(11, 12, 12)")
    _shot(browser, screenshots, "list")
    Select(browser.find_element(By.ID, "event")).select_by_value("serious-incident")
    browser.find_element(By.CSS_SELECTOR, "form[action='/'] button").click()
    _settled(browser, lambda b: "event=serious-incident" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    _settled(browser, lambda b: "/messages/" in b.current_url)
    assert "Serious incident" in browser.find_element(By.TAG_NAME, "h1").text
    body = browser.find_element(By.TAG_NAME, "main").text
    assert "Example Lodge" in body and "Serious incident needing police" in body and "verified" in body
    _shot(browser, screenshots, "message")
    browser.find_element(By.LINK_TEXT, "C00001").click()
    _settled(browser, lambda b: "/children/" in b.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Child C00001 of LA 886"
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == 3  # started, incident, ended
    _shot(browser, screenshots, "child")


def test_the_main_flow_works_with_the_keyboard_alone(served, browser):
    browser.delete_all_cookies()
    browser.get(served + "/sign-in")
    active = browser.switch_to.active_element
    active.send_keys(Keys.TAB)  # the skip link comes first
    assert browser.switch_to.active_element.text == "Skip to main content"
    browser.find_element(By.ID, "email").click()
    browser.switch_to.active_element.send_keys("officer@example.org", Keys.TAB, PASSWORD, Keys.ENTER)
    _settled(browser, lambda b: "/sign-in" not in b.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Inbox"
    # Tab from the top of the page to the first message link, then open it with Enter.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.HOME)
    for _ in range(40):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if (browser.switch_to.active_element.get_attribute("href") or "").count("/messages/"):
            break
    else:
        pytest.fail("no message link can be reached with the Tab key")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    _settled(browser, lambda b: "/messages/" in b.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text  # the message page, reached by keyboard, has its heading
    assert browser.find_elements(By.CSS_SELECTOR, ".govuk-summary-list")


def test_pages_have_labels_for_every_field_and_one_main_heading(served, browser):
    browser.get(served + "/")
    for page in (served + "/", served + "/sign-in"):
        browser.get(page)
        assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
        for field in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select"):
            assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"), page


def test_assets_come_from_the_published_package():
    assert (ASSETS / "govuk-frontend.min.css").is_file()
    package = ASSETS.parents[1] / "package.json"
    assert '"version": "5.14.0"' in package.read_text()
