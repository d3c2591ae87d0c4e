"""Does optimizing several contents together (batch mode's --batch-size) pay off?

Times Adam steps for batches of 1, 2, ... same-size content images sharing a
style, and prints the seconds per step and per image-step (median of the steps
after the first, which compiles)::

    python benchmarks/batching.py --sizes 256 512 --batches 1 2 4

Batch mode's --batch-size auto uses the result: more than one image per batch
only where it is faster per image. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ContentModel import JoinedLists, load_image, processor_name, run_cli  # noqa: E402
from common import (  # noqa: E402
    SIZE_HELP,
    add_precision_argument,
    check_inputs,
    iteration_gaps,
    pair_parser,
    positive_int,
    reserved_report,
    size_argument,
    stylize_batch,
    whole_number,
)


#: Fewest --steps that leave a time: the median is taken over the gaps between the
#: steps after the first (compiling), the last left out (iteration_gaps): one gap at 4.
MIN_STEPS = 4
#: Of N steps, N - UNTIMED_STEPS gaps are timed.
UNTIMED_STEPS = MIN_STEPS - 1


def seconds_per_step(history: list) -> float:
    """Median time between consecutive steps (iteration_gaps: the first and the last left out)."""
    return float(np.median([seconds for seconds, _ in iteration_gaps(history, 1)]))


def main(argv: list[str] | None = None) -> None:
    parser = pair_parser(__doc__.splitlines()[0], size=None, output="results/benchmark_batching",
                         what="JSON report (.json is put in place of any suffix)")
    parser.add_argument("--sizes", type=size_argument, nargs="+", action=JoinedLists,
                        default=[256, 512], help=SIZE_HELP)
    parser.add_argument("--batches", type=positive_int, nargs="+", action=JoinedLists,
                        default=[1, 2, 4], help="images per batch")
    parser.add_argument("--steps", type=whole_number(MIN_STEPS), default=8,
                        help=f"Adam steps per measurement (at least {MIN_STEPS}: the first compiles, the "
                             "last is measured by a forward pass of its own, and the gaps between the "
                             "others are timed)")
    add_precision_argument(parser, "float32")
    args = parser.parse_args(argv)
    run_cli(lambda: measure(args))


def measure(args) -> None:
    check_inputs(args.weights, [args.content, args.style], args.sizes)
    with reserved_report(args.output, args.overwrite, stem=True, inputs=[args.content, args.style]) as output:
        rows = []
        for size in args.sizes:
            content = load_image(args.content, size)
            style = load_image(args.style, size)
            # Different images of one size: the photo and shifted copies of it.
            contents = [np.roll(content, shift * 7, axis=1) for shift in range(max(args.batches))]
            single = None
            for batch in args.batches:
                results = stylize_batch(contents[:batch], style, iterations=args.steps, optimizer="adam",
                                        model=args.model, weights=args.weights, precision=args.precision,
                                        scales=1, save_every=0)
                step = seconds_per_step(results[0].history)
                single = step if batch == 1 else single
                speedup = single * batch / step if single else None
                rows.append({"size": f"{content.shape[1]}x{content.shape[0]}", "batch": batch, "step_s": step,
                             "image_step_s": step / batch, "speedup": speedup})

        processor = processor_name()
        print(f"# {processor}, {args.model}, Adam, {args.precision}, "
              f"median of {args.steps - UNTIMED_STEPS} gaps between steps")
        print("| size | batch | s per step | s per image-step | images per second vs batch 1 |")
        print("| --- | --- | --- | --- | --- |")
        for row in rows:
            speedup = f"{row['speedup']:.2f}x" if row["speedup"] else "-"
            print(f"| {row['size']} | {row['batch']} | {row['step_s']:.3f} | {row['image_step_s']:.3f} | {speedup} |")
        output.write_text(json.dumps({"args": vars(args), "processor": processor, "rows": rows}, indent=1))
        print(f"-> {output}")


if __name__ == "__main__":
    main()
