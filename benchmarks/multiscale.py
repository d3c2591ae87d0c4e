"""Does coarse-to-fine optimization pay off? Time to the single-scale loss.

Runs a single-scale stylization at --size for --iterations, then multi-scale
runs (2 and 3 levels by default) on the same objective, and reports when each
multi-scale run's last level first reaches the single-scale run's final loss.
Writes the images side by side so the look can be compared too::

    python benchmarks/multiscale.py --model vgg19 --size 768 --iterations 100

Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ContentModel import load_image, save_image  # noqa: E402
from StyleTransfer import COARSE_ITERATIONS, level_sizes, stylize  # noqa: E402
from common import first_row_at_or_below, pair_parser  # noqa: E402


def main() -> None:
    parser = pair_parser(__doc__.splitlines()[0], size=768, output="results/benchmark_multiscale")
    parser.add_argument("--iterations", type=int, default=100, help="single-scale iterations")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--coarse-iterations", type=int, nargs="+", default=[COARSE_ITERATIONS],
                        help="iterations at each coarse level (one run per value); "
                             "the last level gets --iterations")
    parser.add_argument("--precision", default="auto", help="as StyleTransfer.py --precision")
    args = parser.parse_args()

    content = load_image(args.content, args.size)
    style = load_image(args.style, args.size)
    common = dict(model=args.model, weights=args.weights, precision=args.precision, save_every=0)
    # scales=1: --scales auto would make a run at 1024 px and above coarse to fine too
    single = stylize(content, style, iterations=args.iterations, scales=1, **common)
    target = single.history[-1]["total"]
    rows = [("1", args.size, args.iterations, single.history[-1]["seconds"], target, single.history[-1])]
    images = [single.image]
    histories = {"1": single.history}
    for scales in args.scales:
        for coarse in args.coarse_iterations:
            counts = [coarse] * (scales - 1) + [args.iterations]
            run = stylize(content, style, scales=scales, iterations=counts, **common)
            histories[f"{scales}:{coarse}"] = run.history
            images.append(run.image)
            sizes = "/".join(str(s) for s in level_sizes(args.size, scales))
            rows.append((str(scales), sizes, "+".join(map(str, counts)), run.history[-1]["seconds"],
                         run.history[-1]["total"], first_row_at_or_below(run.history, target)))

    height, width = content.shape[:2]
    print(f"# {platform.machine()}, {args.model}, {single.precision}, {width}x{height} px, "
          f"target = single-scale loss after {args.iterations} iterations = {target:.4g}")
    print("| scales | level sizes | iterations | total s | final loss | s to reach target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scales, sizes, counts, seconds, loss, reached in rows:
        reached = f"{reached['seconds']:.1f}" if reached is not None else "not reached"
        print(f"| {scales} | {sizes} | {counts} | {seconds:.1f} | {loss:.4g} | {reached} |")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_image(np.concatenate(images, axis=1), output.with_suffix(".jpg"))
    output.with_suffix(".json").write_text(json.dumps({"args": vars(args), "histories": histories}))
    print(f"images (left to right: scales {', '.join(r[0] for r in rows)}) -> {output.with_suffix('.jpg')}")


if __name__ == "__main__":
    main()
