"""Time the image–text pair stage (clip_shoe.pairs) on synthetic shop records and print pairs per second and peak memory.

The records recycle the real photos and titles of UT-Zappos50K and Myntra footwear with the variations a crawl
shows: shop spam, emoji, HTML entities, decomposed Vietnamese, upper case, resized and re-encoded copies of photos,
and about 1% broken records (missing photo, empty title, shoe accessory).

Commands, run from the repository root with CLIP_SHOE_DATA set:
    nice -n 19 python tests/benchmarks/bench_dataset.py --records 100000
    nice -n 19 python tests/benchmarks/bench_dataset.py --records 800000
    python tests/benchmarks/bench_dataset.py --phash   # how far apart perceptual hashes of copies and of other photos are
Memory is sampled from /proc every 0.2 s while the stage runs (tests/benchmarks/_memory.py): the main process's
resident size when the stage starts, its peak and the growth of its anonymous memory, and the largest worker's peak.
The grouping pass holds flat arrays of about 150 bytes per kept record (hashes, row numbers, ids); everything else
is read and written in blocks. The CPU time of the main process and its workers is printed too: unlike the wall
time, it hardly changes when other jobs share the machine.
"""
import html
import io
import json
import random
import resource
import shutil
import time
import unicodedata
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
from fastcore.script import call_parse
from PIL import Image, ImageOps

from clip_shoe.core import data_dir, setup_logging
from clip_shoe.dataset import CATEGORY_NAMES, SUBCATEGORY_NAMES, index_images, read_ut_zappos_metadata, \
    ut_zappos_caption, ut_zappos_caption_vi, ut_zappos_root
from clip_shoe.pairs import build_pairs, check_photo, photo_hashes

from _memory import MemorySampler  # tests/benchmarks/_memory.py

DESCRIPTIONS = [
    "<p>Da bò thật, đế cao su chống trơn.</p><p>Đổi trả trong 7 ngày.</p>",
    "Breathable mesh upper. Cushioned insole.<br>Free returns within 30 days.",
    "Chất liệu vải canvas thoáng khí &amp; bền. Liên hệ Zalo 0912.345.678 để tư vấn size.",
    "Soft suede with a padded collar!!! Visit https://shop.example.com for more.",
    "",
]
SPAM = ["[FREESHIP] {}", "{} 🔥🔥 hàng chính hãng", "【HOT】{} SALE 50%", "{} #giaynam #giaydep", "{}", "{}", "{}"]


def base_products(data: Path) -> list[dict]:
    "Return the real photos with their titles and categories: Myntra shop titles and UT-Zappos captions in both languages."
    myntra = pd.read_csv(data/"myntra-footwear"/"products.csv", dtype=str, keep_default_na=False)
    products = [dict(image=str(data/"myntra-footwear"/row.image), title=row.productDisplayName,
                     category=f"{row.subCategory} > {row.articleType}") for row in myntra.itertuples()]
    root = ut_zappos_root(data, download=False)
    images = index_images(root/"ut-zap50k-images")
    for row in read_ut_zappos_metadata(root).to_dict("records"):
        image = images.get(row["CID"].replace("-", ".") + ".jpg")
        if not image: continue
        caption = ut_zappos_caption_vi(row) if len(products) % 2 else ut_zappos_caption(row)
        products.append(dict(image=str(image), title=caption, brand=image.parent.name,
                             category=f"{CATEGORY_NAMES[row['Category']]} > {SUBCATEGORY_NAMES[(row['Category'], row['SubCategory'])]}"))
    return products


