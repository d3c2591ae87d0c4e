"""How fast is it? Seconds per iteration, achieved FLOP rate, peak memory, time to quality.

Prints Markdown tables (and writes JSON) for whatever machine it runs on::

    python benchmarks/benchmark.py                      # everything (tens of minutes on 2 cores)
    python benchmarks/benchmark.py --sections speed precision --overwrite  # replaces benchmark_precision.jpg
    python benchmarks/benchmark.py --sections quality --quality-size 256 --classic-steps 1000

Sections:
  speed      seconds per iteration (median after warm-up) for vgg16/vgg19 x adam/lbfgs x sizes,
             the FLOPs of one loss-and-gradient evaluation counted from the layer shapes, and
             the rate achieved as a fraction of this process's float32 matrix-multiply rate
             (measured just before each row), next to the time of a bare VGG pass (no loss,
             no optimizer) on the same image; with --runs N the median of N measurements
  xla        the compiled loss-and-gradient step with and without XLA (jit_compile=True)
  overhead   the optimizers' own work: milliseconds per iteration on a loss that costs next to
             nothing (so that what is timed is Adam's update, or L-BFGS's two-loop recursion,
             line search and host reads), and, with a full memory, one call of L-BFGS's two-loop
             and the storing of one pair
  precision  float32 against --precision mixed / bfloat16: time per evaluation, and how much
             the stylized image changes (images written side by side)
  memory     peak memory of a short run at several sizes (each in a fresh process; the resident
             set on a CPU, TensorFlow's peak device allocation on a GPU), next to
             the estimate StyleTransfer makes before it starts; L-BFGS runs until its
             memory of past steps is full, where its need peaks. With a --memory-style-scale
             above about 1.4 (1.2 with Adam; by the estimates) the style image's pass
             through VGG needs more than the optimization
  sustained  the seconds a run of --sustained-iterations iterations at --sustained-size px takes
             with the default settings, per optimizer (the GPU target: 500 at 512 px in under 5 s)
  quality    loss against wall time for adam, lbfgs (plain and with each preconditioner) and multi-scale
             on one objective, and the time the default settings take to reach the loss of
             the classic TensorFlow-tutorial recipe (Adam, lr 0.02, beta_1 0.99, epsilon 0.1)
             after --classic-steps steps

Real VGG weights change nothing in the timings; the quality section needs them
(--model vgg19 with the weights in the Keras cache, KERAS_HOME). Run it on an
otherwise idle machine: it measures wall time.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# ContentModel first: it quiets TensorFlow's start-up logging before TensorFlow loads.
from ContentModel import (  # noqa: E402
    PRECISION_CHOICES,
    VGG_MODELS,
    ArgumentParser,
    JoinedLists,
    build_vgg,
    code_version,
    counted,
    load_image,
    processor_name,
    run_cli,
    save_image,
    smallest_long_side,
    weights_argument,
)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from StyleModel import STYLE_LAYERS  # noqa: E402
from common import (  # noqa: E402
    SIZE_HELP,
    check_inputs,
    first_row_at_or_below,
    grow_gpu_memory,
    iteration_gaps,
    on_gpu,
    peak_memory_kind,
    positive_int,
    positive_number,
    reserved_report,
    run_in_fresh_process,
    scales_argument,
    seeded_objective,
    size_argument,
    style_scale_argument,
    stylize,
    whole_number,
)
from StyleTransfer import (  # noqa: E402
    ADAM_BETA_1,
    ADAM_EPSILON,
    ADAM_LEARNING_RATE,
    COARSE_ITERATIONS,
    CONTENT_LAYER,
    SAMPLE_CONTENT,
    SAMPLE_STYLE,
    DEFAULT_PRECONDITIONER,
    DEFAULT_SCALES,
    LBFGS_MEMORY_SIZE,
    LOSS_TERMS,
    OPTIMIZERS,
    PRECONDITIONERS,
    LbfgsMemory,
    adam_optimize,
    build_objective,
    check_network,
    lbfgs_optimize,
    resolve_scales,
)

# In the order they run. XLA first: stylize() turns on TensorFlow's op determinism for the
# rest of the process, and XLA has no deterministic max-pooling gradient.
SECTIONS = ("xla", "speed", "overhead", "precision", "memory", "sustained", "quality")
QUALITY_RUNS = ("plain-float32", "plain-mixed", "pyramid-mixed", "lbfgs-float32", "content-init",
                "lbfgs-mixed", "scales-float32", "scales-mixed", "defaults")
WARMUP_ITERATIONS = 2  # the first calls trace and compile the step
#: The picture the precision section writes beside the JSON report.
PRECISION_PICTURE = "benchmark_precision.jpg"
#: Side of the square matrices whose product gives the matmul rate, by device: large enough
#: that the product, not its launch, is what is timed (an H100 multiplies two 2048^2
#: matrices in about the time a launch takes).
MATMUL_SIZE = {"cpu": 2048, "gpu": 8192}
GIB = 2 ** 30


# ---------------------------------------------------------------------------
# Counting work
# ---------------------------------------------------------------------------


def conv_flops(model, height: int, width: int) -> float:
    """Multiply-adds x 2 of the forward pass of a feature extractor on one image.

    Counted from the layer shapes: each 3x3 convolution costs 2*H*W*9*C_in*C_out,
    each Gram matrix 2*H*W*C^2 (pooling and ReLU are negligible).
    """
    flops, h, w = 0.0, height, width
    for layer in model.layers:
        if layer.__class__.__name__ == "MaxPooling2D":
            h, w = h // 2, w // 2
        elif layer.__class__.__name__ == "Conv2D":
            kernel = layer.kernel.shape  # (3, 3, C_in, C_out)
            flops += 2.0 * h * w * kernel[0] * kernel[1] * kernel[2] * kernel[3]
            if layer.name in STYLE_LAYERS:
                flops += 2.0 * h * w * kernel[3] ** 2
    return flops


def evaluation_flops(model, height: int, width: int) -> float:
    """One loss-and-gradient evaluation: the forward pass, and a backward pass that
    needs only the gradient with respect to the input of each layer (the weights
    are frozen), which costs as much again."""
    return 2.0 * conv_flops(model, height, width)


def median_seconds(function, repeats: int, warmup: int = WARMUP_ITERATIONS) -> float:
    """Median wall time of ``function()`` (which returns a tensor, copied to the
    host so that the work is done) over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        function().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function().numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_size() -> int:
    """MATMUL_SIZE for the device runs go to here."""
    return MATMUL_SIZE["gpu" if on_gpu() else "cpu"]


