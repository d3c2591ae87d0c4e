"""What the benchmark scripts share: the sample pair and the flags that choose it, a
fresh process for measurements that must start from nothing, and the peak memory
(the resident set on a CPU, device memory on a GPU)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import tensorflow as tf  # noqa: E402
from ContentModel import weights_argument  # noqa: E402
from StyleTransfer import SAMPLE_CONTENT, SAMPLE_STYLE, resolve_device  # noqa: E402


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model and --weights ('none': random weights, which cost the same)."""
    parser.add_argument("--model", default="vgg19")
    parser.add_argument("--weights", type=weights_argument, default="imagenet",
                        help="'imagenet', a weights file, or 'none' for random weights")


def pair_parser(description: str, *, size: int, output: str) -> argparse.ArgumentParser:
    """A parser with --content, --style, --size, --model, --weights and -o."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--content", default=str(SAMPLE_CONTENT))
    parser.add_argument("--style", default=str(SAMPLE_STYLE))
    parser.add_argument("--size", type=int, default=size)
    add_model_arguments(parser)
    parser.add_argument("-o", "--output", default=output)
    return parser


def first_row_at_or_below(history: list, target: float) -> dict | None:
    """The first iteration of a run's last level whose total loss is at or below
    ``target`` (the row of StylizeResult.history), or None if it never got there."""
    last_level = history[-1]["level"]
    return next((row for row in history if row["level"] == last_level and row["total"] <= target), None)


def peak_resident_bytes() -> int:
    """This process's peak resident set so far (VmHWM; Linux), in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))


def on_gpu() -> bool:
    """Whether runs here go to a GPU (StyleTransfer's --device auto), where the memory that counts is."""
    return resolve_device("auto").startswith("/GPU")


def peak_memory_bytes() -> int:
    """This process's peak memory so far where its tensors live: TensorFlow's peak
    allocation on the first GPU when there is one (the host's resident set says
    nothing of it), else the peak resident set."""
    if on_gpu():
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    return peak_resident_bytes()


def peak_memory_kind() -> str:
    """What peak_memory_bytes() measures on this machine, for a table's heading."""
    return "GPU device memory" if on_gpu() else "resident set"


def run_in_fresh_process(code: str) -> dict:
    """Run ``code`` in a new Python process, with the repository and this folder importable,
    and return what its last line of output prints as JSON; RuntimeError with its last error
    line if it fails."""
    setup = f"import sys\nsys.path[:0] = [{str(ROOT)!r}, {str(HERE)!r}]\n"
    done = subprocess.run([sys.executable, "-c", setup + code], capture_output=True, text=True)
    if done.returncode != 0:
        errors = done.stderr.strip().splitlines()
        raise RuntimeError(errors[-1] if errors else f"exit status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])
