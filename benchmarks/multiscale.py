"""Does coarse-to-fine optimization pay off? Time to the single-scale loss.

Runs a single-scale stylization at --size for --iterations, then multi-scale
runs (2 and 3 levels by default) on the same objective, and reports when each
multi-scale run's last level first reaches the single-scale run's final loss,
and the losses the single-scale run had on the way, after 10 %, 20 %, ... of its
iterations (lower qualities). Writes the images side by side so the look can be
compared too::

    python benchmarks/multiscale.py --model vgg19 --size 768 --iterations 100 --overwrite
    python benchmarks/multiscale.py --report results/benchmark_multiscale_1024.json  # the tables again

Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ContentModel import (  # noqa: E402
    JoinedLists,
    StyleTransferError,
    error_summary,
    load_image,
    processor_name,
    run_cli,
    save_image,
)
from StyleTransfer import COARSE_ITERATIONS  # noqa: E402
from common import (  # noqa: E402
    add_precision_argument,
    check_inputs,
    first_row_at_or_below,
    pair_parser,
    positive_int,
    reserved_report,
    scales_argument,
    stylize,
)

#: Fractions of the single-scale run's iterations whose losses the second table races to.
MILESTONES = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


def run(args: argparse.Namespace, output: Path, processor: str) -> dict:
    """The single-scale run and the multi-scale ones: {run name: history}; writes the images
    (``output`` with the suffix .jpg) and names ``processor`` in the table's heading."""
    content = load_image(args.content, args.size)
    style = load_image(args.style, args.size)
    common = dict(model=args.model, weights=args.weights, precision=args.precision, save_every=0)
    # scales=1: --scales auto would make a run at 1024 px and above coarse to fine too
    single = stylize(content, style, iterations=args.iterations, scales=1, **common)
    histories = {"1": single.history}
    images = [single.image]
    for scales in args.scales:
        for coarse in args.coarse_iterations:
            counts = [coarse] * (scales - 1) + [args.iterations]
            result = stylize(content, style, scales=scales, iterations=counts, **common)
            histories[f"{scales}:{coarse}"] = result.history
            images.append(result.image)
    height, width = content.shape[:2]
    print(f"# {processor}, {args.model}, {single.precision}, {width}x{height} px")
    output.parent.mkdir(parents=True, exist_ok=True)
    save_image(np.concatenate(images, axis=1), output.with_suffix(".jpg"))
    print(f"images (left to right: scales {', '.join(histories)}) -> {output.with_suffix('.jpg')}")
    return histories


def seconds_to(history: list, loss: float) -> str:
    reached = first_row_at_or_below(history, loss)
    return f"{reached['seconds']:.1f}" if reached is not None else "not reached"


def run_level_sizes(history: list, scales: int) -> list[int]:
    """The long side each of a run's ``scales`` levels had, read from its history (as run:
    a wide image's first levels start larger than level_sizes's plain geometric ones)."""
    return [max(next(((row["height"], row["width"]) for row in history if row["level"] == level), (0, 0)))
            for level in range(scales)]


def report(iterations: int, histories: dict) -> None:
    """The tables: each run against the single-scale run's final loss, then against the
    losses it had on the way there."""
    single = histories["1"]
    target = single[-1]["total"]
    print(f"\ntarget = single-scale loss after {iterations} iterations = {target:.4g}\n")
    print("| scales | level sizes | iterations | total s | final loss | s to reach target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, history in histories.items():
        scales = int(name.split(":")[0])
        counts = [sum(1 for row in history if row["level"] == level) for level in range(scales)]
        sizes = "/".join(map(str, run_level_sizes(history, scales)))
        print(f"| {scales} | {sizes} | {'+'.join(map(str, counts))} | {history[-1]['seconds']:.1f} "
              f"| {history[-1]['total']:.4g} | {seconds_to(history, target)} |")
    milestones = [single[max(1, round(fraction * len(single))) - 1] for fraction in MILESTONES]
    print("\nseconds to reach the single-scale run's loss after N of its iterations:\n")
    print("| run (scales:coarse iterations) | " + " | ".join(
        f"N = {row['iteration']} ({row['total']:.3g})" for row in milestones) + " |")
    print("| --- |" + " --- |" * len(milestones))
    for name, history in histories.items():
        print(f"| {name} | " + " | ".join(seconds_to(history, row["total"]) for row in milestones) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = pair_parser(__doc__.splitlines()[0], size=768, output="results/benchmark_multiscale",
                         what="name of the picture (.jpg) and the JSON report (.json), put in place of any suffix")
    parser.add_argument("--iterations", type=positive_int, default=100, help="single-scale iterations")
    parser.add_argument("--scales", type=scales_argument, nargs="+", action=JoinedLists, default=[2, 3],
                        help="levels of each multi-scale run")
    parser.add_argument("--coarse-iterations", type=positive_int, nargs="+", action=JoinedLists,
                        default=[COARSE_ITERATIONS],
                        help="iterations at each coarse level (one run per value); "
                             "the last level gets --iterations")
    add_precision_argument(parser, "auto")
    parser.add_argument("--report", metavar="JSON", default=None,
                        help="print the tables of an earlier run's JSON instead of running")
    args = parser.parse_args(argv)
    run_cli(lambda: measure(args))


def measure(args) -> None:
    if args.report:
        try:
            saved = json.loads(Path(args.report).read_text())
            report(saved["args"]["iterations"], saved["histories"])
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
            raise StyleTransferError(f"cannot read {args.report} as this script's JSON: "
                                     f"{error_summary(error)}") from None
        return
    check_inputs(args.weights, [args.content, args.style], [args.size])
    with reserved_report(args.output, args.overwrite, stem=True, inputs=[args.content, args.style],
                         beside=lambda path: [path.with_suffix(".jpg")]) as output:
        processor = processor_name()
        histories = run(args, output, processor)
        output.write_text(json.dumps({"args": vars(args), "processor": processor, "histories": histories}))
        report(args.iterations, histories)


if __name__ == "__main__":
    main()
