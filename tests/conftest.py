"""Shared fixtures: the standard's case suite loaded once for every test that needs it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from standard import artefacts

# Public synthetic sample exports from other projects' test suites, copied with their provenance and licence.
PUBLIC_SAMPLES = Path(__file__).resolve().parent / "corpus" / "public"


def load_cases() -> list[tuple[str, str, dict]]:
    """(case id, message type, test) for every test of every case file."""
    out = []
    for file in sorted(artefacts.CASES.glob("*.json")):
        for group in orjson.loads(file.read_bytes()):
            for test in group["tests"]:
                out.append((f"{group['message_type']}: {test['description']}", group["message_type"], test))
    return out


@pytest.fixture(scope="session")
def examples() -> dict[str, dict]:
    return {p.stem: orjson.loads(p.read_bytes()) for p in sorted(artefacts.EXAMPLES.glob("*.json"))}


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory):
    """A real RabbitMQ node on loopback, its own ports, data in a temp dir; with an admin user."""
    from broker.rabbitmq.server import RabbitNode

    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    node.start()
    node.ctl("add_user", "sgx-admin", "admin-secret")
    node.ctl("set_user_tags", "sgx-admin", "administrator")
    node.ctl("set_permissions", "-p", "/", "sgx-admin", ".*", ".*", ".*")
    node.admin_url = node.url("sgx-admin", "admin-secret")
    yield node
    node.stop()


FOREIGN = Path(__file__).resolve().parent / "foreign"


@pytest.fixture(scope="session")
def foreign_node() -> Path:
    """The folder whose node_modules hold the foreign implementations (installed by scripts/test)."""
    assert (FOREIGN / "node_modules").is_dir(), "run scripts/test (it installs tests/foreign with npm ci)"
    return FOREIGN


OUTPUT = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian's packages, driven through its own chromedriver (no downloads)."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "install chromium and chromium-driver (scripts/test does, as root)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(30)
    yield session
    session.quit()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where page tests keep screenshots for review (test-output/screenshots, ignored by git)."""
    folder = OUTPUT / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
