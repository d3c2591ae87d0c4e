"""Neural style transfer (Gatys, Ecker & Bethge, 2015) with TensorFlow/Keras.

It optimizes an image so that its VGG features match the content photo
(ContentModel.py) and its Gram matrices match the style painting
(StyleModel.py)::

    python StyleTransfer.py                         # the bundled sample pair
    python StyleTransfer.py content.jpg style.jpg   # your own pair
    python StyleTransfer.py photo.jpg painting.jpg --size 512 --iterations 300 --gif
    python StyleTransfer.py --help                  # every flag, with its default

Offline (no ImageNet download), give the weights file or a Keras cache::

    python StyleTransfer.py --model vgg19 --weights path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5

Outputs go to results/ and are named after the inputs: the image, a
content | style | result panel, a loss curve, a JSON trace of the settings and
losses, and with --gif an animation of the optimization.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
import keras
from PIL import Image

from ContentModel import (
    CONTENT_LAYER,
    DEFAULT_MODEL,
    DEFAULT_WEIGHTS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    ArgumentParser,
    StyleTransferError,
    add_image_arguments,
    add_model_arguments,
    add_output_arguments,
    atomic_write,
    build_vgg,
    check_layers,
    check_size,
    choose_output,
    content_loss,
    load_image,
    run_cli,
    save_figure,
    save_image,
    to_pil,
    weights_argument,
)
from StyleModel import STYLE_LAYERS, gram_matrix, normalized_layer_weights, style_loss

# ---------------------------------------------------------------------------
# Defaults (chosen by measurement on a 2-core CPU: see the README)
# ---------------------------------------------------------------------------

SAMPLE_CONTENT = Path(__file__).parent / "images" / "content" / "chelsea.jpg"
SAMPLE_STYLE = Path(__file__).parent / "images" / "styles" / "starry_night.jpg"

DEFAULT_SIZE = 512
DEFAULT_ITERATIONS = 150
DEFAULT_OPTIMIZER = "lbfgs"
DEFAULT_INIT = "content"
#: Content and style weights of the TensorFlow tutorial (their ratio is what matters).
CONTENT_WEIGHT = 1e4
STYLE_WEIGHT = 1e-2
TV_WEIGHT = 1e8
DEFAULT_SEED = 0
DEFAULT_SAVE_EVERY = 10

OPTIMIZERS = ("adam", "lbfgs")
INITS = ("content", "style", "noise")
DEVICES = ("auto", "cpu", "gpu")

#: Adam settings of the TensorFlow style-transfer tutorial: a slow, smoothed step.
ADAM_LEARNING_RATE = 0.02
ADAM_BETA_1 = 0.99
ADAM_EPSILON = 0.1
#: L-BFGS memory (pairs of past steps), SciPy's default.
LBFGS_HISTORY = 10
#: Pixel bounds: every image in this project is RGB in [0, 1].
PIXEL_MIN, PIXEL_MAX = 0.0, 1.0

LOSS_TERMS = ("content", "style", "tv", "total")


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def total_variation_loss(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between neighbouring pixels: a smoothness prior.

    Not in Gatys et al. (2015); added, as most implementations do, to suppress
    the high-frequency noise that the style term alone leaves behind.
    """
    down = image[:, 1:, :, :] - image[:, :-1, :, :]
    right = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_mean(tf.square(down)) + tf.reduce_mean(tf.square(right))


