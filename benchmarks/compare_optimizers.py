"""Quality reached in equal time: L-BFGS against Adam on the same objective.

Runs StyleTransfer.stylize once per optimizer on one content/style pair and
prints the total loss each had reached at the same wall-clock times (read from
the per-iteration history), then writes the histories as JSON::

    python benchmarks/compare_optimizers.py --model vgg19 --size 384 --seconds 120 --overwrite

It measures: run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ContentModel import load_image, processor_name, run_cli, save_image  # noqa: E402
from StyleTransfer import OPTIMIZERS  # noqa: E402
from common import (  # noqa: E402
    check_inputs,
    pair_parser,
    positive_int,
    positive_number,
    reserved_report,
    stylize,
)

CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)  # fractions of the time budget reported


def loss_at(history: list, seconds: float) -> float:
    """Lowest total loss reached by ``seconds`` (inf if no iteration had finished)."""
    reached = [row["total"] for row in history if row["seconds"] <= seconds]
    return min(reached) if reached else float("inf")


def loss_cell(history: list, seconds: float) -> str:
    """A table cell: loss_at, or 'none yet' where no iteration had finished (a short budget's
    first checkpoints can come before the first iteration, which traces and builds)."""
    loss = loss_at(history, seconds)
    return f"{loss:.3g}" if loss != float("inf") else "none yet"


def picture(report: Path, optimizer: str) -> Path:
    """Where the image of ``optimizer``'s run is written: beside the JSON report."""
    return report.with_name(f"benchmark_{optimizer}.jpg")


def main(argv: list[str] | None = None) -> None:
    parser = pair_parser(__doc__.splitlines()[0], size=384, output="results/benchmark_optimizers.json",
                         what="JSON report; each optimizer's image goes beside it, as benchmark_OPTIMIZER.jpg")
    parser.add_argument("--seconds", type=positive_number, default=120.0, help="time budget per optimizer")
    parser.add_argument("--max-iterations", type=positive_int, default=2000, help="iterations per optimizer at most")
    args = parser.parse_args(argv)
    run_cli(lambda: measure(args))


def measure(args) -> None:
    check_inputs(args.weights, [args.content, args.style], [args.size])
    with reserved_report(args.output, args.overwrite, inputs=[args.content, args.style],
                         beside=lambda path: [picture(path, optimizer) for optimizer in OPTIMIZERS]) as output:
        content = load_image(args.content, args.size)
        style = load_image(args.style, args.size)
        histories = {}
        for optimizer in OPTIMIZERS:
            def stop_at_budget(progress, budget=args.seconds):
                return progress.elapsed <= budget  # False ends the run, keeping the best image
            result = stylize(content, style, optimizer=optimizer, iterations=args.max_iterations, scales=1,
                             model=args.model, weights=args.weights, callback=stop_at_budget)
            histories[optimizer] = result.history
            save_image(result.image, picture(output, optimizer))

        times = [round(args.seconds * f, 1) for f in CHECKPOINTS]
        processor = processor_name()
        print(f"# {processor}, {args.model}, "
              f"{content.shape[1]}x{content.shape[0]} px")
        print("| optimizer | iterations | " + " | ".join(f"loss at {t:g} s" for t in times) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in times) + " |")
        for optimizer, history in histories.items():
            done = sum(1 for row in history if row["seconds"] <= args.seconds)
            print(f"| {optimizer} | {done} | " + " | ".join(loss_cell(history, t) for t in times) + " |")
        output.write_text(json.dumps({"args": vars(args), "processor": processor, "histories": histories}))


if __name__ == "__main__":
    main()