def make_variants(products: list[dict], folder: Path, count: int, rng: random.Random) -> dict[int, list[str]]:
    "Write resized, cropped and re-encoded copies of `count` photos; return product index -> copy paths."
    folder.mkdir(parents=True, exist_ok=True)
    variants = {}
    for i in rng.sample(range(len(products)), count):
        image = Image.open(products[i]["image"]).convert("RGB")
        width, height = image.size
        copy = image.crop((width//20, height//20, width - width//20, height - height//20))
        copy = ImageOps.contain(copy, (int(width*rng.uniform(0.7, 1.3)), int(height*1.3)))
        path = folder/f"{i}.jpg"
        copy.save(path, quality=rng.randint(60, 90))
        variants[i] = [str(path)]
    return variants


def synthetic_records(products: list[dict], variants: dict[int, list[str]], count: int, seed: int = 0):
    "Yield `count` shop-like records recycling the products, with text and photo variations and about 1% broken ones."
    rng = random.Random(seed)
    for number in range(count):
        index = rng.randrange(len(products))
        product = products[index]
        title = rng.choice(SPAM).format(product["title"])
        roll = rng.random()
        if roll < 0.1: title = title.upper()
        elif roll < 0.2: title = unicodedata.normalize("NFD", title)
        elif roll < 0.25: title = html.escape(title).replace("'", "&#39;")
        image = product["image"]
        if index in variants and rng.random() < 0.5: image = rng.choice(variants[index])
        broken = rng.random()
        if broken < 0.003: image = image + ".missing.jpg"
        elif broken < 0.006: title = "🔥🔥🔥"
        elif broken < 0.01: title, product = "Dây giày phản quang " + str(number), {**product, "category": "Phụ kiện giày"}
        yield {"sku": f"S{number}", "name": title, "description": rng.choice(DESCRIPTIONS),
               "brand": product.get("brand", ""), "breadcrumb": product["category"].split(" > "), "images": [image]}


def phash_calibration(data: Path) -> None:
    "Print how many bits separate each Myntra photo's hash from a resized re-encoded copy, and from other photos."
    paths = sorted((data/"myntra-footwear"/"images").glob("*.jpg"))
    originals, copies, short_hashes = [], [], []
    for path in paths:
        original = path.read_bytes()
        buffer = io.BytesIO()
        ImageOps.contain(Image.open(path).convert("RGB"), (160, 160)).save(buffer, "JPEG", quality=70)
        thumbnail = check_photo(original, max_objects=None)[1]
        originals.append(photo_hashes(original, thumbnail)[1])
        copies.append(photo_hashes(buffer.getvalue(), check_photo(buffer.getvalue(), max_objects=None)[1])[1])
        short_hashes.append(int(str(imagehash.phash(thumbnail)), 16))
    short_hashes = np.array(short_hashes, dtype=np.uint64)
    short_between = np.concatenate([np.bitwise_count(short_hashes[i] ^ short_hashes[i + 1:]) for i in range(len(paths))])
    print(f"64-bit phash: pairs of different photos within 4 bits: {(short_between <= 4).sum()} of {len(short_between)}")
    originals, copies = np.array(originals).view(np.uint64), np.array(copies).view(np.uint64)
    to_copy = np.bitwise_count(originals ^ copies).sum(axis=1)
    between = np.concatenate([np.bitwise_count(originals[i] ^ originals[i + 1:]).sum(axis=1) for i in range(len(paths))])
    print(f"phash (256 bits) of {len(paths)} Myntra photos: copy at 160 px, JPEG q70 is at most {to_copy.max()} bits "
          f"away (99th percentile {np.percentile(to_copy, 99):.0f}); pairs of different photos within 10 bits: "
          f"{(between <= 10).sum()} of {len(between)}")


def cpu_seconds() -> float:
    "User and system CPU seconds of this process and its finished child processes (the workers, once joined)."
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@call_parse
def main(
    records: int = 100_000,  # synthetic records to generate and process
    out: str = "runs/bench-dataset",  # work folder (deleted first unless --resume)
    workers: int = 2,  # processes for the record pass
    variants: int = 2000,  # photos that get a resized, re-encoded copy
    resume: bool = False,  # keep the work folder and resume the run in it
    phash: bool = False,  # print the perceptual-hash calibration instead of timing the stage
    data: str = None,  # data root holding ut-zap50k/ and myntra-footwear/ (default: $CLIP_SHOE_DATA)
):
    "Generate synthetic shop records, run the pair stage on them and print pairs per second and peak memory."
    setup_logging("INFO")
    data = data_dir(data)
    if phash: return phash_calibration(data)
    out = Path(out)
    if out.exists() and not resume: shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    products = base_products(data)
    variant_paths = make_variants(products, out/"variants", variants, random.Random(0))
    feed = out/"records.jsonl"
    if not feed.exists():
        with open(feed, "w", encoding="utf-8") as file:
            for record in synthetic_records(products, variant_paths, records):
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"generated {records} records from {len(products)} real products in {time.time() - start:.0f} s")
    fields = dict(id="sku", image="images", title="name", description="description", brand="brand", category="breadcrumb")
    del products, variant_paths
    sampler = MemorySampler()
    sampler.start()
    start, cpu_start = time.time(), cpu_seconds()
    sizes = build_pairs(feed, out/"pairs", fields, workers=workers, shard_size=10_000, progress=False,
                        figures=out/"figures")
    seconds, cpu = time.time() - start, cpu_seconds() - cpu_start
    sampler.stop()
    kept = sizes["train"] + sizes["test"]
    gib = 2**30
    print(f"pair stage: {records} records -> {kept} pairs ({sizes['train']} train, {sizes['test']} test) in "
          f"{seconds/60:.1f} min: {records/seconds:.0f} records/s, {kept/seconds:.0f} pairs/s with {workers} workers; "
          f"main process resident {sampler.start_values['VmRSS']/gib:.2f} GiB at the start, peak "
          f"{sampler.peak['VmRSS']/gib:.2f} GiB (anonymous memory +{sampler.growth_mib():.0f} MiB); "
          f"largest worker peak {sampler.peak_child/gib:.2f} GiB")
    # Wall time depends on what else runs on the machine; CPU time (main process and workers) does much less.
    print(f"CPU time {cpu/60:.1f} min in all: {kept/cpu:.0f} pairs per CPU-second")
