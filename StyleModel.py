"""Style features: Gram matrices of VGG feature maps, from low to high level.

Gatys, Ecker & Bethge (2015) describe a painting's style by the correlations
between feature maps (Gram matrices) at several depths of VGG. This module
builds that multi-layer extractor and the style loss on top of the shared
backbone in ContentModel.py.

Run directly, it shows each layer's Gram matrix as a heat map and a few
feature maps::

    python StyleModel.py images/styles/starry_night.jpg
    python StyleModel.py painting.jpg --layers block1_conv1 block3_conv1 --model vgg19 -o gram.png
"""

from __future__ import annotations

import math
import numbers
import os
from collections import Counter
from pathlib import Path

# ContentModel first: it quiets TensorFlow's start-up logging before TensorFlow loads.
from ContentModel import (
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    DEFAULT_SEED,
    DEFAULT_WEIGHTS,
    FIGURE_SIZE,
    MAX_IMAGE_PIXELS,
    JoinedLists,
    StyleTransferError,
    build_vgg,
    check_count,
    check_layers,
    counted,
    figure_main,
    load_figure_input,
    most_active_text,
    new_figure,
    plot_feature_maps,
    seeded,
    source_name,
    weights_argument,
    weights_note,
)

import numpy as np
import tensorflow as tf

#: The style layers of Gatys et al. (conv1_1 ... conv5_1), low to high level.
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
#: The least a mask's weight (sum of m^2) divides a masked Gram matrix by: only so that a
#: mask black at a layer (a thin line shrunk away at block5) gives 0 there, not 0 / 0. Any
#: weight above it gives the weighted mean, however faint the mask: numerator and divisor
#: shrink together.
MIN_MASK_WEIGHT = 1e-12
#: Feature maps drawn per layer in the StyleModel figure (--count), and the most: one row
#: of the figure each, 2 inches tall (at 100 dpi, 16 rows make it 3,500 px). Every VGG
#: layer has at least 64 channels, so each column has them all.
FEATURE_MAPS_PER_LAYER = 4
MAX_FEATURE_MAPS_PER_LAYER = 16


def gram_matrix(features: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """Feature correlations G_ij = sum_k F_ik F_jk / (number of positions) (Gatys et al.
    2015, eq. 3).

    ``features`` is (batch, height, width, channels); the result is
    (batch, channels, channels). The paper's F is channels x positions; here each
    image is flattened to positions x channels (``flat``), so G = F^T F
    (feature_products). Departure from the paper: dividing by the number of
    positions makes the Gram matrix independent of the image size.
    With a ``mask`` (batch, height, width, 1) in [0, 1], the features are
    weighted by it (Gatys et al. 2017, section 4), so each position's product
    F_ik F_jk counts m_k^2 times, and the sum is divided by sum_k m_k^2 instead of
    the number of positions: a weighted mean, so a uniform mask of any grey (all
    white included) gives the plain Gram matrix, and the grey edges a resized
    mask gets at the deeper layers weigh less without shrinking it. Departure:
    the paper's guided Gram matrix is not divided at all.
    """
    tf.TensorShape(features.shape).with_rank(4)  # (batch, height, width, channels): one image is features[None]
    shape = tf.shape(features)
    if mask is None:
        divisor = tf.cast(shape[1] * shape[2], tf.float32)  # the number of positions
    else:
        features = tf.cast(features, tf.float32) * mask  # weighted in float32
        weight = tf.reduce_sum(tf.square(mask), axis=[1, 2, 3])  # sum_k m_k^2
        divisor = tf.maximum(weight, MIN_MASK_WEIGHT)[:, None, None]
    flat = tf.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))  # (batch, positions, channels)
    return feature_products(flat) / divisor


