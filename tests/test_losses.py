"""The loss functions against hand-computed values (no network needed)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import ContentModel
import StyleModel
import StyleTransfer
from ContentModel import StyleTransferError


# --- Gram matrix -------------------------------------------------------------------


def numpy_gram(features: np.ndarray) -> np.ndarray:
    """G[b, c, d] = sum over positions of F[c] * F[d], divided by the number of positions."""
    batch, height, width, channels = features.shape
    gram = np.zeros((batch, channels, channels), dtype=np.float64)
    for b in range(batch):
        for c in range(channels):
            for d in range(channels):
                total = 0.0
                for i in range(height):
                    for j in range(width):
                        total += float(features[b, i, j, c]) * float(features[b, i, j, d])
                gram[b, c, d] = total / (height * width)
    return gram


def test_gram_matrix_matches_numpy_double_loop():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)  # H != W catches axis mix-ups
    gram = StyleModel.gram_matrix(tf.constant(features)).numpy()
    assert gram.shape == (1, 4, 4)
    np.testing.assert_allclose(gram, numpy_gram(features), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gram[0], gram[0].T, rtol=1e-6)  # symmetric


def test_gram_matrix_is_per_image_and_size_independent():
    rng = np.random.default_rng(2)
    features = rng.uniform(size=(2, 3, 4, 3)).astype(np.float32)
    gram = StyleModel.gram_matrix(features).numpy()
    assert gram.shape == (2, 3, 3)
    np.testing.assert_allclose(gram, numpy_gram(features), rtol=1e-5, atol=1e-6)
    # Tiling the feature map 2x2 keeps the correlations: the normalisation is by positions.
    tiled = np.tile(features[:1], (1, 2, 2, 1))
    np.testing.assert_allclose(StyleModel.gram_matrix(tiled).numpy(), gram[:1], rtol=1e-5)


def test_gram_matrix_gradient_equals_automatic_differentiation():
    """feature_products' hand-written gradient F (dG + dG^T) is the one autodiff
    gives for F^T F (written with einsum), with and without a mask."""
    rng = np.random.default_rng(1)
    features = tf.constant(rng.standard_normal((2, 5, 7, 4)), tf.float32)
    mask = tf.constant(rng.uniform(0, 1, (2, 5, 7, 1)), tf.float32)
    weights = tf.constant(rng.standard_normal((2, 4, 4)), tf.float32)  # an asymmetric upstream gradient

    def reference(f, m):
        f = f if m is None else f * m
        count = 35.0 if m is None else tf.reduce_sum(m * m, axis=[1, 2, 3])[:, None, None]
        return tf.einsum("bijc,bijd->bcd", f, f) / count

    for m in (None, mask):
        grads = []
        for function in (StyleModel.gram_matrix, reference):
            with tf.GradientTape() as tape:
                tape.watch(features)
                loss = tf.reduce_sum(weights * function(features, m))
            grads.append(tape.gradient(loss, features).numpy())
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_gram_matrix_of_bfloat16_features_is_float32_with_a_bfloat16_gradient():
    """Mixed precision: the Gram matrix of bfloat16 features is the float32 product of
    their (exact) float32 values; its gradient comes back in bfloat16, within
    bfloat16 rounding of the float32 gradient."""
    rng = np.random.default_rng(5)
    values = tf.cast(tf.constant(rng.standard_normal((1, 6, 8, 16)), tf.float32), tf.bfloat16)
    exact = tf.cast(values, tf.float32)
    upstream = tf.constant(rng.standard_normal((1, 16, 16)), tf.float32)
    results = []
    for features in (values, exact):
        with tf.GradientTape() as tape:
            tape.watch(features)
            gram = StyleModel.gram_matrix(features)
            loss = tf.reduce_sum(upstream * gram)
        results.append((gram, tape.gradient(loss, features)))
    (gram, gradient), (exact_gram, exact_gradient) = results
    assert gram.dtype == tf.float32 and gradient.dtype == tf.bfloat16
    np.testing.assert_allclose(gram.numpy(), exact_gram.numpy(), rtol=1e-6, atol=1e-6)
    scale = np.abs(exact_gradient.numpy()).max()
    np.testing.assert_allclose(tf.cast(gradient, tf.float32).numpy(), exact_gradient.numpy(),
                               atol=0.02 * scale)


def test_gram_matrix_returns_float32_for_half_precision_input():
    features = tf.ones((1, 2, 2, 3), dtype=tf.float16)
    gram = StyleModel.gram_matrix(features)
    assert gram.dtype == tf.float32
    np.testing.assert_allclose(gram.numpy(), np.ones((1, 3, 3)))


# --- content loss ------------------------------------------------------------------


def test_content_loss_known_values():
    zeros = tf.zeros((1, 4, 6, 8))
    ones = tf.ones((1, 4, 6, 8))
    assert float(ContentModel.content_loss(zeros, ones)) == pytest.approx(1.0)
    assert float(ContentModel.content_loss(ones, ones)) == 0.0
    assert float(ContentModel.content_loss(3.0 * ones, ones)) == pytest.approx(4.0)


def test_content_loss_is_the_mean_squared_difference():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(1, 3, 5, 2)).astype(np.float32)
    b = rng.normal(size=(1, 3, 5, 2)).astype(np.float32)
    expected = np.mean((a.astype(np.float64) - b) ** 2)
    assert float(ContentModel.content_loss(a, b)) == pytest.approx(expected, rel=1e-5)


# --- style loss --------------------------------------------------------------------


def test_style_loss_weighted_sum_of_mean_squared_gram_differences():
    grams = [tf.zeros((1, 2, 2)), tf.fill((1, 3, 3), 2.0)]
    targets = [tf.ones((1, 2, 2)), tf.zeros((1, 3, 3))]
    # layer 1: mean((0-1)^2) = 1; layer 2: mean((2-0)^2) = 4
    assert float(StyleModel.style_loss(grams, targets, [0.25, 0.75])) == pytest.approx(0.25 * 1 + 0.75 * 4)
    assert float(StyleModel.style_loss(grams, targets, [1.0, 0.0])) == pytest.approx(1.0)
    assert float(StyleModel.style_loss(grams, targets, [0.0, 1.0])) == pytest.approx(4.0)
    assert float(StyleModel.style_loss(targets, targets, [0.5, 0.5])) == 0.0


def test_style_loss_on_random_grams_matches_numpy():
    rng = np.random.default_rng(4)
    grams = [rng.normal(size=(1, c, c)).astype(np.float32) for c in (2, 4, 3)]
    targets = [rng.normal(size=(1, c, c)).astype(np.float32) for c in (2, 4, 3)]
    weights = [0.2, 0.3, 0.5]
    expected = sum(w * np.mean((g.astype(np.float64) - t) ** 2) for g, t, w in zip(grams, targets, weights))
    assert float(StyleModel.style_loss(grams, targets, weights)) == pytest.approx(expected, rel=1e-5)


# --- total variation ---------------------------------------------------------------


def test_total_variation_is_zero_on_a_constant_image():
    image = tf.fill((1, 5, 7, 3), 0.37)
    assert float(StyleTransfer.total_variation_loss(image)) == 0.0


def test_total_variation_hand_computed():
    # One channel, 2 x 3 pixels:
    #   0 1 3
    #   2 2 5
    # vertical differences 2, 1, 2 -> squares 4, 1, 4 -> mean 3
    # horizontal differences 1, 2, 0, 3 -> squares 1, 4, 0, 9 -> mean 3.5
    image = tf.constant([[[[0.0], [1.0], [3.0]], [[2.0], [2.0], [5.0]]]])
    assert tuple(image.shape) == (1, 2, 3, 1)
    assert float(StyleTransfer.total_variation_loss(image)) == pytest.approx(3.0 + 3.5)


def test_total_variation_of_stripes_depends_on_direction_of_change():
    # Vertical stripes (change along the width only): every horizontal difference is +-1.
    stripes = np.zeros((1, 4, 4, 1), dtype=np.float32)
    stripes[:, :, 1::2, :] = 1.0
    assert float(StyleTransfer.total_variation_loss(stripes)) == pytest.approx(1.0)
    # A single step down the middle: 1 of 3 row pairs differs -> 1/3 (no horizontal part).
    step = np.zeros((1, 4, 4, 1), dtype=np.float32)
    step[:, 2:, :, :] = 1.0
    assert float(StyleTransfer.total_variation_loss(step)) == pytest.approx(1.0 / 3.0)


def test_total_variation_gradient_equals_automatic_differentiation():
    """The hand-written gradient is the one autodiff gives for the same mean of
    squared differences written with slices, on a batch of odd-sized images."""
    image = tf.constant(np.random.default_rng(4).uniform(size=(2, 5, 7, 3)), tf.float32)

    def reference(x):
        down, right = x[:, 1:] - x[:, :-1], x[:, :, 1:] - x[:, :, :-1]
        return tf.reduce_mean(tf.square(down)) + tf.reduce_mean(tf.square(right))

    grads = []
    for function in (StyleTransfer.total_variation_loss, reference):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = 3.0 * function(image)  # an upstream gradient other than 1
        grads.append(tape.gradient(loss, image).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)
    assert np.abs(grads[0]).max() > 0.01


def test_total_variation_of_a_single_row_is_its_horizontal_part():
    row = np.array([[[[0.0], [1.0], [3.0]]]], np.float32)  # no vertical neighbours at all
    assert float(StyleTransfer.total_variation_loss(row)) == pytest.approx((1.0 + 4.0) / 2)


# --- style layer weights -----------------------------------------------------------


def test_normalized_layer_weights_default_is_equal():
    weights = StyleModel.normalized_layer_weights(["a", "b", "c", "d"])
    assert weights == pytest.approx([0.25] * 4)


def test_normalized_layer_weights_sum_to_one_keeping_ratios():
    weights = StyleModel.normalized_layer_weights(["a", "b", "c"], [1, 3, 0])
    assert weights == pytest.approx([0.25, 0.75, 0.0])
    assert sum(weights) == pytest.approx(1.0)


def test_weights_near_the_largest_float_keep_their_ratios():
    """Weights such as 1e308, 1e308: their sum overflowed to inf, every weight came out 0
    and the style was silently not applied (or palette raised ZeroDivisionError: a
    traceback). They are scaled by the largest first."""
    assert StyleModel.normalized_layer_weights(["a", "b", "c"], [1e308, 1e308, 0]) == pytest.approx([0.5, 0.5, 0])
    assert StyleModel.normalized_weights([1.7e308, 5e-324], 2, "blend", "style") == pytest.approx([1, 0])
    image = np.random.default_rng(0).random((4, 4, 3)).astype(np.float32)
    mean, _ = StyleTransfer.palette([image, 1 - image], [1e308, 1e308])
    np.testing.assert_allclose(mean, [0.5] * 3, atol=1e-6)


@pytest.mark.parametrize("weights", [[1.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
def test_normalized_layer_weights_reject_count_mismatch(weights):
    with pytest.raises(StyleTransferError, match="3"):
        StyleModel.normalized_layer_weights(["a", "b", "c"], weights)


@pytest.mark.parametrize("weights", [[1.0, -0.5, 1.0], [0.0, 0.0, 0.0]])
def test_normalized_layer_weights_reject_negative_or_all_zero(weights):
    with pytest.raises(StyleTransferError):
        StyleModel.normalized_layer_weights(["a", "b", "c"], weights)


# --- Mistakes a learner makes with these functions -------------------------------------


def test_shapes_that_would_give_a_wrong_number_are_errors_instead():
    """One image without its batch axis would be read as a batch of rows (a total variation
    off by a few per cent, say), a target of another shape would broadcast, and a list of
    layers one short would drop a layer: each is a ValueError that names the shapes."""
    features = tf.random.stateless_uniform((1, 4, 5, 3), seed=(1, 2))
    gram = StyleModel.gram_matrix(features)
    with pytest.raises(ValueError, match=r"Shape \(4, 5, 3\) must have rank 4"):
        StyleTransfer.total_variation_loss(features[0])
    with pytest.raises(ValueError, match=r"Shape \(4, 5, 3\) must have rank 4"):
        StyleModel.gram_matrix(features[0])
    with pytest.raises(ValueError, match=r"Shapes \(1, 4, 5, 3\) and \(1, 1, 1, 3\) are incompatible"):
        ContentModel.content_loss(features, features[:, :1, :1])
    with pytest.raises(ValueError, match="shorter"):
        StyleModel.style_loss([gram, gram], [gram * 0], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"Shapes \(1, 3, 3\) and \(1, 1, 1\) are incompatible"):
        StyleModel.style_loss([gram], [gram[:, :1, :1]], [1.0])
    # NumPy arrays of the right shapes still do.
    assert float(StyleTransfer.total_variation_loss(features.numpy())) == pytest.approx(
        float(StyleTransfer.total_variation_loss(features)))
