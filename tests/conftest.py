import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    "The data root with ut-zap50k/ and myntra-footwear/, from CLIP_SHOE_DATA."
    root = Path(os.environ.get("CLIP_SHOE_DATA", REPO.parent/"shared"/"data"))
    if not (root/"ut-zap50k"/"ut-zap50k-data"/"meta-data.csv").exists():
        pytest.fail(f"UT-Zappos50K not found under {root}; set CLIP_SHOE_DATA to the data root")
    return root


@pytest.fixture(scope="session")
def run_cli(data_root):
    "Run a console script of the package and return the finished process."
    def run(*args, check=True, timeout=900):
        env = {**os.environ, "CLIP_SHOE_DATA": str(data_root)}
        script = Path(sys.executable).parent/args[0]
        process = subprocess.run([str(script), *map(str, args[1:])], capture_output=True, text=True, env=env,
                                 timeout=timeout)
        if check and process.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} exited {process.returncode}:\n{process.stdout}\n{process.stderr}")
        return process
    return run
