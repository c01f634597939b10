import math
import subprocess
import sys

import pytest

from indexer.errors import InvalidArgument
from indexer.train_config import TrainConfig


@pytest.mark.parametrize(
    "kw",
    [dict(k=64, latents=64), dict(k=0, latents=64), dict(k=65, latents=64), dict(time_budget=0.0),
     dict(time_budget=-1.0), dict(time_budget=math.inf), dict(lr=0.0), dict(epochs=0), dict(warmup=1.0),
     dict(device="tpu"), dict(threads=0), dict(seed=-1), dict(seed=2**40)],
)
def test_bad_config_is_invalid_argument(kw: dict) -> None:
    with pytest.raises(InvalidArgument):
        TrainConfig(**kw)


@pytest.mark.parametrize("kw, message", [(dict(batch_size=0), "batch size must be >= 1, got 0"),
                                          (dict(epochs=-2), "epochs must be >= 1, got -2")])
def test_a_bad_option_is_named_alone(kw: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{message}$"):
        TrainConfig(**kw)


def test_reading_the_options_loads_no_torch() -> None:
    # The command line builds its parser from TrainConfig's defaults; `sae-search --help` must not wait for torch.
    code = "import sys, indexer.train_config, indexer.build_cli, indexer.train_cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
