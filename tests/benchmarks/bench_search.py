"""Benchmark the search stage and print its figures.

- ANN recall@10 of the index against exact inner-product search;
- the time of `ShoeSearch.rank` (the call behind the HTTP API) and of `ShoeSearch.query` (which adds a DataFrame)
  against a bare FAISS search on the same index, as ratios (goal: at most 1.2);
- query latency p50/p99 and queries per second through the HTTP API, under concurrent load from a second process
  on 127.0.0.1.

50k real vectors (the UT-Zappos index of a study run):

    python tests/benchmarks/bench_search.py --index runs/study/index

1M synthetic vectors of the same dimension, written once to --out and reused on later runs. At that size
`choose_index_type` picks HNSW, whose build takes tens of CPU-minutes (an estimate):

    python tests/benchmarks/bench_search.py --index runs/study/index --synthetic 1000000 --out runs/bench-1m

--index-type hnsw with a smaller --synthetic measures HNSW recall where building 1M vectors takes too long.

Synthetic vectors are real photo embeddings plus Gaussian noise (norm about 0.3 before renormalising). At 1M, each of
the 50k photos has about 20 noisy copies, so a query's 10 nearest neighbours are mostly copies of one photo. That is
an easier case for HNSW than 1M distinct products, so read the synthetic recall@10 as an upper bound.
"""
import argparse
import concurrent.futures
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

QUERIES = ["giày thể thao nam màu trắng", "white men's sneakers", "giay cao got do", "women's leather boots",
           "dép sandal nữ", "black oxford shoes", "boots for girls", "giày lười da nam"]


def percentile_ms(seconds, q) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


def load_client(base: str, kind: str, ids: int, concurrency: int, requests: int, seed: int = 0) -> dict:
    "Send `requests` GET /api/search requests from `concurrency` threads; return latencies and errors."
    import httpx
    rng = random.Random(seed)
    params = [{"similar": rng.randrange(ids), "k": 10} if kind == "similar" else {"q": rng.choice(QUERIES), "k": 10}
              for _ in range(requests)]
    with httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        for p in params[:concurrency]: client.get("/api/search", params=p)  # warm-up, not timed

        def one(p):
            started = time.perf_counter()
            status = client.get("/api/search", params=p).status_code
            return time.perf_counter() - started, status

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool: results = list(pool.map(one, params))
        wall = time.perf_counter() - started
    latencies = [t for t, _ in results]
    return {"kind": kind, "concurrency": concurrency, "requests": requests,
            "errors": sum(status != 200 for _, status in results), "p50_ms": percentile_ms(latencies, 50),
            "p99_ms": percentile_ms(latencies, 99), "qps": requests / wall}


def synthetic_folder(base: Path, out: Path, count: int, index_type: str = "auto", seed: int = 0) -> Path:
    "Write an index folder of `count` synthetic vectors near the base folder's embeddings, unless one exists."
    from clip_shoe.search import (FaissStore, choose_index_type, index_factory_string, make_faiss_index,
                                  write_index_folder)
    index_type = choose_index_type(count) if index_type == "auto" else index_type
    existing = json.loads((out/"info.json").read_text()) if (out/"info.json").exists() else {}
    if existing.get("count") == count and existing.get("index_type") == index_type:
        print(f"reusing {out}")
        return out
    info = json.loads((base/"info.json").read_text())
    embeddings = np.load(base/"embeddings.npy").astype(np.float32)
    metadata = pd.read_parquet(base/"metadata.parquet").drop(columns=["product_id"], errors="ignore")
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(embeddings), count)
    vectors = np.empty((count, embeddings.shape[1]), np.float16)
    for start in range(0, count, 100_000):
        chunk = embeddings[source[start:start + 100_000]]
        chunk += rng.normal(0, 0.3 / np.sqrt(chunk.shape[1]), chunk.shape).astype(np.float32)
        vectors[start:start + 100_000] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    started = time.perf_counter()
    store = FaissStore(make_faiss_index(vectors, np.arange(count), index_type))
    print(f"built {index_type} over {count} vectors in {time.perf_counter() - started:.0f} s")
    info = {k: v for k, v in info.items() if k not in ("count", "dim", "removed")}
    info.update(index=index_factory_string(index_type, count, vectors.shape[1]), index_type=index_type, format=2)
    rows = metadata.iloc[source].reset_index(drop=True).assign(product_id=np.arange(count))
    return write_index_folder(out, info, vectors, rows, store)


def recall_at_10(folder: Path, queries: int, seed: int = 1) -> dict:
    "Return recall@10 of the folder's FAISS index against exact search, on perturbed stored vectors."
    import faiss
    from clip_shoe.search import FaissStore, stored_product_ids
    info = json.loads((folder/"info.json").read_text())
    store = FaissStore.load(folder, info)
    embeddings = np.load(folder/"embeddings.npy", mmap_mode="r")
    rng = np.random.default_rng(seed)
    probe = np.asarray(embeddings[rng.integers(0, len(embeddings), queries)], np.float32)
    probe += rng.normal(0, 0.3 / np.sqrt(probe.shape[1]), probe.shape).astype(np.float32)
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(probe.shape[1])
    for start in range(0, len(embeddings), 100_000):
        exact.add(np.asarray(embeddings[start:start + 100_000], np.float32))
    _, truth = exact.search(probe, 10)
    product_ids = stored_product_ids(folder)
    started = time.perf_counter()
    _, found = store.search(probe, 10)
    per_query_ms = (time.perf_counter() - started) * 1000 / queries
    hits = sum(len(set(product_ids[t]) & set(f)) for t, f in zip(truth, found))
    return {"index": info["index"], "queries": queries, "recall@10": hits / (10 * queries),
            "batched_ms_per_query": per_query_ms}


