"""clip-shoe-index on a shop's catalog CSV and clip-shoe-search with filters and product ids, end to end."""
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def shop_index(tmp_path_factory, data_root, run_cli):
    "Index 40 Myntra products from a CSV with their own ids, using a checkpoint of the offline model."
    from clip_shoe.model import OFFLINE_MODEL, create_model, save_checkpoint
    folder = tmp_path_factory.mktemp("shop")
    checkpoint = save_checkpoint(create_model().model, folder/"model.pt", OFFLINE_MODEL)
    products = pd.read_csv(data_root/"myntra-footwear"/"products.csv").head(40)
    products["photo"] = [str(data_root/"myntra-footwear"/p) for p in products.image]
    products[["id", "photo", "productDisplayName", "gender", "baseColour"]].to_csv(folder/"shop.csv", index=False)
    built = run_cli("clip-shoe-index", folder/"shop.csv", "--out", folder/"index", "--pretrained", checkpoint,
                    "--image-col", "photo", "--text-col", "productDisplayName", "--id-col", "id")
    assert "indexed 40 photos" in built.stdout
    return folder/"index", products


def test_search_filter_and_similar(shop_index, run_cli):
    index, products = shop_index
    men = set(products.id[products.gender == "Men"])
    found = run_cli("clip-shoe-search", "--index", index, "--text", "giay the thao nam", "--filters", "gender=Men",
                    "--k", 3)
    rows = [line.split() for line in found.stdout.splitlines() if line[:1].isdigit()]
    assert len(rows) == 3
    assert {int(row[2]) for row in rows} <= men
    product = int(products.id[0])
    similar = run_cli("clip-shoe-search", "--index", index, "--similar", product, "--k", 5)
    ids = [int(line.split()[2]) for line in similar.stdout.splitlines() if line[:1].isdigit()]
    assert len(ids) == 5
    assert product not in ids


def test_search_unknown_filter_names_fields(shop_index, run_cli):
    index, _ = shop_index
    process = run_cli("clip-shoe-search", "--index", index, "--text", "boots", "--filters", "colour=red", check=False)
    assert process.returncode != 0
    assert "Unknown filter field 'colour'" in process.stderr
    assert "baseColour" in process.stderr
