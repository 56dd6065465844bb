"""Run a grid of `emocli train` recipes (text, MELD train -> dev) in parallel processes and collect their dev scores.

Used to choose the shipped recipe on MELD **dev** (the test split is never read here). Each grid entry is a name
and TrainConfig overrides on top of `--base`; results go to a JSON-lines file as they finish, so a run cut short
still leaves every finished entry.

    python training/sweep.py --meld ../shared/data/meld --grid training/grid.json --device cuda --jobs 6 \
        --results training/results/sweep.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path


def run_one(name: str, overrides: dict, meld: str, device: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from emocli.training.train import TrainConfig, train

    cfg = TrainConfig(**overrides)
    started = time.time()
    with tempfile.TemporaryDirectory() as out:
        best = train(meld, out, cfg, cache_dir=Path(out) / "cache", device=device, progress=False,
                     log=lambda msg: None)
        history = json.loads((Path(out) / "config.json").read_text())["provenance"]["history"]
    return {"name": name, "overrides": overrides, "recipe": asdict(cfg), "device": device,
            "dev_weighted_f1": best["weighted_f1"], "dev_macro_f1": best["macro_f1"],
            "dev_accuracy": best["accuracy"], "best_epoch": best["epoch"],
            "dev_weighted_f1_by_epoch": [h["dev_weighted_f1"] for h in history],
            "seconds": round(time.time() - started, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meld", required=True)
    ap.add_argument("--grid", required=True, help='JSON: {"base": {...}, "runs": {"name": {...overrides}}}')
    ap.add_argument("--results", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads per job")
    ap.add_argument("--only", nargs="*", help="run only these grid names")
    args = ap.parse_args()
    grid = json.loads(Path(args.grid).read_text())
    runs = {n: {**grid.get("base", {}), **o} for n, o in grid["runs"].items() if not args.only or n in args.only}
    done = set()
    results = Path(args.results)
    if results.exists():
        done = {json.loads(line)["name"] for line in results.read_text().splitlines() if line.strip()}
    todo = {n: o for n, o in runs.items() if n not in done}
    print(f"{len(todo)} runs to do ({len(done)} already in {results})", flush=True)
    ctx = __import__("multiprocessing").get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        futures = {pool.submit(run_one, n, o, args.meld, args.device, args.threads): n for n, o in todo.items()}
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # one failed recipe must not lose the others
                print(f"{name}: FAILED {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                continue
            with results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{name:>12}  dev wF1 {row['dev_weighted_f1']:.4f}  macro {row['dev_macro_f1']:.4f}  "
                  f"epoch {row['best_epoch']}  by epoch {row['dev_weighted_f1_by_epoch']}  {row['seconds']:.0f}s",
                  flush=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