def overhead(folder: Path, repeats: int, rounds: int = 5, seed: int = 2) -> dict:
    "Time `ShoeSearch.rank` and `query` by product id against a bare FAISS search for the same vector, on one thread."
    import faiss
    from clip_shoe.search import ShoeSearch
    faiss.omp_set_num_threads(1)
    search = ShoeSearch(folder)
    rng = np.random.default_rng(seed)
    ids = [int(i) for i in search.metadata.product_id.to_numpy()[rng.integers(0, len(search), repeats)]]
    vectors = [np.asarray(search.embeddings[search.rows_of([i])[0]], np.float32).reshape(1, -1) for i in ids]
    calls = {"bare": lambda n: search.store.index.search(vectors[n], 11),  # k + 1: the product is left out of its results
             "rank": lambda n: search.rank(product_id=ids[n], k=10),
             "query": lambda n: search.query(product_id=ids[n], k=10)}
    best = {name: float("inf") for name in calls}
    for _ in range(rounds):  # like timeit: the fastest round is the one least disturbed by other processes
        for name, call in calls.items():
            started = time.perf_counter()
            for n in range(repeats): call(n)
            best[name] = min(best[name], (time.perf_counter() - started) / repeats)
    return {"repeats": repeats, "rounds": rounds, "bare_faiss_ms": best["bare"] * 1000, "rank_ms": best["rank"] * 1000,
            "query_ms": best["query"] * 1000, "rank_ratio": best["rank"] / best["bare"],
            "query_ratio": best["query"] / best["bare"]}


def http_load(folder: Path, concurrency: int, requests: int) -> list[dict]:
    "Serve `folder` with clip-shoe-serve and load it from a second process; return one result per query kind."
    import httpx
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(Path(sys.executable).parent/"clip-shoe-serve"), "--index", str(folder),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                info = httpx.get(f"{base}/api/info", timeout=2).json()
                break
            except httpx.TransportError:
                time.sleep(1)
        else:
            raise RuntimeError(f"clip-shoe-serve did not start on {base}")
        results = []
        for kind in ("similar", "text"):
            client = subprocess.run([sys.executable, __file__, "--load-client", base, "--kind", kind,
                                     "--ids", str(info["count"]), "--concurrency", str(concurrency),
                                     "--requests", str(requests)], capture_output=True, text=True, check=True)
            results.append(json.loads(client.stdout))
        return results
    finally:
        server.terminate()
        server.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=Path("runs/study/index"), help="index folder to benchmark")
    parser.add_argument("--synthetic", type=int, default=0, help="build this many synthetic vectors from --index")
    parser.add_argument("--index-type", default="auto", help="synthetic index type: auto, flat, hnsw or ivfpq")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-search"), help="folder for the synthetic index")
    parser.add_argument("--queries", type=int, default=200, help="queries for recall@10")
    parser.add_argument("--repeats", type=int, default=200, help="queries per round for the overhead ratio")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--requests", type=int, default=400, help="HTTP requests per query kind")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--load-client", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="similar", help=argparse.SUPPRESS)
    parser.add_argument("--ids", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.load_client:
        print(json.dumps(load_client(args.load_client, args.kind, args.ids, args.concurrency, args.requests)))
        return

    folder = synthetic_folder(args.index, args.out, args.synthetic, args.index_type) if args.synthetic else args.index
    print(f"machine: {os.cpu_count()} CPUs; index {folder}")
    figures = {"recall": recall_at_10(folder, args.queries)}
    print(f"recall@10 of {figures['recall']['index']} against exact search: {figures['recall']['recall@10']:.3f} "
          f"({args.queries} queries, {figures['recall']['batched_ms_per_query']:.2f} ms a query in one batch)")

    figures["overhead"] = overhead(folder, args.repeats)
    o = figures["overhead"]
    print(f"one thread, mean of {o['repeats']} queries in the fastest of {o['rounds']} rounds: bare FAISS search "
          f"{o['bare_faiss_ms']:.3f} ms, ShoeSearch.rank {o['rank_ms']:.3f} ms (ratio {o['rank_ratio']:.2f}, goal <= 1.2), "
          f"ShoeSearch.query with its DataFrame {o['query_ms']:.3f} ms (ratio {o['query_ratio']:.2f})")

    figures["http"] = http_load(folder, args.concurrency, args.requests)
    for h in figures["http"]:
        print(f"HTTP {h['kind']:7s} x{h['requests']} at concurrency {h['concurrency']}: p50 {h['p50_ms']:.1f} ms, "
              f"p99 {h['p99_ms']:.1f} ms, {h['qps']:.1f} queries/s, {h['errors']} errors")
    if args.json: args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
