"""Would averaging Adam's iterates help? The loss of the averaged image against the last one.

Runs Adam, keeps the image of every iteration, and evaluates (in the same
objective) the exponential moving average of the iterates for a few decays,
next to the last iterate. Averaging costs next to nothing per step, so equal
iterations is equal time::

    python benchmarks/iterate_averaging.py --size 256 --iterations 150
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# ContentModel first: it quiets TensorFlow's start-up logging before TensorFlow loads.
from ContentModel import ArgumentParser, load_image, run_cli  # noqa: E402
import tensorflow as tf  # noqa: E402
from StyleTransfer import SAMPLE_CONTENT, SAMPLE_STYLE  # noqa: E402
from common import (  # noqa: E402
    SIZE_HELP,
    add_model_arguments,
    positive_int,
    seeded_objective,
    size_argument,
    stylize,
)

DECAYS = (0.9, 0.95, 0.98)


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=size_argument, default=256, help=SIZE_HELP)
    parser.add_argument("--iterations", type=positive_int, default=150, help="Adam iterations")
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    run_cli(lambda: measure(args))


def measure(args) -> None:
    content, style = load_image(SAMPLE_CONTENT, args.size), load_image(SAMPLE_STYLE, args.size)
    run = stylize(content, style, optimizer="adam", iterations=args.iterations, model=args.model,
                  weights=args.weights, precision="float32", scales=1, save_every=1)
    objective = seeded_objective(args.model, args.weights, content, [style])

    def loss(image) -> float:
        return float(objective(tf.constant(image[None]))["total"])

    iterates = run.frames[1:]  # frames[0] is the starting image
    print(f"| image after {args.iterations} Adam iterations ({args.size} px) | total loss |")
    print("| --- | --- |")
    print(f"| last iterate | {loss(iterates[-1]):.4g} |")
    for decay in DECAYS:
        average = iterates[0]
        for image in iterates[1:]:
            average = decay * average + (1 - decay) * image
        print(f"| average, decay {decay} | {loss(average):.4g} |")


if __name__ == "__main__":
    main()
