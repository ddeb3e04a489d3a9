"""The standard's documentation site in a real browser: every page renders as markup (no escaped tags on the
page), every link resolves, and the main pages are kept as screenshots for review."""

from __future__ import annotations

import functools
import http.server
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
from click.testing import CliRunner
from lxml import html

from sgx.cli import cli

TAG_AS_TEXT = re.compile(r"</?(h1|h2|h3|p|table|tr|td|th|ul|li|a|section|dl|dt|dd|code|span)\b[^>]*>")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = CliRunner().invoke(cli, ["standard", "docs", "--out", str(out)])
    assert result.exit_code == 0, result.output
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _links(page_url: str, body: bytes) -> set[str]:
    tree = html.fromstring(body)
    return {urldefrag(urljoin(page_url, href))[0] for href in tree.xpath("//a/@href") if href}


def test_every_link_of_every_page_resolves(site):
    folder, base = site
    seen, queue, broken = set(), [base + "index.html"], []
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback server
                body, kind = response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            broken.append(f"{url}: {exc.code}")
            continue
        if kind == "text/html":
            queue.extend(u for u in _links(url, body) if urlparse(u).netloc == urlparse(base).netloc)
    assert broken == []
    pages = {p.relative_to(folder).as_posix() for p in folder.rglob("*.html")}
    reached = {urlparse(u).path.lstrip("/") + ("index.html" if u.endswith("/") else "") for u in seen}
    assert pages - reached == set(), "pages nothing links to"


@pytest.mark.parametrize("page", ["index.html", "message/serious-incident.html", "profile/SGX-Child.html",
                                  "terminology.html", "requirements.html", "findings.html"])
def test_pages_render_as_markup_in_chromium(site, browser, screenshots, page):
    _, base = site
    browser.get(base + page)
    text = browser.execute_script("return document.body.innerText")
    assert browser.find_elements("css selector", "main h1"), f"{page} has no heading"
    assert not TAG_AS_TEXT.search(text), f"{page} shows markup as text"
    browser.save_screenshot(str(screenshots / f"docs-{page.replace('/', '-').removesuffix('.html')}.png"))
    assert Path(screenshots / f"docs-{page.replace('/', '-').removesuffix('.html')}.png").stat().st_size > 5000