def matmul_rate(dtype=tf.float32, repeats: int = 10) -> float:
    """FLOP/s of a large square matrix multiplication in this process."""
    size = matmul_size()
    a = tf.cast(tf.random.uniform((size, size), dtype=tf.float32), dtype)
    b = tf.identity(a)
    # One element of the product comes back to the host: waiting for it waits for the
    # whole product, and copying the product itself would be timed too.
    return 2.0 * size ** 3 / median_seconds(lambda: tf.matmul(a, b)[0, 0], repeats, warmup=1)


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


def bare_pass_seconds(extractor, image: np.ndarray, repeats: int) -> float:
    """Median seconds of VGG alone: the forward pass and the gradient of the sum of
    its outputs with respect to the image, compiled, with no loss, optimizer or
    host copy of the image: what an iteration would cost with no overhead at all."""
    pixels = tf.constant(image[None])

    @tf.function
    def bare():
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            total = tf.add_n([tf.reduce_sum(features) for features in extractor(pixels).values()])
        return tape.gradient(total, pixels)

    return median_seconds(bare, repeats)


def per_evaluation_seconds(history: list, warmup: int = WARMUP_ITERATIONS) -> tuple[float, float]:
    """(median seconds per iteration, median seconds per evaluation) after warm-up, from
    a run of at least warmup + 3 iterations (iteration_gaps)."""
    gaps = iteration_gaps(history, warmup)
    return (float(np.median([seconds for seconds, _ in gaps])),
            float(np.median([seconds / max(1, evaluations) for seconds, evaluations in gaps])))


def images_at(size: int):
    return load_image(SAMPLE_CONTENT, size), load_image(SAMPLE_STYLE, size)


def speed_measurement(extractor, model_name: str, optimizer: str, content: np.ndarray, style: np.ndarray,
                      work: float, repeats: int) -> dict:
    """One measurement of one row: the matmul rate just before it (the machine's speed
    drifts by a few per cent within minutes), then a short float32 single-level run."""
    rate = matmul_rate()
    # float32 and one level whatever the defaults: the rate is against the float32 matmul
    result = stylize(content, style, optimizer=optimizer, model=model_name, weights=None,
                     precision="float32", scales=1, iterations=WARMUP_ITERATIONS + repeats + 2, save_every=0)
    per_iteration, per_evaluation = per_evaluation_seconds(result.history)
    return dict(matmul_flops=rate, seconds_per_iteration=per_iteration, seconds_per_evaluation=per_evaluation,
                fraction=work / per_evaluation / rate)