@dataclass
class Objective:
    """The weighted loss of Gatys et al., with its targets computed once."""

    extractor: keras.Model
    content_layer: str
    style_layers: tuple
    style_layer_weights: list
    content_target: tf.Tensor
    style_targets: list
    content_weight: float
    style_weight: float
    tv_weight: float

    def __call__(self, image: tf.Tensor) -> dict:
        """Loss terms for a (1, H, W, 3) image: one forward pass through VGG."""
        features = self.extractor(image)
        grams = [gram_matrix(features[name]) for name in self.style_layers]
        terms = {
            "content": self.content_weight * content_loss(
                tf.cast(features[self.content_layer], tf.float32), self.content_target),
            "style": self.style_weight * style_loss(grams, self.style_targets, self.style_layer_weights),
            "tv": self.tv_weight * total_variation_loss(image),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


def build_objective(
    content_image: np.ndarray,
    style_image: np.ndarray,
    *,
    model: str,
    weights: str | None,
    content_layer: str,
    style_layers,
    style_layer_weights,
    content_weight: float,
    style_weight: float,
    tv_weight: float,
) -> Objective:
    """One combined extractor for content and style, and the targets it gives."""
    style_layers = tuple(style_layers)
    layer_weights = normalized_layer_weights(style_layers, style_layer_weights)
    extractor = build_vgg(model, [content_layer, *style_layers], weights)
    content_target = tf.cast(extractor(content_image[None])[content_layer], tf.float32)
    style_features = extractor(style_image[None])
    style_targets = [gram_matrix(style_features[name]) for name in style_layers]
    return Objective(extractor, content_layer, style_layers, layer_weights, content_target,
                     style_targets, content_weight, style_weight, tv_weight)


# ---------------------------------------------------------------------------
# Optimization
# ---------------------------------------------------------------------------


@dataclass
class Progress:
    """What the optimization loop tells its callback after each iteration."""

    iteration: int
    iterations: int
    losses: dict
    elapsed: float
    frame: np.ndarray | None = None  # the current image, every save_every iterations


@dataclass
class StylizeResult:
    image: np.ndarray
    history: list = field(default_factory=list)  # one dict of losses and time per iteration
    frames: list = field(default_factory=list)
    device: str = ""
    stopped_early: str | None = None  # why the run ended before its iterations, if it did


def initial_image(content: np.ndarray, style: np.ndarray, init: str, seed: int) -> np.ndarray:
    """The starting image: the content photo, the style resized to it, or seeded noise."""
    if init == "content":
        return content.copy()
    if init == "style":
        height, width = content.shape[:2]
        return np.asarray(to_pil(style).resize((width, height), Image.Resampling.LANCZOS),
                          dtype=np.float32) / 255.0
    if init == "noise":
        return np.random.default_rng(seed).uniform(PIXEL_MIN, PIXEL_MAX, content.shape).astype(np.float32)
    raise StyleTransferError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")


def resolve_device(device: str) -> str:
    """'auto' | 'cpu' | 'gpu' -> a TensorFlow device name."""
    if device not in DEVICES:
        raise StyleTransferError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    if device == "gpu" and not has_gpu:
        raise StyleTransferError("--device gpu: TensorFlow sees no GPU on this machine; use --device cpu")
    return "/GPU:0" if has_gpu and device != "cpu" else "/CPU:0"


def adam_optimize(objective: Objective, image: np.ndarray, iterations: int, learning_rate: float,
                  report: Callable[[int, tf.Tensor, dict], bool]) -> None:
    """Adam on the pixels, clipped to [0, 1] after each step (the TensorFlow tutorial's recipe).

    Each step reports the image it measured (a copy that stays on the device)
    with its loss terms; ``report`` returning False stops the loop.
    """
    variable = tf.Variable(image[None])
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=ADAM_BETA_1,
                                      epsilon=ADAM_EPSILON)

    @tf.function
    def step():
        measured = tf.identity(variable)
        with tf.GradientTape() as tape:
            terms = objective(variable)
        gradient = tape.gradient(terms["total"], variable)
        optimizer.apply_gradients([(gradient, variable)])
        variable.assign(tf.clip_by_value(variable, PIXEL_MIN, PIXEL_MAX))
        return measured, terms

    for iteration in range(1, iterations + 1):
        measured, terms = step()
        if not report(iteration, measured, terms):
            break


def lbfgs_optimize(objective: Objective, image: np.ndarray, iterations: int,
                   report: Callable[[int, tf.Tensor, dict], bool]) -> None:
    """SciPy's L-BFGS-B with the [0, 1] pixel bounds, as Gatys et al. used L-BFGS.

    The loss and gradient come from one compiled TensorFlow function; the only
    copies are the image in and the gradient out at each evaluation.
    """
    from scipy.optimize import minimize

    shape = (1, *image.shape)

    @tf.function
    def value_and_gradient(pixels):
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            terms = objective(pixels)
        return terms, tape.gradient(terms["total"], pixels)

    last = {}
    iteration = 0

    def loss_and_gradient(x):
        pixels = tf.constant(x.reshape(shape), dtype=tf.float32)
        terms, gradient = value_and_gradient(pixels)
        last.update(terms=terms, pixels=pixels)
        return float(terms["total"]), gradient.numpy().ravel().astype(np.float64)

    def callback(intermediate_result):
        nonlocal iteration
        iteration += 1
        if not report(iteration, last["pixels"], last["terms"]):
            raise StopIteration  # SciPy's way to end minimize() from a callback

    minimize(
        loss_and_gradient, image.ravel().astype(np.float64), jac=True, method="L-BFGS-B",
        bounds=[(PIXEL_MIN, PIXEL_MAX)], callback=callback,
        # ftol/gtol 0: run the iterations asked for rather than stop at SciPy's tolerances.
        options={"maxiter": iterations, "maxfun": iterations * 2, "maxcor": LBFGS_HISTORY,
                 "ftol": 0.0, "gtol": 0.0},
    )


