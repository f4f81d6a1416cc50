"""Vietnamese UT-Zappos captions, and the pair stage's command line end to end on real Myntra photos."""
import json
import shutil
import unicodedata
from types import SimpleNamespace

import pandas as pd
import pytest

from clip_shoe.dataset import read_ut_zappos_metadata, ut_zappos_caption_vi, ut_zappos_root


@pytest.fixture(scope="module")
def metadata(data_root):
    return read_ut_zappos_metadata(ut_zappos_root(data_root, download=False))


def test_caption_vi_examples(metadata):
    oxford = metadata[metadata.CID == metadata.CID.iloc[0]].iloc[0]
    assert ut_zappos_caption_vi(oxford) == "giày oxford da nam, buộc dây"
    heel = dict(Gender="Women", Material="Patent Leather", Category="Shoes", SubCategory="Heels",
                Closure="Sling Back", HeelHeight="4in - 4 3/4in")
    assert ut_zappos_caption_vi(heel) == "giày cao gót da bóng nữ, quai hậu, gót cao 10–12 cm"


def test_caption_vi_every_row_nfc(metadata, caplog):
    captions = [ut_zappos_caption_vi(row) for row in metadata.to_dict("records")]
    assert all(unicodedata.is_normalized("NFC", c) for c in captions)
    assert all(c for c in captions)
    assert "No Vietnamese word" not in caplog.text  # every attribute value has a reviewed Vietnamese word
    assert len(set(captions)) > 1000


@pytest.fixture(scope="module")
def myntra_sample(data_root, tmp_path_factory):
    "A user's CSV export of 60 Myntra products, with a byte-order mark, a missing photo and a corrupt JPEG."
    folder = tmp_path_factory.mktemp("export")
    products = pd.read_csv(data_root/"myntra-footwear"/"products.csv", dtype=str, keep_default_na=False).head(60)
    (folder/"photos").mkdir()
    for image in products.image: shutil.copy(data_root/"myntra-footwear"/image, folder/"photos")
    products["photo"] = "photos/" + products.image.str.split("/").str[-1]
    products.loc[0, "photo"] = "photos/missing.jpg"
    corrupt = folder/products.photo[1]
    corrupt.write_bytes(corrupt.read_bytes()[:800])
    csv = folder/"export.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + products.to_csv(index=False).encode("utf-8"))
    return csv


def test_pairs_cli_myntra_export(run_cli, myntra_sample, tmp_path):
    out = tmp_path/"pairs"
    process = run_cli("clip-shoe-pairs", myntra_sample, "--out", out, "--preset", "myntra", "--image-col", "photo",
                      "--shard-size", "20", "--no-progress")
    assert "open_clip: --train-data" in process.stdout
    manifest = pd.read_parquet(out/"manifest.parquet")
    assert len(manifest) == 60
    reasons = manifest.set_index("row").drop_reason
    assert reasons[0] == "image file missing"
    assert reasons[1].startswith("image undecodable")
    kept = manifest[manifest.drop_step == ""]
    assert kept.groupby("group").split.nunique().max() == 1
    sizes = json.loads((out/"sizes.json").read_text())
    assert sum(sizes.values()) == len(kept)
    assert (out/"card.md").read_text().startswith("# Dataset card")


def test_pairs_shards_load_in_open_clip(run_cli, myntra_sample, tmp_path):
    "The shards go through open_clip's own WebDataset loader with the project's offline model."
    from open_clip_train.data import get_wds_dataset
    from clip_shoe.model import create_model
    out = tmp_path/"pairs"
    run_cli("clip-shoe-pairs", myntra_sample, "--out", out, "--preset", "myntra", "--image-col", "photo",
            "--shard-size", "16", "--test-fraction", "0.2", "--no-progress")
    shards = sorted(p.name for p in out.glob("train-*.tar"))
    bundle = create_model()
    args = SimpleNamespace(train_data=f"{out}/train-{{000000..{len(shards) - 1:06d}}}.tar", train_num_samples=None,
                           train_data_upsampling_factors=None, dataset_resampled=False, batch_size=8, workers=1,
                           world_size=1, seed=0, val_data=None, val_num_samples=None)
    data = get_wds_dataset(args, bundle.preprocess, is_train=True, tokenizer=bundle.tokenizer)
    images, texts = next(iter(data.dataloader))
    assert images.shape[0] == 8
    assert images.shape[1] == 3
    assert texts.shape[0] == 8
    assert data.dataloader.num_samples >= sum(json.loads((out/"sizes.json").read_text())[s] for s in shards)


def test_pairs_cli_wrong_column(run_cli, myntra_sample, tmp_path):
    process = run_cli("clip-shoe-pairs", myntra_sample, "--out", tmp_path/"pairs", "--image-col", "picture",
                      "--title-col", "productDisplayName", check=False)
    assert process.returncode == 1
    assert "has no column ['picture']" in process.stderr
    assert "--image-col" in process.stderr
