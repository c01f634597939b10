"""indexer.train_cli: the `train-sae` subcommand end to end on a tiny .npy, and its one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import InvalidArgument
from indexer.sae import CONFIG_FILE, WEIGHTS_FILE, encode_array, load_sae
from indexer.train_cli import add_train_parser, run_train


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sae-search")
    add_train_parser(parser.add_subparsers(dest="command"))
    return parser


def _args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["train-sae", *argv])


@pytest.fixture()
def emb_file(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    path = tmp_path / "emb.npy"
    np.save(path, x.astype(np.float16))
    return path


def test_parser_registers_train_sae_with_handler(emb_file: Path, tmp_path: Path) -> None:
    args = _args("--embeddings", str(emb_file), "--out", str(tmp_path / "o"))
    assert args.handler is run_train
    assert (args.k, args.latents, args.time_budget, args.seed, args.device) == (32, 6144, None, 0, "auto")


def test_train_sae_writes_a_loadable_artifact(emb_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "sae"
    args = _args("--embeddings", str(emb_file), "--out", str(out), "--k", "4", "--latents", "64",
                 "--epochs", "3", "--seed", "2", "--no-progress")
    assert args.handler(args) == 0
    assert (out / WEIGHTS_FILE).is_file()
    info = json.loads((out / CONFIG_FILE).read_text())
    assert (info["k"], info["d"], info["n"]) == (4, 16, 64)
    assert info["metrics"]["epochs_run"] == 3 and info["metrics"]["config"]["seed"] == 2
    sae, _ = load_sae(out)
    idx, val = encode_array(sae, np.load(emb_file)[:10])
    assert idx.shape == (10, 4) and (val >= 0).all()


def test_time_budget_covers_the_whole_command(emb_file: Path, tmp_path: Path) -> None:
    import time

    args = _args("--embeddings", str(emb_file), "--out", str(tmp_path / "b"), "--k", "4", "--latents", "64",
                 "--epochs", "100000", "--time-budget", "1.5", "--no-progress")
    t0 = time.perf_counter()
    assert run_train(args) == 0
    assert time.perf_counter() - t0 < 1.5 + 0.5
    assert json.loads((tmp_path / "b" / CONFIG_FILE).read_text())["metrics"]["stopped_by_budget"]


def _bad_npy(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.npy"
    if kind == "rank3":
        np.save(path, np.zeros((3, 4, 5), dtype=np.float32))
    elif kind == "nan":
        x = np.ones((10, 4), dtype=np.float32)
        x[7, 2] = np.nan
        np.save(path, x)
    elif kind == "garbage":
        path.write_bytes(b"this is not a numpy file")
    elif kind == "npz":
        path = tmp_path / "arrays.npz"
        np.savez(path, a=np.ones((3, 3)))
    return path


@pytest.mark.parametrize(
    "kind, extra, message",
    [
        ("ok", ["--k", "64", "--latents", "64"], "k < latents"),
        ("ok", ["--k", "0", "--latents", "64"], "k < latents"),
        ("ok", ["--time-budget", "0"], "time-budget must be > 0"),
        ("ok", ["--time-budget", "-5"], "time-budget must be > 0"),
        ("rank3", [], "2-D"),
        ("nan", [], r"NaN or inf values \(first bad row: 7\)"),
        ("missing", [], "does not exist"),
        ("garbage", [], "cannot read"),
        ("npz", [], "not a single .npy"),
        ("ok", ["--out", "{tmp}/afile"], "cannot write --out .*afile: .*afile is not a directory"),
        ("ok", ["--out", "{tmp}/afile/sub"], "afile is not a directory"),
    ],
)
def test_bad_arguments_raise_one_line_invalid_argument(
    kind: str, extra: list[str], message: str, emb_file: Path, tmp_path: Path
) -> None:
    path = emb_file if kind == "ok" else tmp_path / "nope.npy" if kind == "missing" else _bad_npy(tmp_path, kind)
    (tmp_path / "afile").write_text("a user's file")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    args = _args("--embeddings", str(path), "--out", str(tmp_path / "o"), "--no-progress", *extra)
    with pytest.raises(InvalidArgument, match=message) as info:
        run_train(args)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "o").exists()
    assert (tmp_path / "afile").read_text() == "a user's file"


def test_out_inside_an_index_or_a_folder_of_other_files_is_refused_before_training(emb_file: Path, tmp_path: Path):
    index = tmp_path / "idx"
    (index / "sae").mkdir(parents=True)
    (index / "manifest.json").write_text("{}")
    (index / "sae" / CONFIG_FILE).write_text("the index's own")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    for out, message in ((index / "sae", "lies inside the index"), (index, "lies inside the index"),
                         (tmp_path / "mine", r"holds other files \(notes.txt\)")):
        with pytest.raises(InvalidArgument, match=message):
            run_train(_args("--embeddings", str(emb_file), "--out", str(out), "--no-progress"))
    assert (index / "sae" / CONFIG_FILE).read_text() == "the index's own" and not (index / WEIGHTS_FILE).exists()
    # An earlier train-sae's folder is fine: its two files are replaced.
    again = tmp_path / "again"
    for _ in range(2):
        run_train(_args("--embeddings", str(emb_file), "--out", str(again), "--k", "4", "--latents", "32",
                        "--epochs", "1", "--no-progress"))
    assert sorted(p.name for p in again.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE])


@pytest.mark.parametrize("budget", ["inf", "nan", "0"])
def test_every_time_budget_that_is_no_positive_number_is_refused_alike(
    budget: str, emb_file: Path, tmp_path: Path
) -> None:
    args = _args("--embeddings", str(emb_file), "--out", str(tmp_path / "o"), "--time-budget", budget)
    with pytest.raises(InvalidArgument, match=rf"^--time-budget must be > 0 seconds and finite, got {budget}"):
        run_train(args)


def test_a_budget_that_ends_before_training_says_what_took_it(emb_file: Path, tmp_path: Path) -> None:
    # A budget of 1 s keeps all of it for writing: training gets the 1 ms floor, which no step fits in.
    args = _args("--embeddings", str(emb_file), "--out", str(tmp_path / "o"), "--time-budget", "1", "--no-progress")
    with pytest.raises(InvalidArgument, match=r"^--time-budget 1 s ran out before the first training step \(\d+\.\d s went"):
        run_train(args)
    assert not (tmp_path / "o").exists()


def test_a_text_file_is_refused_as_no_npy_array_without_advice_to_unpickle(tmp_path: Path) -> None:
    text = tmp_path / "text.npy"
    text.write_text("0.1 0.2\n0.3 0.4\n")
    with pytest.raises(InvalidArgument) as info:
        run_train(_args("--embeddings", str(text), "--out", str(tmp_path / "o"), "--no-progress"))
    assert "not a .npy file" in str(info.value) and "pickle" not in str(info.value)


def test_a_diverged_training_writes_nothing_and_asks_for_a_lower_lr(tmp_path: Path) -> None:
    five = tmp_path / "five.npy"
    np.save(five, np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32))
    args = _args("--embeddings", str(five), "--out", str(tmp_path / "o"), "--latents", "64", "--lr", "1e9",
                 "--epochs", "500", "--no-progress")
    with pytest.raises(InvalidArgument) as info:
        run_train(args)
    assert str(info.value) == (
        "SAE training left every latent dead (none fired in the kept epoch) at learning rate 1e+09; "
        "nothing was written: try a lower --lr"
    )
    assert not (tmp_path / "o").exists()