def check_settings(*, iterations: int, optimizer: str, init: str, content_weight: float,
                   style_weight: float, tv_weight: float, content_layer: str, style_layers,
                   style_layer_weights, model: str, learning_rate: float, save_every: int,
                   device: str, **_) -> None:
    """Raise StyleTransferError for any setting stylize() cannot use, before any work."""
    if iterations <= 0:
        raise StyleTransferError(f"--iterations must be positive (got {iterations})")
    for name, allowed, value in (("optimizer", OPTIMIZERS, optimizer), ("init", INITS, init),
                                 ("device", DEVICES, device)):
        if value not in allowed:
            raise StyleTransferError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
    if save_every < 0:
        raise StyleTransferError(f"--save-every must be >= 0 (got {save_every})")
    for name, value in (("content-weight", content_weight), ("style-weight", style_weight),
                        ("tv-weight", tv_weight), ("learning-rate", learning_rate)):
        if not np.isfinite(value) or value < 0:
            raise StyleTransferError(f"--{name} must be a finite number >= 0 (got {value})")
    normalized_layer_weights(style_layers, style_layer_weights)
    check_layers(model, [content_layer, *style_layers])


def stylize(
    content_image: np.ndarray,
    style_image: np.ndarray,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    optimizer: str = DEFAULT_OPTIMIZER,
    init: str = DEFAULT_INIT,
    content_weight: float = CONTENT_WEIGHT,
    style_weight: float = STYLE_WEIGHT,
    tv_weight: float = TV_WEIGHT,
    content_layer: str = CONTENT_LAYER,
    style_layers: tuple | list = STYLE_LAYERS,
    style_layer_weights: list | None = None,
    model: str = DEFAULT_MODEL,
    weights: str | None = DEFAULT_WEIGHTS,
    learning_rate: float = ADAM_LEARNING_RATE,
    seed: int = DEFAULT_SEED,
    save_every: int = DEFAULT_SAVE_EVERY,
    device: str = "auto",
    callback: Callable[[Progress], None] | None = None,
) -> StylizeResult:
    """Optimize an image whose VGG features match ``content_image`` and whose Gram
    matrices match ``style_image`` (both (H, W, 3) floats in [0, 1]).

    The result is the image with the lowest loss measured. ``callback``
    receives a Progress after every iteration and may return False to stop
    the run there; ``save_every`` > 0 takes a frame
    of the image every that many iterations (and of the starting image).
    The run stops early, keeping the best image so far, on Ctrl-C
    (``stopped_early == "interrupted"``) or when the loss stops being finite.
    """
    check_settings(iterations=iterations, optimizer=optimizer, init=init, content_weight=content_weight,
                   style_weight=style_weight, tv_weight=tv_weight, content_layer=content_layer,
                   style_layers=style_layers, style_layer_weights=style_layer_weights, model=model,
                   learning_rate=learning_rate, save_every=save_every, device=device)
    # Reproducible: same seed, same machine -> same pixels.
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    device_name = resolve_device(device)
    start_image = initial_image(content_image, style_image, init, seed)
    result = StylizeResult(image=start_image, device=device_name)
    best = {"total": np.inf, "pixels": None}
    start = time.perf_counter()

    def report(iteration: int, pixels: tf.Tensor, terms: dict) -> bool:
        losses = {name: float(terms[name]) for name in LOSS_TERMS}
        elapsed = time.perf_counter() - start
        result.history.append({"iteration": iteration, **losses, "seconds": round(elapsed, 4)})
        if not np.isfinite(losses["total"]):
            result.stopped_early = f"the loss became {losses['total']} at iteration {iteration}"
            return False
        if losses["total"] < best["total"]:
            best.update(total=losses["total"], pixels=pixels)
        frame = None
        if save_every and (iteration % save_every == 0 or iteration == iterations):
            frame = np.clip(np.asarray(pixels)[0], PIXEL_MIN, PIXEL_MAX)
            result.frames.append(frame)
        if callback is not None and callback(Progress(iteration, iterations, losses, elapsed, frame)) is False:
            result.stopped_early = "stopped by the callback"
            return False
        return True

    with tf.device(device_name):
        objective = build_objective(
            content_image, style_image, model=model, weights=weights, content_layer=content_layer,
            style_layers=style_layers, style_layer_weights=style_layer_weights,
            content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight)
        if save_every:
            result.frames.append(start_image)
        try:
            if optimizer == "adam":
                adam_optimize(objective, start_image, iterations, learning_rate, report)
            else:
                lbfgs_optimize(objective, start_image, iterations, report)
        except KeyboardInterrupt:
            result.stopped_early = "interrupted"
    if best["pixels"] is not None:
        result.image = np.clip(np.asarray(best["pixels"])[0], PIXEL_MIN, PIXEL_MAX)
    return result