@tf.custom_gradient
def feature_products(features: tf.Tensor):
    """F^T F in float32 for (batch, positions, channels) features: (batch, channels, channels),
    the product in gram_matrix. The value is tf.matmul(F, F, transpose_a=True); only
    the gradient is hand-written, for speed, not for the maths: automatic differentiation of
    F^T F takes two matrix products, one per factor (F dG^T + F dG); this gradient
    takes one, F (dG + dG^T). At 512 px that makes a VGG19 evaluation 7-8 % faster.
    The product is always float32 (features in bfloat16 are exact in float32);
    the gradient comes in the features' own type, so with bfloat16 features
    (--precision mixed) F (dG + dG^T) is a bfloat16 product, about twice as fast
    on a CPU with AVX-512 BF16, and rounded no further than the bfloat16 layers
    below would round it anyway (only dG + dG^T is rounded to bfloat16 first).
    Not done, measured four times: 2-D products for a batch of one (MatMul instead of
    BatchMatMul) take about 11 % off these products, 1-2 % of an evaluation (benchmarks/README.md).
    """
    exact = tf.cast(features, tf.float32)

    def gradient(upstream):
        symmetric = upstream + tf.linalg.matrix_transpose(upstream)
        return tf.matmul(features, tf.cast(symmetric, features.dtype))

    return tf.matmul(exact, exact, transpose_a=True), gradient


def normalized_weights(weights, count: int, what: str, of: str) -> list[float]:
    """``count`` non-negative weights scaled to sum to 1 (equal when ``weights`` is None):
    ``what`` weights, one for each of the ``count`` ``of`` (for the error messages)."""
    if weights is not None and (isinstance(weights, (str, bytes, dict)) or not hasattr(weights, "__len__")
                                or not all(isinstance(w, numbers.Real) and not isinstance(w, bool) for w in weights)):
        # else a string's characters, or a dict's keys, would be read as the weights
        raise StyleTransferError(f"{what} weights must be a list of numbers, one per {of} (got {weights!r})")
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(weights) != count:
        raise StyleTransferError(f"{counted(len(weights), f'{what} weight')} given for {counted(count, of)}")
    if any(not math.isfinite(w) or w < 0 for w in weights) or max(weights, default=0) <= 0:
        raise StyleTransferError(f"{what} weights must be finite, non-negative and not all zero")
    # Scaled by the largest first: the sum of weights near the largest float (1e308, 1e308)
    # would be inf, and every weight 0.
    largest = max(weights)
    weights = [w / largest for w in weights]
    return [w / sum(weights) for w in weights]


def normalized_layer_weights(layers, weights=None) -> list[float]:
    """Per-layer style weights summing to 1 (equal by default, as in the paper, whose
    rescaled VGG made equal weights weigh the layers alike: see build_vgg)."""
    return normalized_weights(weights, len(layers), "style layer", "style layer")


def style_loss(grams, targets, layer_weights) -> tf.Tensor:
    """Weighted sum over layers of the mean squared Gram difference (Gatys et al. eq. 4-5).

    Departure from the paper: the paper's E_l has the factor 1 / (4 N^2 M^2) (N
    channels, M positions); gram_matrix already divides G by M, and the mean over
    the N x N entries divides by N^2, so each layer's term here is 4 E_l, a constant
    factor the style weight absorbs.
    Summed as one stacked tensor, not with tf.add_n: TensorFlow's graph optimizer
    may turn an add_n of more than two inputs into accumulation in whatever order
    they are ready, and the same image's loss then differed in its last bit.
    """
    for gram, target in zip(grams, targets):  # else a target of another shape would broadcast, silently
        tf.TensorShape(gram.shape).assert_is_compatible_with(target.shape)
    return tf.reduce_sum(tf.stack([
        weight * tf.reduce_mean(tf.square(gram - target))
        for gram, target, weight in zip(grams, targets, layer_weights, strict=True)  # one of each per layer
    ]))


def check_style_layers(model: str, layers) -> None:
    """Raise StyleTransferError unless ``layers`` are conv layers of ``model``, each named
    once (a layer given twice would weigh its Gram matrix double, unasked)."""
    check_layers(model, layers)
    repeated = sorted(layer for layer, count in Counter(layers).items() if count > 1)
    if repeated:
        raise StyleTransferError(f"style layer {', '.join(repeated)} given more than once")


