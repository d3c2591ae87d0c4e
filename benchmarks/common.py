"""What the benchmark scripts share: the sample pair and the flags that choose it, the
product's command-line conventions (one 'error: ...' line and exit status 2 for bad
input, nothing replaced that the user did not ask to replace), a fresh process for
measurements that must start from nothing, and the peak memory (the resident set on
a CPU, device memory on a GPU)."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ContentModel import (  # noqa: E402
    CONTENT_LAYER,
    DEFAULT_SEED,
    MAX_SIZE,
    MIN_SIZE,
    PRECISION_CHOICES,
    StyleTransferError,
    VGG_MODELS,
    ArgumentParser,
    add_output_arguments,
    build_vgg,
    check_short_side,
    check_weights,
    load_image,
    loaded_shape,
    names_a_folder,
    reserved_output,
    seeded,
    smallest_long_side,
    stored_shape,
    weights_argument,
)
import StyleTransfer  # noqa: E402
from StyleTransfer import (  # noqa: E402
    INTERRUPTED,
    MAX_SCALES,
    MAX_STYLE_SCALE,
    MIN_STYLE_SCALE,
    SAMPLE_CONTENT,
    SAMPLE_STYLE,
    build_objective,
    resolve_device,
)
from StyleModel import STYLE_LAYERS  # noqa: E402


def stylize_batch(*args, **kwargs) -> list:
    """StyleTransfer.stylize_batch for a measurement. On Ctrl-C the product ends a run
    early and returns its best images so far; a table would take that for a finished run,
    so here Ctrl-C stops the script instead (KeyboardInterrupt: run_cli then says
    'interrupted' and exits 130, and the report's placeholder goes)."""
    results = StyleTransfer.stylize_batch(*args, **kwargs)
    if any(result.stopped_early == INTERRUPTED for result in results):
        raise KeyboardInterrupt
    return results


def stylize(content_image, style_images, **settings):
    """StyleTransfer.stylize for a measurement: stylize_batch() here with a batch of one."""
    return stylize_batch([content_image], style_images, **settings)[0]


def whole_number(minimum: int = 1, maximum: int | None = None):
    """An argparse type: a whole number from ``minimum`` (to ``maximum``); anything else is
    the parser's one-line error, before any work."""
    bounds = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return value

    return parse


#: Counts: repeats, iterations, steps, batch sizes.
positive_int = whole_number(1)
#: A long side in pixels, within the product's --size range.
size_argument = whole_number(MIN_SIZE, MAX_SIZE)
#: Coarse-to-fine levels, as StyleTransfer.py --scales takes them.
scales_argument = whole_number(1, MAX_SCALES)
SIZE_HELP = f"long side in pixels ({MIN_SIZE} to {MAX_SIZE})"


def positive_number(text: str) -> float:
    """An argparse type: a finite number above 0 (seconds, a loss)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def style_scale_argument(text: str) -> float:
    """An argparse type: a --style-scale StyleTransfer.py takes."""
    value = positive_number(text)
    if not MIN_STYLE_SCALE <= value <= MAX_STYLE_SCALE:
        raise argparse.ArgumentTypeError(
            f"expected a style scale from {MIN_STYLE_SCALE} to {MAX_STYLE_SCALE}, got {text!r}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser, weights: str = "imagenet") -> None:
    """--model and --weights ('none': random weights, which cost the same)."""
    parser.add_argument("--model", default="vgg19", choices=sorted(VGG_MODELS), help="VGG backbone")
    parser.add_argument("--weights", type=weights_argument, default=weights,
                        help="'imagenet', a weights file, or 'none' for random weights")


def add_precision_argument(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=default,
                        help="as StyleTransfer.py --precision")


def pair_parser(description: str, *, size: int | None, output: str, what: str) -> ArgumentParser:
    """A parser with --content, --style, --size (default ``size``; none when that is None, for a
    script that takes several sizes), --model, --weights, -o (default ``output``, ``what`` its
    help) and --overwrite, with the product's conventions (ContentModel.ArgumentParser)."""
    parser = ArgumentParser(description=description)
    parser.add_argument("--content", default=str(SAMPLE_CONTENT), help="photo")
    parser.add_argument("--style", default=str(SAMPLE_STYLE), help="painting")
    if size is not None:
        parser.add_argument("--size", type=size_argument, default=size, help=SIZE_HELP)
    add_model_arguments(parser)
    add_output_arguments(parser, what)
    parser.set_defaults(output=output)
    return parser


def check_inputs(weights: str | None, images=(), sizes=()) -> None:
    """Before any measuring: the weights file exists and each image is readable and, at the
    smallest of ``sizes``, not too small for VGG (StyleTransferError: one line, exit status 2;
    the scripts' size flags have other names than StyleTransfer.py's --size, which the
    product's own message names)."""
    check_weights(weights)
    for image in images:
        shape = stored_shape(image)
        check_short_side(str(image), shape[1], shape[0])
        try:
            loaded_shape(shape, min(sizes))
        except StyleTransferError:
            raise StyleTransferError(f"{image} at a long side of {min(sizes)} px is under {MIN_SIZE} px on its short "
                                     f"side, which VGG needs; give larger sizes ({smallest_long_side(shape)} px "
                                     "always do)") from None
        load_image(image, min(sizes))


def reserved_report(output: str | Path, overwrite: bool, *, stem: bool = False, beside=lambda report: [],
                    inputs=(), flag: str = "-o"):
    """The path of the JSON report, held for the length of the block (a context manager):
    ``output``, or with ``stem`` ``output`` with '.json' put in place of its suffix (the name
    the script's files share). Checked before any measuring, as StyleTransfer.py checks its
    -o (ContentModel.choose_output; its messages name ``flag``): neither the report nor the
    files ``beside(report)`` that the script writes next to it may exist unless ``overwrite``
    ('... exists; pass --overwrite to replace it'), be an input, be a folder, or lie in a
    folder that cannot be written. Then the report is created empty at once
    (ContentModel.reserved_output), so that a second run started meanwhile with the same name
    is refused instead of replacing it at the end; if the block ends without writing it (an
    error, Ctrl-C), the placeholder goes again."""
    report = Path(output)
    # A folder keeps its name, so that it is refused as one instead of a report put beside it
    # ('out/': Path drops the slash, and out.json would be written).
    folder = names_a_folder(output)
    if stem and str(output).strip() and not folder and not report.is_dir():
        report = report.with_suffix(".json")
    written = [report, *beside(report)]
    return reserved_output(report.stem, output if folder else report, list(inputs), overwrite,
                           siblings=lambda path: written, suffixes=(".json",), flag=flag)


def iteration_gaps(history: list, skip: int) -> list[tuple[float, int]]:
    """(seconds, evaluations) between each two consecutive iterations of a run's
    ``history``, leaving out the first ``skip`` iterations (tracing, compiling) and the
    last: adam_optimize measures its last image with a forward pass of its own, traced on
    that call, which is not a step (so a run goes two iterations past the gaps it times)."""
    rows = history[skip:-1]
    return [(row["seconds"] - previous["seconds"], row["evaluations"] - previous["evaluations"])
            for previous, row in zip(rows, rows[1:])]


def seeded_objective(model: str, weights, content: np.ndarray, styles: list, precision: str = "float32"):
    """The objective (build_objective) on the network that stylize optimizes on with its
    default seed: random weights (weights=None) are drawn from the seed, so a network built
    without it would be another one, and its losses would score a run on the wrong network."""
    with seeded(DEFAULT_SEED):
        extractor = build_vgg(model, [CONTENT_LAYER, *STYLE_LAYERS], weights, precision)
    return build_objective(extractor, content, styles)


def first_row_at_or_below(history: list, target: float) -> dict | None:
    """The first iteration of a run's last level whose total loss is at or below
    ``target`` (the row of StylizeResult.history), or None if it never got there."""
    last_level = history[-1]["level"]
    return next((row for row in history if row["level"] == last_level and row["total"] <= target), None)


def peak_resident_bytes() -> int:
    """This process's peak resident set so far (VmHWM; Linux), in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))


def grow_gpu_memory() -> None:
    """Let TensorFlow take GPU memory as it needs it, not nearly all of it at its start, so
    that the fresh processes of the memory measurements (run_in_fresh_process) can use the
    rest of the same GPU. Possible only before TensorFlow has started; once it has (a test
    that runs several benchmarks in one process), the GPUs stay as they are."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # "Physical devices cannot be modified after being initialized"
            return


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
