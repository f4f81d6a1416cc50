"""Build the offline documentation site and check it as a reader would, in headless Chromium."""
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

from clip_shoe.docs import build_docs, check_site, sidebar_pages

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_root, monkeypatch_module):
    "The site built by the nbconvert renderer into a temporary folder."
    monkeypatch_module.chdir(REPO)
    return build_docs(tmp_path_factory.mktemp("site")/"_docs")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch: yield patch


@pytest.fixture(scope="module")
def served_site(site):
    "Serve the site over HTTP on 127.0.0.1 and yield its base URL."
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    "Headless Debian Chromium driven by Playwright (path from CLIP_SHOE_CHROMIUM, default /usr/bin/chromium)."
    executable = os.environ.get("CLIP_SHOE_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"Chromium not found at {executable}; install Debian's chromium or set CLIP_SHOE_CHROMIUM")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        # Playwright gives Chromium a fresh temporary profile; the flags keep it off the network.
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def test_sidebar_lists_every_notebook():
    listed = {page["file"] for page in sidebar_pages(REPO/"nbs"/"sidebar.yml")}
    notebooks = {path.name for path in (REPO/"nbs").glob("*.ipynb")}
    assert notebooks - listed == set(), "add these notebooks to nbs/sidebar.yml"
    assert listed - notebooks == set(), "nbs/sidebar.yml lists notebooks that do not exist"


def test_site_has_required_pages(site):
    for page in ["index.html", "reproduce.html", "api.html", "limitations.html", "core.html", "docs.html"]:
        assert (site/page).exists(), page


def test_site_links_resolve(site):
    assert check_site(site) == []


def test_index_shows_results_table(site):
    index = (site/"index.html").read_text()
    assert "SubCategory Acc@1" in index
    assert 'src="figures/results.png"' in index


def test_site_in_chromium(site, served_site, browser):
    page = browser.new_page()
    pending, seen, anchors = [served_site + "index.html"], set(), []
    while pending:
        url = pending.pop()
        if url in seen: continue
        seen.add(url)
        response = page.goto(url)
        assert response is not None and response.ok, f"{url} returned {response and response.status}"
        assert "Traceback (most recent call last)" not in page.inner_text("body"), f"{url} shows a traceback"
        broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert broken == [], f"{url} has images that did not load"
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            target, fragment = urldefrag(urljoin(url, href))
            if not target.startswith(served_site): continue
            if fragment: anchors.append((target, fragment))
            if target not in seen: pending.append(target)
    for target in sorted({target for target, _ in anchors}):
        page.goto(target)
        fragments = sorted({fragment for other, fragment in anchors if other == target})
        missing = page.evaluate("ids => ids.filter(id => document.getElementById(id) === null)", fragments)
        assert missing == [], f"{target} has no anchors {missing}"
    assert len(seen) == len(list(site.glob("*.html"))), "some pages are not reachable from the index"
    page.close()
