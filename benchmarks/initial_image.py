"""Where should the optimization start? The photo against the palette start.

For each bundled sample pair, runs --iterations from the photo (--init content),
then races a run from the photo with its colours moved halfway to the painting's
(--init palette, the default) to the same loss, and reports the iterations and
seconds each took. Writes the results side by side so the look can be compared::

    python benchmarks/initial_image.py --model vgg19 --size 512 --iterations 150 --overwrite

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
    ArgumentParser,
    JoinedLists,
    add_output_arguments,
    load_image,
    new_figure,
    processor_name,
    run_cli,
    save_figure,
)
from StyleTransfer import initial_image  # noqa: E402
from common import (  # noqa: E402
    SIZE_HELP,
    add_model_arguments,
    add_precision_argument,
    check_inputs,
    first_row_at_or_below,
    positive_int,
    reserved_report,
    size_argument,
    stylize,
)

IMAGES = Path(__file__).resolve().parent.parent / "images"
#: The README's gallery pairs: (photo, painting) in images/content and images/styles.
SAMPLE_PAIRS = (("chelsea", "starry_night"), ("astronaut", "the_scream"),
                ("rocket", "great_wave"), ("coffee", "composition_vii"))
CHALLENGER = "palette"
BASELINE = "content"


def pair_images(pair: str) -> tuple[Path, Path]:
    """The photo and painting files of a 'photo+painting' pair of names."""
    photo, painting = pair.split("+")
    return IMAGES / "content" / f"{photo}.jpg", IMAGES / "styles" / f"{painting}.jpg"


def pair_argument(text: str) -> str:
    """--pairs: 'photo+painting', named after files in images/content and images/styles."""
    names = {folder: sorted(path.stem for path in (IMAGES / folder).glob("*.jpg")) for folder in ("content", "styles")}
    if text.count("+") != 1 or not all(path.is_file() for path in pair_images(text)):
        raise argparse.ArgumentTypeError(
            f"expected photo+painting, with a photo from images/content ({', '.join(names['content'])}) "
            f"and a painting from images/styles ({', '.join(names['styles'])}), got {text!r}")
    return text


def plot_rows(rows: list, titles: list):
    """A grid of images: one row per pair, one column per title."""
    figure = new_figure(figsize=(2.6 * len(titles), 2.1 * len(rows)))
    axes = figure.subplots(len(rows), len(titles), squeeze=False)
    for row, images in zip(axes, rows):
        for axis, image, title in zip(row, images, titles):
            axis.imshow(np.clip(image, 0, 1))
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    return figure


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=size_argument, default=512, help=SIZE_HELP)
    parser.add_argument("--iterations", type=positive_int, default=150,
                        help="iterations from the photo; their final loss is the target")
    add_model_arguments(parser)
    add_precision_argument(parser, "auto")
    parser.add_argument("--pairs", nargs="+", action=JoinedLists,
                        type=pair_argument, default=[f"{c}+{s}" for c, s in SAMPLE_PAIRS],
                        help="photo+painting names from images/content and images/styles")
    add_output_arguments(parser, "name of the picture (.jpg) and the JSON report (.json), put in place of any suffix")
    parser.set_defaults(output="results/benchmark_init")
    args = parser.parse_args(argv)
    run_cli(lambda: measure(args))


def measure(args) -> None:
    images = [image for pair in args.pairs for image in pair_images(pair)]
    check_inputs(args.weights, images, [args.size])
    with reserved_report(args.output, args.overwrite, stem=True, inputs=images,
                         beside=lambda path: [path.with_suffix(".jpg")]) as output:
        common = dict(model=args.model, weights=args.weights, precision=args.precision, save_every=0, scales=1)
        table, pictures, report = [], [], []
        for pair in args.pairs:
            photo, painting = pair_images(pair)
            content, style = load_image(photo, args.size), load_image(painting, args.size)
            baseline = stylize(content, style, init=BASELINE, iterations=args.iterations, **common)
            target = baseline.history[-1]["total"]

            def until_target(progress):
                return progress.losses["total"] > target

            # Twice the iterations at most: a start that needs more has lost the race anyway.
            challenger = stylize(content, style, init=CHALLENGER, iterations=2 * args.iterations,
                                 callback=until_target, **common)
            reached = first_row_at_or_below(challenger.history, target)
            last = baseline.history[-1]
            table.append((pair, f"{last['iteration']} ({last['evaluations']})", last["seconds"],
                          reached and f"{reached['iteration']} ({reached['evaluations']})",
                          reached and reached["seconds"]))
            pictures.append([content, style, initial_image(content, [style], CHALLENGER, 0),
                             baseline.image, challenger.image])
            report.append(dict(pair=pair, target=target, baseline=baseline.history, challenger=challenger.history))
            print(f"{pair}: {BASELINE} {args.iterations} iterations, {CHALLENGER} "
                  f"{reached['iteration'] if reached else 'not reached'}", flush=True)

        processor = processor_name()
        print(f"\n# {processor}, {args.model}, {baseline.precision}, long side {args.size} px; "
              f"target = the loss after {args.iterations} iterations from the photo\n")
        print(f"| pair | from the photo: iterations (evaluations) | s | from the {CHALLENGER} start | s "
              f"| time saved |")
        print("| --- | --- | --- | --- | --- | --- |")
        for pair, base_iterations, base_seconds, iterations, seconds in table:
            saved = f"{1 - seconds / base_seconds:.0%}" if seconds else "-"
            print(f"| {pair} | {base_iterations} | {base_seconds:.1f} | {iterations or 'not reached'} | "
                  f"{seconds or float('nan'):.1f} | {saved} |")
        done = [row for row in table if row[3]]
        if done:
            base_seconds, seconds = sum(row[2] for row in done), sum(row[4] for row in done)
            print(f"| all | | {base_seconds:.1f} | | {seconds:.1f} | {1 - seconds / base_seconds:.0%} |")
        titles = ["photo", "painting", f"{CHALLENGER} start", f"from the photo, {args.iterations} its",
                  f"from the {CHALLENGER} start, same loss"]
        save_figure(plot_rows(pictures, titles), output.with_suffix(".jpg"))
        output.with_suffix(".json").write_text(
            json.dumps({"args": vars(args), "processor": processor, "pairs": report}))
        print(f"pictures -> {output.with_suffix('.jpg')}")


if __name__ == "__main__":
    main()
