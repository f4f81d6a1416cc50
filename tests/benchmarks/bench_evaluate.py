"""Time the evaluation of UT-Zappos end to end with empty and with warm embedding caches, and exact blocked search.

Run: python tests/benchmarks/bench_evaluate.py --checkpoint runs/study/ut-zappos-myntra/model.pt
It first ranks random float16 queries against a memory-mapped gallery the size of UT-Zappos50K, to show what exact
search in blocks costs and that its memory stays bounded. It then evaluates the base model and the checkpoint on the
UT-Zappos test split twice: first with empty embedding and trunk-feature caches, then again with the caches the
first pass wrote. Use --limit for a quicker run on a sample of the test split.
"""
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from fastcore.script import call_parse

from clip_shoe.core import setup_logging
from clip_shoe.evaluate import positive_ranks, run_evaluation


def peak_rss_gib() -> float:
    "Return the peak resident memory of this process so far, in GiB (Linux reports ru_maxrss in KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20


def time_search(n_items: int, n_queries: int, dim: int = 512, seed: int = 0) -> tuple[float, float]:
    "Rank random queries against a memory-mapped float16 gallery; return seconds and the RSS growth in GiB."
    folder = Path(tempfile.mkdtemp(prefix="clip-shoe-bench-"))
    generator = np.random.default_rng(seed)
    gallery = np.lib.format.open_memmap(folder/"items.npy", mode="w+", dtype=np.float16, shape=(n_items, dim))
    for start in range(0, n_items, 8192):
        block = generator.normal(size=(min(8192, n_items - start), dim)).astype(np.float32)
        gallery[start:start + len(block)] = block/np.linalg.norm(block, axis=1, keepdims=True)
    gallery.flush()
    del gallery
    items = np.load(folder/"items.npy", mmap_mode="r")
    queries = np.asarray(items[:n_queries], dtype=np.float16)
    before = peak_rss_gib()
    start = time.time()
    ranks = positive_ranks(queries, items, np.arange(n_queries), np.arange(n_items))
    seconds = time.time() - start
    assert (ranks == 0).all(), "a query must find itself first"
    return seconds, peak_rss_gib() - before


@call_parse
def main(
    checkpoint: str = "runs/study/ut-zappos-myntra/model.pt",  # fine-tuned checkpoint evaluated beside the base model
    data: str = None,  # data root holding ut-zap50k/ (default: $CLIP_SHOE_DATA)
    limit: int = None,  # evaluate a seeded sample of this many test rows (default: the whole test split)
    resamples: int = 1000,  # bootstrap resamples, as in the default command
    search_items: int = 50_024,  # gallery size of the search timing (UT-Zappos50K has 50,024 photos)
    search_queries: int = 2048,  # queries of the search timing
):
    "Print the evaluation's wall time with empty and warm caches, and the time and memory of exact blocked search."
    setup_logging()
    seconds, growth = time_search(search_items, search_queries)  # first, so the RSS growth is the search's alone
    cache, features = (Path(tempfile.mkdtemp(prefix=f"clip-shoe-{name}-")) for name in ("embeddings", "features"))
    out = Path(tempfile.mkdtemp(prefix="clip-shoe-bench-evaluate-"))
    timings = {}
    for label in ("empty caches", "warm caches"):
        start = time.time()
        results = run_evaluation(["base", checkpoint], ["ut-zappos"], out, out, data=data, limit=limit,
                                 n_resamples=resamples, cache=cache, feature_dir=features)
        timings[label] = time.time() - start
    photos = results[0]["n"]
    for label, seconds in timings.items():
        print(f"UT-Zappos test, {photos} photos, 2 models, {resamples} resamples, {label}: {seconds/60:.1f} min")
    print(f"exact blocked search: {search_queries} queries × {search_items} float16 items (memory-mapped), "
          f"{seconds:.1f} s, {search_queries/seconds:.0f} queries/s, peak RSS growth {growth:.2f} GiB, "
          f"peak RSS {peak_rss_gib():.1f} GiB")
