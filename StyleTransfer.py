"""Neural style transfer (Gatys, Ecker & Bethge, 2015) with TensorFlow/Keras.

It optimizes an image so that its VGG features match the content photo
(ContentModel.py) and its Gram matrices match the style painting
(StyleModel.py)::

    python StyleTransfer.py                         # the bundled sample pair
    python StyleTransfer.py content.jpg style.jpg   # your own pair
    python StyleTransfer.py photo.jpg painting.jpg --size 512 --iterations 300 --gif
    python StyleTransfer.py https://example.org/photo.jpg painting.jpg    # inputs may be URLs
    python StyleTransfer.py --contents photos/ --styles paintings/ -o results/   # every pair
    python StyleTransfer.py photo.jpg painting.jpg --size 1024   # coarse to fine: 256, 512, 1024 px
    python StyleTransfer.py --help                  # every flag, with its default

Offline (no ImageNet download), give the weights file or a Keras cache::

    python StyleTransfer.py --model vgg19 --weights path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5

Outputs go to results/ and are named after the inputs: the image, a
content | style | result panel, a loss curve, a JSON trace of the settings and
losses, and with --gif an animation of the optimization. Batch mode
(--contents, --styles) writes the same files for every content x style pair
into the -o folder, plus a contact sheet: contents as rows, styles as columns;
with --batch-size N, contents that share a style and a size are optimized
together (one forward pass for all: meant for a GPU).

Reading order, following the paper:

1. ContentModel.build_vgg: the frozen VGG, cut after the deepest layer used;
   ContentModel.content_loss (eq. 1).
2. StyleModel.gram_matrix (eq. 3) and StyleModel.style_loss (eqs. 4-5).
3. Here, Losses: total_variation_loss (not in the paper), Objective.terms
   (eq. 7: alpha * content + beta * style), build_objective (targets once).
4. Optimization: adam_optimize and lbfgs_optimize (the paper's optimizer),
   each with its step compiled by tf.function; then stylize_batch, which runs
   them level by level (coarse to fine, Gatys et al. 2017) and is what
   stylize() calls.
5. The rest is the tool around it: colour control, the memory estimate,
   pictures and files, the command line, batch mode.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import platform
import re
import shutil
import sys
import textwrap
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

# ContentModel first: it quiets TensorFlow's start-up logging before TensorFlow loads.
from ContentModel import (
    BASELINE_BYTES,
    CONTENT_LAYER,
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    DEFAULT_SEED,
    DEFAULT_WEIGHTS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FILE_NAME_TYPES,
    FLOAT32_BYTES,
    GIB,
    IMAGE_EXTENSIONS,
    MIN_SIZE,
    OUTPUT_SUFFIXES,
    PIXEL_MAX,
    PIXEL_MIN,
    PRECISION_CHOICES,
    PROJECT_DIR,
    RESULTS_DIR,
    ArgumentParser,
    JoinedLists,
    NotEnoughMemoryError,
    StyleTransferError,
    WriteError,
    activation_bytes,
    add_image_arguments,
    add_model_arguments,
    add_output_arguments,
    atomic_write,
    available_memory,
    build_vgg,
    check_address,
    check_choice,
    check_image_arguments,
    check_layers,
    check_name_lengths,
    check_output_tilde,
    check_pixels,
    check_short_side,
    check_utf8,
    check_weights,
    code_version,
    content_loss,
    counted,
    default_device,
    earlier_download,
    earlier_download_notes,
    file_digest,
    files_in_the_way,
    forward_pass_memory,
    hold_output,
    image_file,
    interrupt_deferred,
    invocation,
    is_url,
    is_utf8,
    list_flag_hint,
    load_image,
    load_pil,
    loaded_shape,
    local_image,
    long_side_shape,
    missing_path_hint,
    new_figure,
    not_enough_memory,
    number_setting,
    open_image,
    out_of_memory_named,
    placeholder_text,
    png_text,
    print_note,
    printable_name,
    processor_name,
    real_path,
    relative_to_project,
    release_unwritten,
    replaced_result,
    reserved_output,
    resize_image,
    resize_long,
    resolve_precision,
    run_cli,
    save_figure,
    save_image,
    seeded,
    smallest_long_side,
    source_name,
    source_stem,
    stale_placeholder,
    stored_shape,
    to_array,
    to_pil,
    trim_addresses,
    typed_path,
    weights_argument,
    writable_folder,
)

import numpy as np
import PIL
import tensorflow as tf
import keras
from StyleModel import (STYLE_LAYERS, check_style_layers, gram_matrices, gram_matrix, normalized_layer_weights,
                        normalized_weights, style_loss)


class ExpectedRetracing(logging.Filter):
    """Drops TensorFlow's warning that a tf.function was traced again and again: each
    coarse-to-fine level and each group of a batch is a new problem (new image size,
    new targets), whose compiled step is built and traced once, by design. The filter
    is on TensorFlow's logger, so it drops that warning for every function of the
    process, a program's that imports this module included."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(ExpectedRetracing())

# ---------------------------------------------------------------------------
# Defaults (chosen by measurement on a 2-core CPU: see the README)
# ---------------------------------------------------------------------------

SAMPLE_CONTENT = PROJECT_DIR / "images" / "content" / "chelsea.jpg"
SAMPLE_STYLE = PROJECT_DIR / "images" / "styles" / "starry_night.jpg"

DEFAULT_SIZE = 512
DEFAULT_ITERATIONS = 200
DEFAULT_OPTIMIZER = "lbfgs"
DEFAULT_INIT = "palette"
#: --init palette: how far the photo's colours move towards the painting's palette
#: (0: the photo, 1: the painting's colour mean and covariance). Departure from the
#: paper (Gatys et al. start from noise): the early iterations spend much of their
#: work on the image's overall colours, and starting halfway there reached the loss
#: of 150 iterations from the photo in 125-149 iterations on the four sample pairs at
#: 512 px, 9 % fewer in all (benchmarks/initial_image.py), and the classic recipe's
#: loss in 177 instead of 187 (one-offs: all the way, 1, was no better than halfway).
PALETTE_MIX = 0.5
#: Content and style weights of the TensorFlow tutorial (alpha and beta of Gatys et al.
#: eq. 7: their ratio sets the balance between photo and painting). Not comparable with
#: the paper's alpha/beta of 1e-3 to 1e-4: both losses here are means, not sums (see
#: content_loss and gram_matrix), which changes their scales by different factors.
CONTENT_WEIGHT = 1e4
STYLE_WEIGHT = 1e-2
#: The total-variation weight is not the tutorial's: its 30 weighs tf.image.total_variation,
#: a sum of absolute differences, and this one the mean squared vertical plus the mean
#: squared horizontal neighbour difference (total_variation_loss). It is absolute, not a
#: ratio: scaling the content and style weights together changes their balance against it.
TV_WEIGHT = 1e8
MAX_SEED = 2 ** 32 - 1  # the seeds NumPy and TensorFlow accept
DEFAULT_SAVE_EVERY = 10
AUTO = "auto"
DEFAULT_SCALES = AUTO
#: Long side of the first level of a multi-scale run (Gatys et al. 2017 start near 256).
MULTISCALE_START = 256
MAX_SCALES = 6
#: --scales auto: coarse to fine only from this long side on, one level per
#: doubling from MULTISCALE_START (1024 px: 256 / 512 / 1024). Measured with
#: benchmarks/multiscale.py (VGG19, mixed precision, the defaults): multi-scale runs
#: reached the single-scale loss later or not at all, at 512, 1024 and 2048 px; from
#: 1024 px they give larger, painting-scale strokes where one level gives small
#: repeated texture, for 1.01-1.18 times the time (with the pyramid preconditioner
#: they had reached the single-scale loss 1.09 times sooner, with plain L-BFGS 1.21-1.31).
#: The figures and pictures: README, "Coarse-to-fine".
MULTISCALE_FROM = 1024
#: Iterations of each coarse level when --iterations is one number (which the
#: last level gets): enough to lay out the large structure. At 1024 px, 20 per
#: level gave the same painting-scale strokes as 50 in 1.08 instead of 1.18 times
#: the single-scale run's time (3 levels, 100 full-size iterations).
COARSE_ITERATIONS = 20
#: --style-scale: the style image's long side relative to the output's (1: the same).
DEFAULT_STYLE_SCALE = 1.0
MIN_STYLE_SCALE, MAX_STYLE_SCALE = 0.1, 4.0

OPTIMIZERS = ("adam", "lbfgs")
INITS = ("palette", "content", "style", "noise")
DEVICES = (AUTO, "cpu", "gpu")
DEFAULT_DEVICE = AUTO  # the GPU if TensorFlow sees one

#: Adam settings of the TensorFlow style-transfer tutorial: a slow, smoothed step.
ADAM_LEARNING_RATE = 0.02
ADAM_BETA_1 = 0.99
ADAM_EPSILON = 0.1
#: L-BFGS memory (pairs of past steps). SciPy's default is 10; 30 measured
#: fewer seconds to the same loss at 512 px (benchmarks/benchmark.py).
LBFGS_MEMORY_SIZE = 30
#: L-BFGS line search: the sufficient decrease asked of a step (Armijo's c1, the
#: usual 1e-4), and how many times a step is halved before the search gives up.
ARMIJO_C1 = 1e-4
LINE_SEARCH_HALVINGS = 30
#: A step taken with an empty memory (the first, or after the memory was cleared: no
#: curvature known) is doubled while doubling promises a lower loss (worth_doubling), at
#: most this often.
LINE_SEARCH_DOUBLINGS = 20
#: A pair (s, y) is remembered only if s.y > CURVATURE_EPSILON * y.y.
CURVATURE_EPSILON = 1e-10
#: L-BFGS's starting guess of the inverse Hessian (PRECONDITIONERS, after the functions):
#: at 512 px, from the photo, 'fourier' reached the classic recipe's loss in 0.62-0.64
#: times the iterations of 'none' (plain L-BFGS), and in fewer than 'pyramid'
#: (benchmarks/benchmark.py; the figures are in the README's Performance section).
DEFAULT_PRECONDITIONER = "fourier"
#: fourier_preconditioner scales the gradient's part at spatial frequency f (cycles per
#: pixel) by (FOURIER_REFERENCE / f) ** FOURIER_EXPONENT: 0.5 cycles per pixel, the finest
#: along an axis, is left as it is. At 256 px exponent 0.5 took 263 iterations to the
#: classic loss (1: 272, 1.5: 414; the pyramid: 279); at 512 px 0.6 took 3 % fewer
#: iterations than 0.5 on the four sample pairs (0.7 about as few) and reached the
#: classic loss in 172 instead of 179 (the README's Performance section).
FOURIER_EXPONENT = 0.6
FOURIER_REFERENCE = 0.5
#: How much each coarser scale adds to the preconditioner: 1 gives every 2x2,
#: 4x4, ... block average the weight of the pixel itself (0.5 measured about as
#: well at 256 px; 2 and 4 no better).
PYRAMID_STRENGTH = 1.0
#: The largest loss weight or learning rate: the losses are float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)

LOSS_TERMS = ("content", "style", "tv", "total")
TOTAL_ROW = LOSS_TERMS.index("total")  # the row of the total loss in a BatchObjective's output
#: The loss curve's log axis cannot show 0: a term of 0 (its weight 0) is drawn at this.
LOG_PLOT_FLOOR = 1e-12
#: How long the --gif shows each frame (milliseconds).
GIF_FRAME_MS = 100
#: The --gif's last frame, the result (save_gif), is held this many frame durations.
GIF_LAST_FRAME_HOLD = 10
#: This script's file name, which the command in a GIF's comment names (made_by_a_run).
SCRIPT_NAME = Path(__file__).name
#: Starts the line of a GIF's comment that names the result it animates (gif_comment).
GIF_IMAGE_LINE = "result: "

#: The contact sheet, written into the batch's output folder, and the title in its PNG metadata.
CONTACT_SHEET_NAME = "contact_sheet.png"
#: Its names: contact_sheet.png, and contact_sheet_2.png ... beside another batch's sheet.
CONTACT_SHEET_PATTERN = re.compile(rf"{Path(CONTACT_SHEET_NAME).stem}(_\d+)?\.png")
CONTACT_SHEET_TITLE = "StyleTransfer contact sheet"
#: Long side (pixels) images are shrunk to for the contact sheet, and inches per grid cell.
SHEET_THUMBNAIL = 256
SHEET_CELL_INCHES = 2.5
#: Height (inches) kept above each contact-sheet row for the image names (SHEET_TITLE_LINES).
SHEET_TITLE_INCHES = 0.6
#: A name on the contact sheet is wrapped at this many characters (a cell's width at 9 pt, in
#: digits, the widest) onto at most SHEET_TITLE_LINES lines: two columns' long names were
#: drawn over each other.
SHEET_TITLE_CHARACTERS, SHEET_TITLE_LINES = 26, 3
#: Contents optimized together in batch mode with --batch-size auto, by device.
#: CPU: one at a time, since batches measured 6-11 % slower per image on 2 cores
#: (benchmarks/batching.py). GPU: 4, which on an H100 gave 2.7, 1.6 and 1.2 times
#: the images per second of one at a time at 256, 512 and 1024 px; 8 gave 3.3, 1.7
#: and 1.25 times, little more for twice the memory.
AUTO_BATCH_SIZE = {"cpu": 1, "gpu": 4}

#: What became of a pair in a batch (INTERRUPTED is also a run's stopped_early after a Ctrl-C).
DONE, SKIPPED, FAILED, INTERRUPTED, NOT_RUN = "done", "skipped", "failed", "interrupted", "not run"
#: What a run (or pair) stopped by Ctrl-C before its first iteration says: it has no image of its own.
NOTHING_WRITTEN = "before the first iteration: nothing written"
#: A run's pictures beside its result (output_paths' names), as its line names them when drawn again.
PICTURE_NAMES = {"panel": "panel", "losses": "loss curve"}


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


@tf.custom_gradient
def total_variation_loss(image: tf.Tensor):
    """The mean squared difference between vertical neighbours plus that between
    horizontal ones: a smoothness prior.

    Not in Gatys et al. (2015); added, as most implementations do, to suppress
    the high-frequency noise that the style term alone leaves behind.

    Its gradient is written out, for speed: each difference d = x[i+1] - x[i]
    pulls its two pixels together by 2 d / (number of differences). Automatic
    differentiation of the differences (taken as slices, or as one 2x2 filter)
    took 19-21 ms per evaluation at 512 px on the 2-core CPU, this 2.5 ms. It
    is also one expression, so the image's gradient is summed in the same order
    every time (TensorFlow's graph optimizer may add more than two large
    gradients of one tensor in whatever order they are ready, and the same
    512-px run then gave different pixels).
    """
    tf.TensorShape(image.shape).with_rank(4)  # (batch, height, width, channels): one image is image[None]
    down = image[:, 1:] - image[:, :-1]  # each pixel's neighbour below minus it
    right = image[:, :, 1:] - image[:, :, :-1]  # each pixel's neighbour to the right minus it
    down_count = tf.cast(tf.size(down), image.dtype)
    right_count = tf.cast(tf.size(right), image.dtype)
    loss = (tf.math.divide_no_nan(tf.reduce_sum(tf.square(down)), down_count)
            + tf.math.divide_no_nan(tf.reduce_sum(tf.square(right)), right_count))

    def gradient(upstream):
        # d = x[i+1] - x[i] adds 2d/n to x[i+1] and -2d/n to x[i] (zero beyond the edges).
        from_down = (tf.pad(down, [[0, 0], [1, 0], [0, 0], [0, 0]])
                     - tf.pad(down, [[0, 0], [0, 1], [0, 0], [0, 0]]))
        from_right = (tf.pad(right, [[0, 0], [0, 0], [1, 0], [0, 0]])
                      - tf.pad(right, [[0, 0], [0, 0], [0, 1], [0, 0]]))
        return upstream * 2.0 * (tf.math.divide_no_nan(from_down, down_count)
                                 + tf.math.divide_no_nan(from_right, right_count))

    return loss, gradient


