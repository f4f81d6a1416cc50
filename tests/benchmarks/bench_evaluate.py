"""Time the evaluation of UT-Zappos end to end with empty and with warm embedding caches, and exact blocked search.

Run: python tests/benchmarks/bench_evaluate.py --checkpoint runs/study/ut-zappos-myntra/model.pt
It first ranks random float16 queries against a memory-mapped gallery the size of UT-Zappos50K, to show what exact
search in blocks costs and that its memory stays bounded. It then evaluates the base model and the checkpoint on the
UT-Zappos test split twice: first with empty embedding and trunk-feature caches, then again with the caches the
first pass wrote. Use --limit for a quicker run on a sample of the test split.

    python tests/benchmarks/bench_evaluate.py --scale 100000,800000 --max-queries 4096
instead ranks synthetic float16 features of that many pairs (one text for every two photos, memory-mapped from disk
as the embedding cache stores them) in all three directions, for a seeded sample of queries against the whole set, and
prints the time and the growth of the process's anonymous memory for each size. Encoding 800k real photos takes hours
on a CPU, so the features are synthetic: each photo's feature is its text's feature plus noise.
"""
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from fastcore.script import call_parse

from clip_shoe.core import setup_logging
from clip_shoe.evaluate import TextRows, positive_ranks, rank_metrics, retrieval_ranks, run_evaluation, sample_queries

from _memory import MemorySampler  # tests/benchmarks/_memory.py


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


def synthetic_pairs(folder: Path, n_pairs: int, dim: int = 512, noise: float = 4.0, seed: int = 0,
                    block: int = 65_536) -> tuple[np.ndarray, TextRows, np.ndarray]:
    "Write memory-mapped photo and distinct-text features of `n_pairs` pairs, two photos per text; return them and the text ids."
    generator = np.random.default_rng(seed)
    n_texts = n_pairs//2
    ids = generator.permutation(np.arange(n_pairs) % n_texts)
    texts = np.lib.format.open_memmap(folder/"texts.npy", mode="w+", dtype=np.float16, shape=(n_texts, dim))
    for start in range(0, n_texts, block):
        rows = generator.normal(size=(min(block, n_texts - start), dim)).astype(np.float32)
        texts[start:start + len(rows)] = rows/np.linalg.norm(rows, axis=1, keepdims=True)
    images = np.lib.format.open_memmap(folder/"images.npy", mode="w+", dtype=np.float16, shape=(n_pairs, dim))
    for start in range(0, n_pairs, block):
        rows = texts[ids[start:start + block]].astype(np.float32)
        rows += noise*generator.normal(size=rows.shape).astype(np.float32)/np.sqrt(dim)
        images[start:start + len(rows)] = rows/np.linalg.norm(rows, axis=1, keepdims=True)
    texts.flush(), images.flush()
    del texts, images
    return np.load(folder/"images.npy", mmap_mode="r"), TextRows(np.load(folder/"texts.npy", mmap_mode="r"), ids), ids


def time_scale(n_pairs: int, max_queries: int, block_size: int = 2048) -> None:
    "Rank a sample of queries against `n_pairs` synthetic pairs in all three directions; print time, memory and R@10."
    folder = Path(tempfile.mkdtemp(prefix="clip-shoe-bench-scale-"))
    images, texts, ids = synthetic_pairs(folder, n_pairs)
    queries = sample_queries(n_pairs, max_queries)
    sampler = MemorySampler()
    sampler.start()
    start = time.time()
    ranks = retrieval_ranks(images, texts, ids, queries, block_size=block_size)
    seconds = time.time() - start
    sampler.stop()
    recalls = ", ".join(f"{direction} R@10 {rank_metrics(r)['R@10']:.1f}" for direction, r in ranks.items())
    print(f"{n_pairs} pairs ({n_pairs//2} distinct texts), {len(queries)} queries per direction: {seconds:.0f} s, "
          f"anonymous memory +{sampler.growth_mib():.0f} MiB (resident incl. mapped file pages "
          f"+{sampler.growth_mib('VmRSS'):.0f} MiB); {recalls}")
    for path in folder.iterdir(): path.unlink()
    folder.rmdir()


@call_parse
def main(
    checkpoint: str = "runs/study/ut-zappos-myntra/model.pt",  # fine-tuned checkpoint evaluated beside the base model
    data: str = None,  # data root holding ut-zap50k/ (default: $CLIP_SHOE_DATA)
    limit: int = None,  # evaluate a seeded sample of this many test rows (default: the whole test split)
    resamples: int = 1000,  # bootstrap resamples, as in the default command
    search_items: int = 50_024,  # gallery size of the search timing (UT-Zappos50K has 50,024 photos)
    search_queries: int = 2048,  # queries of the search timing
    scale: str = None,  # comma-separated pair counts: time the synthetic large-set ranking instead (e.g. 100000,800000)
    max_queries: int = 4096,  # with --scale: query rows sampled per direction
):
    "Print the evaluation's wall time with empty and warm caches, and the time and memory of exact blocked search."
    setup_logging()
    if scale:
        for n_pairs in scale.split(","): time_scale(int(n_pairs), max_queries)
        return
    search_seconds, growth = time_search(search_items, search_queries)  # first, so the RSS growth is the search's alone
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
          f"{search_seconds:.1f} s, {search_queries/search_seconds:.0f} queries/s, peak RSS growth {growth:.2f} GiB, "
          f"peak RSS {peak_rss_gib():.1f} GiB")