def speed(args, report: dict) -> None:
    """The speed table: each row measured --runs times, the rows taken in turn (all once,
    then all again), so that a slow stretch of a shared machine falls on one measurement
    of several rows rather than on every measurement of one; each figure is the median
    of a row's measurements."""
    rows = {}  # (model, size, optimizer) -> the row, with its measurements
    images = {size: images_at(size) for size in args.sizes}
    # The model, its extractor, the size and its images, and the work of one evaluation there.
    cases = []
    for model_name in args.models:
        extractor = build_vgg(model_name, [CONTENT_LAYER, *STYLE_LAYERS], None)
        for size, (content, style) in images.items():
            cases.append((model_name, extractor, size, content, style,
                          evaluation_flops(extractor, *content.shape[:2])))
    for run in range(1, args.runs + 1):
        if run == args.runs:
            print(f"\n## Speed ({report['processor']}, {os.cpu_count()} cores, float32 {matmul_size()}^2 "
                  f"matmul measured before each row; median of {counted(args.runs, 'run')})\n")
            print("| model | optimizer | size (px) | s / iteration | s / evaluation | bare VGG pass (s) "
                  "| GFLOP / evaluation | GFLOP/s | matmul GFLOP/s | of matmul rate |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for model_name, extractor, size, content, style, work in cases:
            height, width = content.shape[:2]
            bare = bare_pass_seconds(extractor, content, args.repeats)
            for optimizer in args.optimizers:
                row = rows.setdefault((model_name, size, optimizer), dict(
                    model=model_name, optimizer=optimizer, size=f"{width}x{height}", flops=work, runs=[]))
                measured = speed_measurement(extractor, model_name, optimizer, content, style, work,
                                             args.repeats)
                row["runs"].append(dict(measured, bare_pass_seconds=bare))
                if run < args.runs:
                    print(f"speed, run {run} of {args.runs}: {model_name} {optimizer} {width}x{height} "
                          f"{measured['seconds_per_evaluation']:.3f} s / evaluation, "
                          f"{measured['fraction']:.0%}", flush=True)
                    continue
                for key in ("matmul_flops", "seconds_per_iteration", "seconds_per_evaluation",
                            "bare_pass_seconds", "fraction"):
                    row[key] = float(np.median([one[key] for one in row["runs"]]))
                row["flops_per_second"] = work / row["seconds_per_evaluation"]
                print(f"| {model_name} | {optimizer} | {width}x{height} | {row['seconds_per_iteration']:.3f} | "
                      f"{row['seconds_per_evaluation']:.3f} | {row['bare_pass_seconds']:.3f} | "
                      f"{work / 1e9:.0f} | {row['flops_per_second'] / 1e9:.1f} | "
                      f"{row['matmul_flops'] / 1e9:.1f} | {row['fraction']:.0%} |", flush=True)
    report["matmul_float32_flops"] = float(np.median([one["matmul_flops"] for row in rows.values()
                                                      for one in row["runs"]]))
    report["speed"] = list(rows.values())


def xla(args, report: dict) -> None:
    """The same loss-and-gradient function, compiled by tf.function with and without XLA."""
    print(f"\n## XLA ({args.model}, float32, random weights)\n")
    print("| size (px) | s / evaluation, tf.function | with jit_compile=True | XLA speed-up |")
    print("| --- | --- | --- | --- |")
    extractor = build_vgg(args.model, [CONTENT_LAYER, *STYLE_LAYERS], None)
    rows = []
    for size in args.xla_sizes:
        content, style = images_at(size)
        objective = build_objective(extractor, content, [style])
        pixels = tf.constant(content[None])
        seconds = {}
        for jit in (False, True):
            @tf.function(jit_compile=jit)
            def value_and_gradient(image):
                with tf.GradientTape() as tape:
                    tape.watch(image)
                    total = objective(image)["total"]
                return total, tape.gradient(total, image)

            seconds[jit] = median_seconds(lambda: value_and_gradient(pixels)[1], args.repeats)
        rows.append(dict(size=f"{content.shape[1]}x{content.shape[0]}", plain=seconds[False], xla=seconds[True]))
        print(f"| {content.shape[1]}x{content.shape[0]} | {seconds[False]:.3f} | {seconds[True]:.3f} | "
              f"{seconds[False] / seconds[True]:.2f}x |", flush=True)
    report["xla"] = rows


def precision(args, report: dict) -> None:
    size = args.precision_size
    content, style = images_at(size)
    print(f"\n## Precision ({args.model}, {content.shape[1]}x{content.shape[0]} px, "
          f"bfloat16 matmul: {matmul_rate(tf.bfloat16) / 1e9:.1f} GFLOP/s)\n")
    print(f"| precision | s / evaluation (adam) | speed-up | loss of the {args.precision_iterations}-iteration "
          "lbfgs result, in float32 | mean abs pixel difference to float32 |")
    print("| --- | --- | --- | --- | --- |")
    # Every result judged by one float32 objective, so the losses compare.
    judge = seeded_objective(args.model, args.weights, content, [style])
    rows, images, baseline = [], [], None
    for mode in ("float32", "mixed", "bfloat16"):
        timing = stylize(content, style, optimizer="adam", model=args.model, weights=None, scales=1,
                         precision=mode, iterations=WARMUP_ITERATIONS + args.repeats + 2, save_every=0)
        seconds = per_evaluation_seconds(timing.history)[1]
        image = stylize(content, style, model=args.model, weights=args.weights, precision=mode, scales=1,
                        iterations=args.precision_iterations, save_every=0).image
        baseline = baseline or (seconds, image)
        difference = float(np.abs(image - baseline[1]).mean())
        loss = float(judge(tf.constant(image[None]))["total"])
        rows.append(dict(precision=mode, seconds_per_evaluation=seconds, speedup=baseline[0] / seconds,
                         float32_loss=loss, mean_abs_difference=difference))
        images.append(image)
        print(f"| {mode} | {seconds:.3f} | {baseline[0] / seconds:.2f}x | {loss:.4g} | {difference:.4f} |",
              flush=True)
    path = Path(args.output_dir) / PRECISION_PICTURE
    save_image(np.concatenate(images, axis=1), path)
    print(f"\nimages, left to right float32 | mixed | bfloat16: {path}")
    report["precision"] = rows


MEMORY_CHILD = """
import json
from ContentModel import load_image
from common import peak_memory_bytes, stylize
from StyleTransfer import CONTENT_LAYER, STYLE_LAYERS, resolve_device, settings_memory, style_loading
size, model, optimizer, precision, style_scale = {size}, {model!r}, {optimizer!r}, {precision!r}, {style_scale!r}
# The images as StyleTransfer.py loads them, and the estimate it prints.
content = load_image({content!r}, size)
style = load_image({style!r}, **style_loading(size, style_scale))
settings = dict(model=model, optimizer=optimizer, precision=precision, content_layer=CONTENT_LAYER,
                style_layers=STYLE_LAYERS)
estimate = settings_memory(content.shape[:2], settings, resolve_device("auto"), style_shapes=[style.shape[:2]]).total
result = stylize(content, style, iterations={iterations}, model=model, weights={weights!r}, optimizer=optimizer,
                 precision=precision, scales=1, style_scale=style_scale, save_every=0)
print(json.dumps(dict(shape=list(content.shape[:2]), style_shape=list(style.shape[:2]), estimate=estimate,
                      peak=peak_memory_bytes(), seconds=result.history[-1]["seconds"])))
"""


def memory_iterations(optimizer: str) -> int:
    """Iterations a memory run needs to reach its peak: L-BFGS keeps one more pair of
    image-sized vectors each iteration until it has LBFGS_MEMORY_SIZE of them."""
    return LBFGS_MEMORY_SIZE + 2 if optimizer == "lbfgs" else 2


def memory(args, report: dict) -> None:
    iterations = args.memory_iterations or memory_iterations(args.optimizer)
    print(f"\n## Peak memory ({args.model}, {args.optimizer}, --style-scale {args.memory_style_scale}, "
          f"{peak_memory_kind()} of a fresh process)\n")
    print(f"| size (px) | style (px) | precision | estimate (GiB) | peak measured (GiB) "
          f"| seconds for {iterations} iterations |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for size in args.memory_sizes:
        for mode in args.memory_precisions:
            code = MEMORY_CHILD.format(size=size, model=args.model, optimizer=args.optimizer, precision=mode,
                                       iterations=iterations, weights=args.weights,
                                       style_scale=args.memory_style_scale,
                                       content=str(SAMPLE_CONTENT), style=str(SAMPLE_STYLE))
            try:
                row = run_in_fresh_process(code)
            except RuntimeError as error:
                print(f"| {size} | - | {mode} | - | failed: {error} | - |")
                continue
            row.update(size=size, precision=mode, iterations=iterations, style_scale=args.memory_style_scale)
            rows.append(row)
            (height, width), (style_height, style_width) = row["shape"], row["style_shape"]
            print(f"| {width}x{height} | {style_width}x{style_height} | {mode} | {row['estimate'] / GIB:.1f} | "
                  f"{row['peak'] / GIB:.1f} | {row['seconds']:.0f} |", flush=True)
    report["memory"] = rows
    report["memory_measured"] = peak_memory_kind()


class CheapLoss:
    """The overhead section's stand-in for BatchObjective: sum of w (x - t)^2 + (x - t)^4
    over the pixels, a few element-wise passes over the image, in the same (loss terms,
    batch) layout. The weights w spread over four decades and the quartic term make it
    ill-conditioned and not quadratic, so that L-BFGS keeps iterating as on a real
    objective instead of finishing in a few steps."""

    def __init__(self, like: np.ndarray, seed: int = 0):
        generator = np.random.default_rng(seed)
        self.target = tf.constant(generator.uniform(0.2, 0.8, like.shape), tf.float32)
        self.weight = tf.constant(10.0 ** generator.uniform(-2, 2, like.shape), tf.float32)

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        difference = images - self.target
        loss = tf.reduce_sum(self.weight * difference ** 2 + difference ** 4, axis=[1, 2, 3])
        return tf.stack([loss if term in ("style", "total") else tf.zeros_like(loss) for term in LOSS_TERMS])


def milliseconds_per_iteration(optimize, skip: int) -> tuple[float, float, int]:
    """Run ``optimize(report)`` and time it by its reports, which read each iteration's loss
    terms back to the host as the product's do (StyleTransfer.LevelRecorder). Returns the
    median milliseconds between reports after the first ``skip``, the evaluations per
    iteration over those, and the iterations done."""
    stamps, evaluations = [], []

    def report(iteration, pixels, losses, evaluations_so_far) -> bool:
        np.asarray(losses)  # the copy a real run makes; on a GPU it waits for the iteration to end
        stamps.append(time.perf_counter())
        evaluations.append(evaluations_so_far)
        return True

    optimize(report)
    if len(stamps) < skip + 2:
        return math.nan, math.nan, len(stamps)
    timed = len(stamps) - 1 - skip
    return (1e3 * float(np.median(np.diff(stamps[skip:]))), (evaluations[-1] - evaluations[skip]) / timed,
            len(stamps))


def random_pairs(like: np.ndarray, count: int, generator: np.random.Generator) -> list:
    """``count`` (step, change) pairs the shape of ``like`` with positive curvature, as
    L-BFGS remembers them: y = s scaled by 0.5-2 per pixel."""
    pairs = []
    for _ in range(count):
        step = generator.normal(size=like.shape).astype(np.float32)
        change = step * generator.uniform(0.5, 2.0, like.shape).astype(np.float32)
        pairs.append((tf.constant(step), tf.constant(change)))
    return pairs


def direction_milliseconds(like: np.ndarray, repeats: int) -> tuple[float, float]:
    """With a full memory of random pairs and the default preconditioner, the median
    milliseconds of one call of L-BFGS's two-loop recursion and of storing one pair (its
    curvature check included), as lbfgs_optimize does each once an iteration."""
    generator = np.random.default_rng(0)
    memory = LbfgsMemory(like, LBFGS_MEMORY_SIZE, PRECONDITIONERS[DEFAULT_PRECONDITIONER])
    for step, change in random_pairs(like, LBFGS_MEMORY_SIZE, generator):
        memory.remember(step, change)
    pixels = tf.constant(generator.uniform(0.1, 0.9, like.shape).astype(np.float32))
    gradient = tf.constant(generator.normal(size=like.shape).astype(np.float32))
    new_pairs = iter(random_pairs(like, repeats + WARMUP_ITERATIONS, generator))

    def store():
        memory.remember(*next(new_pairs))
        return memory.scale

    return (1e3 * median_seconds(lambda: memory.direction(pixels, gradient)[1], repeats),
            1e3 * median_seconds(store, repeats))


def overhead(args, report: dict) -> None:
    """What each optimizer adds to the loss-and-gradient evaluation, per iteration."""
    iterations = args.overhead_iterations
    print(f"\n## The optimizers' own work (a loss that costs next to nothing, {iterations} iterations; "
          f"median after the first {LBFGS_MEMORY_SIZE}, when L-BFGS's memory is full; "
          f"L-BFGS with the {DEFAULT_PRECONDITIONER} preconditioner)\n")
    print("| size (px) | Adam ms / iteration | L-BFGS ms / iteration | L-BFGS evaluations / iteration "
          "| L-BFGS - Adam (ms) | two-loop call (ms) | storing a pair (ms) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for size in args.overhead_sizes:
        height, width = load_image(SAMPLE_CONTENT, size).shape[:2]  # the sample photo's shape, not its pixels
        images = np.random.default_rng(1).uniform(0, 1, (1, height, width, 3)).astype(np.float32)
        loss = CheapLoss(images)
        adam, _, _ = milliseconds_per_iteration(
            lambda report: adam_optimize(loss, images, iterations, ADAM_LEARNING_RATE, report, overlap=on_gpu()),
            LBFGS_MEMORY_SIZE)  # overlapped on a GPU, as stylize runs it
        lbfgs, evaluations, done = milliseconds_per_iteration(
            lambda report: lbfgs_optimize(loss, images, iterations, report,
                                          precondition=PRECONDITIONERS[DEFAULT_PRECONDITIONER]), LBFGS_MEMORY_SIZE)
        two_loop, store = direction_milliseconds(images, args.repeats)
        rows.append(dict(size=f"{width}x{height}", adam_ms=adam, lbfgs_ms=lbfgs, lbfgs_iterations=done,
                         lbfgs_evaluations_per_iteration=evaluations, two_loop_ms=two_loop, store_pair_ms=store))
        print(f"| {width}x{height} | {adam:.2f} | {lbfgs:.2f} | {evaluations:.2f} | {lbfgs - adam:.2f} | "
              f"{two_loop:.2f} | {store:.2f} |", flush=True)
    for row in rows:  # after the table, which a line would cut in two
        if row["lbfgs_iterations"] < iterations:
            print(f"\nL-BFGS ended after {row['lbfgs_iterations']} of {iterations} iterations at {row['size']}: "
                  "its figures there are of fewer.")
    report["overhead"] = rows


def sustained(args, report: dict) -> None:
    """Whole runs, timed as a user would see them: the first iteration (which traces the
    step and computes the targets) apart from the rest, which is what the GPU target
    counts. The defaults (precision auto, scales auto) except for the frames, which only
    the GIF uses."""
    content, style = images_at(args.sustained_size)
    height, width = content.shape[:2]
    iterations = args.sustained_iterations
    print(f"\n## {iterations} iterations ({args.model}, {width}x{height} px, the defaults, no frames)\n")
    print("| optimizer | precision | levels | iterations | evaluations | s to the first iteration "
          "| s for the other iterations | s in all |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for optimizer in args.optimizers:
        result = stylize(content, style, optimizer=optimizer, model=args.model, weights=args.weights,
                         iterations=iterations, save_every=0)
        first, last = result.history[0], result.history[-1]
        row = dict(optimizer=optimizer, precision=result.precision, levels=len(result.sizes),
                   iterations=last["iteration"], evaluations=last["evaluations"], first_seconds=first["seconds"],
                   rest_seconds=last["seconds"] - first["seconds"], seconds=last["seconds"], notes=result.notes)
        rows.append(row)
        print(f"| {optimizer} | {row['precision']} | {row['levels']} | {row['iterations']} | {row['evaluations']} | "
              f"{row['first_seconds']:.1f} | {row['rest_seconds']:.1f} | {row['seconds']:.1f} |", flush=True)
    # Why a run did fewer iterations than the heading says (L-BFGS at a minimum, say).
    for row in rows:
        for note in row["notes"]:
            print(f"\n{row['optimizer']}: {note}")
    report["sustained"] = rows


def quality(args, report: dict) -> None:
    content, style = images_at(args.quality_size)
    common = dict(model=args.model, weights=args.weights, save_every=0)
    print(f"\n## Time to quality ({args.model}, {content.shape[1]}x{content.shape[0]} px)\n")
    if args.classic_loss is None:
        # The tutorial starts from the photo.
        classic = stylize(content, style, optimizer="adam", iterations=args.classic_steps, scales=1,
                          learning_rate=ADAM_LEARNING_RATE, precision="float32", init="content", **common)
        target, classic_seconds = classic.history[-1]["total"], classic.history[-1]["seconds"]
        classic_history = classic.history
    else:  # measured before: race more runs against it without the long classic run
        target, classic_seconds, classic_history = args.classic_loss, args.classic_seconds, []
    print(f"classic recipe (Adam lr {ADAM_LEARNING_RATE}, beta_1 {ADAM_BETA_1}, epsilon {ADAM_EPSILON}, "
          f"float32), {args.classic_steps} steps: loss {target:.4g} in {classic_seconds:.0f} s"
          f"{'' if args.classic_loss is None else ' (given, from an earlier run)'}\n")
    runs = {  # each factor alone, then together; --quality-runs picks some
        "plain-float32": ("plain lbfgs (no preconditioner), float32",
                          dict(optimizer="lbfgs", precision="float32", preconditioner="none")),
        "plain-mixed": ("plain lbfgs (no preconditioner), mixed precision",
                        dict(optimizer="lbfgs", precision="mixed", preconditioner="none")),
        "pyramid-mixed": ("lbfgs + pyramid preconditioner, mixed precision",
                          dict(optimizer="lbfgs", precision="mixed", preconditioner="pyramid")),
        "lbfgs-float32": (f"lbfgs + {DEFAULT_PRECONDITIONER} preconditioner, float32",
                          dict(optimizer="lbfgs", precision="float32")),
        "content-init": (f"lbfgs + {DEFAULT_PRECONDITIONER} preconditioner, mixed precision, from the photo",
                         dict(optimizer="lbfgs", precision="mixed", init="content")),
        "lbfgs-mixed": (f"lbfgs + {DEFAULT_PRECONDITIONER} preconditioner, mixed precision",
                        dict(optimizer="lbfgs", precision="mixed")),
        "scales-float32": (f"lbfgs, {args.quality_scales} scales, float32",
                           dict(optimizer="lbfgs", precision="float32", scales=args.quality_scales)),
        "scales-mixed": (f"lbfgs, {args.quality_scales} scales, mixed precision",
                         dict(optimizer="lbfgs", precision="mixed", scales=args.quality_scales)),
        "defaults": ("the defaults (lbfgs, precision auto, scales auto)", dict()),
    }
    runs = dict(runs[key] for key in args.quality_runs)
    print("| run | iterations | s to the classic loss | speed-up over the classic recipe |")
    print("| --- | --- | --- | --- |")
    print(f"| adam, float32 (classic) | {args.classic_steps} | {classic_seconds:.1f} | 1x |")
    rows = [dict(run="classic", reached=classic_seconds, history=classic_history)]
    for name, settings in runs.items():
        levels = resolve_scales(settings.get("scales", DEFAULT_SCALES), max(content.shape[:2]),
                                floor=smallest_long_side(content.shape))

        def until_target(progress, levels=levels):
            # stop once the last level is as good as the classic recipe's result
            return not (progress.level == levels - 1 and progress.losses["total"] <= target)

        iterations = [args.coarse_iterations] * (levels - 1) + [args.quality_iterations]
        result = stylize(content, style, iterations=iterations, callback=until_target,
                         **{**settings, "scales": levels}, **common)
        row = first_row_at_or_below(result.history, target)
        reached = None if row is None else row["seconds"]
        speedup = f"{classic_seconds / reached:.1f}x" if reached else "not reached"
        print(f"| {name} | {result.history[-1]['iteration']} | "
              f"{'-' if reached is None else f'{reached:.1f}'} | {speedup} |", flush=True)
        rows.append(dict(run=name, reached=reached, history=result.history))
    report["quality"] = rows


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", action=JoinedLists,
                        choices=SECTIONS, default=list(SECTIONS), help="what to measure")
    parser.add_argument("--models", nargs="+", action=JoinedLists,
                        choices=sorted(VGG_MODELS), default=["vgg16", "vgg19"],
                        help="models of the speed section")
    parser.add_argument("--optimizers", nargs="+", action=JoinedLists, choices=OPTIMIZERS, default=["adam", "lbfgs"],
                        help="optimizers of the speed and sustained sections")
    parser.add_argument("--sizes", nargs="+", action=JoinedLists, type=size_argument, default=[256, 512, 1024],
                        help=f"sizes of the speed section: {SIZE_HELP}")
    parser.add_argument("--repeats", type=positive_int, default=4, help="timed iterations after warm-up")
    parser.add_argument("--runs", type=positive_int, default=1,
                        help="measurements of each speed row, the rows taken in turn; the table gives "
                             "their medians")
    parser.add_argument("--model", choices=sorted(VGG_MODELS), default="vgg19",
                        help="model of the precision/memory/quality sections")
    parser.add_argument("--weights", type=weights_argument, default="imagenet",
                        help="weights of the precision/memory/sustained/quality runs: 'imagenet', a file, or 'none'")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs", help="optimizer of the memory section")
    parser.add_argument("--xla-sizes", nargs="+", action=JoinedLists,
                        type=size_argument, default=[256, 512], help=SIZE_HELP)
    parser.add_argument("--overhead-sizes", nargs="+", action=JoinedLists,
                        type=size_argument, default=[256, 512, 1024],
                        help=SIZE_HELP)
    parser.add_argument("--overhead-iterations", type=whole_number(LBFGS_MEMORY_SIZE + 2), default=100,
                        help=f"iterations of each overhead run (the first {LBFGS_MEMORY_SIZE} are not timed)")
    parser.add_argument("--precision-size", type=size_argument, default=512, help=SIZE_HELP)
    parser.add_argument("--precision-iterations", type=positive_int, default=100,
                        help="iterations of each precision's run whose loss and picture are compared")
    parser.add_argument("--memory-sizes", nargs="+", action=JoinedLists,
                        type=size_argument, default=[512, 1024, 2048], help=SIZE_HELP)
    parser.add_argument("--memory-precisions", nargs="+", action=JoinedLists,
                        choices=PRECISION_CHOICES, default=["float32"],
                        help="as StyleTransfer.py --precision")
    parser.add_argument("--memory-iterations", type=positive_int, default=None,
                        help="iterations of each memory run (default: until L-BFGS's memory is full)")
    parser.add_argument("--memory-style-scale", type=style_scale_argument, default=1.0,
                        help="--style-scale of the memory runs (the style's pass through VGG is at "
                             "the size times this)")
    parser.add_argument("--sustained-size", type=size_argument, default=512, help=SIZE_HELP)
    parser.add_argument("--sustained-iterations", type=positive_int, default=500, help="iterations of each run")
    parser.add_argument("--quality-size", type=size_argument, default=512, help=SIZE_HELP)
    parser.add_argument("--classic-steps", type=positive_int, default=1000, help="steps of the classic recipe")
    parser.add_argument("--quality-iterations", type=positive_int, default=1000,
                        help="at most this many (last-level) iterations to reach the classic loss")
    parser.add_argument("--quality-scales", type=scales_argument, default=2,
                        help="levels of the quality section's scales runs")
    parser.add_argument("--coarse-iterations", type=positive_int, default=COARSE_ITERATIONS,
                        help="iterations at each coarse level of the quality section")
    parser.add_argument("--classic-loss", type=positive_number, default=None,
                        help="the classic recipe's loss from an earlier run (skips running it)")
    parser.add_argument("--classic-seconds", type=positive_number, default=None,
                        help="with --classic-loss: the seconds that run took")
    parser.add_argument("--quality-runs", nargs="+", action=JoinedLists,
                        default=list(QUALITY_RUNS), choices=QUALITY_RUNS,
                        help="which runs the quality section races against the classic recipe")
    parser.add_argument("--output-dir", default="results", help="folder of the JSON report and of pictures")
    parser.add_argument("--json", default="benchmark.json", help="file name of the JSON report")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args(argv)
    if (args.classic_loss is None) != (args.classic_seconds is None):
        parser.error("--classic-loss and --classic-seconds go together")
    run_cli(lambda: measure(args))


def measure(args) -> None:
    grow_gpu_memory()  # before anything runs on a GPU
    sizes = {"speed": args.sizes, "xla": args.xla_sizes, "overhead": args.overhead_sizes,
             "precision": [args.precision_size],
             "memory": args.memory_sizes, "sustained": [args.sustained_size], "quality": [args.quality_size]}
    check_inputs(args.weights, [SAMPLE_CONTENT, SAMPLE_STYLE],
                 [size for section in args.sections for size in sizes[section]])
    if "memory" in args.sections:
        check_network(args.model, args.weights)
    pictures = [Path(args.output_dir) / PRECISION_PICTURE] if "precision" in args.sections else []
    # os.path.join keeps a '--json out/' a folder, to be refused as one (Path drops the slash).
    with reserved_report(os.path.join(args.output_dir, args.json), args.overwrite, beside=lambda _: pictures,
                         flag="--json") as path:
        for picture in pictures:
            picture.parent.mkdir(parents=True, exist_ok=True)
        report = {"machine": platform.platform(), "processor": processor_name(), "cores": os.cpu_count(),
                  "tensorflow": tf.__version__, "devices": [d.name for d in tf.config.list_logical_devices()],
                  "code": code_version(), "args": vars(args)}
        print(f"# StyleTransfer benchmark: {report['processor']}, {os.cpu_count()} cores, {platform.platform()}, "
              f"TensorFlow {tf.__version__}, devices {report['devices']}")
        for section in (name for name in SECTIONS if name in args.sections):
            globals()[section](args, report)
        path.write_text(json.dumps(report, indent=1))
        print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
