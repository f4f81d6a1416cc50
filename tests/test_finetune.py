"""End-to-end tests of `clip-shoe-finetune`: resuming after a kill mid-epoch, recipe errors, lock flags, two gloo processes."""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from clip_shoe.dataset import ut_zappos_catalog, ut_zappos_root
from clip_shoe.model import OFFLINE_MODEL, create_model

TIMEOUT = 900  # seconds for one training command; the machine may be shared


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory) -> Path:
    "Write 80 UT-Zappos rows (40 caption groups, two photos each) as a catalog Parquet."
    catalog = ut_zappos_catalog(ut_zappos_root())
    groups = catalog.group.drop_duplicates().sample(40, random_state=3)
    rows = catalog[catalog.group.isin(groups)].groupby("group").head(2).assign(split="train")
    path = tmp_path_factory.mktemp("catalog")/"catalog.parquet"
    rows.reset_index(drop=True).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    "Write a small offline recipe: 64-pixel photos, 5 steps per epoch, a checkpoint every 2 steps."
    path = tmp_path_factory.mktemp("recipe")/"resume-test.yaml"
    path.write_text("source: resume test, the offline recipe at a small size\n"
                    "model: clip-shoe-lite0-minilm\nepochs: 2\nlr: 3.0e-3\ntower_lr_mult: 0.1\nbatch_size: 8\n"
                    "unlocked_image_groups: 1\nunlocked_text_layers: 1\nimage_size: 64\nprecision: fp32\n"
                    "valid_fraction: 0.25\nsave_every: 2\nnum_workers: 0\ntext_fields: [text, text_vi]\n")
    return path


def finetune_command(catalog: Path, recipe: Path, out: Path) -> list[str]:
    "Return the clip-shoe-finetune command line of the environment that runs the tests."
    return [str(Path(sys.executable).parent/"clip-shoe-finetune"), str(catalog), "--recipe", str(recipe), "--out", str(out)]


def last_metrics(out: Path) -> dict:
    lines = (out/"metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def test_finetune_resume_after_kill(small_catalog, recipe_file, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = tmp_path/"straight"
    subprocess.run(finetune_command(small_catalog, recipe_file, straight), check=True, timeout=TIMEOUT, env=env,
                   capture_output=True)

    killed = tmp_path/"killed"
    process = subprocess.Popen(finetune_command(small_catalog, recipe_file, killed), stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "at epoch 0, batch 4" in line:  # a mid-epoch checkpoint; the kill lands while batch 5 (or a later one) trains
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=TIMEOUT)
    assert process.returncode == -signal.SIGKILL, "".join(seen[-20:])
    assert not (killed/"model.pt").exists()
    state = torch.load(killed/"checkpoints"/"last.pt", weights_only=False)
    assert (state["epoch"], state["next_batch"], state["finished"]) == (0, 4, False)

    resumed = subprocess.run(finetune_command(small_catalog, recipe_file, killed), timeout=TIMEOUT, env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    assert "at epoch 0, batch 4" in resumed.stderr

    expected, actual = last_metrics(straight), last_metrics(killed)
    assert actual["epoch"] == expected["epoch"] == 1
    assert actual["valid_loss"] == pytest.approx(expected["valid_loss"], abs=1e-3)
    assert actual["t2i_R@10"] == pytest.approx(expected["t2i_R@10"], abs=1e-6)
    first_epoch = json.loads((killed/"metrics.jsonl").read_text().splitlines()[0])
    assert first_epoch["resumed"] is True

    straight_weights = torch.load(straight/"model.pt", weights_only=False)["state_dict"]
    resumed_weights = torch.load(killed/"model.pt", weights_only=False)["state_dict"]
    for name, tensor in straight_weights.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(resumed_weights[name], tensor, atol=1e-4, rtol=1e-3, msg=name)


def test_finetune_rejects_unknown_recipe(small_catalog, tmp_path):
    result = subprocess.run(finetune_command(small_catalog, Path("no-such-recipe"), tmp_path/"out"),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode != 0
    assert "Recipe no-such-recipe not found; use one of" in result.stderr
    assert "offline-unlock" in result.stderr


def test_finetune_lock_flags_override_recipe(small_catalog, recipe_file, tmp_path):
    out = tmp_path/"flags"
    command = [*finetune_command(small_catalog, recipe_file, out), "--epochs", "1", "--tower-lr-mult", "0.3",
               "--unlocked-image-groups", "0", "--unlocked-text-layers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    recipe = yaml.safe_load((out/"recipe.yaml").read_text())
    assert recipe["tower_lr_mult"] == 0.3
    assert recipe["unlocked_image_groups"] == 0
    assert recipe["unlocked_text_layers"] == 2
    trained = torch.load(out/"model.pt", weights_only=False)["state_dict"]
    base = create_model(OFFLINE_MODEL).model.state_dict()
    # the image tower stays locked, and only the top two text layers train
    torch.testing.assert_close(trained["visual.trunk.conv_head.weight"], base["visual.trunk.conv_head.weight"])
    for layer, unlocked in ((3, False), (4, True)):  # all-MiniLM-L6-v2 has 6 layers, so 4 and 5 train
        name = f"text.transformer.encoder.layer.{layer}.attention.self.query.weight"
        assert torch.equal(trained[name], base[name]) != unlocked, name


def test_finetune_rejects_missing_text_field(small_catalog, recipe_file, tmp_path):
    command = [*finetune_command(small_catalog, recipe_file, tmp_path/"out"), "--text-fields", "nosuchcol"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode != 0
    assert "Text fields ['nosuchcol'] are not catalog columns; pick --text-fields from" in result.stderr
    assert "Traceback" not in result.stderr


def free_port() -> int:
    "Return a TCP port on 127.0.0.1 that is free right now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_finetune_two_gloo_processes(small_catalog, recipe_file, tmp_path):
    out = tmp_path/"ddp"
    torchrun = Path(sys.executable).parent/"torchrun"
    command = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               *finetune_command(small_catalog, recipe_file, out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "process 0 of 2 trains on cpu" in result.stderr
    assert "process 1 of 2 trains on cpu" in result.stderr
    lines = (out/"metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2, lines  # one line per epoch, written by the first process only
    assert all(json.loads(line)["train_loss"] > 0 for line in lines)
    assert (out/"model.pt").exists()