# ---------------------------------------------------------------------------
# Pictures and files
# ---------------------------------------------------------------------------


def plot_panel(content: np.ndarray, style: np.ndarray, result: np.ndarray, title: str = ""):
    """content | style | result, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for axis, image, name in zip(axes, (content, style, result), ("content", "style", "result")):
        axis.imshow(np.clip(image, 0, 1))
        axis.set_title(name)
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=9)
    return figure


def plot_losses(history: list, title: str = ""):
    """The weighted loss terms per iteration, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    iterations = [row["iteration"] for row in history]
    for name in LOSS_TERMS:
        values = [max(row[name], 1e-12) for row in history]
        axis.plot(iterations, values, label=name, linewidth=2 if name == "total" else 1)
    axis.set_yscale("log")
    axis.set_xlabel("iteration")
    axis.set_ylabel("weighted loss")
    axis.set_title(title or "losses")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    return figure


def save_gif(frames: list, path: Path, duration_ms: int = 100) -> Path:
    """An animated GIF of the frames, the last one held longer."""
    images = [to_pil(frame) for frame in frames]
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * 10]
    return atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0))


def output_paths(image_path: Path) -> dict:
    """Every file one run writes, named after the image path."""
    stem = image_path.with_suffix("")
    return {
        "image": image_path,
        "panel": Path(f"{stem}_panel.png"),
        "losses": Path(f"{stem}_losses.png"),
        "trace": Path(f"{stem}.json"),
        "gif": Path(f"{stem}.gif"),
    }


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def comma_floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Neural style transfer (Gatys et al. 2015): repaint CONTENT in the style of STYLE. "
                    "Exit status: 0 done, 1 stopped (non-finite loss), 2 bad input, 130 interrupted.")
    parser.add_argument("content", nargs="?", default=str(SAMPLE_CONTENT), help="content photo")
    parser.add_argument("style", nargs="?", default=str(SAMPLE_STYLE), help="style painting")

    out = add_output_arguments(parser, "result image, .png or .jpg; the panel, loss curve, JSON "
                                       "trace and GIF are written beside it")
    out.add_argument("--save-every", type=int, default=DEFAULT_SAVE_EVERY,
                     help="every N iterations save the current image to the output path "
                          "and take a GIF frame (0: never)")
    out.add_argument("--gif", action="store_true", help="also write an animated GIF of the optimization")

    add_image_arguments(parser, DEFAULT_SIZE)
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="optimizer iterations")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT_OPTIMIZER,
                     help="lbfgs: SciPy L-BFGS-B (as Gatys et al.); adam: TensorFlow Adam")
    opt.add_argument("--learning-rate", type=float, default=ADAM_LEARNING_RATE, help="Adam step size")
    opt.add_argument("--init", choices=INITS, default=DEFAULT_INIT, help="starting image")
    opt.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (noise init, TensorFlow)")
    opt.add_argument("--device", choices=DEVICES, default="auto", help="where TensorFlow runs")

    loss = parser.add_argument_group("loss")
    loss.add_argument("--content-weight", type=float, default=CONTENT_WEIGHT, help="content loss weight")
    loss.add_argument("--style-weight", type=float, default=STYLE_WEIGHT, help="style loss weight")
    loss.add_argument("--tv-weight", type=float, default=TV_WEIGHT, help="total variation weight")
    loss.add_argument("--content-layer", default=CONTENT_LAYER, help="VGG layer for content")
    loss.add_argument("--style-layers", nargs="+", default=list(STYLE_LAYERS), help="VGG layers for style")
    loss.add_argument("--style-layer-weights", type=comma_floats, default=None,
                      help="comma-separated weight per style layer (normalised; default equal)")
    add_model_arguments(parser)
    return parser


