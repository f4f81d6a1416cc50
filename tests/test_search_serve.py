"""The search server on 127.0.0.1 through real HTTP, and its web page in headless Chromium."""
import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    "Return a TCP port on 127.0.0.1 that nothing listens on now."
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def index(tmp_path_factory, data_root):
    "Index 120 UT-Zappos photos with the offline model, saved as a checkpoint so the server loads the same weights."
    from clip_shoe.dataset import ut_zappos_catalog
    from clip_shoe.model import OFFLINE_MODEL, create_model, save_checkpoint
    from clip_shoe.search import build_index
    folder = tmp_path_factory.mktemp("serve")
    checkpoint = save_checkpoint(create_model().model, folder/"model.pt", OFFLINE_MODEL)
    photos = ut_zappos_catalog(data_root/"ut-zap50k").sample(120, random_state=3).reset_index(drop=True)
    return build_index(create_model(OFFLINE_MODEL, str(checkpoint)), photos, folder/"index", num_workers=0)


@pytest.fixture(scope="module")
def server(index, data_root):
    "Run clip-shoe-serve on a free port of 127.0.0.1 with image URLs allowed; yield (base URL, process)."
    port = free_port()
    script = Path(sys.executable).parent/"clip-shoe-serve"
    process = subprocess.Popen([str(script), "--index", str(index), "--port", str(port), "--allow-image-urls"],
                               env={**os.environ, "CLIP_SHOE_DATA": str(data_root)}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/api/info", timeout=2).status_code == 200: break
        except httpx.TransportError:
            time.sleep(0.5)
    if process.poll() is not None or time.monotonic() >= deadline:
        process.kill()
        pytest.fail(f"clip-shoe-serve did not start on {base}:\n{process.stdout.read()}")
    yield base, process
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def photo_server(index):
    "Serve the indexed photos' folder over HTTP on 127.0.0.1; yield its base URL."
    root = Path(pd.read_parquet(index/"metadata.parquet").image[0]).parents[3]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", root
    httpd.shutdown()


def test_server_listens_on_loopback_only(server):
    base, process = server
    port = int(base.rsplit(":", 1)[1])
    if shutil.which("ss") is None: pytest.skip("ss is not installed (Debian package iproute2)")
    ss = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True)
    local_addresses = [line.split()[3] for line in ss.stdout.splitlines()]
    assert local_addresses == [f"127.0.0.1:{port}"]


def test_search_by_image_url(server, photo_server, index):
    base, _ = server
    photo_base, root = photo_server
    photo = Path(pd.read_parquet(index/"metadata.parquet").image[9])
    response = httpx.get(f"{base}/api/search", params={"image_url": f"{photo_base}/{photo.relative_to(root)}", "k": 3})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["product_id"] == 9


def test_bad_requests_leave_server_up(server, index):
    base, process = server
    jpeg = Path(pd.read_parquet(index/"metadata.parquet").image[0]).read_bytes()
    cases = [
        ({"params": {"q": "a" * 10_000}}, 400),
        ({"params": {"q": ""}}, 400),
        ({"params": {"q": "boots", "filters": "brand=Nike"}}, 400),
        ({"params": {"image_url": "http://127.0.0.1:9/missing.jpg"}}, 400),
    ]
    for request, status in cases:
        assert httpx.get(f"{base}/api/search", **request).status_code == status, request
    uploads = [(b"GIF89a not really", 415), (jpeg[:len(jpeg) // 2], 400), (b"\xff\xd8\xff" + b"\0" * 25_000_000, 413)]
    for body, status in uploads:
        response = httpx.post(f"{base}/api/search", files={"image": ("upload.jpg", body)}, timeout=60)
        assert response.status_code == status, response.text[:200]
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as raw:
        raw.sendall(b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        assert b" 413 " in raw.recv(200)
    assert process.poll() is None
    assert httpx.get(f"{base}/api/search", params={"q": "boots", "k": 2}).status_code == 200


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    "A headless Chromium page on the search page."
    if not Path(CHROMIUM).exists(): pytest.fail(f"{CHROMIUM} is missing; install the Debian packages chromium")
    from playwright.sync_api import sync_playwright
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM,
                                                                 headless=True, args=CHROMIUM_ARGS)
        page = context.new_page()
        page.goto(server[0])
        page.wait_for_selector("select.filter", state="attached")
        yield page
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def submit(page, button="#search"):
    "Click `button` and wait until the page has received the answer to that request."
    done = int(page.get_attribute("#results", "data-completed") or 0)
    page.click(button)
    page.wait_for_function(f"Number(document.querySelector('#results').dataset.completed || 0) > {done}")


def test_page_text_query(page):
    page.fill("#q", "giay cao got")
    submit(page)
    assert page.locator(".card").count() == 20
    page.wait_for_function("document.querySelector('.card img').complete")
    assert page.locator(".card img").first.evaluate("img => img.naturalWidth > 0")
    submit(page, "#next")
    assert page.inner_text("#page-number") == "page 2"
    assert page.locator(".card").count() > 0


def test_page_photo_upload_finds_photo(page, index):
    photo = pd.read_parquet(index/"metadata.parquet").image[17]
    page.fill("#q", "")
    page.set_input_files("#photo", photo)
    submit(page)
    assert page.locator(".card").first.get_attribute("data-product-id") == "17"
    page.click("#clear-photo")


def test_page_filter_and_more_like_this(page):
    gender = page.locator("select.filter[data-field=Gender]")
    gender.select_option("Women")
    page.fill("#q", "boots")
    submit(page)
    genders = page.locator(".card dt:text-is('Gender') + dd").all_inner_texts()
    assert genders
    assert all("Women" in g for g in genders)
    first_id = page.locator(".card").first.get_attribute("data-product-id")
    submit(page, ".card .similar >> nth=0")
    assert first_id not in page.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.productId)")
    gender.select_option("")


def test_page_shows_rejection(page, tmp_path):
    (tmp_path/"notes.jpg").write_text("this is not a photo")
    page.set_input_files("#photo", str(tmp_path/"notes.jpg"))
    submit(page)
    assert page.is_visible("#error")
    assert "not an image" in page.inner_text("#error")
    page.click("#clear-photo")