@dataclass
class Objective:
    """The weighted loss of Gatys et al. for one image size, its targets computed once.

    Several styles are blended by weight (their style losses are summed); a
    style with region masks compares Gram matrices of the masked features
    (Gatys et al. 2017, section 4).
    """

    extractor: keras.Model
    content_layer: str
    style_layers: tuple
    style_layer_weights: list
    content_target: tf.Tensor
    style_targets: list  # [style][layer] Gram matrices
    blend_weights: list  # one per style, normalised to sum to 1; a style masked out everywhere then gets 0
    layer_masks: list | None  # [style][layer] masks at feature resolution, or None
    content_weight: float
    style_weight: float
    tv_weight: float

    def blended_style_loss(self, features: dict) -> tf.Tensor:
        """The style loss (style_loss, eq. 5) of each style image, summed by blend weight."""
        unmasked = None
        total = 0.0
        for index, (targets, blend) in enumerate(zip(self.style_targets, self.blend_weights)):
            if blend == 0:
                continue  # applies nowhere (or weighs nothing): not even a constant
            if self.layer_masks is None:
                if unmasked is None:  # the same Gram matrices serve every style
                    unmasked = gram_matrices(features, self.style_layers)
                grams = unmasked
            else:
                grams = [gram_matrix(features[name], mask)
                         for name, mask in zip(self.style_layers, self.layer_masks[index])]
            total += blend * style_loss(grams, targets, self.style_layer_weights)
        return total

    def __call__(self, image: tf.Tensor) -> dict:
        """Loss terms for a (1, H, W, 3) image: one forward pass through VGG."""
        return self.terms(self.extractor(image), image)

    def terms(self, features: dict, image: tf.Tensor) -> dict:
        """Loss terms of a (1, H, W, 3) image from its features: the total loss of Gatys
        et al. eq. 7, alpha * content + beta * style (alpha = content_weight, beta =
        style_weight), plus the total-variation term (not in the paper: see
        total_variation_loss)."""
        terms = {
            "content": self.content_weight * content_loss(
                tf.cast(features[self.content_layer], tf.float32), self.content_target),
            "style": self.style_weight * self.blended_style_loss(features),
            "tv": self.tv_weight * total_variation_loss(image),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


@dataclass
class BatchObjective:
    """The objectives of several images of one size, evaluated in one forward pass.

    The images are independent: the loss to minimize is the sum of their own
    losses, so each image's gradient is that of its own objective (Adam, which
    works pixel by pixel, moves each as it would alone, up to float rounding, until one
    image's loss stops being finite, which stops the batch). Departure from
    the paper, for speed on a GPU: the paper stylizes one image at a time.
    """

    objectives: list  # one Objective per image, all sharing one extractor

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        """Loss terms of a (batch, H, W, 3) stack as a (len(LOSS_TERMS), batch) tensor:
        one row per term, one column per image (one tensor, so one copy to the host)."""
        if len(self.objectives) == 1:
            terms = [self.objectives[0](images)]
        else:
            # One split per tensor rather than a slice per image: a tensor read by more than
            # two slices gets a sum of more than two gradients, which TensorFlow may add in
            # any order (see total_variation_loss).
            count = len(self.objectives)
            features = {name: tf.split(value, count) for name, value in
                        self.objectives[0].extractor(images).items()}
            terms = [objective.terms({name: parts[i] for name, parts in features.items()}, image)
                     for i, (objective, image) in enumerate(zip(self.objectives, tf.split(images, count)))]
        return tf.stack([tf.stack([image_terms[name] for image_terms in terms]) for name in LOSS_TERMS])


def style_targets(extractor: keras.Model, style_images: list, style_layers=STYLE_LAYERS) -> list:
    """The style representation of each style image: the Gram matrices of its style layers
    (the targets of eq. 4), one forward pass through the combined extractor each."""
    return [gram_matrices(extractor(style[None]), tuple(style_layers)) for style in style_images]


def build_objective(
    extractor: keras.Model,
    content_image: np.ndarray,
    style_images: list,
    *,
    content_layer: str = CONTENT_LAYER,
    style_layers=STYLE_LAYERS,
    style_layer_weights=None,
    blend_weights=None,
    masks: list | None = None,
    content_weight: float = CONTENT_WEIGHT,
    style_weight: float = STYLE_WEIGHT,
    tv_weight: float = TV_WEIGHT,
    targets: list | None = None,
    black: list | None = None,
) -> Objective:
    """Targets from the images, through the one combined extractor.

    ``masks`` are (H, W) arrays at the content image's size, one per style;
    each is resized to every style layer's feature size. ``targets``: the
    style_targets of ``style_images`` when already computed (contents that
    share their styles share them). ``black``: which masks are black (is_black), when
    judged at another size than these (a coarse level's masks are judged at full size,
    where a small white spot is not yet averaged below MASK_BLACK_LEVEL).
    """
    style_layers = tuple(style_layers)
    content_features = extractor(content_image[None])
    if targets is None:
        targets = style_targets(extractor, style_images, style_layers)
    blend = used_blend_weights(len(style_images), blend_weights, masks, black)
    layer_masks = None
    if masks is not None:
        layer_masks = [[resize_image(mask[..., None], content_features[name].shape[1:3])[None]
                        for name in style_layers] for mask in masks]
    return Objective(
        extractor, content_layer, style_layers, normalized_layer_weights(style_layers, style_layer_weights),
        tf.cast(content_features[content_layer], tf.float32), targets, blend, layer_masks,
        content_weight, style_weight, tv_weight)


def applied_blend_weights(blend: list, black: list) -> list:
    """The blend weights with 0 for each style whose mask is ``black`` (is_black).

    A style whose mask is black everywhere applies nowhere. Its masked Gram matrices
    would be 0 and its loss a constant, the mean square of its targets: no gradient,
    but a loss that L-BFGS's first step length (first_step_length) would go by.
    """
    blend = [0.0 if dark else weight for weight, dark in zip(blend, black, strict=True)]
    if not any(blend):  # a run would only rebuild the photo: surely not what was meant
        raise StyleTransferError("no style applies anywhere: the mask of every style with a blend weight is black")
    return blend


def is_black(mask: np.ndarray) -> bool:
    """Whether a region mask is black everywhere, up to MASK_BLACK_LEVEL."""
    return float(np.max(mask)) <= MASK_BLACK_LEVEL


def normalized_blend_weights(count: int, weights=None) -> list[float]:
    """One weight per style image, summing to 1 (equal by default)."""
    return normalized_weights(weights, count, "style blend", "style image")


def used_blend_weights(count: int, weights=None, masks: list | None = None, black: list | None = None) -> list[float]:
    """The blend weight each of ``count`` style images is applied with: the ``weights``
    normalised (normalized_blend_weights), 0 for a style whose mask is black
    (applied_blend_weights; ``black``: which masks are, when judged elsewhere than here)."""
    blend = normalized_blend_weights(count, weights)
    if masks is None:
        return blend
    return applied_blend_weights(blend, [is_black(mask) for mask in masks] if black is None else black)


# ---------------------------------------------------------------------------
# Colour control (Gatys et al. 2017, section 5)
# ---------------------------------------------------------------------------

#: RGB -> YIQ (NTSC): Y is the luminance, I and Q carry the colour.
YIQ_FROM_RGB = np.array([[0.299, 0.587, 0.114],
                         [0.595716, -0.274453, -0.321263],
                         [0.211456, -0.522591, 0.311135]], dtype=np.float32)
RGB_FROM_YIQ = np.linalg.inv(YIQ_FROM_RGB).astype(np.float32)
#: Regulariser of the colour statistics, so that flat or greyscale images give no NaN: added
#: to colour covariances (and the floor of their eigenvalues, so they stay invertible) and to
#: the luminance's standard deviation.
COVARIANCE_EPSILON = 1e-5
COLOR_MODES = ("none", "luminance", "histogram")
DEFAULT_PRESERVE_COLORS = "none"  # as the paper: the style's colours too
#: A region mask no brighter than this anywhere counts as all black (its style applies
#: nowhere): a black mask saved as JPEG comes back with noise of a few levels.
MASK_BLACK_LEVEL = 8 / 255
#: What a mask file's transparent parts count as: black, no style there (a region painted
#: white on a transparent layer is that region; composited onto white, as photos are,
#: the whole mask would be white).
MASK_BACKGROUND = (0, 0, 0)
#: How far a mask's (or an --init style painting's) width:height may differ from the photo's
#: (as a ratio), beyond what rounding either to whole pixels can do, before a note says it is
#: stretched: a mask drawn over the photo and saved at another size keeps its shape; one made
#: for a portrait, given with a landscape photo, does not.
ASPECT_TOLERANCE = 0.02


def stretched(shape: tuple, photo_shape: tuple) -> bool:
    """Whether resizing an image (a mask) of (height, width) ``shape`` to ``photo_shape`` changes
    its width:height by more than ASPECT_TOLERANCE plus the rounding of either to whole
    pixels (a pixel of the short side: 3 % at 35 px)."""
    (height, width), (photo_height, photo_width) = shape, photo_shape
    rounding = 1 / min(shape) + 1 / min(photo_shape)
    return abs(width / height / (photo_width / photo_height) - 1) > ASPECT_TOLERANCE + rounding


def stretched_note(what: str, shape: tuple, photo_shape: tuple, photo: str = "the photo") -> list[str]:
    """A note (in a list) when ``what``, of (height, width) ``shape``, is stretched to the
    ``photo_shape`` of ``photo`` (stretched); else none."""
    if not stretched(shape, photo_shape):
        return []
    (height, width), (photo_height, photo_width) = shape, photo_shape
    return [f"{what} ({width}x{height}) is stretched to {photo}'s shape ({photo_width}x{photo_height})"]


#: A photo enlarged this many times or more to --size gets a note: the result can be no
#: sharper than the photo (a 451 px sample enlarged to the default 512 px gets none).
ENLARGED_NOTE_FACTOR = 1.5


def enlarged_note(photo: str, shape: tuple, size: int) -> list[str]:
    """A note (in a list) when the photo ``photo``, of (height, width) ``shape``, is enlarged
    ENLARGED_NOTE_FACTOR times or more to a long side of ``size``; else none."""
    factor = size / max(shape)
    if factor < ENLARGED_NOTE_FACTOR:
        return []
    (height, width), (new_height, new_width) = shape, long_side_shape(*shape, size)
    least = (f"--size {max(shape)} keeps its size" if min(shape) >= MIN_SIZE  # else VGG refuses its own size
             else f"--size {smallest_long_side(shape)}, the smallest it runs at, enlarges it least")
    return [f"{photo} ({width}x{height}) is enlarged {factor:.1f} times to {new_width}x{new_height} for "
            f"--size {size}: the result is no sharper than the photo ({least})"]


def style_floor_note(painting: str, shape: tuple, size: int, style_scale: float) -> list[str]:
    """A note (in a list) when the painting ``painting``, of (height, width) ``shape``, is loaded
    (style_loading) larger than --size times --style-scale asks (style_load_size): VGG needs
    MIN_SIZE px on its short side, so its strokes come out larger than asked; else none."""
    asked = style_load_size(size, style_scale)
    height, width = loaded_shape(shape, **style_loading(size, style_scale))
    if max(height, width) == asked:
        return []
    return [f"the style {painting} is used at {width}x{height}, the smallest VGG takes ({MIN_SIZE} px on its short "
            f"side), not at the long side of {asked} px that --size {size} x --style-scale {style_scale:g} asks for: "
            f"its strokes come out larger than asked"]


def size_notes(contents: list[str], styles: list[str], stored: dict, size: int, style_scale: float) -> list[str]:
    """The notes on inputs used at another size than the flags suggest (enlarged_note,
    style_floor_note), by the inputs as typed, one per input; ``stored``: each input's
    (height, width) on disk (stored_shape), or an error for one that cannot be read (no note)."""
    def shape(source: str) -> tuple | None:
        return stored[source] if isinstance(stored.get(source), tuple) else None

    return [*(note for source in dict.fromkeys(contents) if shape(source)
              for note in enlarged_note(source, shape(source), size)),
            *(note for source in dict.fromkeys(styles) if shape(source)
              for note in style_floor_note(source, shape(source), size, style_scale))]


def init_style_note(painting: str, painting_file: Path, photo_shape: tuple, max_pixels: int,
                    photo: str = "the photo") -> list[str]:
    """The note (in a list) when --init style starts from the painting ``painting`` (its
    file: ``painting_file``) stretched to the photo's ``photo_shape`` (stretched_note, with the
    painting's own size)."""
    return stretched_note(f"--init style: the painting {painting}", stored_shape(painting_file, max_pixels),
                          photo_shape, photo)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return image @ YIQ_FROM_RGB.T


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return image @ RGB_FROM_YIQ.T


def luminance_image(image: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """The luminance as a grey RGB image; with ``like``, its mean and spread
    matched to ``like``'s luminance (so the style's brightness fits the photo)."""
    y = rgb_to_yiq(image)[..., 0]
    if like is not None:
        target = rgb_to_yiq(like)[..., 0]
        y = (y - y.mean()) / (y.std() + COVARIANCE_EPSILON) * target.std() + target.mean()
    return np.repeat(np.clip(y, PIXEL_MIN, PIXEL_MAX)[..., None], 3, axis=-1).astype(np.float32)


def recombine_luminance(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylized image's luminance with the content's colour (I and Q channels)."""
    if content.shape[:2] != stylized.shape[:2]:
        content = resize_image(content, stylized.shape[:2])
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(stylized)[..., 0]
    return np.clip(yiq_to_rgb(yiq), PIXEL_MIN, PIXEL_MAX).astype(np.float32)


def _matrix_power(covariance: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.maximum(values, COVARIANCE_EPSILON) ** power) @ vectors.T


def color_statistics(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (3,) and covariance (3, 3) of an image's RGB pixels."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    return pixels.mean(axis=0), np.cov(pixels, rowvar=False, bias=True)


def recolor(image: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """The image mapped linearly to colour ``mean`` and ``covariance`` (clipped to [0, 1])."""
    source_mean, source_cov = color_statistics(image)
    eye = COVARIANCE_EPSILON * np.eye(3)
    transform = _matrix_power(covariance + eye, 0.5) @ _matrix_power(source_cov + eye, -0.5)
    matched = (image.reshape(-1, 3) - source_mean) @ transform.T + mean
    return np.clip(matched, PIXEL_MIN, PIXEL_MAX).reshape(image.shape).astype(np.float32)


def match_color_histogram(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Give ``image`` the colour mean and covariance of ``like`` (a linear map)."""
    return recolor(image, *color_statistics(like))


def palette(images: list, weights: list) -> tuple[np.ndarray, np.ndarray]:
    """Colour mean and covariance of several images blended by non-negative ``weights``
    (not all 0): the statistics of their pixels pooled, each image weighing its share.
    The weights are normalised here: an objective's blend weights need not sum to 1
    (a style masked out everywhere keeps weight 0, the others theirs)."""
    weights = normalized_weights(weights, len(images), "style blend", "style")
    statistics = [color_statistics(image) for image in images]
    mean = sum(weight * image_mean for weight, (image_mean, _) in zip(weights, statistics))
    second_moment = sum(weight * (covariance + np.outer(image_mean, image_mean))
                        for weight, (image_mean, covariance) in zip(weights, statistics))
    return mean, second_moment - np.outer(mean, mean)


# ---------------------------------------------------------------------------
# Optimization
# ---------------------------------------------------------------------------


@dataclass
class Progress:
    """What the optimization loop tells its callback after each iteration."""

    iteration: int  # counted over all levels
    iterations: int  # all levels together
    losses: dict
    elapsed: float
    level: int = 0  # counted from 0
    frame: np.ndarray | None = None  # the current image (the batch's first), every save_every iterations
    levels: int = 1  # coarse-to-fine levels in the run


@dataclass
class StylizeResult:
    """What stylize() returns for one content image: the result, (H, W, 3) float32 in [0, 1]
    at the content's size, and how the run went."""

    image: np.ndarray
    history: list = field(default_factory=list)  # one dict of losses and time per iteration
    frames: list = field(default_factory=list)  # every save_every iterations (keep_frames False: the latest)
    device: str = ""
    precision: str = ""  # the arithmetic used ('auto' resolved)
    sizes: list = field(default_factory=list)  # (height, width) of each level
    blend_weights: list = field(default_factory=list)  # of each level: as used (0 where a style's mask is black)
    stopped_early: str | None = None  # why the run ended before its iterations, if it did
    non_finite: bool = False  # it stopped because the loss or its gradient was NaN or infinite
    notes: list = field(default_factory=list)  # e.g. a level where L-BFGS ended early

    @property
    def loss(self) -> float | None:
        """The total loss of ``image`` (with preserve_colors 'luminance': of the grey image
        optimized, before the colours are put back): the lowest finite one measured at the
        last level run (the levels' losses, at other sizes, do not compare); None when that
        level measured none (L-BFGS can end before its first iteration) or none was finite."""
        level = len(self.sizes) - 1
        return min((row["total"] for row in self.history if row["level"] == level and np.isfinite(row["total"])),
                   default=None)

    @property
    def interrupted_at_once(self) -> bool:
        """Ctrl-C came before the first iteration was measured: ``image`` is only the image it
        started from, not worth a file (nor, with -o, the name a rerun of the command needs)."""
        return self.stopped_early == INTERRUPTED and not self.history


def initial_image(content: np.ndarray, styles: list, init: str, seed: int,
                  blend_weights: list | None = None) -> np.ndarray:
    """The starting image: the content photo with its colours moved PALETTE_MIX of the
    way to the styles' palette (their colour mean and covariance, blended by
    ``blend_weights``; equal by default), the content photo, the style of the largest
    blend weight (the first of equals) resized to it, or seeded noise."""
    check_choice("init", init, INITS)
    weights = normalized_blend_weights(len(styles)) if blend_weights is None else blend_weights
    if init == "palette":
        recolored = recolor(content, *palette(styles, weights))
        return ((1 - PALETTE_MIX) * content + PALETTE_MIX * recolored).astype(np.float32)
    if init == "content":
        return content.copy()
    if init == "style":
        return resize_image(styles[int(np.argmax(weights))], content.shape[:2])
    return np.random.default_rng(seed).uniform(PIXEL_MIN, PIXEL_MAX, content.shape).astype(np.float32)  # noise


def level_sizes(size: int, scales: int, smallest: int = MULTISCALE_START, floor: int = MIN_SIZE) -> list[int]:
    """Long sides of the coarse-to-fine levels: geometric from ``smallest`` up to ``size``.

    A small ``size`` starts at half of it instead, and no level is below ``floor``
    (the image's smallest_long_side): for a very small or very wide image the first
    levels can then have one size, each going on from the last.
    """
    if scales <= 1:
        return [size]
    smallest = min(size, max(floor, min(smallest, size // 2)))
    return [int(round(s)) for s in np.geomspace(smallest, size, scales)]


def resolve_scales(scales: int | str, size: int, iterations=None, floor: int = MIN_SIZE) -> int:
    """The number of coarse-to-fine levels: ``scales``, or for 'auto' one level per
    count when ``iterations`` lists several, else by the output's long side ``size``:
    one level below MULTISCALE_FROM px, one per doubling from MULTISCALE_START above (the
    number of doublings rounded: 1449 px, 2.5 doublings, gets 1 + 3 levels), or from the
    image's ``floor`` (level_sizes) where that is larger: a very wide image, which cannot
    be shrunk as far, gets fewer levels rather than several of one size."""
    if scales != AUTO:
        return int(scales)
    if iterations is not None and not np.isscalar(iterations):
        return len(iterations)
    if size < MULTISCALE_FROM:
        return 1
    return int(min(MAX_SCALES, 1 + round(np.log2(size / max(MULTISCALE_START, min(floor, size))))))


def level_iterations(iterations, scales: int) -> list[int]:
    """Iterations per level: one count per level, or one number for the last level
    (the coarser ones get COARSE_ITERATIONS, or that number if smaller)."""
    if np.isscalar(iterations):
        counts = [min(int(iterations), COARSE_ITERATIONS)] * (scales - 1) + [int(iterations)]
    else:
        counts = [int(n) for n in iterations]
    if len(counts) != scales:
        raise StyleTransferError(f"{counted(len(counts), 'iteration count')} given for {counted(scales, 'scale')}")
    if any(n <= 0 for n in counts):
        shown = iterations if np.isscalar(iterations) else ",".join(map(str, counts))  # as typed: '0,2'
        raise StyleTransferError(f"--iterations must be positive (got {shown})")
    return counts


def pyramid_preconditioner(vectors: tf.Tensor, strength: float = PYRAMID_STRENGTH) -> tf.Tensor:
    """P v = v + strength * sum_k U^k D^k v for a (batch, H, W, C) stack: each image
    plus its 2x2, 4x4, ... block averages, down to a single block. D averages
    each 2x2 block (zeros beyond the edge); U copies each average back over its
    block, so U^k D^k v is v's 2^k x 2^k block averages at full size.

    Departure from the paper (Gatys et al. use plain L-BFGS): L-BFGS starts from
    the guess gamma * P of the inverse Hessian instead of gamma * I. A step along
    -P g moves the large-scale parts of the image as readily as single pixels,
    where a raw gradient, dominated by pixel-scale detail, barely moves them:
    coarse to fine inside one optimization. P is symmetric and positive definite
    (U = 4 D^T exactly), as L-BFGS needs. It is summed from the coarsest scale
    up, Horner-style, so it costs about three passes over the image.
    """
    def down(fine: tf.Tensor) -> tf.Tensor:
        height, width = fine.shape[1:3]
        fine = tf.pad(fine, [[0, 0], [0, height % 2], [0, width % 2], [0, 0]])
        return tf.nn.avg_pool2d(fine, 2, 2, "VALID")

    def up(coarse: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
        copied = tf.repeat(tf.repeat(coarse, 2, axis=1), 2, axis=2)
        return copied[:, :like.shape[1], :like.shape[2]]

    pyramid = [vectors]  # D^k v for k = 0, 1, ... until a single pixel is left
    while max(pyramid[-1].shape[1:3]) > 1:
        pyramid.append(down(pyramid[-1]))
    if len(pyramid) == 1:
        return vectors
    coarser = pyramid[-1]  # becomes the sum over k >= level of U^(k - level) D^k v
    for level in range(len(pyramid) - 2, 0, -1):
        coarser = pyramid[level] + up(coarser, pyramid[level])
    return vectors + strength * up(coarser, vectors)


def fourier_preconditioner(vectors: tf.Tensor, exponent: float = FOURIER_EXPONENT) -> tf.Tensor:
    """P v for a (batch, H, W, C) stack: each image's and channel's spectrum scaled by
    (FOURIER_REFERENCE / f) ** exponent at spatial frequency f, so that the coarser a
    pattern, the more a step moves it (the image's mean: f taken as one cycle per
    image, scaled by about (long side / 2) ** exponent).

    Departure from the paper, as pyramid_preconditioner: L-BFGS starts from gamma * P
    instead of gamma * I. Where the pyramid adds block averages (a boost that grows
    with the logarithm of the scale, in blocks), this scales every frequency smoothly
    by a power law, and reached a given loss in fewer iterations than the pyramid
    (measured: see FOURIER_EXPONENT and the README's Performance section). P is
    symmetric positive definite (a real, positive scale that depends only on |f|),
    as L-BFGS needs. The FFT treats the image as periodic, so a step at one edge
    moves the opposite edge a little too.
    """
    height, width = vectors.shape[1:3]
    frequency = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :])
    frequency[0, 0] = 1.0 / max(height, width)
    scale = tf.constant((FOURIER_REFERENCE / frequency) ** exponent, tf.complex64)
    channels_first = tf.transpose(vectors, [0, 3, 1, 2])  # the FFT works on the last two axes
    filtered = tf.signal.irfft2d(tf.signal.rfft2d(channels_first) * scale, fft_length=[height, width])
    return tf.transpose(filtered, [0, 2, 3, 1])


#: --preconditioner's choices, each with the map lbfgs_optimize applies (None: the identity).
PRECONDITIONERS = {"fourier": fourier_preconditioner, "pyramid": pyramid_preconditioner, "none": None}


#: How an optimizer tells its caller (LevelRecorder) about each iteration:
#: report(iteration, pixels, losses, evaluations) -> False to stop, where ``pixels`` is the
#: image stack measured, ``losses`` its (terms, batch) loss tensor and ``evaluations`` the
#: loss evaluations so far (Adam: the start's and one per iteration, the last a forward pass
#: without a gradient; L-BFGS: its line search's, each with its gradient).
Report = Callable[[int, tf.Tensor, tf.Tensor, int], bool]


def adam_optimize(objective: BatchObjective, images: np.ndarray, iterations: int, learning_rate: float,
                  report: Report, overlap: bool = False) -> None:
    """Adam on the pixels of a (batch, H, W, 3) stack, clipped to [0, 1] after each
    step (the TensorFlow tutorial's recipe).

    Iteration k reports the images after k steps (a copy that stays on the
    device) with their loss terms; ``report`` returning False stops the loop.
    A step's forward pass measures the images it starts from, so those after
    step k are measured by step k + 1, and those after the last step by one
    more forward pass, without a gradient. (The start is measured by the first
    step and, as in lbfgs_optimize, reported only if its loss is not finite.)
    Reading the loss terms makes the host wait for the step. With ``overlap``
    (for a GPU, where steps run asynchronously) each measurement is reported
    after the next step has been queued, so that the device is not left idle
    while the host reads; a step is then computed after a report that stops
    the run, and dropped. On a CPU a step runs to its end before the call
    returns, so overlapping would only delay each report (and its time stamp)
    by a step.
    """
    variable = tf.Variable(images)
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=ADAM_BETA_1,
                                      epsilon=ADAM_EPSILON)

    # autograph=False, here and in lbfgs_optimize: these functions use no Python control flow
    # that depends on tensors, so tracing them as plain Python is enough. AutoGraph's rewriting
    # of their source, and of every Keras layer they call, cost about 0.9 s at a run's start
    # (VGG19, 512 px: the first iteration reported after 4.6 s instead of 5.5, the same pixels).
    @tf.function(autograph=False)
    def step():
        measured = tf.identity(variable)
        with tf.GradientTape() as tape:
            losses = objective(variable)
            total = tf.reduce_sum(losses[TOTAL_ROW])  # the sum of the images' own losses
        gradient = tape.gradient(total, variable)
        optimizer.apply_gradients([(gradient, variable)])
        variable.assign(tf.clip_by_value(variable, PIXEL_MIN, PIXEL_MAX))
        return measured, losses

    @tf.function(autograph=False)
    def measure():
        """The images after the last step and their loss terms: a forward pass, no step."""
        return tf.identity(variable), objective(variable)

    start, start_losses = step()
    if not np.all(np.isfinite(start_losses[TOTAL_ROW])):  # no further: the run stops on it
        report(1, start, start_losses, 1)
        return
    lag = 1 if overlap else 0  # steps queued ahead of the one being reported
    queued = deque()  # (iteration, images measured, loss terms) not yet reported
    for iteration in range(1, iterations + 1):
        queued.append((iteration, *(step() if iteration < iterations else measure())))
        if len(queued) > lag:
            number, measured, losses = queued.popleft()
            # Evaluations: the start's and one per step, the last measured by measure().
            if not report(number, measured, losses, number + 1):
                return
    for number, measured, losses in queued:
        report(number, measured, losses, number + 1)


class SearchPoint(NamedTuple):
    """A point the L-BFGS line search tried: the clipped image stack, its loss terms,
    their total (a Python float: the search compares it on the host) and its gradient."""

    pixels: tf.Tensor
    losses: tf.Tensor
    loss: float
    gradient: tf.Tensor


def free_pixels(pixels: tf.Tensor, gradient: tf.Tensor) -> tf.Tensor:
    """1 where a pixel may move downhill, 0 where a [0, 1] bound holds it (at the
    bound, with the gradient pointing out of the box)."""
    held = ((pixels <= PIXEL_MIN) & (gradient > 0)) | ((pixels >= PIXEL_MAX) & (gradient < 0))
    return tf.cast(~held, gradient.dtype)


def trial_point(objective: BatchObjective, pixels: tf.Tensor, gradient: tf.Tensor, direction: tf.Tensor,
                step_length: tf.Tensor) -> tuple:
    """Loss terms and gradient at the clipped point pixels + step_length * direction,
    and (total loss, gradient . move): the two numbers the line search needs, as
    one tensor so that they come to the host together (the second is the loss
    change that the gradient predicts for the move, < 0 downhill). An image whose gradient
    is not finite gets a NaN total, so that the run stops on it as on a NaN loss.
    Returns (point, loss terms, its gradient, those two numbers)."""
    candidate = tf.clip_by_value(pixels + step_length * direction, PIXEL_MIN, PIXEL_MAX)
    with tf.GradientTape() as tape:
        tape.watch(candidate)
        losses = objective(candidate)
        total = tf.reduce_sum(losses[TOTAL_ROW])  # the sum of the images' own losses
    new_gradient = tape.gradient(total, candidate)
    finite = tf.reduce_all(tf.math.is_finite(new_gradient), axis=[1, 2, 3])  # per image
    totals = tf.where(finite, losses[TOTAL_ROW], np.nan)
    losses = tf.concat([losses[:TOTAL_ROW], totals[None], losses[TOTAL_ROW + 1:]], axis=0)
    predicted_change = tf.reduce_sum(gradient * (candidate - pixels))  # first order: < 0 when it moved downhill
    return candidate, losses, new_gradient, tf.stack([tf.reduce_sum(totals), predicted_change])


def two_loop_direction(pixels: tf.Tensor, gradient: tf.Tensor, steps: tf.Tensor, changes: tf.Tensor,
                       step_dot_changes: tf.Tensor, scale: tf.Tensor, order: tf.Tensor,
                       precondition: Callable[[tf.Tensor], tf.Tensor]) -> tuple:
    """The L-BFGS search direction -H g over the free pixels, by the two-loop
    recursion (Nocedal & Wright, Algorithm 7.4) written as matrix products.

    ``steps`` and ``changes`` hold the remembered pairs s_i, y_i as rows (flattened
    images, in the slots ``order`` lists oldest first; unused rows zero),
    ``step_dot_changes`` their products s_i . y_j (slot by slot; only those with s_i
    no newer than y_j are read, and an unused slot has 1 on the diagonal), ``scale``
    s.y / y.P(y) of the newest pair, which scales ``precondition``, the starting
    guess of the inverse Hessian. Returns (direction, g . direction, its norm).

    Each dot product of the two loops is a sum over the pairs handled before it, so
    the loops are two triangular solves with R, the upper triangle of S Y^T
    (oldest first; D its diagonal, 1 / rho_i), and four matrix-vector products:
        first loop, newest to oldest:  alpha_i = rho_i s_i . (g - sum_{j newer} alpha_j y_j)
                                       that is  R alpha = S g;      q = g - Y^T alpha
        second loop, oldest to newest: beta_i = rho_i y_i . (r + sum_{j older} (alpha_j - beta_j) s_j)
                                       that is  R^T beta = Y r + (R - D)^T alpha,  with r = scale P(q)
        direction = -(r + S^T (alpha - beta))
    Departure from the textbook's loops, which take ~330 operations on image-sized
    vectors with 30 pairs (a kernel launch each on a GPU, and at 256 px on this CPU
    more time in TensorFlow's executor than in arithmetic): these take about 40, a
    dozen of them over the image.
    """
    free = free_pixels(pixels, gradient)
    g = gradient * free

    def over_pairs(matrix: tf.Tensor, vector: tf.Tensor) -> tf.Tensor:
        """(pairs, 1): each remembered pair's row dotted with ``vector``, oldest first."""
        return tf.gather(tf.linalg.matvec(matrix, tf.reshape(vector, [-1])), order)[:, None]

    position = tf.math.invert_permutation(order)  # of each slot, oldest first

    def along_pairs(matrix: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        """The sum of the pairs' rows weighted by ``weights`` (pairs, 1; oldest first), as an image."""
        in_slots = tf.gather(weights[:, 0], position)
        return tf.reshape(tf.linalg.matvec(matrix, in_slots, transpose_a=True), tf.shape(g))

    products = tf.gather(tf.gather(step_dot_changes, order), order, axis=1)  # oldest first
    upper = tf.linalg.band_part(products, 0, -1)  # R: s_i . y_j, s_i no newer than y_j
    alpha = tf.linalg.triangular_solve(upper, over_pairs(steps, g), lower=False)
    r = scale * precondition(g - along_pairs(changes, alpha))
    strictly_upper = upper - tf.linalg.band_part(products, 0, 0)
    beta = tf.linalg.triangular_solve(upper, over_pairs(changes, r) + tf.matmul(strictly_upper, alpha,
                                                                             transpose_a=True),
                                      lower=False, adjoint=True)
    direction = -(r + along_pairs(steps, alpha - beta)) * free
    return direction, tf.reduce_sum(gradient * direction), tf.norm(direction)


def pair_curvature(step: tf.Tensor, change: tf.Tensor) -> tf.Tensor:
    """Whether a new pair's s.y is positive enough to remember the pair (else the
    update would not keep H positive definite)."""
    return tf.reduce_sum(step * change) > CURVATURE_EPSILON * tf.reduce_sum(change * change)


class LbfgsMemory:
    """L-BFGS's memory: the ``memory_size`` newest pairs (s = x_new - x, y = g_new - g),
    their products s_i . y_j, and the search direction they give (two_loop_direction)."""

    def __init__(self, like: np.ndarray, memory_size: int, precondition: Callable[[tf.Tensor], tf.Tensor],
                 in_place: bool | None = None):
        self.memory_size, self.precondition = memory_size, precondition
        # The pairs as the rows of two matrices, one slot per pair, reused oldest first. A
        # pair is written in place into its row; kept as separate tensors instead, the
        # two-loop took a list of 60 of them and ~330 operations (README, Performance).
        self.steps = tf.Variable(tf.zeros([memory_size, like.size]), trainable=False)
        self.changes = tf.Variable(tf.zeros([memory_size, like.size]), trainable=False)
        self.step_dot_changes = tf.Variable(tf.eye(memory_size), trainable=False)
        self.scale = tf.Variable(1.0, trainable=False)
        self.slots = deque()  # the slots in use, oldest first
        # A row written by TensorFlow's own kernels makes it copy the whole matrix at every
        # later read (a variable written by slices is read by copy); XLA writes it in place.
        # On a GPU such a copy is cheap and XLA's compiler is not always installed: there
        # (or with in_place=False) the row is written without XLA.
        self.in_place = "CPU" in self.steps.device if in_place is None else in_place
        self.write_pair = tf.function(self.write_row, autograph=False, jit_compile=self.in_place)
        # Compiled once per memory, that is per optimization (autograph=False: see adam_optimize).
        self.store_pair = tf.function(self.store, autograph=False)
        self.two_loop = tf.function(partial(two_loop_direction, precondition=precondition), autograph=False)
        self.pair_curvature = tf.function(pair_curvature, autograph=False)

    def __len__(self) -> int:
        return len(self.slots)

    def clear(self) -> None:
        self.slots.clear()
        self.steps.assign(tf.zeros_like(self.steps))
        self.changes.assign(tf.zeros_like(self.changes))
        self.step_dot_changes.assign(tf.eye(self.memory_size))
        self.scale.assign(1.0)

    def direction(self, pixels: tf.Tensor, gradient: tf.Tensor) -> tuple:
        """(-H g, g . direction, its norm) on the free pixels: with no pairs, minus the
        preconditioned gradient."""
        # Always every slot, the unused (zero) ones first, so that two_loop is traced once. The
        # slots fill from 0 up and are reused only once all are in use: those unused are the last.
        unused = range(len(self.slots), self.memory_size)
        return self.two_loop(pixels, gradient, self.steps, self.changes, self.step_dot_changes, self.scale,
                             tf.constant([*unused, *self.slots]))

    def remember(self, step: tf.Tensor, change: tf.Tensor) -> None:
        """Keep the pair if its curvature allows (the oldest then drops out)."""
        if not self.pair_curvature(step, change):
            return
        slot = self.slots.popleft() if len(self.slots) == self.memory_size else len(self.slots)
        self.slots.append(slot)
        self.store_pair(tf.constant(slot), step, change)

    def write_row(self, slot: tf.Tensor, step: tf.Tensor, change: tf.Tensor) -> None:
        for matrix, row in ((self.steps, step), (self.changes, change)):
            if self.in_place:  # a scatter, which XLA compiles once for any slot (a slice: once per slot)
                matrix.assign(tf.tensor_scatter_nd_update(matrix, [[slot]], tf.reshape(row, [1, -1])))
            else:  # a slice, which TensorFlow runs on a GPU also under op determinism (a scatter: on the host)
                matrix[slot].assign(tf.reshape(row, [-1]))

    def store(self, slot: tf.Tensor, step: tf.Tensor, change: tf.Tensor) -> None:
        """Write a pair into ``slot``, with its products s_i . y_new and its scale."""
        self.write_pair(slot, step, change)
        column = tf.linalg.matvec(self.steps, tf.reshape(change, [-1]))  # s_i . y_new, its own s.y included
        in_slot = tf.one_hot(slot, self.memory_size)[None, :] > 0
        self.step_dot_changes.assign(tf.where(in_slot, column[:, None], self.step_dot_changes))
        self.scale.assign(column[slot] / tf.reduce_sum(change * self.precondition(change)))


def first_step_length(loss: float, slope: float, norm: float) -> float:
    """Where a line search with no curvature known starts: the step along a
    direction (of norm ``norm``, along which the loss changes at rate ``slope``
    < 0) at which the loss's tangent line reaches zero, loss / -slope (Polyak's
    step size). The loss is never negative, so a first-order model goes no further.

    Departure from L-BFGS-B, which starts with a move of norm 1, whatever the
    image's size: from there, doubling, the first iteration took 7-9 evaluations
    (the start's included) at 512 px on the four sample pairs, from here 3-4.
    Where the tangent says nothing (a loss of 0, a slope that is not downhill)
    it falls back to L-BFGS-B's move of norm 1, a step of 1 / norm.
    """
    if loss > 0 and slope < 0:
        return loss / -slope
    return 1.0 / norm


def worth_doubling(loss: float, new_loss: float, predicted_change: float) -> bool:
    """Whether doubling a step that took the loss from ``loss`` to ``new_loss`` (and
    along which it changes at first order by ``predicted_change`` < 0) promises a lower loss:
    the quadratic through the start's value and slope and the new value is lower at
    twice the step exactly when the loss fell by more than 2/3 of the first-order
    change. On a quadratic the answer is exact. Doubling until the loss rose instead
    spent an evaluation on a step that did not help in the first iteration of three
    of the four sample pairs at 512 px; this gives them the same pixels one
    evaluation sooner. On the fourth it declined a doubling that would have lowered
    the loss, and was still ahead after 5 evaluations (65.6e6 against 84.8e6).
    """
    return new_loss - loss < 2 / 3 * predicted_change


def line_search(trial: Callable, pixels: tf.Tensor, gradient: tf.Tensor, loss: float, direction: tf.Tensor,
                step_length: float, expand: bool) -> tuple[SearchPoint | None, SearchPoint, int]:
    """Backtracking along ``direction``: halve ``step_length`` until the loss falls by
    Armijo's sufficient decrease; with ``expand`` (no curvature known yet, so no
    natural step length) then double it while worth_doubling and the loss keeps
    falling. ``trial`` is trial_point for the objective. Returns the accepted
    SearchPoint (None if no step lowered the loss enough: Armijo's condition, which asks
    for a fraction of the fall the gradient predicts), the last point tried, and the
    evaluations used.

    Departure from L-BFGS-B, whose line search is Moré and Thuente's.
    """
    accepted, halvings, doublings, tried = None, 0, 0, 0
    while halvings <= LINE_SEARCH_HALVINGS and doublings <= LINE_SEARCH_DOUBLINGS:
        candidate, losses, new_gradient, loss_and_change = trial(pixels, gradient, direction,
                                                                 tf.constant(step_length))
        total, predicted_change = loss_and_change.numpy().tolist()  # one copy to the host
        point, tried = SearchPoint(candidate, losses, total, new_gradient), tried + 1
        if not np.isfinite(point.loss):
            break  # no further: the caller decides whether the run stops
        lower = predicted_change < 0 and point.loss <= loss + ARMIJO_C1 * predicted_change
        if accepted is None:
            if not lower:
                step_length, halvings = step_length / 2, halvings + 1
                continue
            accepted = point
        elif lower and point.loss < accepted.loss:
            accepted = point  # still falling: go further
        else:
            break
        if not (expand and worth_doubling(loss, point.loss, predicted_change)):
            break
        step_length, doublings = step_length * 2, doublings + 1
    return accepted, point, tried


def lbfgs_optimize(objective: BatchObjective, images: np.ndarray, iterations: int,
                   report: Report,
                   memory_size: int = LBFGS_MEMORY_SIZE,
                   precondition: Callable[[tf.Tensor], tf.Tensor] | None = None) -> str:
    """L-BFGS on the pixels of a (batch, H, W, 3) stack, kept in [0, 1], as Gatys
    et al. optimized with L-BFGS.

    Written in TensorFlow rather than calling SciPy's L-BFGS-B, whose own work
    on the float64 image vectors cost 0.07-0.09 s per evaluation at 512 px on
    the 2-core CPU (the speed table's L-BFGS rows against Adam's), and which
    needs the image on the host. Here the image and the ``memory_size`` remembered
    pairs stay on the device; the only copies are the loss terms (and a few
    scalars) per evaluation.

    Departure from L-BFGS-B: the [0, 1] box is kept by projection (the
    direction leaves out pixels held at a bound, free_pixels; each trial point
    is clipped into the box) and the line search backtracks (line_search).
    ``precondition`` (a symmetric positive definite map, such as
    fourier_preconditioner, stylize's default; None, this function's default: the identity)
    is the starting guess of the inverse Hessian, up to the usual scale s.y / y.P(y) of the
    newest pair.

    A batch is one problem: the sum of the images' losses, one line search for
    all. Returns how it ended (it can end before ``iterations``).
    """
    memory = LbfgsMemory(images, memory_size, precondition or tf.identity)

    trial = tf.function(partial(trial_point, objective), autograph=False)  # autograph=False: see adam_optimize

    # The start's loss and gradient: a trial that moves nowhere (step length 0).
    zero = tf.zeros_like(images)
    pixels, losses, gradient, loss_and_change = trial(tf.constant(images), zero, zero, tf.constant(0.0))
    loss, evaluations = float(loss_and_change[0]), 1
    if not np.isfinite(loss):
        report(1, pixels, losses, evaluations)
        return "the loss was not finite"
    for iteration in range(1, iterations + 1):
        direction, slope, norm = memory.direction(pixels, gradient)
        if float(slope) >= 0 and memory:  # not downhill: forget the memory, follow the preconditioned gradient
            memory.clear()
            direction, slope, norm = memory.direction(pixels, gradient)
        if float(norm) == 0.0:
            return "the gradient is zero on the free pixels: a minimum"
        # With no memory the direction is the (preconditioned) gradient, whose norm says nothing
        # of how far to go: start at first_step_length and expand from there.
        fresh = not memory
        accepted, last, tried = line_search(
            trial, pixels, gradient, loss, direction,
            first_step_length(loss, float(slope), float(norm)) if fresh else 1.0, expand=fresh)
        evaluations += tried
        # A non-finite loss stops the run, unless a longer step tried after a lower
        # point had been found gave it (the search then keeps that point).
        if accepted is None and not np.isfinite(last.loss):
            report(iteration, last.pixels, last.losses, evaluations)
            return "the loss was not finite"
        if accepted is None:  # typically float32 rounding: the loss can no longer tell a lower point
            return ("no step along the search direction lowered the loss enough (Armijo's condition) "
                    f"after {LINE_SEARCH_HALVINGS} halvings")
        memory.remember(accepted.pixels - pixels, accepted.gradient - gradient)
        pixels, gradient, loss = accepted.pixels, accepted.gradient, accepted.loss
        if not report(iteration, pixels, accepted.losses, evaluations):
            return "stopped by its report callback"
    return "done"


def check_settings(*, iterations, scales: int | str, optimizer: str, preconditioner: str, init: str,
                   content_weight: float, style_weight: float, tv_weight: float, content_layer: str,
                   style_layers, style_layer_weights, style_blend_weights, style_masks, style_scale: float,
                   preserve_colors: str, model: str, weights: str | None, precision: str,
                   learning_rate: float, seed: int, save_every: int, device: str) -> None:
    """Raise StyleTransferError for any setting stylize() cannot use, before any work.
    Takes every setting, so a misspelt one is a TypeError; the blend weights and masks are
    checked by check_styles, against the number of style images."""
    # Types first, as Python's own numbers: a string would fail a range check below with a
    # TypeError that names no setting.
    check_iterations(iterations)
    seed, save_every = number_setting("seed", seed, whole=True), number_setting("save-every", save_every, whole=True)
    if not (isinstance(scales, str) and scales == AUTO):
        scales = number_setting("scales", scales, whole=True)
    content_weight, style_weight, tv_weight, learning_rate, style_scale = (
        number_setting(name, value) for name, value in (
            ("content-weight", content_weight), ("style-weight", style_weight), ("tv-weight", tv_weight),
            ("learning-rate", learning_rate), ("style-scale", style_scale)))
    for name, allowed, value in (("optimizer", OPTIMIZERS, optimizer), ("init", INITS, init),
                                 ("device", DEVICES, device), ("preserve-colors", COLOR_MODES, preserve_colors),
                                 ("precision", PRECISION_CHOICES, precision),
                                 ("preconditioner", PRECONDITIONERS, preconditioner)):
        check_choice(name, value, allowed)
    if scales != AUTO and not 1 <= scales <= MAX_SCALES:
        raise StyleTransferError(f"--scales must be 'auto' or between 1 and {MAX_SCALES} (got {scales})")
    # With 'auto' the number of levels depends on the image size; checked again then.
    levels = resolve_scales(scales, MULTISCALE_START, iterations)
    if levels > MAX_SCALES:  # 'auto' with a list of counts: one level per count
        raise StyleTransferError(f"--iterations gives {levels} counts, one per level; at most "
                                 f"{MAX_SCALES} levels")
    level_iterations(iterations, levels)
    if save_every < 0:
        raise StyleTransferError(f"--save-every must be >= 0 (got {save_every})")
    if not 0 <= seed <= MAX_SEED:
        raise StyleTransferError(f"--seed must be between 0 and {MAX_SEED} (got {seed})")
    for name, value in (("content-weight", content_weight), ("style-weight", style_weight),
                        ("tv-weight", tv_weight), ("learning-rate", learning_rate)):
        # The losses are float32: a larger number is infinite there.
        if not (np.isfinite(value) and 0 <= value <= FLOAT32_MAX):
            raise StyleTransferError(f"--{name} must be a number from 0 to {FLOAT32_MAX:.3g} (got {value})")
    if content_weight == style_weight == tv_weight == 0:
        raise StyleTransferError("--content-weight, --style-weight and --tv-weight are all 0: nothing to optimize")
    # Adam's steps are this long: with 0 the result is the start image. L-BFGS has no use for
    # the flag (unused_flags notes it) and is not refused for it.
    if optimizer == "adam" and learning_rate == 0:
        raise StyleTransferError("--learning-rate must be above 0 for Adam (got 0): it is the length of its steps")
    if not (np.isfinite(style_scale) and MIN_STYLE_SCALE <= style_scale <= MAX_STYLE_SCALE):
        raise StyleTransferError(
            f"--style-scale must be between {MIN_STYLE_SCALE} and {MAX_STYLE_SCALE} (got {style_scale})")
    if not isinstance(content_layer, str):
        raise StyleTransferError(f"--content-layer must be one layer name (got {content_layer!r})")
    check_layers(model, [content_layer])
    check_style_layers(model, style_layers)
    normalized_layer_weights(style_layers, style_layer_weights)
    check_weights(weights)


def check_iterations(iterations) -> None:
    """--iterations: a whole number, or a list of them, one per level."""
    if isinstance(iterations, (list, tuple)) or (isinstance(iterations, np.ndarray) and iterations.ndim == 1):
        if len(iterations) == 0:
            raise StyleTransferError("--iterations is an empty list: give a count, or one per level")
        for count in iterations:
            number_setting("iterations", count, whole=True)
    else:
        number_setting("iterations", iterations, whole=True)


def image_list(images, dimensions: int = 3) -> list:
    """Images of ``dimensions`` axes ((H, W, 3); masks (H, W): 2) given as one image (an array,
    a tensor or nested lists; a file name, to be refused by check_pixels with a hint), a
    stack of them (one axis more) or a list, as a list."""
    if images is None:
        return []
    if isinstance(images, FILE_NAME_TYPES):
        return [images]
    if not hasattr(images, "shape"):  # a list: of images, or one image as nested lists of numbers
        items = list(images)
        if not items or hasattr(items[0], "shape") or isinstance(items[0], FILE_NAME_TYPES):
            return items  # of arrays or names: a list of images ([greyscale] is one, to be refused)
        try:
            as_array = np.asarray(items)
        except ValueError:  # images of different sizes
            return items
        return [images] if as_array.dtype != object and as_array.ndim == dimensions else items
    return list(images) if len(images.shape) == dimensions + 1 else [images]


def check_styles(count: int, blend_weights, masks) -> None:
    """At least one style image, and one blend weight and one mask (if any) per style image."""
    if count == 0:
        raise StyleTransferError("no style image given")
    normalized_blend_weights(count, blend_weights)
    if masks is not None and len(masks) != count:
        raise StyleTransferError(f"{counted(len(masks), 'style mask')} given for {counted(count, 'style image')}")


def check_batch(contents: list) -> None:
    """The content images of a batch: at least one, all of one size, big enough for VGG."""
    if not contents:
        raise StyleTransferError("no content image given")
    height, width = contents[0].shape[:2]
    check_short_side("the content image", width, height)
    shapes = {content.shape[:2] for content in contents}
    if len(shapes) > 1:
        raise StyleTransferError(f"the content images of one batch must have one size (got "
                                 f"{', '.join(f'{w}x{h}' for h, w in sorted(shapes))})")


def color_controlled(content: np.ndarray, styles: list, preserve_colors: str) -> tuple:
    """The content and style images the optimization sees under --preserve-colors."""
    if preserve_colors == "histogram":
        return content, [match_color_histogram(style, content) for style in styles]
    if preserve_colors == "luminance":
        return luminance_image(content), [luminance_image(style, like=content) for style in styles]
    return content, styles


def level_problem(extractor: keras.Model, inputs: list, long_side: int, previous: list | None, *,
                  init: str, seed: int, style_scale: float, style_masks: list | None,
                  loss_settings: dict) -> tuple[BatchObjective, np.ndarray]:
    """One level of coarse to fine: the objective of every image of the batch at
    ``long_side``, and the images it starts from (``init`` at the first level,
    the ``previous`` level's results upsampled after it)."""
    level_contents = [resize_long(content, long_side) for content, _ in inputs]
    shape = level_contents[0].shape[:2]
    masks = black = None
    if style_masks is not None:
        masks = [resize_image(np.asarray(mask, np.float32)[..., None], shape)[..., 0] for mask in style_masks]
        black = [is_black(mask) for mask in style_masks]  # at full size, for every level alike
    objectives, starts = [], []
    shared = {}  # the styles of several contents (the same arrays) are resized and passed through VGG once
    for index, (content, (_, styles)) in enumerate(zip(level_contents, inputs)):
        key = tuple(id(style) for style in styles)
        if key not in shared:
            # Departure from --style-scale: a style is never shrunk below MIN_SIZE px on its short
            # side (VGG's deepest blocks need that much), so at coarse levels and small style
            # scales its strokes can come out larger than asked.
            level_styles = [resize_long(style, max(round(long_side * style_scale), smallest_long_side(style.shape)))
                            for style in styles]
            shared[key] = level_styles, style_targets(extractor, level_styles, loss_settings["style_layers"])
        styles, targets = shared[key]
        objectives.append(build_objective(extractor, content, styles, masks=masks, targets=targets, black=black,
                                          **loss_settings))
        starts.append(initial_image(content, styles, init, seed, objectives[-1].blend_weights)
                      if previous is None else resize_image(previous[index], shape))
    return BatchObjective(objectives), np.stack(starts)


@dataclass
class LevelRecorder:
    """The optimizer's ``report`` at one level: each measurement goes into every
    image's history (and frames), the lowest-loss image of each is kept, and the
    callback hears of it. Returns False when the run must stop."""

    results: list  # one StylizeResult per image of the batch
    originals: list  # the content images as given (for showing luminance-mode images)
    present: Callable[[np.ndarray, np.ndarray], np.ndarray]
    level: int
    levels: int
    shape: tuple
    iterations_before: int  # iterations of the earlier levels
    total_iterations: int
    start: float  # perf_counter() at the start of the run
    save_every: int
    callback: Callable[[Progress], bool | None] | None
    keep_frames: bool = True  # all the frames, or only the latest
    best: list = field(default_factory=list)  # per image: (lowest loss, stack measured in, index there)

    def images(self) -> list:
        """The lowest-loss image of each content at this level, clipped to [0, 1]."""
        return [np.clip(np.asarray(stack)[index], PIXEL_MIN, PIXEL_MAX) for _, stack, index in self.best]

    def stop(self, reason: str) -> bool:
        for result in self.results:
            result.stopped_early = result.stopped_early or reason
        return False

    def record(self, index: int, result: StylizeResult, step: int, losses: np.ndarray, elapsed: float,
               evaluations: int, pixels: tf.Tensor, frames: np.ndarray | None) -> None:
        """One image's measurement (``losses``: its column of the batch's): into its history,
        its best image so far, and its frames."""
        terms = dict(zip(LOSS_TERMS, losses.tolist()))
        result.history.append({"iteration": step, "level": self.level, "height": self.shape[0],
                               "width": self.shape[1], "evaluations": evaluations, **terms,
                               "seconds": round(elapsed, 4)})
        if not np.isfinite(terms["total"]):
            result.stopped_early = f"the loss (or its gradient) became {terms['total']} at iteration {step}"
            result.non_finite = True
        elif terms["total"] < self.best[index][0]:
            self.best[index] = (terms["total"], pixels, index)
        if frames is not None:
            if not self.keep_frames:
                result.frames.clear()
            result.frames.append(self.present(frames[index], self.originals[index]))

    def __call__(self, iteration: int, pixels: tf.Tensor, losses: tf.Tensor, evaluations: int) -> bool:
        losses = np.asarray(losses, dtype=np.float64)  # (terms, batch): one copy to the host
        elapsed = time.perf_counter() - self.start
        step = self.iterations_before + iteration
        frames = np.asarray(pixels) if self.save_every and (
            step % self.save_every == 0 or step == self.total_iterations) else None
        with interrupt_deferred():  # a Ctrl-C here would leave the images of a batch recorded unevenly
            for index, result in enumerate(self.results):
                self.record(index, result, step, losses[:, index], elapsed, evaluations, pixels, frames)
        if any(result.non_finite for result in self.results):
            return self.stop("another image of its batch had a non-finite loss")
        summed = dict(zip(LOSS_TERMS, losses.sum(axis=1).tolist()))
        frame = None if frames is None else self.results[0].frames[-1]
        progress = Progress(step, self.total_iterations, summed, elapsed, level=self.level, frame=frame,
                            levels=self.levels)
        answer = None if self.callback is None else self.callback(progress)
        # False or NumPy's False; not any false value (a 0 from os.system would stop the run).
        if answer is False or (isinstance(answer, np.bool_) and not answer):
            return self.stop("stopped by the callback")
        return True


def optimize_level(objective: BatchObjective, start_images: np.ndarray, iterations: int, record: LevelRecorder, *,
                   optimizer: str, learning_rate: float, precondition: Callable | None, overlap: bool) -> None:
    """Optimize one level's images from ``start_images`` with ``optimizer``, reporting
    each iteration to ``record``, which keeps the best images. Ctrl-C ends the level
    (and the run) with the best images so far; an L-BFGS run that ends before
    ``iterations`` leaves a note saying why."""
    try:
        if optimizer == "adam":
            adam_optimize(objective, start_images, iterations, learning_rate, record, overlap=overlap)
            return
        ended = lbfgs_optimize(objective, start_images, iterations, record, precondition=precondition)
        results = record.results
        reported = sum(1 for row in results[0].history if row["level"] == record.level)
        if not results[0].stopped_early and reported < iterations:
            # Counted from 1, as the progress bar counts levels (the trace's "level" from 0).
            level = f"level {record.level + 1}/{record.levels}: " if record.levels > 1 else ""
            for result in results:
                result.notes.append(f"{level}L-BFGS ended after {reported} of {iterations} iterations: {ended}")
    except KeyboardInterrupt:
        record.stop(INTERRUPTED)


def stylize(content_image: np.ndarray, style_images: np.ndarray | list, **settings) -> StylizeResult:
    """Stylize one content image: stylize_batch() with a batch of one (same keyword arguments)."""
    return stylize_batch([content_image], style_images, **settings)[0]


def stylize_batch(
    content_images: list,
    style_images: np.ndarray | list,
    *,
    iterations: int | list = DEFAULT_ITERATIONS,
    scales: int | str = DEFAULT_SCALES,
    optimizer: str = DEFAULT_OPTIMIZER,
    preconditioner: str = DEFAULT_PRECONDITIONER,
    init: str = DEFAULT_INIT,
    content_weight: float = CONTENT_WEIGHT,
    style_weight: float = STYLE_WEIGHT,
    tv_weight: float = TV_WEIGHT,
    content_layer: str = CONTENT_LAYER,
    style_layers: tuple | list = STYLE_LAYERS,
    style_layer_weights: list | None = None,
    style_blend_weights: list | None = None,
    style_masks: list | None = None,
    style_scale: float = DEFAULT_STYLE_SCALE,
    preserve_colors: str = DEFAULT_PRESERVE_COLORS,
    model: str = DEFAULT_MODEL,
    weights: str | None = DEFAULT_WEIGHTS,
    precision: str = DEFAULT_PRECISION,
    learning_rate: float = ADAM_LEARNING_RATE,
    seed: int = DEFAULT_SEED,
    save_every: int = DEFAULT_SAVE_EVERY,
    device: str = DEFAULT_DEVICE,
    callback: Callable[[Progress], bool | None] | None = None,
    keep_frames: bool = True,
) -> list[StylizeResult]:
    """For each of ``content_images`` ((H, W, 3) floats in [0, 1], all of one size),
    optimize an image whose VGG features match it and whose Gram matrices match
    ``style_images`` (one or a list). Returns one StylizeResult per content image.

    The images of a batch are optimized together, one forward pass per step for
    all of them (meant for a GPU: on the 2-core CPU it measured slower per
    image). Each keeps its own loss: with Adam every result is the one it would
    get alone (unless another image's loss stops being finite, which stops the
    whole batch); with L-BFGS they share the line search.

    ``seed`` draws the start for ``init`` 'noise' and the weights for ``weights=None``; the
    other starts do not depend on it.

    The output has the content image's size. With ``scales`` > 1 it is first
    optimized small and then upsampled level by level (coarse to fine; 'auto'
    does so from MULTISCALE_FROM px on); ``iterations`` is the last level's
    count (the coarser levels get COARSE_ITERATIONS, or that count if smaller) or a list, one per level. Style images
    are resized to ``style_scale`` times each level's long side; with
    ``style_masks`` ((H, W) arrays in [0, 1], one per style) each style
    applies only where its mask is white. ``preserve_colors`` keeps the
    photo's colours: 'luminance' transfers style on the luminance only,
    'histogram' first gives the style images the photo's colour statistics.

    With L-BFGS, ``preconditioner`` 'fourier' (fourier_preconditioner) or
    'pyramid' (pyramid_preconditioner) lets every step move the image's
    large-scale structure too; 'none' is plain L-BFGS.

    Each result is the image with the lowest loss measured at the last level
    reached. ``callback`` receives a Progress (losses summed over the batch)
    after every iteration and may return False to stop; ``save_every`` > 0
    takes a frame of each image every that many iterations, which the callback
    gets (the first image's) and each result keeps in ``frames``, or with
    ``keep_frames`` False only the latest (for no animation: at 2048 px each
    frame is 33 MB, the 21 of a one-level 200-iteration run 0.7 GB). The run stops
    early, keeping the best images so far, on Ctrl-C (``stopped_early ==
    "interrupted"``) or a non-finite loss.
    """
    if hasattr(content_images, "shape") and len(content_images.shape) == 3:
        raise StyleTransferError("content_images is one image: give a list of them, or call stylize()")
    contents, styles = image_list(content_images), image_list(style_images)
    style_masks = None if style_masks is None else image_list(style_masks, dimensions=2)
    check_settings(iterations=iterations, scales=scales, optimizer=optimizer, preconditioner=preconditioner,
                   init=init, content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                   content_layer=content_layer, style_layers=style_layers,
                   style_layer_weights=style_layer_weights, style_blend_weights=style_blend_weights,
                   style_masks=style_masks, style_scale=style_scale, preserve_colors=preserve_colors,
                   model=model, weights=weights, precision=precision, learning_rate=learning_rate,
                   seed=seed, save_every=save_every, device=device)
    check_styles(len(styles), style_blend_weights, style_masks)
    # Python's own numbers from here on (NumPy's, Fractions), as Keras and TensorFlow take them.
    content_weight, style_weight, tv_weight, learning_rate, style_scale = (
        float(value) for value in (content_weight, style_weight, tv_weight, learning_rate, style_scale))
    seed, save_every = int(seed), int(save_every)
    for kind, images, rgb in (("content image", contents, True), ("style image", styles, True),
                              ("style mask", style_masks or [], False)):
        for number, image in enumerate(images, start=1):
            check_pixels(image, f"the {kind}" if len(images) == 1 else f"{kind} {number}", rgb)
    # Lists of lists, tensors, float16 or float64 arrays: from here on, float32 arrays.
    contents, styles = [np.asarray(image, np.float32) for image in contents], \
        [np.asarray(image, np.float32) for image in styles]
    if style_masks is not None:
        style_masks = [np.asarray(mask, np.float32) for mask in style_masks]
        # Refused here, before the network loads, as well as in build_objective.
        used_blend_weights(len(styles), style_blend_weights, style_masks)
    check_batch(contents)
    height, width = contents[0].shape[:2]
    scales = resolve_scales(scales, max(height, width), iterations, smallest_long_side((height, width)))
    counts = level_iterations(iterations, scales)
    # Reproducible: same seed, same machine -> same pixels. Op determinism stays on for the
    # process (TensorFlow cannot turn it off again); on a CPU it costs nothing measurable.
    tf.config.experimental.enable_op_determinism()
    device_name = resolve_device(device)
    precision = resolve_precision(precision, device_name)

    # Colour control happens on the inputs; the optimization itself is unchanged.
    inputs = [color_controlled(content, styles, preserve_colors) for content in contents]

    def present(image: np.ndarray, original: np.ndarray) -> np.ndarray:
        """What the user sees of a working image (colour put back in luminance mode)."""
        image = np.clip(image, PIXEL_MIN, PIXEL_MAX)
        return recombine_luminance(image, original) if preserve_colors == "luminance" else image

    results = [StylizeResult(image=present(working, original), device=device_name, precision=precision)
               for (working, _), original in zip(inputs, contents)]
    total_iterations = sum(counts)
    done = 0
    start = time.perf_counter()

    loss_settings = dict(content_layer=content_layer, style_layers=style_layers,
                         style_layer_weights=style_layer_weights, blend_weights=style_blend_weights,
                         content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight)
    precondition = PRECONDITIONERS[preconditioner]
    with tf.device(device_name):
        with seeded(seed):  # random weights (weights=None) are drawn from the seed too
            extractor = build_vgg(model, [content_layer, *style_layers], weights, precision)
        images = None  # the best image of each content so far, carried from level to level
        sizes = level_sizes(max(height, width), scales, floor=smallest_long_side((height, width)))
        for level, (long_side, count) in enumerate(zip(sizes, counts)):
            try:  # the next level's targets: seconds at a large size
                objective, start_images = level_problem(
                    extractor, inputs, long_side, images, init=init, seed=seed, style_scale=style_scale,
                    style_masks=style_masks, loss_settings=loss_settings)
            except KeyboardInterrupt:
                if images is None:  # no level done: nothing to keep
                    raise
                for result in results:  # the levels done are kept, as a Ctrl-C inside a level keeps them
                    result.stopped_early = INTERRUPTED
                break
            for result, start_image, original, used in zip(results, start_images, contents, objective.objectives):
                result.sizes.append(start_image.shape[:2])
                result.blend_weights.append(used.blend_weights)
                if save_every and level == 0:
                    result.frames.append(present(start_image, original))
            record = LevelRecorder(results=results, originals=contents, present=present, level=level,
                                   levels=scales, shape=start_images.shape[1:3], iterations_before=done,
                                   total_iterations=total_iterations, start=start, save_every=save_every,
                                   keep_frames=keep_frames, callback=callback,
                                   best=[(np.inf, start_images, index) for index in range(len(contents))])
            optimize_level(objective, start_images, count, record, optimizer=optimizer,
                           learning_rate=learning_rate, precondition=precondition,
                           overlap=device_name.startswith("/GPU"))
            images = record.images()
            done += count
            if any(result.stopped_early for result in results):
                break
    # A run stopped at a coarse level still returns images of the requested size.
    for result, image, original in zip(results, images, contents):
        result.image = present(resize_image(image, (height, width)) if image.shape[:2] != (height, width)
                               else image, original)
    return results


# ---------------------------------------------------------------------------
# Device and memory: chosen and estimated before the run starts
# ---------------------------------------------------------------------------

#: Copies of each conv activation alive during one loss-and-gradient evaluation
#: (the forward outputs kept for the backward pass, and the backward's buffers).
#: Calibrated against measured peaks (benchmarks/benchmark.py --sections memory):
#: the estimate came out at 1.20-1.27 times the peak measured at 512-2048 px, float32
#: and mixed, a margin for the run-to-run spread of the peak (README: Memory has
#: the latest table).
ACTIVATION_COPIES = 2.25
#: Image-sized float32 vectors the optimizer keeps: L-BFGS its 2 x LBFGS_MEMORY_SIZE
#: remembered vectors and 8 to work with (points, gradients, direction); Adam 6.
OPTIMIZER_VECTORS = {"lbfgs": 2 * LBFGS_MEMORY_SIZE + 8, "adam": 6}


def estimate_memory(shape, *, model: str = DEFAULT_MODEL, optimizer: str = DEFAULT_OPTIMIZER,
                    precision: str = DEFAULT_PRECISION, content_layer: str = CONTENT_LAYER,
                    style_layers=STYLE_LAYERS, batch: int = 1) -> int:
    """Bytes the optimization at ``shape`` = (height, width) needs, from the sizes of VGG's
    activations (``batch`` images optimized together need that many of everything but
    TensorFlow itself)."""
    activations = activation_bytes(shape, model=model, precision=precision, layers=[content_layer, *style_layers],
                                   float32_layers=style_layers, copies=ACTIVATION_COPIES)
    optimizer_bytes = shape[0] * shape[1] * 3 * OPTIMIZER_VECTORS[optimizer] * FLOAT32_BYTES
    return int(BASELINE_BYTES + batch * (activations + optimizer_bytes))


def estimate_style_memory(shape, *, model: str = DEFAULT_MODEL, precision: str = DEFAULT_PRECISION,
                          content_layer: str = CONTENT_LAYER, style_layers=STYLE_LAYERS) -> int:
    """Bytes computing the targets of a style image of ``shape`` = (height, width) needs:
    one forward pass, before the optimization starts. At a --style-scale above about 1.4
    (1.2 with Adam; by these estimates, at any size) it needs more than the optimization does."""
    return forward_pass_memory(shape, model=model, precision=precision, layers=[content_layer, *style_layers],
                               float32_layers=style_layers)


class MemoryNeed(NamedTuple):
    """The two peaks of a run's memory, in bytes: the optimization's, and (earlier, once per
    level) that of computing the style targets (0 when no style shape was given); and
    whether the style that sets the second is already at its smallest (style_at_floor); and
    what the run would need with Adam instead of L-BFGS (None: Adam already, or not known)."""

    optimization: int
    style_targets: int
    style_at_floor: bool = False
    with_adam: int | None = None

    @property
    def total(self) -> int:
        """What the run needs: the larger of the two peaks."""
        return max(self.optimization, self.style_targets)

    @property
    def style_bound(self) -> bool:
        """Whether the style images, not the optimization, set the need (--style-scale)."""
        return self.style_targets > self.optimization


def settings_memory(shape, settings: dict, device_name: str, batch: int = 1, style_shapes=()) -> MemoryNeed:
    """The memory a run with these stylize() ``settings`` on ``device_name`` needs: the
    optimization at ``shape`` (estimate_memory), and the targets of the largest of the
    styles at ``style_shapes``, the shapes they are loaded at (estimate_style_memory).
    That style is at its floor when its short side is held at MIN_SIZE px (a thin strip,
    say): then a smaller --style-scale would not shrink it (one pixel over MIN_SIZE counts
    too, from rounding the long side)."""
    network = dict(model=settings["model"], precision=resolve_precision(settings["precision"], device_name),
                   content_layer=settings["content_layer"], style_layers=settings["style_layers"])
    style_need, largest = max(((estimate_style_memory(style_shape, **network), tuple(style_shape[:2]))
                               for style_shape in style_shapes), default=(0, None))
    with_adam = None if settings["optimizer"] == "adam" else \
        max(estimate_memory(shape, optimizer="adam", batch=batch, **network), style_need)
    return MemoryNeed(estimate_memory(shape, optimizer=settings["optimizer"], batch=batch, **network),
                      style_need, largest is not None and min(largest) <= MIN_SIZE + 1, with_adam)


def memory_advice(settings: dict, device_name: str, need: MemoryNeed | None = None,
                  available: int | None = None) -> str:
    """What would make a run with these stylize() ``settings`` need less memory: among the
    flags it does not use already, --style-scale first when the styles set the ``need`` (and
    a lower one would shrink them), --size and --precision mixed, and --optimizer adam when
    the optimization sets it, or would not fit in ``available`` bytes either; but not Adam
    where the run would not fit with it either (MemoryNeed.with_adam)."""
    style_bound = need is not None and need.style_bound
    optimization_too_large = not style_bound or (available is not None and need.optimization > available)
    adam_fits = available is None or need is None or need.with_adam is None or need.with_adam <= available
    scale_shrinks = style_bound and settings["style_scale"] > MIN_STYLE_SCALE and not need.style_at_floor
    fixes = ["a smaller --style-scale"] if scale_shrinks else []
    fixes.append("a smaller --size")
    if resolve_precision(settings["precision"], device_name) == "float32":
        fixes.append("--precision mixed")
    if settings["optimizer"] != "adam" and optimization_too_large and adam_fits:
        fixes.append("--optimizer adam")
    *others, last = fixes
    return f"use {', '.join(others)} or {last}" if others else f"use {last}"


def check_memory(need: MemoryNeed, settings: dict, device_name: str) -> None:
    """Refuse a CPU run that clearly cannot fit, with the fix."""
    available = available_memory()
    if device_name.startswith("/CPU") and available is not None and need.total > available:
        raise not_enough_memory("this run", need.total, available,
                                memory_advice(settings, device_name, need, available))


def keep_off_the_gpus() -> None:
    """--device cpu on a machine with a GPU: the GPUs hidden from TensorFlow for the rest of
    the process. Else the work outside the optimization's device scope (checking the network,
    resizing, GIF frames, thumbnails) would go to the first GPU, and TensorFlow would reserve
    nearly all its memory, which another job may be using. The command line's alone: from
    Python it would hide the GPUs from the caller's later work too. Once TensorFlow has set up
    a GPU (main() called twice in one process) they can no longer be hidden: left as they are."""
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # "Visible devices cannot be modified after being initialized"
        pass


def resolve_device(device: str) -> str:
    """'auto' | 'cpu' | 'gpu' -> a TensorFlow device name."""
    check_choice("device", device, DEVICES)
    if device == "cpu":
        return "/CPU:0"
    found = default_device()
    if device == "gpu" and not found.startswith("/GPU"):
        raise StyleTransferError("--device gpu: TensorFlow sees no GPU on this machine; use --device cpu")
    return found


# ---------------------------------------------------------------------------
# Pictures and files
# ---------------------------------------------------------------------------


#: A content this many times wider than tall (a panorama) is drawn above the style and the
#: result, not beside them: side by side it was a thin strip in a picture mostly empty.
PANEL_STACK_ASPECT = 2.0
#: Inches: the side of an image's cell side by side, and the width of the stacked panel.
PANEL_CELL, PANEL_STACKED_WIDTH = 4.0, 8.0
#: Inches above each image for its name (and above them all, the figure's title).
PANEL_TITLE_ROOM = 0.4
#: Side by side, a cell is at most this many times as tall as wide (a tall painting is drawn
#: narrower in it).
PANEL_CELL_TALLEST = 1.5
#: Opacity of a style the run switched off (all-black mask, blend weight 0) in the panel.
PANEL_FADED_ALPHA = 0.3


def plot_panel(content: np.ndarray, styles: list, result: np.ndarray, title: str = "",
               applied: list[bool] | None = None):
    """content | style(s) | result, side by side; one above another for a panorama.
    ``applied``: whether each style was (None: all were); one switched off (an all-black
    mask, blend weight 0) is drawn faded and named so, as it is not in the result."""
    images = [content, *styles, result]
    names = ["content", *(["style"] if len(styles) == 1 else [f"style {i + 1}" for i in range(len(styles))]),
             "result"]
    faded = [False, *(not on for on in applied or [True] * len(styles)), False]
    names = [f"{name}: not applied" if off else name for name, off in zip(names, faded)]
    if content.shape[1] > PANEL_STACK_ASPECT * content.shape[0]:
        # Each row as tall as its image at the panel's width; a painting taller than wide no
        # more than square (it is drawn narrower, in the middle).
        heights = [PANEL_STACKED_WIDTH * min(image.shape[0] / image.shape[1], 1.0) for image in images]
        figure = new_figure(figsize=(PANEL_STACKED_WIDTH, sum(heights) + PANEL_TITLE_ROOM * (len(images) + 1)),
                            layout="constrained")
        axes = figure.subplots(len(images), 1, height_ratios=heights)
    else:
        # As tall as the tallest image at the cell's width (no taller than PANEL_CELL_TALLEST
        # cells): square cells left a band of empty space above and below landscape images.
        height = PANEL_CELL * min(max(image.shape[0] / image.shape[1] for image in images), PANEL_CELL_TALLEST)
        figure = new_figure(figsize=(PANEL_CELL * len(images), height + PANEL_TITLE_ROOM * 2), layout="constrained")
        axes = figure.subplots(1, len(images))
    for axis, image, name, off in zip(axes, images, names, faded):
        axis.imshow(np.clip(image, PIXEL_MIN, PIXEL_MAX), alpha=PANEL_FADED_ALPHA if off else None)
        axis.set_title(name, **({"color": "grey"} if off else {}))
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=11, parse_math=False)  # file names, as written (new_figure)
    return figure


def plot_losses(history: list, title: str = ""):
    """The weighted loss terms per iteration, on a log scale; levels are marked."""
    figure = new_figure(figsize=(7, 4.5))
    axis = figure.subplots()
    iterations = [row["iteration"] for row in history]
    for name in LOSS_TERMS:
        if history and not any(row[name] for row in history):  # its weight 0 (--tv-weight 0, say)
            # Drawn at LOG_PLOT_FLOOR it stretched the axis over 20 decades: named in the legend only.
            axis.plot([], [], " ", label=f"{name}: 0 throughout")
            continue
        values = [max(row[name], LOG_PLOT_FLOOR) for row in history]  # a log axis cannot show 0
        axis.plot(iterations, values, label=name, linewidth=2 if name == "total" else 1)
    starts = [row["iteration"] for previous, row in zip(history, history[1:]) if row["level"] != previous["level"]]
    for start in starts:  # a new, larger level; named once in the legend
        axis.axvline(start, color="grey", linestyle=":", linewidth=1,
                     label="next level (larger)" if start == starts[0] else None)
    axis.set_yscale("log")
    axis.xaxis.get_major_locator().set_params(integer=True)  # iterations are whole: no tick at 1.5
    axis.set_xlabel("iteration")
    axis.set_ylabel("weighted loss")
    axis.set_title(title or "losses", parse_math=False)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    return figure


def show_in_cell(axis, cell: np.ndarray | str) -> None:
    """Draw an image in a grid cell, or the text that stands in for a missing one."""
    if isinstance(cell, np.ndarray):
        axis.imshow(np.clip(cell, PIXEL_MIN, PIXEL_MAX))
    else:
        axis.text(0.5, 0.5, cell, ha="center", va="center", color="grey", transform=axis.transAxes,
                  parse_math=False)


def sheet_title(name: str) -> str:
    """An image's name as the contact sheet shows it: wrapped to a cell's width, at spaces
    where it can, and cut short with '…' past SHEET_TITLE_LINES lines."""
    lines = textwrap.wrap(name, SHEET_TITLE_CHARACTERS) or [name]
    if len(lines) > SHEET_TITLE_LINES:  # textwrap's own max_lines drops a long word's rest whole
        *kept, last = lines[:SHEET_TITLE_LINES]
        lines = [*kept, last[:SHEET_TITLE_CHARACTERS - 1] + "…"]
    return "\n".join(lines)


def plot_contact_sheet(rows: list, columns: list, cells: list):
    """A grid: the style images along the top, the content images down the left,
    each result where its content's row meets its style's column.

    ``rows`` and ``columns`` are (name, image or text) pairs, ``cells[row][column]``
    an image or text ('failed'); text is shown where an image is missing.
    """
    # Rows as tall as a typical image is at the cell width, so landscape
    # photos do not leave wide gaps between the rows.
    images = [item for item in [image for _, image in rows + columns] + [cell for row in cells for cell in row]
              if isinstance(item, np.ndarray)]
    aspect = float(np.median([image.shape[0] / image.shape[1] for image in images])) if images else 1.0
    figure = new_figure(figsize=(SHEET_CELL_INCHES * (len(columns) + 1),
                                 (SHEET_CELL_INCHES * aspect + SHEET_TITLE_INCHES) * (len(rows) + 1)))
    axes = figure.subplots(len(rows) + 1, len(columns) + 1, squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    show_in_cell(axes[0, 0], "content ↓   style →")
    for column, (name, image) in enumerate(columns, start=1):
        show_in_cell(axes[0, column], image)
        axes[0, column].set_title(sheet_title(name), fontsize=9, parse_math=False)
    for row, (name, image) in enumerate(rows, start=1):
        show_in_cell(axes[row, 0], image)
        axes[row, 0].set_title(sheet_title(name), fontsize=9, parse_math=False)
        for column, cell in enumerate(cells[row - 1], start=1):
            show_in_cell(axes[row, column], cell)
    return figure


def save_gif(frames: list, result: np.ndarray, path: Path, duration_ms: int = GIF_FRAME_MS, comment: str = "") -> Path:
    """An animated GIF of the frames, then the ``result`` where the last frame is not it (the
    lowest loss can come before the last iteration, or between frames: L-BFGS ending early,
    a Ctrl-C), all at the result's size, the result held longer; ``comment``, the command
    that made it, marks it as a run's (made_by_a_run)."""
    if not (frames and np.array_equal(frames[-1], result)):
        frames = [*frames, result]
    shape = result.shape[:2]
    images = [to_pil(resize_image(frame, shape)) for frame in frames]
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * GIF_LAST_FRAME_HOLD]
    return atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0, comment=comment))


def gif_comment(trace: dict) -> str:
    """A run's GIF comment: its command, and the result it animates (made_by_a_run)."""
    return f"{trace['command']}\n{GIF_IMAGE_LINE}{trace['image']}"


def made_by_a_run(gif: Path) -> bool:
    """Whether ``gif`` is the animation of a run of this script that wrote its result beside
    it (gif_comment names the script and that result): a later run under the same name that
    makes no GIF removes it, since it shows another result, but leaves alone a file of the
    user's that has the name, as any file that is not a run's, and a run's GIF copied or
    renamed by the user (its comment names another result). GIFs written before the result
    was named (2026-11-24) count as the user's."""
    try:
        with image_file(gif) as image:
            comment = image.info.get("comment", b"") if image.format == "GIF" else b""
    except (StyleTransferError, OSError):  # none there, not an image, or a name too long (check_name_lengths)
        return False
    text = comment.decode(errors="replace")
    animated = [line.removeprefix(GIF_IMAGE_LINE) for line in text.splitlines() if line.startswith(GIF_IMAGE_LINE)]
    return SCRIPT_NAME in text and any(
        Path(name).stem == gif.stem and Path(name).suffix.lower() in OUTPUT_SUFFIXES for name in animated)


#: Said of a skipped pair's GIF that --gif asks for: the frames are not kept with the result.
NO_GIF_WITHOUT_A_RUN = "only a new run makes one (--overwrite)"


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


def run_files(image_path: Path, gif: bool) -> list[Path]:
    """The files a run writing ``image_path`` writes or replaces (output_paths): the GIF's
    name only with ``gif`` or where a run made the GIF there (made_by_a_run), which a run
    without ``gif`` removes. A user's own file of that name is none of the run's business."""
    paths = output_paths(image_path)
    return [path for name, path in paths.items() if name != "gif" or gif or made_by_a_run(path)]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def comma_floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def levels_text(iterations, scales: int, size: int, floor: int = MIN_SIZE) -> str:
    """'200 iterations', or with levels '20 + 20 + 200 iterations at 256 / 512 / 1024 px'."""
    counts = level_iterations(iterations, scales)
    if scales == 1:
        return counted(counts[0], "iteration")
    return (f"{' + '.join(map(str, counts))} iterations at "
            f"{' / '.join(map(str, level_sizes(size, scales, floor=floor)))} px")


def batch_levels_text(iterations, scales: int | str, shapes: list) -> str:
    """levels_text for a batch's content images of these (height, width) ``shapes``: their
    level sizes, as each image gets them (a wide one starts larger), joined by 'or' where they differ."""
    texts = {}
    for shape in shapes:
        size, floor = max(shape), smallest_long_side(shape)
        texts.setdefault(levels_text(iterations, resolve_scales(scales, size, iterations, floor), size, floor))
    return " or ".join(texts)


def auto_or_whole_number(text: str, minimum: int | None = None) -> str | int:
    """'auto', or a whole number (at least ``minimum`` when given), for argparse."""
    if text == AUTO:
        return AUTO
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or (minimum is not None and value < minimum):
        at_least = "" if minimum is None else f" of at least {minimum}"
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number{at_least}, got {text!r}")
    return value


def scales_argument(text: str) -> str | int:
    """--scales: 'auto' or a whole number (its range is checked with the other settings)."""
    return auto_or_whole_number(text)


def batch_size_argument(text: str) -> str | int:
    """--batch-size: 'auto' or a positive whole number."""
    return auto_or_whole_number(text, minimum=1)


def iteration_counts(text: str) -> int | list[int]:
    """'150' (the last level's; level_iterations gives the coarser ones theirs) or '300,100'
    (one per level)."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or a comma-separated list, got {text!r}")
    return counts[0] if len(counts) == 1 else counts


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=SCRIPT_NAME,  # as run from the command line, from Python too
        description="Neural style transfer (Gatys et al. 2015): repaint CONTENT in the style of STYLE "
                    "(several styles are blended). Images may be files or http(s) URLs (downloaded "
                    "once into the Keras cache). With --contents and --styles: every content with "
                    f"every style. Exit status: 0 done, {EXIT_FAILED} stopped (non-finite loss), a file could "
                    f"not be written or, in batch mode, some pair failed, {EXIT_USAGE} bad input (an output "
                    "found unwritable before the run starts, and settings that need more memory than there "
                    "is, included), "
                    f"{EXIT_INTERRUPTED} interrupted.")
    # No defaults here: None and [] say "not given" (the samples are filled in by run), so
    # batch mode can tell that nothing was typed, and an error can tell that a list flag
    # took the images typed after it (swallowed_images_hint).
    parser.add_argument("content", nargs="?", help="content photo (file or URL; default: the sample "
                                                   f"{relative_to_project(SAMPLE_CONTENT)})")
    parser.add_argument("styles", nargs="*", metavar="style",
                        help="style painting(s) (files or URLs; default: the sample "
                             f"{relative_to_project(SAMPLE_STYLE)})")

    batch = parser.add_argument_group(
        "batch mode", "every content with every style, each pair written to the -o folder as "
                      "CONTENT_STYLE.png (panel, loss curve and trace beside it), and a contact sheet "
                      f"{CONTACT_SHEET_NAME} there; pairs already done are skipped unless --overwrite")
    batch.add_argument("--contents", dest="batch_contents", nargs="+", action=JoinedLists,
                       metavar="DIR_OR_FILE",
                       help="content photos: folders (the image files in them, not in subfolders), files "
                            "(a shell pattern such as photos/*.jpg, unquoted, lists them) or URLs")
    batch.add_argument("--styles", dest="batch_styles", nargs="+", action=JoinedLists,
                       metavar="DIR_OR_FILE",
                       help="style paintings: folders, files or URLs, as --contents")
    batch.add_argument("--batch-size", type=batch_size_argument, default=AUTO, metavar="N",
                       help="contents sharing a style and a size optimized together, at most N at "
                            "a time (one forward pass for all; less if memory is short). auto: "
                            f"{AUTO_BATCH_SIZE['gpu']} on a GPU, {AUTO_BATCH_SIZE['cpu']} on a CPU, "
                            "where batching measured no faster")

    out = add_output_arguments(parser, "result image, .png or .jpg (.jpeg), with its panel, loss curve, JSON "
                                       "trace (and with --gif, GIF) written beside it (default: under "
                                       "results/, named after the inputs, numbered so nothing is replaced; "
                                       "with --overwrite, unnumbered); in batch mode, the output folder "
                                       f"(default: {RESULTS_DIR}/)")
    out.add_argument("--save-every", type=int, default=DEFAULT_SAVE_EVERY,
                     help="every N iterations take a GIF frame and, in a single run, save the "
                          "current image to the output path (0: never)")
    out.add_argument("--gif", action="store_true",
                     help="also write an animated GIF of the optimization, from the --save-every frames")

    add_image_arguments(parser, DEFAULT_SIZE)
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--iterations", type=iteration_counts, default=DEFAULT_ITERATIONS,
                     help="optimizer iterations at full size (coarser levels get at most "
                          f"{COARSE_ITERATIONS}), or one count per level: 50,50,200")
    opt.add_argument("--scales", type=scales_argument, default=DEFAULT_SCALES,
                     help=f"coarse-to-fine levels (1 to {MAX_SCALES}), from a long side of {MULTISCALE_START} "
                          "px (or half of --size, when that is smaller) up to --size (1: single scale; "
                          f"auto: one per count in --iterations, else 1 below {MULTISCALE_FROM} px and one "
                          f"per doubling from {MULTISCALE_START} px above, rounded: 1449 px gets 4)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT_OPTIMIZER,
                     help="lbfgs: L-BFGS kept in [0, 1] (as Gatys et al.); adam: TensorFlow Adam")
    opt.add_argument("--preconditioner", choices=PRECONDITIONERS, default=DEFAULT_PRECONDITIONER,
                     help="L-BFGS's starting inverse Hessian. fourier: each step moves coarse "
                          f"patterns more, the gradient's spectrum scaled by ({FOURIER_REFERENCE} / "
                          f"frequency) ** {FOURIER_EXPONENT}; "
                          "pyramid: each step also moves the gradient's 2x2, 4x4, ... block averages; "
                          "both reach a given loss in far fewer iterations than plain L-BFGS (README: "
                          "Performance); none: plain L-BFGS, as Gatys et al.")
    opt.add_argument("--learning-rate", type=float, default=ADAM_LEARNING_RATE, help="Adam step size (above 0)")
    opt.add_argument("--init", choices=INITS, default=DEFAULT_INIT,
                     help="starting image: 'palette' the photo with its colours moved halfway to the "
                          "painting's (colour mean and covariance; measured to need about 9%% fewer "
                          "iterations than 'content'), 'content' the photo, 'style' the painting (of several, "
                          "the one of the largest blend weight) resized to the photo's shape, "
                          "'noise' seeded noise (as Gatys et al.)")
    opt.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (noise init, TensorFlow)")
    opt.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE,
                     help="where TensorFlow runs: auto (the GPU if TensorFlow sees one, else the CPU), cpu "
                          "(the GPUs hidden from TensorFlow, their memory left alone) or gpu")

    loss = parser.add_argument_group("loss")
    loss.add_argument("--content-weight", type=float, default=CONTENT_WEIGHT, help="content loss weight")
    loss.add_argument("--style-weight", type=float, default=STYLE_WEIGHT, help="style loss weight")
    loss.add_argument("--tv-weight", type=float, default=TV_WEIGHT, help="total variation weight")
    loss.add_argument("--content-layer", default=CONTENT_LAYER, help="VGG layer for content")
    loss.add_argument("--style-layers", nargs="+", action=JoinedLists, default=list(STYLE_LAYERS),
                      help="VGG layers for style")
    loss.add_argument("--style-layer-weights", type=comma_floats, default=None,
                      help="comma-separated weight per style layer (normalised; default equal)")

    control = parser.add_argument_group("style controls (Gatys et al. 2017)")
    control.add_argument("--style-blend-weights", type=comma_floats, default=None,
                         help="comma-separated weight per style image (normalised; default equal)")
    control.add_argument("--style-scale", type=float, default=DEFAULT_STYLE_SCALE,
                         help=f"style image size relative to the output ({MIN_STYLE_SCALE} to "
                              f"{MAX_STYLE_SCALE}): >1 bigger brush strokes, <1 smaller")
    control.add_argument("--style-masks", nargs="+", action=JoinedLists, default=None, metavar="MASK",
                         help="one greyscale mask per style image: white where that style applies "
                              "(colours are read as grey, transparency as black; any size: resized to the "
                              "photo, with a note if that stretches it)")
    control.add_argument("--preserve-colors", choices=COLOR_MODES, default=DEFAULT_PRESERVE_COLORS,
                         help="keep the photo's colours: none (the painting's colours, as the paper), luminance "
                              "(transfer on the luminance only), histogram (give the style image the photo's colour "
                              "mean and covariance first)")
    add_model_arguments(parser)
    return parser


CLEAR_LINE = "\x1b[K"  # ANSI: erase to the end of the line (a redrawn line may be shorter)


def terminal_room() -> int:
    """The characters a line drawn in place may have: the terminal's width less one column
    (a line that wraps is redrawn on its last screen row only, and each redraw left a stale
    row above it: an 80-column terminal, a 110-character bar)."""
    return shutil.get_terminal_size().columns - 1


def fit_to_terminal(text: str, keep: str = "") -> str:
    """``text``, then ``keep``, cut (from the end of ``text``) to terminal_room."""
    room = terminal_room() - len(keep)
    return (text if len(text) <= room else text[:max(room - 1, 0)] + "…") + keep


class Pace:
    """How fast a run is going, for a progress line: the iterations a second of the level
    running, counted from that level's first iteration, which is mostly TensorFlow tracing
    the step (a new size is a new trace) and would drag an average down; and the time left,
    counted on the last (or only) level, whose iterations are slower than the coarse
    levels'. note() every Progress of the run; rate() and time_left() say them."""

    def __init__(self):
        self.level_start = None  # (level, iteration, elapsed) at the running level's first iteration

    def note(self, progress: Progress) -> None:
        if self.level_start is None or self.level_start[0] != progress.level:
            self.level_start = (progress.level, progress.iteration, progress.elapsed)

    def rate(self, progress: Progress) -> float | None:
        """Iterations a second on ``progress``'s level since its first; None before its second."""
        if self.level_start is None or self.level_start[0] != progress.level:
            return None
        _, first_iteration, first_elapsed = self.level_start
        if progress.iteration - first_iteration < 1 or progress.elapsed <= first_elapsed:
            return None
        return (progress.iteration - first_iteration) / (progress.elapsed - first_elapsed)

    def time_left(self, progress: Progress) -> str:
        """', about 42s left'; '' before the last level's rate is known, and at the end."""
        rate = self.rate(progress)
        if progress.level != progress.levels - 1 or rate is None or progress.iteration == progress.iterations:
            return ""
        return f", about {(progress.iterations - progress.iteration) / rate:.0f}s left"


class ProgressBar:
    """A callback that draws a one-line progress bar with the loss terms, and writes the
    current image to ``frame_path`` whenever the loop hands it a frame (--save-every).

    On a terminal the line is redrawn in place; in a log (not a terminal) one
    line is printed every tenth of the run (LOG_LINES), so logs stay readable.
    Call finish() when the run is over: a run that stopped early leaves the line open.
    """

    WIDTH = 24  # characters of bar
    LOG_LINES = 10  # lines a run writes to a log

    def __init__(self, iterations: int, frame_path: Path | None = None, stream=None):
        self.iterations = iterations
        self.frame_path = frame_path
        self.stream = stream or sys.stdout  # looked up now, not at import: redirect_stdout works
        self.interactive = self.stream.isatty()
        self.log_every = max(1, iterations // self.LOG_LINES)
        self.line_open = False  # a line drawn in place and not yet ended
        self.pace = Pace()

    def line(self, progress: Progress, room: int | None = None) -> str:
        """The line for ``progress``, once the bar has been called with it (and those before).

        Within ``room`` characters (a terminal's width), the rate, then the level, then the
        time are left out until the line fits up to the total loss, which a terminal
        narrower than the line kept only in part (80 columns: 'total 9.74e…'); the
        other loss terms after it are cut by fit_to_terminal."""
        done = progress.iteration / progress.iterations
        bar = "#" * round(done * self.WIDTH)
        rate = self.pace.rate(progress)
        status = {"level": f"level {progress.level + 1}/{progress.levels}" if progress.levels > 1 else "",
                  "speed": "" if rate is None else f"{rate:.2f} it/s",
                  "time": f"{progress.elapsed:.0f}s{self.pace.time_left(progress)}"}
        # The total first: a terminal narrower than the line cuts its end (fit_to_terminal).
        terms = [f"{name} {value:.3g}" for name, value in
                 sorted(progress.losses.items(), key=lambda term: term[0] != "total")]

        def compose(shown: tuple, losses: list) -> str:
            middle = "".join(f"{status[name]} " for name in shown if status[name])
            return f"[{bar:<{self.WIDTH}}] {progress.iteration}/{progress.iterations} {middle}| {' '.join(losses)}"

        for shown in (("level", "speed", "time"), ("level", "time"), ("time",), ()):
            if room is None or len(compose(shown, terms[:1])) <= room:
                break
        return compose(shown, terms)

    def __call__(self, progress: Progress) -> None:
        self.pace.note(progress)
        last = progress.iteration == progress.iterations
        if self.interactive:
            self.stream.write("\r" + fit_to_terminal(self.line(progress, terminal_room())) + CLEAR_LINE)
            self.line_open = True
            if last:
                self.finish()
        elif last or progress.iteration % self.log_every == 0:
            self.stream.write(self.line(progress) + "\n")
        self.stream.flush()
        if progress.frame is not None and self.frame_path is not None:
            save_image(progress.frame, self.frame_path)

    def finish(self) -> None:
        """End the line drawn in place, if one is open, so what is printed next starts on a line
        of its own (an early stop never reaches the last iteration)."""
        if self.line_open:
            self.stream.write("\n")
            self.stream.flush()
            self.line_open = False


def json_safe(value):
    """``value`` as JSON can hold it: NumPy numbers and arrays as Python's, NaN and
    infinities as null (strict JSON has no NaN)."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


#: A trace's stopped_early while its run's other files are written (write_outputs). Left
#: behind only when writing them failed (a full disk), it tells a rerun of the batch that
#: the files there are this pair's, to be written again, not someone else's to keep.
FILES_UNFINISHED = "its files were not all written"


def write_trace(path: Path, trace: dict) -> None:
    """A run's JSON trace (json_safe: no NaN, no numpy types)."""
    text = json.dumps(json_safe(trace), indent=1, allow_nan=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def figure_title(trace: dict) -> str:
    """The panel's and the loss curve's title: the inputs' file names, 'chelsea.jpg + wave.jpg'."""
    return " + ".join(Path(source).name for source in [trace["content"], *trace["styles"]])


def write_outputs(paths: dict, content, styles, result: StylizeResult, trace: dict, gif: bool) -> str:
    """The result image, panel, loss curve, JSON trace and (optionally) GIF.

    The trace is written first, marked FILES_UNFINISHED, and again once the rest is in
    place: files left by a write that failed half-way (a full disk) are then known to a
    rerun of the batch as its own, not taken for files it must not replace. A Ctrl-C
    meanwhile waits until the whole set is written.

    Returns a note when an earlier run's GIF was removed (made_by_a_run), else "".
    """
    made_by = {"Description": trace["command"]}  # in each PNG's metadata (png_text reads it)
    with interrupt_deferred():
        write_trace(paths["trace"], {**trace, "stopped_early": FILES_UNFINISHED})
        save_image(result.image, paths["image"], text=made_by)
        title = figure_title(trace)
        applied = [weight > 0 for weight in result.blend_weights[-1]] if result.blend_weights else None
        save_figure(plot_panel(content, styles, result.image, title, applied), paths["panel"], text=made_by)
        save_figure(plot_losses(result.history, title), paths["losses"], text=made_by)
        removed = ""
        if gif and result.frames:
            save_gif(result.frames, result.image, paths["gif"], comment=gif_comment(trace))
        elif made_by_a_run(paths["gif"]):  # an earlier run's, beside the files replaced now (--overwrite, a redo)
            paths["gif"].unlink()  # it would show that run, not this one
            removed = (f"removed {paths['gif']}, the animation of an earlier {paths['image'].name} "
                       "(this run made none: --gif)")
        write_trace(paths["trace"], trace)
    return removed


def settings_from_args(args: argparse.Namespace) -> dict:
    """The keyword arguments of stylize() that the command line sets (masks as paths)."""
    return {
        "iterations": args.iterations, "scales": args.scales, "optimizer": args.optimizer,
        "preconditioner": args.preconditioner,
        "init": args.init, "content_weight": args.content_weight, "style_weight": args.style_weight,
        "tv_weight": args.tv_weight, "content_layer": args.content_layer,
        "style_layers": args.style_layers, "style_layer_weights": args.style_layer_weights,
        "style_blend_weights": args.style_blend_weights, "style_masks": args.style_masks,
        "style_scale": args.style_scale, "preserve_colors": args.preserve_colors,
        "model": args.model, "weights": weights_argument(args.weights), "precision": args.precision,
        "learning_rate": args.learning_rate, "seed": args.seed, "save_every": args.save_every,
        "device": args.device,
    }


def load_mask(path: str, max_pixels: int) -> np.ndarray:
    """A region mask as an (H, W) array in [0, 1] at the file's own size: white = style
    applies. A colour file is read as grey (the mean of R, G and B), and its transparent
    parts as black (MASK_BACKGROUND). Any size will do: VGG never sees a mask, so
    load_image's minimum does not apply."""
    return to_array(open_image(path, max_pixels, background=MASK_BACKGROUND)).mean(axis=-1)


def style_load_size(size: int, style_scale: float) -> int:
    """Long side styles are loaded at: big enough for the last level at --style-scale
    (load_image's keep_short_side keeps them at least MIN_SIZE px on the short side)."""
    return round(size * style_scale)


def style_loading(size: int, style_scale: float) -> dict:
    """How a style image is loaded for --size and --style-scale, as load_image's (and
    loaded_shape's) keyword arguments: at style_load_size, never below MIN_SIZE px on its
    short side."""
    return dict(max_size=style_load_size(size, style_scale), keep_short_side=True)


def check_output_arguments(args: argparse.Namespace) -> None:
    """--gif animates the frames that --save-every takes, so it needs some."""
    if args.gif and args.save_every == 0:
        raise StyleTransferError("--gif needs frames: give --save-every a number above 0")


#: The settings only one optimizer uses: the setting, that optimizer, its default, and
#: what a run of the other says of a value given to it (unused_flags; used_by).
ONE_OPTIMIZERS_SETTINGS = {
    "preconditioner": ("lbfgs", DEFAULT_PRECONDITIONER, "--preconditioner is for L-BFGS; Adam does not use it"),
    "learning_rate": ("adam", ADAM_LEARNING_RATE,
                      "--learning-rate is Adam's step size; L-BFGS finds its steps by a line search"),
}


def unused_flags(args: argparse.Namespace) -> list[str]:
    """Notes on flags given a value the chosen optimizer does not use (a run goes ahead)."""
    return [note for name, (optimizer, default, note) in ONE_OPTIMIZERS_SETTINGS.items()
            if args.optimizer != optimizer and getattr(args, name) != default]


def digests_entry(digests: list, mask_digests: list | None = None) -> dict:
    """The trace's "sha256": the digests of the content then the styles (``digests``), and
    of the masks (None: no masks); recorded_digests reads the first two back."""
    return {"content": digests[0], "styles": digests[1:], "style_masks": mask_digests}


def input_digests(content: str, styles: list, masks: list | None = None) -> dict:
    """The SHA-256 of each input file (file_digest; a URL: its download), for the trace:
    with them a file replaced under the same name is another input (made_from)."""
    return digests_entry([file_digest(source) for source in [content, *styles]],
                         None if masks is None else [file_digest(mask) for mask in masks])


def run_trace(args: argparse.Namespace, image: Path, content: str, styles: list, settings: dict,
              result: StylizeResult, digests: dict) -> dict:
    """The JSON trace of one run: the result ``image``'s file name (another_result reads it),
    the inputs as given (paths or URLs) and their SHA-256 (input_digests), settings,
    versions, losses."""
    return {
        "command": args.command, "working_directory": str(Path.cwd()),  # the command's paths are relative to it
        "image": image.name,
        "content": str(content), "styles": [str(style) for style in styles], "sha256": digests,
        "size": args.size,
        "settings": settings, "device": result.device, "processor": processor_name(),
        "precision": result.precision, "level_sizes": result.sizes, "level_blend_weights": result.blend_weights,
        "versions": {"code": code_version(), "python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__, "pillow": PIL.__version__},
        "stopped_early": result.stopped_early, "notes": result.notes, "loss": result.loss,
        "seconds": result.history[-1]["seconds"] if result.history else 0.0,
        "history": result.history,
    }


# ---------------------------------------------------------------------------
# Batch mode: every content with every style, then a contact sheet
# ---------------------------------------------------------------------------


@dataclass
class Pair:
    """One content x style combination of a batch, and what became of it."""

    content: str  # a path or URL, as given
    style: str
    output: Path  # the result image; its panel, loss curve and trace lie beside it
    status: str = NOT_RUN  # then DONE, SKIPPED, FAILED or INTERRUPTED
    reason: str = ""  # why it failed (skipped: why a picture of it was not drawn again, or made; done: a GIF removed)
    digests: list = field(default_factory=list)  # the SHA-256 of its content and style (or why there is none)
    result_existed: bool = False  # its result image was there when prepared (a redo, or --overwrite)
    unreadable: bool = False  # that image, from a run that ended normally, could not be read: a redo
    changed: list = field(default_factory=list)  # skipped: the flags its earlier run had set otherwise
    redrawn: list = field(default_factory=list)  # skipped: its pictures drawn again (redraw_pictures)
    thumbnail: np.ndarray | None = None  # the result, small, for the contact sheet
    seconds: float = 0.0  # done: how long its batch took, writing included
    batch_of: int = 0  # done: how many pairs that batch held (fewer after a rerun in halves)

    @property
    def name(self) -> str:
        return printable_name(f"{source_stem(self.content)} + {source_stem(self.style)}")  # one line, always


#: Why a folder's entry is not an input, as (one, several) for a note: a photo left out
#: without a word (a .heic, a subfolder of more photos) looked like a batch that forgot it.
LEFT_OUT_KINDS = {
    "not UTF-8": ("name that is not UTF-8 (rename it)", "names that are not UTF-8 (rename them)"),
    "folder": ("subfolder (folders are not searched)", "subfolders (folders are not searched)"),
    "broken": ("broken link", "broken links"),
    "special": ("entry that is not a file", "entries that are not files"),
    "not image": ("file not named as an image", "files not named as images"),
}
#: Names a note lists of each kind of entry left out of a folder.
LEFT_OUT_NAMES = 3


def left_out_kind(entry: Path) -> str | None:
    """The LEFT_OUT_KINDS key of why ``entry`` of a folder is not an input; None for an image."""
    if not is_utf8(entry.name):  # before the rest: the name cannot even be printed
        return "not UTF-8"
    if entry.is_dir():
        return "folder"
    if entry.is_symlink() and not entry.exists():
        return "broken"
    if not entry.is_file():  # a pipe, a socket, a device
        return "special"
    return None if entry.suffix.lower() in IMAGE_EXTENSIONS else "not image"


def folder_inputs(folder: Path) -> tuple[list[Path], dict[str, list[str]]]:
    """The images of ``folder``, sorted by name, and the names of what else it holds, by kind
    (LEFT_OUT_KINDS). Hidden files (names starting with '.') are neither, as ``ls`` leaves
    them out: macOS's '._photo.jpg' beside each photo on a shared drive is metadata, not an
    image, and failed its pairs."""
    images, left_out = [], {}
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith("."):
            kind = left_out_kind(entry)
            if kind is None:
                images.append(entry)
            else:
                left_out.setdefault(kind, []).append(printable_name(entry.name))
    return images, left_out


def left_out_text(left_out: dict[str, list[str]]) -> str:
    """'1 subfolder (folders are not searched): raw; 2 files not named as images: a.heic, b.txt'."""
    parts = []
    for kind, (one, several) in LEFT_OUT_KINDS.items():
        names = left_out.get(kind, [])
        more = f" and {len(names) - LEFT_OUT_NAMES} more" if len(names) > LEFT_OUT_NAMES else ""
        if names:
            noun = one if len(names) == 1 else several
            parts.append(f"{len(names)} {noun}: {', '.join(names[:LEFT_OUT_NAMES])}{more}")
    return "; ".join(parts)


def expand_inputs(items: list[str]) -> list[str]:
    """The inputs ``items`` name (batch_inputs), without its notes."""
    return batch_inputs(items)[0]


def batch_inputs(items: list[str]) -> tuple[list[str], list[str]]:
    """Folders become their image files (folder_inputs); files and URLs stay as given. A
    hidden file named on its own is used. Returns them, and a note for each folder that
    holds more than its images (left_out_text).

    An image listed twice (say, a folder and a file in it) is used once. A
    missing path or a folder without images is an error: a typo should not
    cost a whole batch. Whether a file really is an image is found out later,
    pair by pair.
    """
    sources, notes = {}, []  # sources: what identifies an input -> how the user wrote it
    for item in items:
        check_address(item)
        if is_url(item):
            sources.setdefault(item, item)
            continue
        path = Path(item)
        if path.is_dir():
            files, left_out = folder_inputs(path)
            if not files:
                held = f"; it holds {left_out_text(left_out)}" if left_out else ""
                hidden = [entry.name for entry in path.iterdir()
                          if entry.name.startswith(".") and entry.suffix.lower() in IMAGE_EXTENSIONS]
                held += (f"; hidden files such as {hidden[0]} are left out (name one on its own to use it)"
                         if hidden else "")
                raise StyleTransferError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) in the folder {path}{held}")
            note = f"left out of the folder {item}: {left_out_text(left_out)}"
            notes += [note] if left_out and note not in notes else []
        elif path.exists():
            files = [path]
        else:
            raise StyleTransferError(f"no such file or folder: {path}{missing_path_hint(path)}")
        for file in files:
            check_utf8(str(file))  # the folder's own name, or a file named on its own
            sources.setdefault(str(real_path(file)), str(file))
    return list(sources.values()), notes


def batch_folder(output: str | None) -> Path:
    """The folder a batch writes into (-o, default results/), checked before any work."""
    if output is not None and not output.strip():  # Path("") is the current folder
        raise StyleTransferError("-o is empty; give a folder such as results/batch")
    if output is not None:
        check_output_tilde(output, "-o")
    folder = RESULTS_DIR if output is None else Path(output)
    if output is None and folder.is_file():  # no -o to blame
        raise StyleTransferError(f"{folder} is a file, where batch mode writes into a folder of that name; "
                                 "give the batch a folder with -o")
    if folder.suffix.lower() in IMAGE_EXTENSIONS or folder.is_file():
        raise StyleTransferError(f"in batch mode -o is a folder, not a file: {folder}")
    writable_folder(folder / CONTACT_SHEET_NAME)
    return folder


def plan_pairs(contents: list[str], styles: list[str], folder: Path) -> list[Pair]:
    """Every content with every style, content by content, each written to <content>_<style>.png.

    Refused before any work: two pairs that would write the same file, a name too long
    for the folder's file system, and an output folder that holds inputs (its results
    would be inputs of the next run).
    """
    for source in [*contents, *styles]:
        if not is_url(source) and real_path(source).parent == real_path(folder):
            raise StyleTransferError(f"the output folder {folder} holds the input {source}; "
                                     "choose another -o")
    pairs = [Pair(content, style, folder / f"{source_stem(content)}_{source_stem(style)}.png")
             for content in contents for style in styles]
    claimed = {}
    for pair in pairs:
        check_name_lengths(list(output_paths(pair.output).values()),
                           f"{renaming([pair.content, pair.style])} (a pair's files are named <content>_<style>)")
        # Every file of the pair, not only its image: content 'c' with style 's_panel' writes
        # c_s_panel.png, the panel of 'c' with style 's'.
        for path in output_paths(pair.output).values():
            if CONTACT_SHEET_PATTERN.fullmatch(path.name):
                raise StyleTransferError(f"{pair.content} + {pair.style} would write {path}, the name of the "
                                         f"batch's contact sheet; {renaming([pair.content, pair.style])}")
            if path in claimed:
                first = claimed[path]
                differing = [source for ours, theirs in ((first.content, pair.content), (first.style, pair.style))
                             if ours != theirs for source in (ours, theirs)]
                raise StyleTransferError(f"{first.content} + {first.style} and {pair.content} + {pair.style} "
                                         f"would both write {path}; {renaming(differing)}")
            claimed[path] = pair
    return pairs


def renaming(sources: list[str]) -> str:
    """The advice to give one of ``sources`` another name: 'rename a.jpg or b.jpg'. A URL's
    name is its address's: downloaded, it can have another."""
    files = list(dict.fromkeys(source for source in sources if not is_url(source)))
    if files:
        return f"rename {' or '.join(files)}"
    return f"download {' or '.join(dict.fromkeys(sources))} under another name and pass that file instead"


def check_batch_arguments(args: argparse.Namespace) -> None:
    """Batch mode takes its images from --contents and --styles only, one style per pair."""
    if not (args.batch_contents and args.batch_styles):
        raise StyleTransferError("batch mode needs both --contents and --styles")
    if args.content is not None or args.styles:
        raise StyleTransferError("give the images either as CONTENT STYLE or with --contents and "
                                 "--styles, not both")
    for flag, value in (("--style-masks", args.style_masks),
                        ("--style-blend-weights", args.style_blend_weights)):
        if value is not None:
            raise StyleTransferError(f"{flag} is for a single run; batch mode uses one style per pair")


def each_source(sources: list[str], read: Callable[[Path], object], max_pixels: int) -> dict:
    """Each input (path or URL) -> ``read`` of its file (a URL downloaded first), or the
    StyleTransferError that says why it cannot be used: a bad image fails its pairs, not
    the batch."""
    results = {}
    for source in sources:
        try:
            results[source] = read(local_image(source, max_pixels=max_pixels))
        except StyleTransferError as error:
            results[source] = error
    return results


def stored_shapes(sources: list[str], max_pixels: int) -> dict:
    """Each input -> its (height, width) on disk (upright: stored_shape), from the file's
    header alone, or the error (each_source)."""
    return each_source(list(dict.fromkeys(sources)), lambda path: stored_shape(path, max_pixels), max_pixels)


def source_shapes(sources: list[str], stored: dict, max_size: int, keep_short_side: bool = False) -> dict:
    """Each input -> the (height, width) load_sources gives it, from its shape on disk
    (``stored``: stored_shapes), or the error: enough to check a pair's memory before
    anything is decoded."""
    shapes = {}
    for source in sources:
        shape = stored[source]
        if not isinstance(shape, StyleTransferError):
            try:
                shape = loaded_shape(shape, max_size, keep_short_side, source)
            except StyleTransferError as error:  # too small for VGG at that size
                shape = error
        shapes[source] = shape
    return shapes


def load_sources(sources: list[str], max_size: int, max_pixels: int, keep_short_side: bool = False) -> dict:
    """Each input as an 8-bit image array (load_pil), or the error (each_source; a truncated
    file, say, whose header was fine). Batch mode holds every input until its last pair, so
    it keeps them in a quarter of float32's memory; to_array gives the floats load_image
    would have."""
    return each_source(sources, lambda path: np.asarray(load_pil(path, max_size, max_pixels, keep_short_side)),
                       max_pixels)


#: What last_ending says when there is no trace of one of our runs.
NO_TRACE = "no trace"
#: On a pair's done line when its earlier run's result, finished by its trace, could not be read.
REDONE_UNREADABLE = "redone: the result of its earlier run could not be read"


def previous_trace(paths: dict) -> dict | None:
    """The JSON trace an earlier run of a pair left (written first, and again once every
    other file is in place: write_outputs), or None when there is no trace of one of our runs."""
    try:
        trace = json.loads(paths["trace"].read_text())
    except (OSError, ValueError):
        return None
    return trace if isinstance(trace, dict) and "stopped_early" in trace else None


def another_result(image_path: Path) -> Path | None:
    """The result image whose trace, panel, loss curve and GIF a run writing ``image_path``
    would replace, as they are named after the image without its ending: the image the
    trace beside it names (a run's .jpg, for a run writing .png). For a trace written before
    traces named their image (2026-11-24): another image of that name (OUTPUT_SUFFIXES)
    while ``image_path`` itself is not there. None when the files are its own or no run's."""
    return trace_owner(image_path, previous_trace(output_paths(image_path)))


def trace_owner(image_path: Path, trace: dict | None) -> Path | None:
    """another_result, from the ``trace`` beside ``image_path`` already read (previous_trace).
    Also a result among the pictures a run writing ``image_path`` writes: 'k_panel.png', the
    result of a run with -o k_panel.png, is the panel of one with -o k.png."""
    siblings = output_paths(image_path)
    for sibling in (siblings["panel"], siblings["losses"]):
        other_trace = previous_trace(output_paths(sibling)) if sibling.is_file() else None
        if other_trace is not None and other_trace.get("image", sibling.name) == sibling.name:
            return sibling
    if trace is None:
        return None
    recorded = trace.get("image")
    if isinstance(recorded, str):
        other = image_path.with_name(recorded)
        return other if recorded != image_path.name and other.is_file() else None
    if image_path.exists():
        return None
    return next((image_path.with_suffix(suffix) for suffix in OUTPUT_SUFFIXES
                 if image_path.with_suffix(suffix).is_file()), None)


def last_ending(trace: dict | None) -> str | None:
    """How the run that wrote a pair's files ended, from its ``trace`` (previous_trace): None
    when it ended normally, why it stopped early (Ctrl-C, a non-finite loss, files not all
    written: FILES_UNFINISHED), or NO_TRACE when no run of ours wrote them."""
    return NO_TRACE if trace is None else trace["stopped_early"]


def recorded_inputs(trace: dict) -> list:
    """The inputs a trace's run used, as typed then: the content, then the styles (none
    if the trace, edited by hand, holds something else than a list of them)."""
    styles = trace.get("styles")
    return [trace.get("content"), *(styles if isinstance(styles, list) else [])]


def source_file(source: str, folder: str | Path = ".") -> str:
    """What an input is, whatever way it was typed: a URL as given, or the file a path leads
    to from ``folder`` (where the run that typed it started)."""
    return source if is_url(source) else str(real_path(Path(folder) / source))


def recorded_digests(trace: dict) -> list | None:
    """The SHA-256 of the content and styles a trace's run read (digests_entry), or None
    for a trace written before traces held them, or one edited by hand."""
    digests = trace.get("sha256")
    styles = digests.get("styles") if isinstance(digests, dict) else None
    return [digests.get("content"), *styles] if isinstance(styles, list) else None


def made_from(trace: dict, sources: list[str], digests: list | None = None) -> bool:
    """Whether the run a trace records used these inputs (content, then styles): each one
    written the same way (a URL, or a path relative to where each run started, as in a
    clone of this project elsewhere), or a path that leads to the same file from there;
    and, given their ``digests`` (file_digest) and a trace that records them, the same
    bytes: a photo replaced under its old name is another input."""
    folder = trace.get("working_directory")
    folder = folder if isinstance(folder, str) else "."  # (a trace edited by hand)
    recorded = recorded_inputs(trace)
    same_names = len(recorded) == len(sources) and all(
        isinstance(old, str) and (old == new or source_file(old, folder) == source_file(new))
        for old, new in zip(recorded, sources))
    recorded_bytes = recorded_digests(trace)
    return same_names and (digests is None or recorded_bytes is None or recorded_bytes == digests)


def is_finished(paths: dict, trace: dict | None) -> bool:
    """True when a pair's files are on disk from a run that ended normally (``trace``:
    previous_trace(paths), read once by the caller)."""
    return paths["image"].is_file() and last_ending(trace) is None


def ran_as(trace: dict, name: str, settings: dict) -> bool:
    """Whether this run's setting ``name`` (in ``settings``, 'auto' perhaps) comes to what the
    trace's run resolved its own to: --precision mixed where 'auto' ran mixed changes
    nothing. Only device, precision and scales are resolved; for any other: False."""
    value, sizes = settings[name], trace.get("level_sizes") or []
    if name == "device":
        return resolve_device(value) == trace.get("device")
    if name == "precision":
        return resolve_precision(value, resolve_device(settings["device"])) == trace.get("precision")
    if name == "scales" and sizes:  # at the same --size (else --size differs too)
        try:
            size, floor = max(sizes[-1]), smallest_long_side(sizes[-1])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):  # not (height, width)s: a trace edited by hand
            return False
        return resolve_scales(value, size, settings["iterations"], floor) == len(sizes)
    return False


def used_by(name: str, settings: dict, gif: bool) -> bool:
    """Whether a batch run's setting ``name`` changes what it makes: not one of the other
    optimizer's (ONE_OPTIMIZERS_SETTINGS: Adam's learning rate for L-BFGS), nor
    --save-every without --gif (a pair's image is saved once, at its end)."""
    if name in ONE_OPTIMIZERS_SETTINGS:
        return settings["optimizer"] == ONE_OPTIMIZERS_SETTINGS[name][0]
    return gif or name != "save_every"


def changed_flags(trace: dict | None, settings: dict, size: int, gif: bool = False) -> list[str]:
    """The flags that a finished pair's ``trace`` (previous_trace) records with other values
    than this run's (an 'auto' counted as what it came to: ran_as), of those this run uses
    (used_by: another --learning-rate for L-BFGS would make the same image)."""
    if trace is None or not isinstance(trace.get("settings"), dict):
        return []
    recorded = {**trace["settings"], "size": trace.get("size")}
    current = json.loads(json.dumps(json_safe({**settings, "size": size})))  # as a trace holds them
    return [f"--{name.replace('_', '-')}" for name in sorted(current)
            if recorded.get(name) != current[name] and not ran_as(trace, name, current)
            and used_by(name, current, gif)]


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The image, shrunk if needed to the contact sheet's size (it holds every result at once)."""
    return resize_long(image, SHEET_THUMBNAIL) if max(image.shape[:2]) > SHEET_THUMBNAIL else image


def saved_thumbnail(path: Path) -> np.ndarray | None:
    """A finished result read back for the contact sheet; None if it cannot be read."""
    try:
        return thumbnail(load_image(path))
    except StyleTransferError:
        return None


@contextlib.contextmanager
def reading_trace():
    """Around reading what a trace records: an entry missing or not of its kind (a trace
    edited by hand) is a StyleTransferError, said as such; errors outside stay what they are."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise StyleTransferError("its trace lacks what it needs") from None


def redraw_pictures(pair: Pair, trace: dict, max_pixels: int) -> None:
    """A skipped pair's panel or loss curve deleted since its run, drawn again (not a new
    optimization): the loss curve from its trace's losses, the panel from its result image
    and its inputs, read at the sizes the trace records. Sets ``pair.redrawn``, and
    ``pair.reason`` for a picture that cannot be drawn (its trace lacks what it needs, an
    input unreadable now, a URL this batch could not download, a full disk): the pair is
    still skipped, its result being there. ``trace``: previous_trace of its files."""
    paths = output_paths(pair.output)

    def draw(name: str):
        with reading_trace():  # read and checked first: what fails in drawing is not the trace's fault
            title, made_by = figure_title(trace), {"Description": str(trace["command"])}
            if name == "losses":
                history = [{"iteration": float(row["iteration"]), "level": float(row["level"]),
                            **{term: float(row[term]) for term in LOSS_TERMS}} for row in trace["history"]]
            else:
                style_sizes = style_loading(int(trace["size"]), float(trace["settings"]["style_scale"]))
        if name == "losses":
            if not history:  # a curve of no losses is not the run's curve
                raise StyleTransferError("its trace holds no losses")
            return plot_losses(history, title), made_by
        for source, digest in zip([pair.content, pair.style], pair.digests):
            if is_url(source) and isinstance(digest, StyleTransferError):  # not fetched again (offline, say)
                raise digest
        result = load_image(paths["image"])
        content = load_image(local_image(pair.content, max_pixels=max_pixels), max(result.shape[:2]), max_pixels)
        style = load_image(local_image(pair.style, max_pixels=max_pixels), max_pixels=max_pixels, **style_sizes)
        return plot_panel(content, [style], result, title), made_by

    not_drawn = {}  # why -> the pictures it kept from being drawn
    for name in (name for name in PICTURE_NAMES if not paths[name].exists()):
        try:
            with interrupt_deferred():
                figure, made_by = draw(name)
                save_figure(figure, paths[name], text=made_by)
        except StyleTransferError as error:  # WriteError is one
            not_drawn.setdefault(str(error), []).append(PICTURE_NAMES[name])
            continue
        pair.redrawn.append(PICTURE_NAMES[name])
    pair.reason = "; ".join(f"its {' and '.join(names)} not drawn again: {reason}"
                            for reason, names in not_drawn.items())


def prepare_pair(pair: Pair, content: tuple | StyleTransferError, style: tuple | StyleTransferError,
                 overwrite: bool, settings: dict, device_name: str, gif: bool = False) -> None:
    """Before any work, from the images' shapes (source_shapes): a pair finished before is
    skipped (unless ``overwrite``); a pair with an unreadable image fails, and so do a pair
    whose files (run_files: the GIF's with ``gif``) would replace files that are not from
    an earlier run of it (one that stopped early, or whose image was deleted, is redone;
    unless ``overwrite``) and one that clearly cannot fit in memory even alone
    (check_memory); so does one whose trace is another result's (trace_owner: a run's .jpg
    beside the pair's .png); the others stay NOT_RUN."""
    paths = output_paths(pair.output)
    trace = previous_trace(paths)
    pair.result_existed = paths["image"].exists()
    other = trace_owner(pair.output, trace)
    if other in paths.values():  # even with --overwrite, as a single run's -o
        pair.status, pair.reason = FAILED, (f"{replaced_result(other, pair.output)}; move it with the files "
                                            "beside it, or write the batch to another -o folder")
        return
    if other is not None:
        # Not 'move it': its trace, panel and loss curve would stay, and the rerun replace them.
        pair.status, pair.reason = FAILED, (f"the files beside {pair.output} (trace, panel, loss curve) are those "
                                            f"of another result, {other}: move it with them, or write the batch "
                                            "to another -o folder")
        return
    # Same names, other images (two folders of IMG_0001.jpg into one results folder, say, or a
    # photo replaced under its old name). An input that cannot be read now (moved, a URL
    # offline) is judged by its name: its finished pairs are still skipped.
    known = pair.digests if all(isinstance(digest, str) for digest in pair.digests) else None
    other_inputs = trace is not None and not made_from(trace, [pair.content, pair.style], known)
    if not overwrite and is_finished(paths, trace) and not other_inputs:
        pair.thumbnail = saved_thumbnail(pair.output)
        if pair.thumbnail is not None:
            pair.status = SKIPPED
            return
        held = placeholder_text(paths["image"])
        if held:  # its result deleted, and another batch redoing it now
            pair.status, pair.reason = FAILED, f"{held}; rerun the batch once that run is done"
            return
        # Its trace says the run ended normally, yet the result cannot be read (cut short by a
        # copy, say): the files are the run's own, so it is redone, not skipped as done. (An
        # empty file is a killed run's placeholder, taken over as one.)
        pair.unreadable = paths["image"].stat().st_size > 0
    for problem in (content, style, *pair.digests):
        if isinstance(problem, StyleTransferError):
            pair.status, pair.reason = FAILED, str(problem)
            return
    taken = files_in_the_way(run_files(pair.output, gif), pair.output)  # held_outputs takes a stale placeholder over
    if taken and not overwrite and (other_inputs or last_ending(trace) == NO_TRACE):
        # The files of a run of this pair (one interrupted, say, or whose image was deleted) are
        # redone; anything else is not ours to replace.
        made = ""
        if other_inputs:
            made = (", made from other files of the same names" if made_from(trace, [pair.content, pair.style])
                    else f", made from {' + '.join(map(str, recorded_inputs(trace)))}")
        elif paths["trace"].exists() and taken[0] != paths["trace"]:  # not JSON, or not a run's (previous_trace)
            made = f", and the trace beside it, {paths['trace'].name}, cannot be read as a run's"
        held = placeholder_text(taken[0])
        pair.status, pair.reason = FAILED, (f"{held}; rerun the batch once that run is done" if held
                                            else f"{taken[0]} exists{made}; pass --overwrite to replace it")
        return
    try:  # as a single run is: before decoding (at --size x --style-scale the images alone can be gigabytes)
        check_memory(settings_memory(content, settings, device_name, style_shapes=[style]), settings, device_name)
    except NotEnoughMemoryError as error:
        pair.status, pair.reason = FAILED, str(error)


def decode_pairs_inputs(pairs: list[Pair], args: argparse.Namespace) -> tuple[dict, dict]:
    """The contents and the styles of the pairs still to run, decoded (load_sources), in the
    order of the pairs; a pair whose image turns out unreadable only now fails."""
    to_run = [pair for pair in pairs if pair.status == NOT_RUN]
    content_images = load_sources(list(dict.fromkeys(pair.content for pair in to_run)), args.size, args.max_pixels)
    style_images = load_sources(list(dict.fromkeys(pair.style for pair in to_run)), max_pixels=args.max_pixels,
                                **style_loading(args.size, args.style_scale))
    for pair in to_run:
        error = next((image for image in (content_images[pair.content], style_images[pair.style])
                      if isinstance(image, StyleTransferError)), None)
        if error is not None:
            pair.status, pair.reason = FAILED, str(error)
    return content_images, style_images


def batch_size(requested: str | int, device_name: str, shape, settings: dict, most: int | None = None) -> int:
    """Contents to optimize together: --batch-size, or auto by device, no more than ``most``
    (the largest group the batch can form: plan_groups); on a CPU no more than the memory
    available holds (an estimate at ``shape``, the largest image)."""
    group_size = AUTO_BATCH_SIZE["gpu" if device_name.startswith("/GPU") else "cpu"] if requested == AUTO \
        else requested
    group_size = min(group_size, most or group_size)  # '--batch-size 1e20' with 3 pairs: 3
    available = available_memory()
    if group_size > 1 and device_name.startswith("/CPU") and available is not None:
        # The largest size that fits, by halving the range (the estimate grows with the size):
        # one size at a time took minutes to come down from a huge --batch-size.
        fits, too_many = 1, group_size + 1
        while too_many - fits > 1:
            middle = (fits + too_many) // 2
            if settings_memory(shape, settings, device_name, batch=middle).total > available:
                too_many = middle
            else:
                fits = middle
        group_size = fits
    return group_size


def plan_groups(pairs: list[Pair], content_images: dict, group_size: int) -> list[list[Pair]]:
    """The pairs still to run, in groups to optimize together: one style, contents of one
    size, at most ``group_size`` to a group, in the order of the pairs."""
    groups, open_groups = [], {}
    for pair in pairs:
        if pair.status != NOT_RUN:
            continue
        key = (pair.style, content_images[pair.content].shape)
        if key not in open_groups or len(open_groups[key]) == group_size:
            open_groups[key] = []
            groups.append(open_groups[key])
        open_groups[key].append(pair)
    return groups


def split_group(group: list[Pair], group_size: int) -> list[list[Pair]]:
    """``group`` in groups of at most ``group_size`` pairs, in order: a group that ran out of
    memory runs again as halves (a batch of 4 on a GPU whose memory holds 2; 3 as 2 + 1), and
    a later group larger than those halves is split so before it is tried."""
    return [group[start:start + group_size] for start in range(0, len(group), group_size)]


def check_network(model: str, weights: str | None) -> None:
    """Build the network once, to find out that weights cannot be had (VGG16's ImageNet
    weights offline, a file for another model) before any work whose failures are counted
    one by one: a batch's pairs, a benchmark's fresh processes. Then that is one error
    (StyleTransferError), as it is for a single run."""
    if weights is not None:  # random weights are always there
        build_vgg(model, [CONTENT_LAYER], weights)


@contextlib.contextmanager
def held_outputs(group: list[Pair]):
    """The pairs of a group that can still run, their result names held while they run, as
    a single run holds its own (claim_output's placeholder; lock_output's lock, also on a
    result redone with --overwrite, which has no placeholder): a second batch into the same folder finds
    them taken and fails those pairs (before, both ran them, said 'done', and the later
    one's files replaced the other's). A pair whose result another run took or wrote since
    prepare_pair looked fails here. Only the running group's names are held, so a batch
    killed outright (SIGKILL) leaves no more empty files than a single run; names left
    unwritten are given back."""
    held, locks, running = [], [], []
    try:
        for pair in (pair for pair in group if pair.status == NOT_RUN):
            try:
                replacing = pair.output.exists() and not stale_placeholder(pair.output)
                if replacing and not pair.result_existed:  # written since prepare_pair looked
                    raise FileExistsError(pair.output)
                lock, created = hold_output(pair.output, replacing)  # as reserved_output holds a run's
                locks.append(lock)
                held.append(created)
            except FileExistsError:
                held_text = placeholder_text(pair.output)
                pair.status, pair.reason = FAILED, (f"{held_text}; rerun the batch once that run is done" if held_text
                                                    else f"{pair.output} was taken by another run meanwhile")
                continue
            running.append(pair)
        yield running
    finally:
        for created in held:
            release_unwritten(created)
        for lock in locks:
            lock.release()


def run_group(group: list[Pair], content_images: dict, style_images: dict, *,
              args: argparse.Namespace, settings: dict, callback: Callable) -> bool:
    """Stylize the pairs of a group that can still run (held_outputs) in one batch and write
    each pair's files; sets their status. The rest: stylize_group."""
    with held_outputs(group) as running:
        return not running or stylize_group(running, content_images, style_images, args=args, settings=settings,
                                            callback=callback)


def stylize_group(group: list[Pair], content_images: dict, style_images: dict, *,
                  args: argparse.Namespace, settings: dict, callback: Callable) -> bool:
    """Stylize the pairs of a group in one batch and write each pair's files; sets their status.

    Returns False, having run nothing, for a group of several pairs that the device has
    no room for (or, on a CPU, that check_memory refuses): run_batch then runs them half
    as many at a time, and no later group is larger. A single pair that does not fit fails
    alone; any other refusal fails the whole group at once.
    """
    started = time.perf_counter()
    try:
        device = resolve_device(settings["device"])
        # batch_size() planned the groups to fit; memory taken since then can still refuse one.
        need = settings_memory(content_images[group[0].content].shape[:2], settings, device, len(group),
                               [style_images[group[0].style].shape[:2]])
        check_memory(need, settings, device)
        contents = [to_array(content_images[pair.content]) for pair in group]
        style = to_array(style_images[group[0].style])
        with out_of_memory_named():
            results = stylize_batch(contents, style, **settings, callback=callback, keep_frames=args.gif)
    except (tf.errors.ResourceExhaustedError, NotEnoughMemoryError) as error:
        if len(group) > 1:
            return False
        reason = str(error) if isinstance(error, StyleTransferError) else \
            f"out of memory: {memory_advice(settings, device, need)}"
        group[0].status, group[0].reason = FAILED, reason
        return True
    except StyleTransferError as error:  # not a matter of room: the pairs would fail alone too
        for pair in group:
            pair.status, pair.reason = FAILED, str(error)
        return True
    try:
        for pair, content, result in zip(group, contents, results):
            write_pair(pair, content, style, result, group, args=args, settings=settings)
    finally:  # also when a Ctrl-C held while a pair's files were written comes once they are
        seconds = time.perf_counter() - started
        for pair in group:
            pair.seconds, pair.batch_of = seconds, len(group)
    return True


def write_pair(pair: Pair, content: np.ndarray, style: np.ndarray, result: StylizeResult, group: list[Pair], *,
               args: argparse.Namespace, settings: dict) -> None:
    """Write a pair's files (its result as stylize_group's batch ``group`` made it) and set
    its status."""
    if result.interrupted_at_once:  # held_outputs gives the name back; a rerun runs the pair
        pair.status, pair.reason = INTERRUPTED, NOTHING_WRITTEN
        return
    trace = run_trace(args, pair.output, pair.content, [pair.style], settings, result, digests_entry(pair.digests))
    trace["batch"] = [other.name for other in group]
    with interrupt_deferred():  # a pair whose files are written has its status, Ctrl-C or not
        try:
            removed = write_outputs(output_paths(pair.output), content, [style], result, trace, args.gif)
        except WriteError as error:  # a full disk, say: this pair fails, the others go on
            pair.status, pair.reason = FAILED, str(error)
            return
        pair.thumbnail = saved_thumbnail(pair.output)  # as a rerun that skips the pair shows it
        if result.stopped_early == INTERRUPTED:
            pair.status = INTERRUPTED
        elif result.stopped_early:  # a non-finite loss, its own or another's in the batch
            pair.status, pair.reason = FAILED, f"stopped: {result.stopped_early}"
        else:
            pair.status, pair.reason = DONE, removed


class BatchProgress:
    """One line per pair: '[3/4] chelsea + starry_night ... done in 12.3 s'.

    On a terminal a line also counts the iterations of the pairs being
    optimized, and the time they have left (Pace); in a log each line is
    written whole, as its pair ends. A pair skipped or failed before any work
    gets its line before the first group that starts after it (with one pair to
    a group: in the order of the pairs).
    """

    def __init__(self, pairs: list[Pair], stream):
        self.numbers = {id(pair): number for number, pair in enumerate(pairs, start=1)}
        self.stream = stream
        self.interactive = stream.isatty()
        self.running = ""
        self.pace = Pace()  # of the group running
        self.settled = [pair for pair in pairs if pair.status != NOT_RUN]  # no line yet; in pair order

    def finish_settled(self, before: Pair | None = None) -> None:
        """The lines of the pairs settled before any work that come before ``before``
        (None: all that are left)."""
        limit = len(self.numbers) + 1 if before is None else self.numbers[id(before)]
        due = [pair for pair in self.settled if self.numbers[id(pair)] < limit]
        self.settled = self.settled[len(due):]
        if due:
            self.finish(due)

    def prefix(self, pairs: list[Pair]) -> str:
        numbers = ",".join(str(self.numbers[id(pair)]) for pair in pairs)
        return f"[{numbers}/{len(self.numbers)}] {', '.join(pair.name for pair in pairs)} ..."

    def start(self, group: list[Pair]) -> None:
        self.finish_settled(before=group[0])
        self.running = self.prefix(group)
        self.pace = Pace()
        if self.interactive:
            self.write(fit_to_terminal(self.running))

    def take_back(self) -> None:
        """Erase the running line: its group is finished, or will run again split up."""
        if self.interactive and self.running:
            self.write(f"\r{CLEAR_LINE}")
        self.running = ""

    def __call__(self, progress: Progress) -> None:
        self.pace.note(progress)
        if self.interactive:
            count = f" {progress.iteration}/{progress.iterations}{self.pace.time_left(progress)}"
            self.write(f"\r{fit_to_terminal(self.running, keep=count)}{CLEAR_LINE}")

    def finish(self, group: list[Pair]) -> None:
        """A line for each pair of the group (or for a pair skipped or failed before any work)."""
        self.take_back()  # the line the iteration count was drawn on is written over
        for pair in group:
            other = f", with another {', '.join(pair.changed)}: --overwrite redoes it" if pair.changed else ""
            redrawn = f"its {' and '.join(pair.redrawn)} drawn again" if pair.redrawn else ""
            redone = REDONE_UNREADABLE if pair.unreadable else ""
            pictures = "".join(f"; {text}" for text in (redone, redrawn, pair.reason) if text)  # redraw_pictures
            together = f" (a batch of {pair.batch_of})" if pair.batch_of > 1 else ""
            outcome = {DONE: f"done in {pair.seconds:.1f} s{together}{pictures}",
                       SKIPPED: f"skipped (done before{other}{pictures})",
                       FAILED: f"failed: {pair.reason}",
                       INTERRUPTED: " ".join(filter(None, [INTERRUPTED, pair.reason]))}.get(pair.status, pair.status)
            self.write(f"{self.prefix([pair])} {printable_name(outcome)}\n")  # one line, whatever the reason names

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def sheet_inputs(contents: list[str], styles: list[str], named: tuple[list[str], list[str]]) -> str:
    """What identifies a batch's contact sheet, kept in the sheet's PNG metadata: its inputs,
    each a URL or the file its path leads to, and the --contents and --styles items that
    named them (``named``: folders among them), the same way. The same batch typed another
    way (a relative path, from elsewhere) is the same batch; the same names read from another
    folder are not."""
    def files(sources: list[str]) -> list[str]:
        return [source_file(source) for source in sources]

    return json.dumps({"contents": files(contents), "styles": files(styles),
                       "named": {"contents": files(named[0]), "styles": files(named[1])}})


def same_batch(description: str | None, inputs: str) -> bool:
    """Whether a contact sheet whose metadata holds ``description`` is the sheet of the batch
    with these ``inputs`` (sheet_inputs): the same inputs, or the same --contents and
    --styles items. The second is a rerun of the same folders after images were added or
    taken away: it redraws its sheet, rather than leave it stale beside a contact_sheet_2.png."""
    try:
        recorded, current = json.loads(description), json.loads(inputs)
    except (TypeError, ValueError):  # no description, or not one of ours
        return False
    if not isinstance(recorded, dict):
        return False
    return all(recorded.get(key) == current[key] for key in ("contents", "styles")) \
        or recorded.get("named") == current["named"]


def contact_sheet_path(folder: Path, inputs: str, overwrite: bool) -> Path:
    """Where the contact sheet of the batch with these ``inputs`` (sheet_inputs) goes:
    contact_sheet.png, redrawn by a rerun of the same batch (same_batch); when that file is
    another batch's sheet (or not a sheet) the first free contact_sheet_2.png, _3, ...
    instead, unless ``overwrite``."""
    path, number = folder / CONTACT_SHEET_NAME, 1
    while not overwrite and path.exists() and not same_batch(png_text(path).get("Description"), inputs):
        number += 1
        path = folder / f"{Path(CONTACT_SHEET_NAME).stem}_{number}.png"
    return path


def sheet_headers(shapes: dict, max_pixels: int) -> dict:
    """Each input (the keys of ``shapes``, from source_shapes) as the contact sheet shows it:
    the file read at the sheet's size, whether its pairs ran, were skipped or were refused
    (so that a rerun that skips them all draws the same sheet); 'unreadable' for one that
    cannot be read. One refused only for its shape (too narrow at --size) is shown: it is
    readable, and its pairs say why they failed. A URL that was not fetched is not asked again."""
    readable = [source for source, shape in shapes.items()
                if isinstance(shape, tuple) or not is_url(source) or earlier_download(source) is not None]
    images = load_sources(readable, SHEET_THUMBNAIL, max_pixels, keep_short_side=True)
    return {source: thumbnail(to_array(images[source])) if isinstance(images.get(source), np.ndarray)
            else "unreadable" for source in shapes}


def write_contact_sheet(pairs: list[Pair], content_headers: dict, style_headers: dict, path: Path,
                        inputs: str) -> Path:
    """The contact sheet of a batch: contents as rows, styles as columns, results in the cells
    (the headers: sheet_headers), its ``inputs`` (sheet_inputs) in its metadata.

    It is drawn again on every run (it is derived from the results), with the
    results of skipped pairs read back from disk, so it always shows the whole batch.
    """
    def cell(pair: Pair) -> np.ndarray | str:
        return pair.status if pair.thumbnail is None else pair.thumbnail

    by_inputs = {(pair.content, pair.style): pair for pair in pairs}
    figure = plot_contact_sheet(
        [(source_stem(source), header) for source, header in content_headers.items()],
        [(source_stem(source), header) for source, header in style_headers.items()],
        [[cell(by_inputs[content, style]) for style in style_headers] for content in content_headers])
    return save_figure(figure, path, text={"Title": CONTACT_SHEET_TITLE,
                                           "Description": inputs})


#: Why a batch has no contact sheet when Ctrl-C came as its inputs were read for it.
SHEET_INTERRUPTED = "interrupted before it was drawn; a rerun draws it"


def batch_exit_status(pairs: list[Pair], interrupted: bool, sheet_written: bool = True) -> int:
    """130 when interrupted, else 1 when a pair failed or the contact sheet could not be
    written, else 0 (every pair done or skipped)."""
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if not sheet_written or any(pair.status == FAILED for pair in pairs) else 0


def print_summary(pairs: list[Pair], sheet: Path | WriteError) -> None:
    """Counts per outcome, each failure with its reason, and where the contact sheet is (or
    why it could not be written)."""
    counts = Counter(pair.status for pair in pairs)
    shown = [DONE, SKIPPED, FAILED] + [status for status in (INTERRUPTED, NOT_RUN) if counts[status]]
    print(f"{counted(len(pairs), 'pair')}: {', '.join(f'{counts[status]} {status}' for status in shown)}")
    for pair in pairs:
        if pair.status == FAILED:
            print(f"failed: {pair.name}: {printable_name(pair.reason)}", file=sys.stderr)
    if isinstance(sheet, WriteError):
        print(printable_name(f"error: no contact sheet: {sheet}"), file=sys.stderr)
    else:
        print(printable_name(f"contact sheet: {sheet}"))


def batch_size_notes(pairs: list[Pair], args: argparse.Namespace, stored: dict) -> list[str]:
    """size_notes on the inputs of the pairs still to run (a rerun that skips them says
    nothing); ``stored``: their shapes on disk (stored_shapes)."""
    to_run = [pair for pair in pairs if pair.status == NOT_RUN]
    return size_notes([pair.content for pair in to_run], [pair.style for pair in to_run], stored, args.size,
                      args.style_scale)


def batch_init_style_notes(pairs: list[Pair], content_images: dict, max_pixels: int) -> list[str]:
    """With --init style, a note for each pair still to run whose painting is stretched to
    its photo (init_style_note; ``content_images``: decode_pairs_inputs's)."""
    to_run = [pair for pair in pairs if pair.status == NOT_RUN]
    files = {style: local_image(style, max_pixels=max_pixels) for style in {pair.style for pair in to_run}}
    return [note for pair in to_run
            for note in init_style_note(pair.style, files[pair.style], content_images[pair.content].shape[:2],
                                        max_pixels, photo=source_name(pair.content))]


def run_batch(args: argparse.Namespace, settings: dict) -> int:
    """Batch mode: every content with every style into the -o folder, a contact sheet,
    a summary. Returns the exit status (batch_exit_status)."""
    check_batch_arguments(args)
    folder = batch_folder(args.output)
    (contents, contents_left_out), (styles, styles_left_out) = map(batch_inputs, (args.batch_contents,
                                                                                 args.batch_styles))
    for note in [*dict.fromkeys([*contents_left_out, *styles_left_out]), *earlier_download_notes([*contents, *styles])]:
        print_note(note)
    pairs = plan_pairs(contents, styles, folder)
    stored = stored_shapes([*contents, *styles], args.max_pixels)
    content_shapes = source_shapes(contents, stored, args.size)
    style_shapes = source_shapes(styles, stored, **style_loading(args.size, args.style_scale))
    # An input that could not be read in any of its roles (a URL: fetched) is not tried again.
    readable = [source for source in dict.fromkeys([*contents, *styles])
                if any(not isinstance(shapes[source], StyleTransferError)
                       for shapes in (content_shapes, style_shapes) if source in shapes)]
    digests = each_source(readable, file_digest, args.max_pixels)
    inputs = sheet_inputs(contents, styles, named=(args.batch_contents, args.batch_styles))
    sheet = contact_sheet_path(folder, inputs, args.overwrite)
    device = resolve_device(args.device)
    for pair in pairs:
        pair.digests = [digests.get(pair.content, content_shapes[pair.content]),
                        digests.get(pair.style, style_shapes[pair.style])]
        prepare_pair(pair, content_shapes[pair.content], style_shapes[pair.style], args.overwrite, settings, device,
                     args.gif)
        if pair.status == SKIPPED:  # its trace read once for both
            paths = output_paths(pair.output)
            trace = previous_trace(paths)
            pair.changed = changed_flags(trace, settings, args.size, args.gif)
            redraw_pictures(pair, trace, args.max_pixels)
            if args.gif and not paths["gif"].exists():  # its frames went with its run
                pair.reason = "; ".join(filter(None, [pair.reason, f"no GIF: {NO_GIF_WITHOUT_A_RUN}"]))
    content_images, style_images = decode_pairs_inputs(pairs, args)
    for note in batch_size_notes(pairs, args, stored):
        print_note(note)
    for note in batch_init_style_notes(pairs, content_images, args.max_pixels) if args.init == "style" else []:
        print_note(note)
    progress = BatchProgress(pairs, sys.stdout)
    shapes = [shape for shape in content_shapes.values() if isinstance(shape, tuple)]
    to_run = [content_images[pair.content].shape[:2] for pair in pairs if pair.status == NOT_RUN]
    largest = max(to_run, key=lambda shape: shape[0] * shape[1], default=(args.size, args.size))
    most = max(map(len, plan_groups(pairs, content_images, len(pairs))), default=1)
    group_size = batch_size(args.batch_size, device, largest, settings, most)
    groups = plan_groups(pairs, content_images, group_size)
    levels = batch_levels_text(args.iterations, args.scales, shapes or [(args.size, args.size)])
    print(f"StyleTransfer batch: {counted(len(contents), 'content')} x {counted(len(styles), 'style')} = "
          f"{counted(len(pairs), 'pair')}, "
          f"{model_text(settings)} on {device}, {args.optimizer}, long side {args.size} px, {levels}, "
          f"up to {group_size} at a time -> {printable_name(str(folder))}", flush=True)
    if groups:
        check_network(settings["model"], settings["weights"])
    interrupted = False
    queue = deque(groups)
    while queue:
        group = queue.popleft()
        if len(group) > group_size:  # larger than a group that ran out of memory allows: split first
            queue.extendleft(reversed(split_group(group, group_size)))
            continue
        progress.start(group)
        try:
            settled = run_group(group, content_images, style_images, args=args, settings=settings,
                                callback=progress)
        except KeyboardInterrupt:  # outside the optimization (which keeps its best images itself)
            settled = interrupted = True  # also when it came as the last files were written
            for pair in group:
                if pair.status == NOT_RUN:
                    pair.status = INTERRUPTED
        if not settled:  # no room for the pairs together: next, half as many at a time, for the rest too
            progress.take_back()
            group_size = (len(group) + 1) // 2  # 3 as 2 + 1; 1 only when the group was 2
            queue.appendleft(group)
            continue
        progress.finish(group)
        interrupted = interrupted or any(pair.status == INTERRUPTED for pair in group)
        if interrupted:
            break
    progress.finish_settled()
    written = None
    try:
        headers = [sheet_headers(shapes, args.max_pixels) for shapes in (content_shapes, style_shapes)]
        with interrupt_deferred():  # drawn and saved in seconds: a Ctrl-C meanwhile waits for it
            written = write_contact_sheet(pairs, *headers, sheet, inputs)
    except WriteError as error:  # a full disk, say: the summary still says what became of each pair
        sheet = error
    except KeyboardInterrupt:  # the same: every pair has its outcome
        interrupted = True
        if written is None:  # it came as the inputs were read for the sheet
            sheet = WriteError(SHEET_INTERRUPTED)
    print_summary(pairs, sheet)
    return batch_exit_status(pairs, interrupted, sheet_written=not isinstance(sheet, WriteError))


# ---------------------------------------------------------------------------
# Running the command line
# ---------------------------------------------------------------------------


def model_text(settings: dict) -> str:
    """The model as a run's first line names it: 'vgg19', or 'vgg19 (random weights)' for
    --weights none, whose results are not style transfer (tests and timing)."""
    return settings["model"] + (" (random weights)" if settings["weights"] is None else "")


def is_batch(args: argparse.Namespace) -> bool:
    """Batch mode: --contents or --styles given (check_batch_arguments asks for both)."""
    return bool(args.batch_contents or args.batch_styles)


def sample_style_stands_in(args: argparse.Namespace) -> bool:
    """A single run given no STYLE: the sample painting is its style (single_run_sources)."""
    return not (args.styles or is_batch(args))


def single_run_sources(args: argparse.Namespace) -> list[str]:
    """CONTENT and the STYLEs as typed, or the bundled samples where none were."""
    content = str(SAMPLE_CONTENT) if args.content is None else args.content
    return [content, *(args.styles or [str(SAMPLE_STYLE)])]


def swallowed_images_hint(args: argparse.Namespace) -> str:
    """Added to an error in the flags' values when no STYLE (or no CONTENT either) was read
    and a list flag ends in an image file name (list_flag_hint): 'StyleTransfer.py
    --style-masks m.png photo.jpg art.jpg' reads three masks, and 'photo.jpg --style-masks
    m.png art.jpg' two, for the sample style."""
    if not sample_style_stands_in(args):
        return ""
    return list_flag_hint({"--style-layers": args.style_layers, "--style-masks": args.style_masks},
                          "CONTENT and STYLE" if args.content is None else "STYLE")


def sample_notes(args: argparse.Namespace) -> list[str]:
    """A note when a CONTENT was given without a STYLE: the sample painting stands in, which a
    forgotten style (or one a list flag took) would otherwise make without a word."""
    if args.content is None or not sample_style_stands_in(args):
        return []
    return [f"no STYLE given: using the sample {typed_path(SAMPLE_STYLE)}"]


def style_notes(styles: list[str], blend_weights, masks) -> list[str]:
    """Notes on a single run's STYLEs that do less than they may seem to: one of blend weight
    0 is not applied, and one given twice without masks only weighs more in the blend (with
    masks, the same painting in two regions is what they are for). ``blend_weights`` have
    been checked (check_styles)."""
    weights = normalized_blend_weights(len(styles), blend_weights)
    notes = [f"the style {style} has blend weight 0: it is not applied"
             for style, weight in zip(styles, weights) if weight == 0]
    if masks is None:
        shares = {}  # what identifies a style -> (how it was first written, its weights' sum, times given)
        for style, weight in zip(styles, weights):
            if weight == 0:  # noted above
                continue
            key = style if is_url(style) else str(real_path(style))
            written, share, times = shares.get(key, (style, 0.0, 0))
            shares[key] = written, share + weight, times + 1
        notes += [f"the style {written} is given {'twice' if times == 2 else f'{times} times'} without masks: "
                  f"it weighs as one style of blend weight {share:.3g}"
                  for written, share, times in shares.values() if times > 1]
    return notes


def run(args: argparse.Namespace) -> int:
    """Check the arguments, then a single run or a batch. Returns the exit status."""
    trim_addresses(args, "content", "styles", "style_masks", "batch_contents", "batch_styles")
    check_image_arguments(args)
    check_output_arguments(args)
    settings = settings_from_args(args)
    batch_mode = is_batch(args)
    sources = [] if batch_mode else single_run_sources(args)
    try:
        check_settings(**settings)
        if not batch_mode:
            check_styles(len(sources) - 1, args.style_blend_weights, args.style_masks)
    except StyleTransferError as error:
        raise StyleTransferError(f"{error}{swallowed_images_hint(args)}") from None
    notes = [] if batch_mode else style_notes(sources[1:], args.style_blend_weights, args.style_masks)
    for note in [*sample_notes(args), *unused_flags(args), *notes]:
        print_note(note)
    if args.device == "cpu":
        keep_off_the_gpus()
    if batch_mode:
        return run_batch(args, settings)
    return run_single(args, settings, sources)


def input_shapes(args: argparse.Namespace, sources: list[str], stored: list) -> tuple[tuple, list]:
    """The (height, width) of the content and of each style (``sources``, as typed; their
    shapes on disk ``stored``: stored_shape, from the files' headers) as load_single_inputs
    loads them: enough to check the memory before decoding anything. An image too small for
    VGG is refused here, by its name as typed (a URL, not the file it was downloaded to)."""
    (content, *styles), (content_stored, *style_stored) = sources, stored
    loading = style_loading(args.size, args.style_scale)
    return (loaded_shape(content_stored, args.size, what=content),
            [loaded_shape(shape, what=style, **loading) for style, shape in zip(styles, style_stored)])


def load_single_inputs(args: argparse.Namespace, paths: list) -> tuple[np.ndarray, list]:
    """The content and the styles of a single run, as arrays, from local files (``paths``:
    URLs already downloaded by local_image)."""
    content_path, *style_paths = paths
    content = load_image(content_path, args.size, args.max_pixels)
    loading = style_loading(args.size, args.style_scale)
    return content, [load_image(path, max_pixels=args.max_pixels, **loading) for path in style_paths]


def load_single_masks(args: argparse.Namespace, mask_paths: list | None, photo_shape: tuple) -> list | None:
    """The region masks of a single run (None, or one per style) at the photo's
    (height, width) ``photo_shape``, from local files (``mask_paths``), each noted when it
    is all black or stretched to the photo."""
    if mask_paths is None:
        return None
    masks = []
    for path, file in zip(args.style_masks, mask_paths):  # path: as given; file: as read
        mask = load_mask(file, args.max_pixels)  # at its own size: is it stretched?
        masks.append(resize_image(mask[..., None], photo_shape)[..., 0])
        if is_black(masks[-1]):  # allowed (it switches a style off), but more often a wrong file
            print_note(f"the mask {path} is all black: its style is not applied anywhere")
        for note in stretched_note(f"the mask {path}", mask.shape, photo_shape):
            print_note(note)
    return masks


def single_init_note(args: argparse.Namespace, sources: list[str], paths: list, weights: list,
                     photo_shape: tuple) -> list[str]:
    """With --init style, the note (in a list) when the painting it starts from, the style of
    the largest applied blend weight ``weights`` (initial_image's choice), is stretched to the
    photo's ``photo_shape`` (init_style_note)."""
    if args.init != "style":
        return []
    chosen = 1 + int(np.argmax(weights))
    return init_style_note(sources[chosen], paths[chosen], photo_shape, args.max_pixels)


def run_single(args: argparse.Namespace, settings: dict, sources: list[str]) -> int:
    """One content with its style(s): stylize, write every output. Returns the exit status."""
    if args.batch_size != AUTO:
        raise StyleTransferError("--batch-size is for batch mode (--contents and --styles)")
    # A missing or unreadable file first (its header only): 'out.png exists' before 'no such
    # file: photo.jpg' asked for an --overwrite that would not have helped. URLs are
    # downloaded once the output is reserved.
    for source in [*sources, *(args.style_masks or [])]:
        if not is_url(source):
            stored_shape(source, args.max_pixels)
    with reserved_output("_".join(source_stem(source) for source in sources), args.output,
                         [*sources, *(args.style_masks or [])], args.overwrite,
                         siblings=lambda path: run_files(path, args.gif), another=another_result) as output:
        return stylize_into(output, args, settings, sources)


def stylize_into(output: Path, args: argparse.Namespace, settings: dict, sources: list[str]) -> int:
    """run_single's work once ``output`` is reserved: check the memory, load, stylize, write."""
    # URLs are downloaded here, once the output is known to be writable.
    for note in earlier_download_notes([*sources, *(args.style_masks or [])]):
        print_note(note)
    paths = [local_image(source, max_pixels=args.max_pixels) for source in sources]
    mask_paths = None if args.style_masks is None else \
        [local_image(mask, max_pixels=args.max_pixels) for mask in args.style_masks]
    device = resolve_device(args.device)
    stored = [stored_shape(path, args.max_pixels) for path in paths]
    content_shape, style_shapes = input_shapes(args, sources, stored)
    # Before decoding (masks too): at a large --size x --style-scale the decoded images alone are gigabytes.
    need = settings_memory(content_shape, settings, device, style_shapes=style_shapes)
    check_memory(need, settings, device)
    content, styles = load_single_inputs(args, paths)
    masks = load_single_masks(args, mask_paths, content.shape[:2])
    weights = used_blend_weights(len(styles), args.style_blend_weights, masks)
    applied = [style for style, weight in zip(sources[1:], weights) if weight > 0]  # the others: noted as such
    for note in [*size_notes(sources[:1], applied, dict(zip(sources, stored)), args.size, args.style_scale),
                 *single_init_note(args, sources, paths, weights, content.shape[:2])]:
        print_note(note)
    digests = input_digests(paths[0], paths[1:], mask_paths)  # the files just read
    height, width = content.shape[:2]
    size, floor = max(height, width), smallest_long_side(content.shape)
    scales = resolve_scales(args.scales, size, args.iterations, floor)
    counts = level_iterations(args.iterations, scales)
    precision = resolve_precision(args.precision, device)
    levels = levels_text(args.iterations, scales, size, floor)
    print(f"StyleTransfer: {model_text(settings)} on {device}, {args.optimizer}, {precision}, "
          f"{width}x{height} px, {levels}, about {need.total / GIB:.1f} GiB -> {printable_name(str(output))}",
          flush=True)

    bar = ProgressBar(sum(counts), output if args.save_every else None)
    try:
        with out_of_memory_named():
            result = stylize(content, styles, **{**settings, "style_masks": masks}, callback=bar,
                             keep_frames=args.gif)
    except tf.errors.ResourceExhaustedError:  # the estimate is checked on a CPU only
        raise StyleTransferError(f"out of memory: {memory_advice(settings, device, need)}") from None
    finally:
        bar.finish()
    if result.interrupted_at_once:  # reserved_output gives the name back
        print(f"interrupted {NOTHING_WRITTEN}", file=sys.stderr)
        return EXIT_INTERRUPTED
    trace = run_trace(args, output, sources[0], sources[1:], settings, result, digests)
    paths = output_paths(output)
    status = None
    try:
        with interrupt_deferred():  # a Ctrl-C now waits until the files are written and named
            removed = write_outputs(paths, content, styles, result, trace, args.gif)
            status = report_outcome(result, paths, args, trace["seconds"], [removed] if removed else [])
    except KeyboardInterrupt:  # it came while they were written
        if status == EXIT_INTERRUPTED:  # a second Ctrl-C, and report_outcome has said it was interrupted
            return status
        raise  # run_cli says 'interrupted'
    return status


def report_outcome(result: StylizeResult, paths: dict, args: argparse.Namespace, seconds: float,
                   notes: list[str] = ()) -> int:
    """How a single run ended, and where its files are (``notes``: write_outputs's). Returns
    the exit status."""
    output = paths["image"]
    if result.stopped_early == INTERRUPTED:
        beside = "trace, panel, loss curve and GIF" if args.gif else "trace, panel and loss curve"
        print(printable_name(f"interrupted: the best image so far is in {output} ({beside} beside it)"),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    for note in [*result.notes, *notes]:
        print_note(note)
    if result.non_finite:
        kept = "the image with the lowest finite loss" if any(np.isfinite(row["total"]) for row in result.history) \
            else "no image had a finite loss; the one it started from"
        fix = "a lower --learning-rate or lower loss weights" if args.optimizer == "adam" else "lower loss weights"
        print(printable_name(f"error: stopped: {result.stopped_early}; {kept} is in {output}. Try {fix}."),
              file=sys.stderr)
        return EXIT_FAILED
    written = ", ".join(str(p) for key, p in paths.items() if key != "gif" or args.gif)
    loss = "" if result.loss is None else f", loss {result.loss:.3g}"
    print(printable_name(f"done in {seconds:.1f} s{loss}: {written}"))
    return 0


def main(argv: list[str] | None = None) -> None:
    argv, command = invocation(__file__, argv)
    args = build_parser().parse_args(argv)
    args.command = command  # for the JSON trace
    run_cli(lambda: run(args))


if __name__ == "__main__":
    main()
