"""Pages per second of `clip-shoe-scrape` against a local fixture shop, beside a naive sequential `requests` loop.

Each run fetches the same pages (listing pages, product pages, images and robots.txt) from a fault-free fixture
site on 127.0.0.1. The runs are:

- polite: the crawler at its default politeness (1 s between requests to a host, 2 in flight, AutoThrottle).
- relaxed: the crawler with --not-polite (no per-host delay or limit, robots.txt still obeyed).
- naive: one `requests.get` after another over the URLs the relaxed crawl requested.

Relaxed and naive run twice: with no added latency, and with the server waiting `--latency` seconds before each
response to stand in for the round trip to a real shop. A rate is the number of requests the server received divided
by the time from the first to the last request, so the crawler's start-up (importing Scrapy) is left out.

Run: python tests/benchmarks/bench_scrape.py [--shop tiki] [--products 30] [--latency 0.05]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"fixtures"/"shops"))
from server import serve  # noqa: E402

SCRIPT = Path(sys.executable).parent/"clip-shoe-scrape"


def crawl_rate(shop: str, n_products: int, latency: float, *extra: str) -> tuple[float, list[str]]:
    "Crawl a fresh fixture site; return requests per second at the server and the paths requested."
    with serve(shop, n_products, faults=False, latency=latency) as server, tempfile.TemporaryDirectory() as tmp:
        command = [str(SCRIPT), "--shop", shop, "--out", f"{tmp}/crawl", "--base-url", server.base_url,
                   "--categories", *server.site.categories, "--log-level", "WARNING", *extra]
        subprocess.run(command, check=True, capture_output=True, timeout=3600)
        times = [r.time for r in server.log]
        return len(times)/(max(times) - min(times)), [r.path for r in server.log]


def naive_rate(shop: str, n_products: int, latency: float, paths: list[str]) -> float:
    "Fetch `paths` one after another with `requests`; return requests per second."
    with serve(shop, n_products, faults=False, latency=latency) as server, requests.Session() as session:
        start = time.monotonic()
        for path in paths: session.get(server.base_url + path, timeout=30).raise_for_status()
        return len(paths)/(time.monotonic() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shop", default="tiki", help="fixture shop to crawl (default: tiki)")
    parser.add_argument("--products", type=int, default=30, help="products in the fixture shop (default: 30)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the server waits per response in the second set of runs (default: 0.05)")
    args = parser.parse_args()
    rows = []
    for latency in (0.0, args.latency):
        relaxed, paths = crawl_rate(args.shop, args.products, latency, "--not-polite")
        naive = naive_rate(args.shop, args.products, latency, paths)
        if latency == 0.0: polite, _ = crawl_rate(args.shop, args.products, latency)
        rows += [(latency, name, rate, rate/naive) for name, rate in
                 ((("polite", polite),) if latency == 0.0 else ()) + (("relaxed", relaxed), ("naive", naive))]
    print(f"fixture shop {args.shop}, {args.products} products, {len(paths)} requests per run")
    print(f"{'latency':>8} {'run':<8} {'pages/s':>8} {'vs naive':>9}")
    for latency, name, rate, ratio in rows: print(f"{latency:7.2f}s {name:<8} {rate:8.1f} {ratio:8.3f}x")


if __name__ == "__main__":
    main()
