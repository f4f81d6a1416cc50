"""Time the whole study on the full data, from empty caches, and print minutes and peak memory.

Run: python tests/benchmarks/bench_study.py --data ../shared/data
The README's timing comes from this script; the goal is under 30 minutes on a 2-core CPU machine.
"""
import resource
import tempfile
import time
from pathlib import Path

from fastcore.script import call_parse

from clip_shoe.core import setup_logging
from clip_shoe.study import run_study


@call_parse
def main(
    data: str = None,  # data root holding ut-zap50k/ and myntra-footwear/ (default: $CLIP_SHOE_DATA)
    out: str = "runs/bench-study",  # output folder of the timed run
    figures: str = "runs/bench-study/figures",  # figure folder of the timed run (kept apart from figures/)
    warm: bool = False,  # reuse the default feature cache instead of an empty one
):
    "Run the study once and print its wall time and peak resident memory."
    setup_logging()
    feature_dir = None if warm else Path(tempfile.mkdtemp(prefix="clip-shoe-features-"))
    start = time.time()
    run_study(data, out, figures, feature_dir=feature_dir)
    minutes = (time.time() - start)/60
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20
    print(f"study wall time: {minutes:.1f} min ({'warm' if warm else 'empty'} feature cache), "
          f"peak RSS {peak_gib:.1f} GiB, goal < 30 min")
