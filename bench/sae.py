"""Benchmark: TopK SAE training on the shared MiniLM embeddings, scored on a fixed held-out split.

Split: rows in the order of np.random.default_rng(0).permutation(115435); the first 95% (109,664 rows)
train, the last 5% are held out. Held-out NMSE = sum of squared reconstruction errors / sum of squared
deviations from the held-out mean. Dead fraction: latents that never fire on any training row.

Run from the project root:
    .venv/bin/python -m bench.sae                                  # grid k {16,32,64} x latents {3072,6144,12288}
    .venv/bin/python -m bench.sae --k 32 --latents 6144 --time-budget 90
    .venv/bin/python -m bench.sae --cli --k 32 --latents 6144      # time the real `sae-search train-sae` command
    .venv/bin/python -m bench.sae --plot                           # only redraw bench/out/sae_nmse.png

Each configuration runs in a fresh subprocess (its own peak RSS and threads) and appends one JSON line to
--out. Library runs record held-out NMSE after every epoch; --cli runs time the whole command (Python start,
load, train, save) and keep the trainer's own validation curve. Timings depend on what else runs on the
machine: every line carries the load average before and after."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from indexer.sae import TopKSae, encode_array, load_sae, nmse
from indexer.train import TrainConfig, train_sae

log = logging.getLogger("bench.sae")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
EMBEDDINGS = DATA / "embeddings_minilm_f16.npy"
OUT = ROOT / "bench" / "out"
# Reference points measured by the product owner on this machine type (seconds, held-out NMSE).
REFERENCES = {
    "paper TopK code (AuxK, 50 epochs)": [(2700.0, 0.256)],
    "plain trainer (one-cycle, 30 epochs)": [(197.0, 0.248), (253.0, 0.240), (440.0, 0.232)],
}


def split() -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row numbers (sorted) of the fixed 95/5 split."""
    n = len(np.load(EMBEDDINGS, mmap_mode="r"))
    perm = np.random.default_rng(0).permutation(n)
    cut = int(0.95 * n)
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def heldout_nmse(sae: TopKSae, x: np.ndarray) -> float:
    """Held-out NMSE of x (m, d) float32 through the exported SAE (exact float32 top-k)."""
    idx, val = encode_array(sae, x)
    with torch.no_grad():
        x_hat = sae.decode(torch.from_numpy(val), torch.from_numpy(idx.astype(np.int64))).numpy()
    return nmse(x, x_hat)


def dead_fraction(sae: TopKSae, x: np.ndarray) -> float:
    """Share of latents that fire (value > 0) on none of the rows of x (m, d)."""
    fired = np.zeros(sae.n, dtype=bool)
    for s in range(0, len(x), 16384):
        idx, val = encode_array(sae, np.asarray(x[s : s + 16384], dtype=np.float32))
        fired[idx[val > 0]] = True
    return float(1.0 - fired.mean())


def _machine() -> dict[str, Any]:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "gpu": gpu,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def run_library(spec: dict[str, Any]) -> dict[str, Any]:
    """Train through `train_sae` on the training split; held-out NMSE after every epoch."""
    emb = np.load(EMBEDDINGS, mmap_mode="r")
    train_rows, test_rows = split()
    x_train, x_test = np.asarray(emb[train_rows]), np.asarray(emb[test_rows], dtype=np.float32)
    cfg = TrainConfig(progress=False, **spec["config"])
    snaps: list[tuple[dict[str, Any], TopKSae]] = []
    t0 = time.perf_counter()
    res = train_sae(x_train, cfg, on_epoch=lambda entry, sae: snaps.append((entry, sae)))
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    curve = [{"epoch": e["epoch"], "elapsed_s": round(e["elapsed_s"], 2),
              "heldout_nmse": round(heldout_nmse(s, x_test), 5)} for e, s in snaps]
    return {"train_wall_s": round(wall, 2), "peak_rss_gb": round(rss, 3),
            "heldout_nmse": round(heldout_nmse(res.sae, x_test), 5),
            "dead_fraction": round(dead_fraction(res.sae, x_train), 5), "epochs": res.metrics["epochs_run"],
            "steps": res.metrics["steps"], "batch_size": res.metrics["batch_size"],
            "stopped_by_budget": res.metrics["stopped_by_budget"], "per_epoch": curve,
            "threads_chosen": [e["threads"] for e, _ in snaps]}