def build_style_model(layers=STYLE_LAYERS, model: str = DEFAULT_MODEL,
                      weights: str | None = DEFAULT_WEIGHTS, precision: str = "float32"):
    """The style extractor: VGG features of ``layers``."""
    check_style_layers(model, layers)
    return build_vgg(model, list(layers), weights, precision)


def gram_matrices(features: dict, layers=STYLE_LAYERS) -> list[tf.Tensor]:
    """The style representation: the Gram matrix of each style layer's features."""
    return [gram_matrix(features[name]) for name in layers]


def plot_style(features: dict, grams: list, layers, title: str, count: int = FEATURE_MAPS_PER_LAYER):
    """Heat maps of each layer's Gram matrix above ``count`` of its feature maps (the most active)."""
    figure = new_figure(figsize=(3 * len(layers), 3 + 2 * count), layout="constrained")  # title clear of the axes
    axes = figure.subplots(1 + count, len(layers), squeeze=False)
    figure.suptitle(title, parse_math=False)  # a file name, as written (new_figure)
    for column, (name, gram) in enumerate(zip(layers, grams)):
        gram = np.asarray(gram)[0]
        # log scale: a few large correlations would otherwise hide the rest
        axes[0, column].imshow(np.log1p(np.maximum(gram, 0.0)), cmap="magma")
        axes[0, column].set_title(f"{name}\nGram {gram.shape[0]}x{gram.shape[1]}, max {gram.max():.3g}\n"
                                  "shown as log(1 + G)", fontsize=9)
        axes[0, column].axis("off")
        # Under the layer's Gram matrix, whose title names the layer.
        plot_feature_maps(np.asarray(features[name], dtype=np.float32)[0], count=count, axes=axes[1:, column])
    return figure


def show_style_features(
    image_path: str | os.PathLike,
    *,
    layers=STYLE_LAYERS,
    model: str = DEFAULT_MODEL,
    weights: str | None = DEFAULT_WEIGHTS,
    size: int = FIGURE_SIZE,
    count: int = FEATURE_MAPS_PER_LAYER,
    max_pixels: int = MAX_IMAGE_PIXELS,
    precision: str = DEFAULT_PRECISION,
):
    """Style features of one image, a file or an http(s) URL: returns (Gram matrices, figure)."""
    check_count(count, MAX_FEATURE_MAPS_PER_LAYER)
    check_style_layers(model, layers)  # a layer given twice: said before the memory check counts it twice
    image = load_figure_input(image_path, size, max_pixels, model=model, weights=weights, precision=precision,
                              layers=layers)
    with seeded(DEFAULT_SEED):  # random weights: the same figure every time
        extractor = build_style_model(layers, model, weights, precision)
    features = extractor(image[None])
    grams = gram_matrices(features, layers)
    figure = plot_style(features, grams, layers, f"{source_name(image_path)}: {model}{weights_note(weights)} "
                        f"style features;\nfeature maps: {most_active_text(count)}", count)
    return grams, figure


def main(argv: list[str] | None = None) -> None:
    def add_arguments(parser):
        # --style-layers too: StyleTransfer.py's name for them.
        layers = parser.add_argument("--layers", "--style-layers", nargs="+", action=JoinedLists,
                                     default=list(STYLE_LAYERS), help="style layers")
        parser.add_argument("--count", type=int, default=FEATURE_MAPS_PER_LAYER,
                            help=f"feature maps shown per layer (at most {MAX_FEATURE_MAPS_PER_LAYER})")
        return [layers]

    def draw(args):
        grams, figure = show_style_features(args.image, layers=args.layers, model=args.model,
                                            weights=weights_argument(args.weights), size=args.size,
                                            count=args.count, max_pixels=args.max_pixels, precision=args.precision)
        return figure, [f"{args.model} {name}: Gram matrix {tuple(gram.shape[1:])}"
                        for name, gram in zip(args.layers, grams)]

    figure_main(argv, script=Path(__file__).name,
                description="Show a painting's style features: each layer's Gram matrix and a few feature maps.",
                image_help="painting to look at", suffix="_style_features", add_arguments=add_arguments,
                draw=draw, check=lambda args: check_count(args.count, MAX_FEATURE_MAPS_PER_LAYER))


if __name__ == "__main__":
    main()
