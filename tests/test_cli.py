"""End-to-end checks of the command-line tools on a small subset of the real data."""
import json

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def study(tmp_path_factory, run_cli):
    "Run clip-shoe-study on 40 product groups of each data set, once for the module."
    out = tmp_path_factory.mktemp("study")
    process = run_cli("clip-shoe-study", "--n-groups", 40, "--epochs", 3, "--batch-size", 64,
                      "--out", out/"study", "--figures", out/"figures")
    return out, process


def test_study_prints_table_and_writes_outputs(study):
    out, process = study
    assert "| base (untrained heads) | UT-Zappos test |" in process.stdout
    assert "| fine-tuned on UT-Zappos + Myntra | Myntra test |" in process.stdout
    assert "text query: giày thể thao nam" in process.stdout
    results = json.loads((out/"study"/"results.json").read_text())
    assert len(results) == 6
    assert (out/"figures"/"results.png").stat().st_size > 10_000


def test_search_by_text_and_photo(study, run_cli):
    out, _ = study
    index = out/"study"/"index"
    by_text = run_cli("clip-shoe-search", "--index", index, "--text", "giày cao gót đỏ", "--k", 3)
    assert len([line for line in by_text.stdout.splitlines() if line[:1].isdigit()]) == 3
    photo = pd.read_parquet(index/"metadata.parquet").image[5]
    by_photo = run_cli("clip-shoe-search", "--index", index, "--image", photo, "--k", 3)
    first_hit = by_photo.stdout.splitlines()[1]
    assert first_hit.lstrip().startswith("1 ")
    assert photo in first_hit


def test_search_needs_one_query(study, run_cli):
    out, _ = study
    process = run_cli("clip-shoe-search", "--index", out/"study"/"index", check=False)
    assert process.returncode != 0
    assert "exactly one of --text or --image" in process.stderr


def test_evaluate_any_catalog_csv(study, run_cli, data_root, tmp_path):
    out, _ = study
    products = pd.read_csv(data_root/"myntra-footwear"/"products.csv").head(30)
    products["photo"] = [str(data_root/"myntra-footwear"/p) for p in products.image]
    products[["photo", "productDisplayName"]].to_csv(tmp_path/"shop.csv", index=False)
    process = run_cli("clip-shoe-evaluate", tmp_path/"shop.csv", "--image-col", "photo", "--text-col",
                      "productDisplayName", "--pretrained", out/"study"/"ut-zappos-myntra"/"model.pt",
                      "--label", "fine-tuned", "--out", tmp_path/"eval")
    assert "| fine-tuned | shop |" in process.stdout
    results = json.loads((tmp_path/"eval"/"results.json").read_text())
    assert results[0]["n"] == 30
    assert 0 <= results[0]["metrics"]["text→image strict R@10"] <= 100


def test_evaluate_wrong_column_names_the_fix(run_cli, data_root, tmp_path):
    (tmp_path/"shop.csv").write_text("photo,name\nx.jpg,Giày\n")
    process = run_cli("clip-shoe-evaluate", tmp_path/"shop.csv", "--out", tmp_path/"eval", check=False)
    assert process.returncode != 0
    assert "has no column 'image'" in process.stderr
    assert "image_col" in process.stderr


def test_data_and_train_commands(run_cli, tmp_path):
    built = run_cli("clip-shoe-data", "--out", tmp_path/"data")
    assert "ut-zappos: 50024 photos" in built.stdout
    catalog = pd.read_parquet(tmp_path/"data"/"myntra.parquet")
    catalog[catalog.group.isin(sorted(catalog.group.unique())[:120])].to_parquet(tmp_path/"small.parquet")
    trained = run_cli("clip-shoe-train", tmp_path/"small.parquet", "--out", tmp_path/"train", "--epochs", 2,
                      "--batch-size", 32)
    assert (tmp_path/"train"/"model.pt").exists()
    assert "saved" in trained.stdout