def run_cli(spec: dict[str, Any]) -> dict[str, Any]:
    """Time `sae-search train-sae` end to end on an .npy holding the training split (float16)."""
    emb = np.load(EMBEDDINGS, mmap_mode="r")
    train_rows, test_rows = split()
    x_test = np.asarray(emb[test_rows], dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="bench_sae_") as tmp:
        npy, out = Path(tmp) / "train.npy", Path(tmp) / "sae"
        np.save(npy, np.asarray(emb[train_rows]))
        flags = {"k": "--k", "latents": "--latents", "epochs": "--epochs", "batch_size": "--batch-size",
                 "lr": "--lr", "time_budget": "--time-budget", "seed": "--seed", "device": "--device"}
        argv = ["train-sae", "--embeddings", str(npy), "--out", str(out), "--no-progress"]
        for key, value in spec["config"].items():
            argv += [flags[key], str(value)]
        cmd = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())", *argv]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"train-sae failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        sae, info = load_sae(out)
    m = info["metrics"]
    return {"command_wall_s": round(wall, 2), "train_wall_s": round(m["wall_s"], 2), "peak_rss_gb": round(rss, 3),
            "heldout_nmse": round(heldout_nmse(sae, x_test), 5),
            "dead_fraction": round(dead_fraction(sae, emb[train_rows]), 5),
            "epochs": m["epochs_run"], "steps": m["steps"], "batch_size": m["batch_size"],
            "stopped_by_budget": m["stopped_by_budget"], "command": " ".join(["sae-search", *argv[:1], *argv[5:]]),
            "validation_curve": [{"epoch": e["epoch"], "elapsed_s": round(e["elapsed_s"], 2), "val_nmse": e["val_nmse"]}
                                 for e in m["history"]],
            "threads_chosen": [e["threads"] for e in m["history"]]}


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration, in this process; returns its JSON record."""
    load_before = os.getloadavg()
    result = run_cli(spec) if spec["cli"] else run_library(spec)
    return {"label": spec["label"], "mode": "cli" if spec["cli"] else "library", **spec["config"], **result,
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "machine": _machine(), "date": dt.datetime.now().isoformat(timespec="seconds")}


def plot(paths: list[Path], png: Path) -> None:
    """Held-out NMSE against wall-clock seconds for every record in `paths`, with the reference points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for path in paths:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r.get("per_epoch"):
                xs, ys = [p["elapsed_s"] for p in r["per_epoch"]], [p["heldout_nmse"] for p in r["per_epoch"]]
                ax.plot(xs, ys, marker=".", label=f"{r['label']} ({r['heldout_nmse']:.3f})")
            else:
                ax.scatter([r["command_wall_s"]], [r["heldout_nmse"]], marker="*", s=120,
                           label=f"{r['label']}: whole command ({r['heldout_nmse']:.3f})")
    for name, points in REFERENCES.items():
        ax.plot(*zip(*points), linestyle=":", marker="x", color="grey" if "paper" in name else "black", label=name)
    ax.scatter([300, 100], [0.23, 0.25], marker="v", color="red", label="goals: 0.23 by 300 s, 0.25 by 100 s")
    ax.set_xscale("log")
    ax.set_xlabel("wall-clock seconds (2-core CPU; see loadavg in the JSONL for contention)")
    ax.set_ylabel("held-out NMSE")
    ax.set_title("TopK SAE training on 109,664 MiniLM embeddings, held-out 5,772")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    log.info("wrote %s", png)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--latents", type=int, nargs="+", default=[3072, 6144, 12288])
    ap.add_argument("--epochs", type=int, default=None, help="default: the trainer's")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--time-budget", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="default: the trainer's (auto)")
    ap.add_argument("--cli", action="store_true", help="run the train-sae command instead of train_sae()")
    ap.add_argument("--label", default=None, help="prefix of each record's label")
    ap.add_argument("--out", type=Path, default=OUT / "sae_grid.jsonl", help="JSONL file appended to")
    ap.add_argument("--plot", action="store_true", help="only draw --png from the bench/out/sae_*.jsonl files")
    ap.add_argument("--png", type=Path, default=OUT / "sae_nmse.png")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one JSON spec, run in this process
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))), flush=True)
        return
    if args.plot:
        plot(sorted(OUT.glob("sae_*.jsonl")), args.png)
        return
    extra = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                               ("time_budget", args.time_budget), ("seed", args.seed),
                               ("device", args.device)) if v is not None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for k in args.k:
        for latents in args.latents:
            label = " ".join(filter(None, [args.label, f"k={k} n={latents}"] +
                                    [f"{key}={v}" for key, v in extra.items()]))
            spec = {"label": label, "cli": args.cli, "config": {"k": k, "latents": latents, **extra}}
            log.info("running %s", label)
            proc = subprocess.run([sys.executable, "-m", "bench.sae", "--one", json.dumps(spec)], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                log.error("%s failed with exit code %d", label, proc.returncode)
                continue
            record = proc.stdout.strip().splitlines()[-1]
            with args.out.open("a") as f:
                f.write(record + "\n")
            print(record, flush=True)
    plot(sorted(OUT.glob("sae_*.jsonl")), args.png)


if __name__ == "__main__":
    main()
