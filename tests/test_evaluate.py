"""End-to-end checks of clip-shoe-evaluate: several models on several sets, held-out shards and the embedding cache."""
import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
STUDY_CHECKPOINT = REPO/"runs"/"study"/"ut-zappos-myntra"/"model.pt"


def write_shard(path: Path, photos, texts):
    "Write pairs in the standard WebDataset layout: {key}.jpg and {key}.txt members."
    with tarfile.open(path, "w") as archive:
        for i, (photo, text) in enumerate(zip(photos, texts)):
            for name, data in ((f"{i:06d}.jpg", Path(photo).read_bytes()), (f"{i:06d}.txt", text.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))


def write_heads_checkpoint(path: Path) -> Path:
    "Save the offline model with new random projection heads, as a fine-tuned checkpoint with frozen towers is."
    import torch
    from clip_shoe.model import OFFLINE_MODEL, create_model, save_checkpoint
    torch.manual_seed(0)
    bundle = create_model()
    torch.nn.init.normal_(bundle.model.visual.head.proj.weight, std=0.02)
    torch.nn.init.normal_(bundle.model.text.proj.weight, std=0.02)
    return save_checkpoint(bundle.model, path, OFFLINE_MODEL)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, run_cli, data_root):
    "Evaluate two models on a UT-Zappos sample and on held-out shards, once for the module."
    out = tmp_path_factory.mktemp("evaluate")
    products = pd.read_csv(data_root/"myntra-footwear"/"products.csv").head(24)
    photos = [data_root/"myntra-footwear"/p for p in products.image]
    write_shard(out/"heldout-000000.tar", photos[:12], products.productDisplayName[:12])
    write_shard(out/"heldout-000001.tar", photos[12:], products.productDisplayName[12:])
    second = write_heads_checkpoint(out/"heads.pt")
    args = ["clip-shoe-evaluate", f"ut-zappos,{out}/heldout-*.tar", "--models", f"base,{second}",
            "--label", "base,other heads", "--limit", 40, "--resamples", 100, "--out", out/"eval",
            "--cache", out/"cache"]
    first = run_cli(*args)
    written = {f: f.stat().st_mtime_ns for f in (out/"cache").glob("*.npy")}
    again = run_cli(*args)
    return out, first, again, written


def test_evaluate_writes_tables_and_figures(evaluation):
    out, first, _, _ = evaluation
    assert "| base | UT-Zappos test |" in first.stdout
    assert "| other heads | heldout shards |" in first.stdout
    markdown = (out/"eval"/"results.md").read_text()
    for section in ("## English and Vietnamese queries", "## Zero-shot accuracy", "## Paired comparisons"):
        assert section in markdown
    assert "Command: `clip-shoe-evaluate 'ut-zappos," in markdown
    for figure in ("eval_recall.png", "eval_per_class.png", "eval_confusion.png", "eval_headline.png"):
        assert (out/"eval"/figure).stat().st_size > 10_000


def test_evaluate_results_have_intervals(evaluation):
    out, _, _, _ = evaluation
    results = json.loads((out/"eval"/"results.json").read_text())
    assert [(r["model"], r["data"]) for r in results] == [
        ("base", "UT-Zappos test"), ("base", "heldout shards"),
        ("other heads", "UT-Zappos test"), ("other heads", "heldout shards")]
    ut = results[0]
    assert ut["n"] == 40
    assert results[1]["n"] == 24
    for metric in ("text→image strict R@1", "text→image caption-match MRR (vi)", "image→text median rank",
                   "Gender Acc@3 (vi)", "ToeStyle Acc@1 [single prompt]", "Material macro Acc@1"):
        assert metric in ut["metrics"], metric
    for metric, (low, high) in ut["ci"].items():
        assert low <= ut["metrics"][metric] <= high, metric
    assert "text→image strict R@1 (vi)" not in results[1]["metrics"]  # shards have English text only
    assert ut["command"].startswith("clip-shoe-evaluate ")


def test_evaluate_compares_models_paired(evaluation):
    out, _, _, _ = evaluation
    comparisons = json.loads((out/"eval"/"comparisons.json").read_text())
    strict = [c for c in comparisons if c["metric"] == "text→image strict R@10" and c["data"] == "heldout shards"]
    assert len(strict) == 1
    assert (strict[0]["a"], strict[0]["b"]) == ("base", "other heads")
    assert strict[0]["ci"][0] <= strict[0]["difference"] <= strict[0]["ci"][1]
    assert 0 <= strict[0]["p"] <= 1


def test_evaluate_second_run_reads_cache(evaluation):
    out, first, again, written = evaluation
    assert len(list((out/"cache").glob("image-*.npy"))) == 4  # (2 models) × (2 sets)
    assert {f: f.stat().st_mtime_ns for f in (out/"cache").glob("*.npy")} == written  # read, not rewritten
    assert first.stdout == again.stdout


@pytest.mark.slow
def test_evaluate_study_checkpoint(run_cli, tmp_path):
    if not STUDY_CHECKPOINT.exists(): pytest.skip(f"{STUDY_CHECKPOINT} not found; run clip-shoe-study first")
    process = run_cli("clip-shoe-evaluate", "myntra", "--models", f"base,{STUDY_CHECKPOINT}", "--label",
                      "base,fine-tuned", "--limit", 60, "--resamples", 200, "--out", tmp_path)
    results = {r["model"]: r["metrics"] for r in json.loads((tmp_path/"results.json").read_text())}
    assert results["fine-tuned"]["text→image strict R@10"] > results["base"]["text→image strict R@10"] + 20


@pytest.mark.parametrize("args, message", [
    (["zappos"], "Unknown evaluation set 'zappos'"),
    (["myntra", "--models", "base,base", "--label", "one"], "Got 1 labels for 2 models"),
    (["/nonexistent/heldout-*.tar"], "No WebDataset shards (.tar) found at /nonexistent/heldout-*.tar"),
    (["myntra", "--models", "runs/missing/model.pt"], "Checkpoint runs/missing/model.pt not found"),
])
def test_evaluate_bad_input_names_the_fix(run_cli, tmp_path, args, message):
    process = run_cli("clip-shoe-evaluate", *args, "--out", tmp_path, check=False)
    assert process.returncode != 0
    assert message in process.stderr
    assert "Traceback" not in process.stderr