class ProgressBar:
    """A callback that draws a one-line progress bar with the loss terms.

    On a terminal the line is redrawn in place; in a log (not a terminal) one
    line is printed every tenth of the run, so logs stay readable.
    """

    WIDTH = 24  # characters of bar

    def __init__(self, iterations: int, frame_path: Path | None = None, stream=sys.stdout):
        self.iterations = iterations
        self.frame_path = frame_path
        self.stream = stream
        self.interactive = stream.isatty()
        self.log_every = max(1, iterations // 10)

    def line(self, progress: Progress) -> str:
        done = progress.iteration / progress.iterations
        bar = "#" * round(done * self.WIDTH)
        rate = progress.iteration / max(progress.elapsed, 1e-9)
        losses = " ".join(f"{name} {value:.3g}" for name, value in progress.losses.items())
        return (f"[{bar:<{self.WIDTH}}] {progress.iteration}/{progress.iterations} "
                f"{rate:.2f} it/s {progress.elapsed:.0f}s | {losses}")

    def __call__(self, progress: Progress) -> None:
        last = progress.iteration == progress.iterations
        if self.interactive:
            self.stream.write("\r" + self.line(progress) + ("\n" if last else ""))
        elif last or progress.iteration % self.log_every == 0:
            self.stream.write(self.line(progress) + "\n")
        self.stream.flush()
        if progress.frame is not None and self.frame_path is not None:
            save_image(progress.frame, self.frame_path)


def write_outputs(paths: dict, content, style, result: StylizeResult, trace: dict, gif: bool) -> None:
    """The result image, panel, loss curve, JSON trace and (optionally) GIF."""
    save_image(result.image, paths["image"])
    title = f"{Path(trace['content']).name} + {Path(trace['style']).name}"
    save_figure(plot_panel(content, style, result.image, title), paths["panel"])
    save_figure(plot_losses(result.history, title), paths["losses"])
    if gif and result.frames:
        save_gif(result.frames, paths["gif"])
    atomic_write(paths["trace"], lambda tmp: Path(tmp).write_text(json.dumps(trace, indent=1)))


def settings_from_args(args: argparse.Namespace) -> dict:
    """The keyword arguments of stylize() that the command line sets."""
    return {
        "iterations": args.iterations, "optimizer": args.optimizer, "init": args.init,
        "content_weight": args.content_weight, "style_weight": args.style_weight,
        "tv_weight": args.tv_weight, "content_layer": args.content_layer,
        "style_layers": args.style_layers, "style_layer_weights": args.style_layer_weights,
        "model": args.model, "weights": weights_argument(args.weights),
        "learning_rate": args.learning_rate, "seed": args.seed, "save_every": args.save_every,
        "device": args.device,
    }


def run(args: argparse.Namespace) -> int:
    """Check the inputs, stylize, write every output. Returns the exit status."""
    check_size(args.size)
    settings = settings_from_args(args)
    check_settings(**settings)
    content_path, style_path = Path(args.content), Path(args.style)
    output = choose_output(f"{content_path.stem}_{style_path.stem}", args.output,
                           [content_path, style_path], args.overwrite,
                           siblings=lambda path: list(output_paths(path).values()))
    content = load_image(content_path, args.size, args.max_pixels)
    style = load_image(style_path, args.size, args.max_pixels)
    height, width = content.shape[:2]
    print(f"StyleTransfer: {args.model} on {resolve_device(args.device)}, {args.optimizer}, "
          f"{width}x{height} px, {args.iterations} iterations -> {output}", flush=True)

    result = stylize(content, style, **settings,
                     callback=ProgressBar(args.iterations, output if args.save_every else None))
    trace = {
        "command": " ".join(sys.argv),
        "content": str(content_path), "style": str(style_path), "size": args.size,
        "settings": settings, "device": result.device,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "stopped_early": result.stopped_early,
        "seconds": result.history[-1]["seconds"] if result.history else 0.0,
        "history": result.history,
    }
    paths = output_paths(output)
    write_outputs(paths, content, style, result, trace, args.gif)
    if result.stopped_early == "interrupted":
        print(f"\ninterrupted: the best image so far is in {output} (trace and panel beside it)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.stopped_early:  # the loss stopped being finite
        print(f"\nerror: stopped: {result.stopped_early}; the last image with a finite loss is in "
              f"{output}. Try a lower --learning-rate or lower loss weights.", file=sys.stderr)
        return EXIT_FAILED
    written = ", ".join(str(p) for key, p in paths.items() if key != "gif" or args.gif)
    print(f"done in {trace['seconds']:.1f} s: {written}")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_cli(lambda: run(args))


if __name__ == "__main__":
    main()
