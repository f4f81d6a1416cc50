"""Benchmark fine-tuning steps: our fastai Learner against a plain PyTorch loop, and fp32 against bf16 + channels_last.

Both comparisons train the same open_clip model on the same in-memory batches (random pixels and token ids, so
photo decoding is not measured) with the same loss (`ContrastiveLoss`) and optimiser (torch.optim.AdamW).

    python tests/benchmarks/bench_finetune.py                      # CPU: the offline default at batch 32
    python tests/benchmarks/bench_finetune.py --model ViT-B-32 --pretrained none --batch-size 256   # on a GPU

It prints images per second of each side and the ratio Learner/plain (the target is at least 0.95), then images
per second and peak memory of the offline default in fp32 and in bf16 + channels_last. Peak memory is the process's
maximum resident set size on a CPU (each precision runs in its own subprocess, because that maximum never goes
down) and `torch.cuda.max_memory_allocated` on a GPU.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from functools import partial

import torch
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.optimizer import OptimWrapper

from clip_shoe.finetune import ClampLogitScale, ContrastiveLoss, ContrastiveModel
from clip_shoe.model import OFFLINE_MODEL
from clip_shoe.training import Autocast, build_model, load_recipe


def synthetic_batches(bundle, batch_size: int, steps: int, seed: int = 0):
    "Return a TensorDataset of `batch_size*steps` random images, token ids of real captions, and distinct group ids."
    generator = torch.Generator().manual_seed(seed)
    size = bundle.model.visual.preprocess_cfg["size"]
    n = batch_size*steps
    images = torch.rand(n, 3, size, size, generator=generator)
    captions = [f"women's leather ankle boots, size {i % 40}" for i in range(n)]
    return torch.utils.data.TensorDataset(images, bundle.tokenizer(captions), torch.arange(n))


def make_model(args, precision: str):
    recipe = load_recipe("offline-unlock", model=args.model, pretrained=args.pretrained, image_size=args.image_size,
                         precision=precision)
    bundle = build_model(recipe, args.device)
    for p in bundle.model.parameters(): p.requires_grad = True
    channels_last = precision == "bf16"
    if channels_last: bundle.model.to(memory_format=torch.channels_last)
    return bundle, ContrastiveModel(bundle.model, channels_last=channels_last).to(args.device).train()


def sync(device: str):
    if torch.device(device).type == "cuda": torch.cuda.synchronize()


def plain_loop(net, dataset, args, precision: str) -> float:
    "Train with a hand-written loop; return images per second over the timed steps."
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5, weight_decay=0.1)
    loss_func = ContrastiveLoss()
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=False, drop_last=True)
    device_type = torch.device(args.device).type
    started, images = None, 0
    for step, (pixels, tokens, groups) in enumerate(loader):
        if step == args.warmup:
            sync(args.device)
            started = time.perf_counter()
        pixels, tokens, groups = pixels.to(args.device), tokens.to(args.device), groups.to(args.device)
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            preds = net(pixels, tokens)
            loss = loss_func(tuple(p.float() for p in preds), groups)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad(): net.model.logit_scale.clamp_(0, 4.6052)
        if step >= args.warmup: images += len(pixels)
    sync(args.device)
    return images/(time.perf_counter() - started)


def learner_loop(net, dataset, args, precision: str) -> float:
    "Train with our fastai Learner setup (no validation); return images per second over the timed steps."
    timings = {}

    class Timer(Callback):
        order = 100
        def before_batch(self):
            if self.training and self.iter == args.warmup:
                sync(args.device)
                timings["start"] = time.perf_counter()
        def after_train(self):
            sync(args.device)
            timings["end"] = time.perf_counter()

    train = DataLoader(dataset, bs=args.batch_size, shuffle=False, drop_last=True, device=torch.device(args.device))
    dls = DataLoaders(train, DataLoader(dataset, bs=args.batch_size, device=torch.device(args.device)))
    dls.n_inp = 2
    callbacks = [ClampLogitScale(net.model.logit_scale), Timer()] + ([Autocast()] if precision == "bf16" else [])
    learn = Learner(dls, net, loss_func=ContrastiveLoss(), opt_func=partial(OptimWrapper, opt=torch.optim.AdamW),
                    lr=1e-5, wd=0.1, cbs=callbacks)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, wd=0.1)  # one pass over the batches; the validation pass after it is not timed
    steps = len(train) - args.warmup
    return steps*args.batch_size/(timings["end"] - timings["start"])


def peak_memory_mb(device: str) -> float:
    if torch.device(device).type == "cuda": return torch.cuda.max_memory_allocated()/2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024  # Linux reports KiB


def run_one(args):
    "Measure one side in this process and print a JSON line (used by the subprocess mode)."
    bundle, net = make_model(args, args.precision)
    dataset = synthetic_batches(bundle, args.batch_size, args.warmup + args.steps)
    if torch.device(args.device).type == "cuda": torch.cuda.reset_peak_memory_stats()
    speed = (learner_loop if args.side == "learner" else plain_loop)(net, dataset, args, args.precision)
    print(json.dumps({"images_per_second": speed, "peak_memory_mb": peak_memory_mb(args.device)}))


def measure(args, side: str, precision: str) -> dict:
    command = [sys.executable, __file__, "--one", "--side", side, "--precision", precision, "--model", args.model,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--device", args.device] + (["--pretrained", args.pretrained] if args.pretrained else []) + \
              (["--image-size", str(args.image_size)] if args.image_size else [])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0: raise SystemExit(f"benchmark subprocess failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=OFFLINE_MODEL, help="open_clip model name")
    parser.add_argument("--pretrained", default=None, help="pretrained tag or 'none' for random weights")
    parser.add_argument("--image-size", type=int, default=None, help="image size in pixels (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per step")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    parser.add_argument("--repeats", type=int, default=2, help="alternating measurements per side; the median is kept")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--side", default="plain", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one: return run_one(args)

    torch.set_num_threads(torch.get_num_threads())
    print(f"model {args.model} ({args.pretrained or 'default weights'}), batch {args.batch_size}, {args.steps} timed "
          f"steps after {args.warmup} warm-up steps, device {args.device}, {torch.get_num_threads()} threads")
    precision = "bf16"
    speeds = {"plain": [], "learner": []}
    for _ in range(args.repeats):
        for side in ("plain", "learner"): speeds[side].append(measure(args, side, precision)["images_per_second"])
    plain, learner = statistics.median(speeds["plain"]), statistics.median(speeds["learner"])
    print(f"training step, {precision}: plain PyTorch loop {plain:.1f} images/s, fastai Learner {learner:.1f} images/s, "
          f"ratio Learner/plain {learner/plain:.3f} (target >= 0.95)")

    for precision in ("fp32", "bf16"):
        result = measure(args, "plain", precision)
        label = "bf16 + channels_last" if precision == "bf16" else "fp32"
        print(f"training step, {label}: {result['images_per_second']:.1f} images/s, peak memory {result['peak_memory_mb']:.0f} MiB")


if __name__ == "__main__":
    main()
