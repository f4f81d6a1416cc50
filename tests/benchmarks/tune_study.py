"""Compare training settings of the study on the validation slice, never on the test split.

Run: python tests/benchmarks/tune_study.py --data ../shared/data
Trains the UT-Zappos + Myntra model once per setting, about half a minute each on 2 CPU cores once the tower
features are cached. It prints validation SubCategory Acc@1, Category Acc@1, UT-Zappos caption-match R@10 and
Myntra strict R@10. The study's defaults are the row with the best SubCategory Acc@1 and caption-match R@10.
"""
import time

import pandas as pd
from fastcore.script import call_parse

from clip_shoe.core import set_seed, setup_logging
from clip_shoe.evaluate import average_prompts, evaluate_features, prompt_texts
from clip_shoe.finetune import cached_features, catalog_features, project_features, train_clip, train_valid_rows
from clip_shoe.model import create_model
from clip_shoe.study import study_catalog

GRID = [  # (epochs, peak learning rate, batch size)
    (10, 1e-2, 512), (10, 3e-2, 512), (5, 3e-2, 512), (15, 1e-2, 512),
    (10, 1e-2, 1024), (10, 3e-2, 1024), (20, 3e-2, 1024), (10, 1e-2, 256),
]


def _valid_metrics(model, catalog, trunk, prompt_trunk, positions, prompts):
    image_features, text_features = project_features(model, trunk[0][positions], trunk[1][positions])
    prompt_features = None
    if prompts:
        prompt_features = average_prompts(project_features(model, text_trunk_features=prompt_trunk)[1])
    return evaluate_features(image_features, text_features, catalog.iloc[positions], prompt_features)


@call_parse
def main(
    data: str = None,  # data root holding ut-zap50k/ and myntra-footwear/ (default: $CLIP_SHOE_DATA)
    seed: int = 42,  # seed of the split and of the training
):
    "Train the study's final model with each grid setting and print its validation figures."
    setup_logging("WARNING")
    catalog = study_catalog(data, seed=seed)
    bundle = create_model()
    trunk = catalog_features(bundle, catalog)
    prompt_trunk = cached_features(bundle, prompt_texts(), "text")
    _, valid = train_valid_rows(catalog, 0.05, seed)
    ut_valid = valid[(catalog.source.iloc[valid] == "UT-Zappos").to_numpy()]
    myntra_valid = valid[(catalog.source.iloc[valid] == "Myntra").to_numpy()]
    rows = []
    for epochs, lr, batch_size in GRID:
        set_seed(seed)
        candidate = create_model()
        start = time.time()
        train_clip(candidate, catalog, "runs/tune", epochs, lr, batch_size, seed=seed, features=trunk)
        ut = _valid_metrics(candidate.model, catalog, trunk, prompt_trunk, ut_valid, prompts=True)
        myntra = _valid_metrics(candidate.model, catalog, trunk, prompt_trunk, myntra_valid, prompts=False)
        rows.append({"epochs": epochs, "lr": lr, "batch": batch_size, "seconds": round(time.time() - start),
                     "SubCategory Acc@1": ut["SubCategory Acc@1"], "Category Acc@1": ut["Category Acc@1"],
                     "caption-match R@10": ut["text→image caption-match R@10"],
                     "Myntra strict R@10": myntra["text→image strict R@10"]})
    print(f"validation slice: {len(ut_valid)} UT-Zappos and {len(myntra_valid)} Myntra photos")
    print(pd.DataFrame(rows).round(1).to_string(index=False))
