"""Would recomputing activations (tf.recompute_grad) save memory? Peak memory and time, with and without.

Gradient checkpointing keeps only some activations from the forward pass and
recomputes the rest during the backward pass. Here VGG is cut into its blocks
(each ending at a pooling layer) and every block is wrapped in
``tf.recompute_grad``: the forward pass keeps each block's output and the
features the loss reads, and the backward pass runs each block forward again.
Each case runs one loss-and-gradient evaluation, compiled, a few times in a fresh
process, and reports its peak memory (the resident set, VmHWM, on a CPU; TensorFlow's
peak device allocation on a GPU, where the issue asks whether it helps) and median seconds::

    python benchmarks/recompute.py --sizes 1024 2048 --precisions float32 mixed --overwrite

Random weights by default: they cost the same time and memory as real ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ContentModel import (  # noqa: E402
    PRECISION_CHOICES,
    ArgumentParser,
    JoinedLists,
    add_output_arguments,
    processor_name,
    run_cli,
)
from StyleTransfer import SAMPLE_CONTENT, SAMPLE_STYLE, check_network  # noqa: E402
from common import (  # noqa: E402
    SIZE_HELP,
    add_model_arguments,
    check_inputs,
    grow_gpu_memory,
    peak_memory_kind,
    positive_int,
    reserved_report,
    run_in_fresh_process,
    size_argument,
)

GIB = 2 ** 30
MODES = ("plain", "checkpointed")

# One case in a fresh process, so that its peak memory is its own.
CHILD = """
import json, time
from ContentModel import CONTENT_LAYER, load_image
from common import peak_memory_bytes, seeded_objective
import numpy as np
import tensorflow as tf
from StyleModel import STYLE_LAYERS
from StyleTransfer import SAMPLE_CONTENT, SAMPLE_STYLE

content, style = load_image(SAMPLE_CONTENT, {size}), load_image(SAMPLE_STYLE, {size})
layers = [CONTENT_LAYER, *STYLE_LAYERS]
# One network in both cases' processes (random weights drawn from one seed), so that
# they differ only in how the gradient is computed.
objective = seeded_objective({model!r}, {weights!r}, content, [style], {precision!r})
extractor = objective.extractor


class BlockCheckpointed:
    '''The extractor's blocks run one after another, each under tf.recompute_grad.'''

    def __init__(self, model, names):
        blocks, block = [], []
        for layer in model.layers[1:]:  # layers[0] is the input
            block.append(layer)
            if "pool" in layer.name or layer is model.layers[-1]:
                blocks.append(block)
                block = []
        self.names = set(names)
        self.blocks = [(tf.recompute_grad(self.runner(block)), [l.name for l in block if l.name in self.names])
                       for block in blocks]

    def runner(self, block):
        def run(x):
            kept = []
            for layer in block:
                x = layer(x)
                if layer.name in self.names:
                    kept.append(x)
            return [x, *kept]
        return run

    def __call__(self, x):
        features = {{}}
        for run, names in self.blocks:
            x, *kept = run(x)
            features.update(zip(names, kept))
        return features


if {mode!r} == "checkpointed":
    objective.extractor = BlockCheckpointed(extractor, layers)
image = tf.constant(content[None])


@tf.function
def evaluate(image):
    with tf.GradientTape() as tape:
        tape.watch(image)
        loss = objective(image)["total"]
    return loss, tape.gradient(loss, image)


seconds = []
for _ in range({repeats} + 1):  # the first call traces the function
    start = time.perf_counter()
    loss, gradient = evaluate(image)
    gradient.numpy()
    seconds.append(time.perf_counter() - start)
print(json.dumps(dict(shape=list(content.shape[:2]), peak=peak_memory_bytes(), seconds=float(np.median(seconds[1:])),
                      loss=float(loss), gradient_norm=float(tf.norm(gradient)))))
"""


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", action=JoinedLists,
                        type=size_argument, default=[1024, 2048], help=SIZE_HELP)
    parser.add_argument("--precisions", nargs="+", action=JoinedLists,
                        choices=PRECISION_CHOICES, default=["float32", "mixed"],
                        help="as StyleTransfer.py --precision")
    add_model_arguments(parser, weights="none")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed evaluations after the first")
    add_output_arguments(parser, "JSON report")
    parser.set_defaults(output="results/benchmark_recompute.json")
    args = parser.parse_args(argv)
    run_cli(lambda: measure(args))


def measure_row(args, size: int, precision: str) -> dict:
    """Both modes at one size and precision, each in a fresh process; prints the table's row."""
    runs = {}
    for mode in MODES:
        code = CHILD.format(size=size, model=args.model, weights=args.weights, precision=precision,
                            mode=mode, repeats=args.repeats)
        try:
            runs[mode] = run_in_fresh_process(code)
        except RuntimeError as error:
            sys.exit(f"{size} px {precision} {mode} failed: {error}")
    plain, checkpointed = runs["plain"], runs["checkpointed"]
    # The graphs differ, so TensorFlow may sum in another order: how far apart they are.
    loss, norm = (abs(plain[key] - checkpointed[key]) / abs(plain[key]) for key in ("loss", "gradient_norm"))
    height, width = plain["shape"]
    print(f"| {width}x{height} | {precision} | {plain['peak'] / GIB:.2f} | {checkpointed['peak'] / GIB:.2f} "
          f"| {plain['seconds']:.2f} | {checkpointed['seconds']:.2f} | {loss:.0e} / {norm:.0e} |", flush=True)
    return dict(size=size, precision=precision, **runs)


def measure(args) -> None:
    grow_gpu_memory()  # before check_network builds VGG here: the fresh processes need the rest of the GPU
    check_inputs(args.weights, [SAMPLE_CONTENT, SAMPLE_STYLE], args.sizes)
    check_network(args.model, args.weights)
    with reserved_report(args.output, args.overwrite) as output:
        print(f"## Peak memory ({peak_memory_kind()}) with and without tf.recompute_grad "
              f"({args.model}, one loss-and-gradient evaluation)\n")
        print("| size (px) | precision | peak, plain (GiB) | peak, checkpointed (GiB) | s / evaluation, plain "
              "| s / evaluation, checkpointed | relative difference, loss / gradient norm |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        rows = [measure_row(args, size, precision) for size in args.sizes for precision in args.precisions]
        output.write_text(json.dumps(dict(args=vars(args), processor=processor_name(), measured=peak_memory_kind(),
                                          rows=rows), indent=1))
        print(f"\nJSON: {output}")


if __name__ == "__main__":
    main()
