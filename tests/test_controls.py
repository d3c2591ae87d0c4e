"""Controls beyond Gatys 2015: multi-scale, colour preservation, several styles,
style scale and region masks (Gatys et al. 2017)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ContentModel
import StyleTransfer
from ContentModel import StyleTransferError, build_vgg, load_image, resize_image, resize_long, smallest_long_side
from StyleModel import gram_matrix
from StyleTransfer import (
    PANEL_FADED_ALPHA,
    level_sizes,
    luminance_image,
    match_color_histogram,
    recombine_luminance,
    rgb_to_yiq,
    stylize,
)

SIZE = 64
# float32: these tests compare runs for equality, and bfloat16 rounding lets nearly equal
# runs drift apart within a few L-BFGS iterations.
FAST = dict(iterations=3, model="vgg19", weights="imagenet", save_every=0, precision="float32")


@pytest.fixture(scope="module")
def images(sample_images, repo_root, vgg19_weights):
    content = load_image(sample_images[0], SIZE)
    style_a = load_image(sample_images[1], SIZE)
    style_b = load_image(repo_root / "images" / "styles" / "great_wave.jpg", SIZE)
    style_c = load_image(repo_root / "images" / "styles" / "shipwreck.jpg", SIZE)
    return content, style_a, style_b, style_c


# --- colour ------------------------------------------------------------------------


def test_histogram_matching_gives_the_style_the_contents_mean_and_covariance(images):
    content, style, _, _ = images
    matched = match_color_histogram(style, content)
    pixels, target = matched.reshape(-1, 3), content.reshape(-1, 3)
    # Clipping to [0, 1] moves a few pixels, hence the tolerance.
    np.testing.assert_allclose(pixels.mean(axis=0), target.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(np.cov(pixels, rowvar=False), np.cov(target, rowvar=False), atol=0.005)
    # and it really changed the style's colours
    assert np.abs(style.reshape(-1, 3).mean(axis=0) - target.mean(axis=0)).max() > 0.05


def test_luminance_recombination_keeps_the_content_colour_channels(images):
    content, style, _, _ = images
    stylized = np.clip(style[: content.shape[0], : content.shape[1]] * 0.5 + 0.25, 0, 1)
    stylized = np.resize(stylized, content.shape).astype(np.float32)
    result = recombine_luminance(stylized, content)
    iq_result, iq_content = rgb_to_yiq(result)[..., 1:], rgb_to_yiq(content)[..., 1:]
    assert np.abs(iq_result - iq_content).mean() < 0.01
    np.testing.assert_allclose(rgb_to_yiq(result)[..., 0], rgb_to_yiq(stylized)[..., 0], atol=0.05)


def test_luminance_mode_output_has_the_contents_colours(images):
    content, style, _, _ = images
    # 6 iterations, so that the luminance has clearly moved: after 3 it had moved by 0.010-0.011
    # on average with every preconditioner, at the threshold below; after 6 by 0.017-0.021.
    result = stylize(content, style, preserve_colors="luminance", **{**FAST, "iterations": 6})
    iq_result, iq_content = rgb_to_yiq(result.image)[..., 1:], rgb_to_yiq(content)[..., 1:]
    assert np.abs(iq_result - iq_content).mean() < 0.01
    # while the luminance did change
    assert np.abs(rgb_to_yiq(result.image)[..., 0] - rgb_to_yiq(content)[..., 0]).mean() > 0.01


def test_a_styles_luminance_takes_the_photos_brightness_and_contrast():
    rng = np.random.default_rng(4)
    # Luminances well inside [0, 1] before and after, so that no clipping blurs the check.
    photo = rng.uniform(0.3, 0.7, (24, 32, 3)).astype(np.float32)
    style = rng.uniform(0.45, 0.55, (20, 30, 3)).astype(np.float32)
    grey = luminance_image(style, like=photo)
    assert grey.shape == style.shape
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    target = rgb_to_yiq(photo)[..., 0]
    assert abs(grey[..., 0].mean() - target.mean()) < 1e-4
    assert abs(grey[..., 0].std() - target.std()) < 1e-3
    # the style's own luminance had another spread: it really was matched
    assert abs(rgb_to_yiq(style)[..., 0].std() - target.std()) > 0.02


def test_luminance_mode_optimizes_grey_images_and_histogram_mode_recoloured_styles(images):
    content, style, _, _ = images
    grey_content, [grey_style] = StyleTransfer.color_controlled(content, [style], "luminance")
    for grey in (grey_content, grey_style):
        np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
        np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    np.testing.assert_allclose(grey_content[..., 0], rgb_to_yiq(content)[..., 0], atol=1e-6)
    same_content, [matched] = StyleTransfer.color_controlled(content, [style], "histogram")
    assert same_content is content
    np.testing.assert_allclose(matched, match_color_histogram(style, content))
    assert StyleTransfer.color_controlled(content, [style], "none") == (content, [style])


@pytest.mark.parametrize("mode", ["luminance", "histogram"])
def test_greyscale_inputs_do_not_produce_nan(images, mode):
    content, style, _, _ = images
    grey_content = np.repeat(content.mean(axis=-1, keepdims=True), 3, axis=-1)
    grey_style = np.repeat(style.mean(axis=-1, keepdims=True), 3, axis=-1)
    assert np.isfinite(match_color_histogram(grey_style, grey_content)).all()
    assert np.isfinite(luminance_image(grey_style, like=grey_content)).all()
    result = stylize(grey_content, grey_style, preserve_colors=mode, **{**FAST, "iterations": 2})
    assert np.isfinite(result.image).all()
    assert result.stopped_early is None


# --- several styles, masks ---------------------------------------------------------


def test_blend_weights_one_zero_equal_that_style_alone(images):
    content, style_a, style_b, _ = images
    alone = stylize(content, [style_a], **FAST)
    blended = stylize(content, [style_a, style_b], style_blend_weights=[1, 0], **FAST)
    np.testing.assert_allclose(blended.image, alone.image, atol=1e-4)
    other = stylize(content, [style_a, style_b], style_blend_weights=[0.5, 0.5], **FAST)
    assert np.abs(other.image - alone.image).max() > 1e-2


def test_blend_weights_weigh_each_styles_loss(images):
    """The blended style loss is the weighted sum of each style's own loss, the weights
    divided by their sum (random VGG weights: this is arithmetic, not looks)."""
    content, style_a, style_b, _ = images
    extractor = build_vgg("vgg19", [StyleTransfer.CONTENT_LAYER, *StyleTransfer.STYLE_LAYERS], None)
    features = extractor(np.random.default_rng(5).uniform(0, 1, (1, *content.shape)).astype(np.float32))

    def style_loss(styles, weights=None):
        objective = StyleTransfer.build_objective(extractor, content, styles, blend_weights=weights)
        return float(objective.blended_style_loss(features))

    alone_a, alone_b = style_loss([style_a]), style_loss([style_b])
    # Else any weighting would pass; 1 % apart is plenty against the rtol of 1e-5 below.
    assert alone_a != pytest.approx(alone_b, rel=0.01)
    np.testing.assert_allclose(style_loss([style_a, style_b], [3, 1]), 0.75 * alone_a + 0.25 * alone_b, rtol=1e-5)
    np.testing.assert_allclose(style_loss([style_a, style_b]), 0.5 * alone_a + 0.5 * alone_b, rtol=1e-5)


def test_blend_weights_are_normalised(images):
    content, style_a, style_b, _ = images
    small = stylize(content, [style_a, style_b], style_blend_weights=[0.7, 0.3], **FAST)
    large = stylize(content, [style_a, style_b], style_blend_weights=[7, 3], **FAST)
    np.testing.assert_allclose(small.image, large.image, atol=1e-4)


def test_masked_gram_matrix_with_a_white_mask_is_the_plain_one():
    features = tf.random.stateless_uniform((1, 6, 5, 4), seed=(1, 2))
    white = tf.ones((1, 6, 5, 1))
    np.testing.assert_allclose(gram_matrix(features, white), gram_matrix(features), rtol=1e-5)
    half = np.zeros((1, 6, 5, 1), np.float32)
    half[:, :3] = 1  # the top half: the Gram matrix of those positions alone
    np.testing.assert_allclose(gram_matrix(features, half), gram_matrix(features[:, :3]), rtol=1e-5)


def test_masked_gram_matrix_is_a_weighted_mean():
    """A mask weighs each position's product by m^2 and divides by the sum of m^2: a
    uniform grey mask gives the plain Gram matrix (divided by the mask's area, sum m, it
    came out m times too small, and the style loss pushed the features up to make up),
    and a grey half weighs its positions less without shrinking the matrix."""
    features = tf.random.stateless_uniform((1, 6, 5, 4), seed=(3, 4))
    grey = tf.fill((1, 6, 5, 1), 0.5)
    np.testing.assert_allclose(gram_matrix(features, grey), gram_matrix(features), rtol=1e-5)
    # However faint and however few the positions (block5 of a small run): with a weight of
    # 8 x (16/255)^2 = 0.03 it came out 0.03 times the plain one, divided by a floor of 1.
    deep = tf.random.stateless_uniform((1, 2, 4, 8), seed=(5, 6))
    faint = tf.fill((1, 2, 4, 1), 16 / 255)
    np.testing.assert_allclose(gram_matrix(deep, faint), gram_matrix(deep), rtol=1e-5)
    np.testing.assert_array_equal(gram_matrix(deep, tf.zeros((1, 2, 4, 1))), 0.0)  # black there: 0, not NaN
    weights = np.ones((1, 6, 5, 1), np.float32)
    weights[:, 3:] = 0.5  # the bottom half counts a quarter as much as the top
    top, bottom = gram_matrix(features[:, :3]), gram_matrix(features[:, 3:])
    np.testing.assert_allclose(gram_matrix(features, weights), (top + 0.25 * bottom) / 1.25, rtol=1e-5)


def test_white_masks_equal_no_masks(images):
    content, style_a, style_b, _ = images
    white = np.ones(content.shape[:2], np.float32)
    # From the photo: masked Gram matrices take another float32 path (features times the
    # mask), and from the palette start L-BFGS carried that rounding to 2e-4 in a few pixels.
    plain = stylize(content, [style_a, style_b], init="content", **FAST)
    masked = stylize(content, [style_a, style_b], style_masks=[white, white], init="content", **FAST)
    np.testing.assert_allclose(masked.image, plain.image, atol=1e-4)


def test_a_black_mask_removes_that_styles_effect(images):
    content, style_a, style_b, style_c = images
    white = np.ones(content.shape[:2], np.float32)
    black = np.zeros(content.shape[:2], np.float32)
    with_b = stylize(content, [style_a, style_b], style_masks=[white, black], **FAST)
    with_c = stylize(content, [style_a, style_c], style_masks=[white, black], **FAST)
    # Which style sits under the black mask makes no difference.
    np.testing.assert_allclose(with_b.image, with_c.image, atol=1e-4)
    assert with_b.blend_weights == [[0.5, 0.0]] * len(with_b.sizes)
    unmasked = stylize(content, [style_a, style_b], **FAST)
    assert unmasked.blend_weights == [[0.5, 0.5]] * len(unmasked.sizes)
    assert np.abs(unmasked.image - with_b.image).max() > 1e-2


def test_a_mask_confines_its_style_to_the_white_region():
    """Masked Gram matrices (Gatys et al. 2017, section 4): with the style measured at
    block1_conv1 alone (one 3x3 convolution from the pixels), a mask white on the left half
    gives the style term no gradient at all beyond the convolution's reach into the black half."""
    height, width, half = 32, 40, 20
    extractor = build_vgg("vgg16", ["block1_conv2", "block1_conv1"], None)
    rng = np.random.default_rng(0)
    content, style = (rng.uniform(0, 1, (height, width, 3)).astype(np.float32) for _ in range(2))
    left = np.zeros((height, width), np.float32)
    left[:, :half] = 1.0
    objective = StyleTransfer.build_objective(
        extractor, content, [style], content_layer="block1_conv2", style_layers=["block1_conv1"],
        masks=[left], content_weight=0.0, tv_weight=0.0)
    image = tf.constant(rng.uniform(0, 1, (1, height, width, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(image)
        style_term = objective(image)["style"]
    gradient = np.abs(tape.gradient(style_term, image).numpy()[0])
    assert float(style_term) > 0
    assert np.all(gradient[:, half + 2:] == 0), "the style reached the black half"
    assert np.all(gradient[:, : half - 1].sum(axis=-1) > 0), "the style must act on the white half"


def test_masks_from_the_command_line_are_grey_and_at_the_photos_size(sample_images, tmp_path, run_main,
                                                                      monkeypatch, vgg19_weights):
    """--style-masks: colour files are read as grey (the mean of R, G, B) and resized to the
    photo, whatever their own size."""
    mask_file = tmp_path / "left.png"
    mask = np.zeros((100, 300, 3), np.float32)
    mask[:, :150] = 1.0  # white on the left
    mask[:, 150:, 0] = 0.6  # dark red on the right: grey 0.2
    StyleTransfer.save_image(mask, mask_file)
    tiny_file = tmp_path / "tiny.png"  # smaller than VGG's 32 px minimum, which is for images VGG sees
    StyleTransfer.save_image(resize_image(mask, (12, 36)), tiny_file)
    seen = {}
    real_stylize = StyleTransfer.stylize

    def spy(content, styles, **settings):
        seen.update(content=content, masks=settings["style_masks"])
        return real_stylize(content, styles, **settings)

    monkeypatch.setattr(StyleTransfer, "stylize", spy)
    output = tmp_path / "out.png"
    status, stdout, stderr = run_main([str(sample_images[0]), str(sample_images[1]), str(sample_images[1]),
                                       "--style-masks", str(mask_file), str(tiny_file), "--size", "64",
                                       "--iterations", "1", "--model", "vgg19", "-o", str(output)])
    assert status == 0, stdout + stderr
    masks, content = seen["masks"], seen["content"]
    assert len(masks) == 2 and masks[0].shape == masks[1].shape == content.shape[:2] == (43, 64)
    for mask in masks:
        np.testing.assert_allclose(mask[:, :26], 1.0, atol=2 / 255)
        np.testing.assert_allclose(mask[:, 38:], 0.2, atol=2 / 255)
    trace = json.loads(output.with_suffix(".json").read_text())
    assert trace["settings"]["style_masks"] == [str(mask_file), str(tiny_file)]
    notes = [line for line in stdout.splitlines() if line.startswith("note:")]  # 3:1 masks on a 3:2 photo
    assert notes == [f"note: the mask {mask_file} (300x100) is stretched to the photo's shape (64x43)",
                     f"note: the mask {tiny_file} (36x12) is stretched to the photo's shape (64x43)"], notes


def run_with_masks(sample_images, tmp_path, run_main, masks: dict) -> tuple[list, dict]:
    """A 64-px run of the sample photo in the sample painting twice, one mask each (``masks``:
    file name -> (H, W, 3) array): its note lines and its trace."""
    paths = [tmp_path / name for name in masks]
    for path, mask in zip(paths, masks.values()):
        StyleTransfer.save_image(mask, path)
    status, stdout, stderr = run_main([str(sample_images[0]), str(sample_images[1]), str(sample_images[1]),
                                       "--style-masks", *map(str, paths), "--size", "64",
                                       "--iterations", "1", "--model", "vgg19", "-o", str(tmp_path / "out.png")])
    assert status == 0, stdout + stderr
    notes = [line for line in stdout.splitlines() if line.startswith("note:")]
    return notes, json.loads((tmp_path / "out.json").read_text())


def test_an_all_black_mask_gets_a_note(sample_images, tmp_path, run_main, vgg19_weights, monkeypatch):
    """An all-black mask switches its style off, which is allowed, but said; the panel shows
    that style faded and named so, as it is not in the result."""
    real_plot_panel, panels = StyleTransfer.plot_panel, []

    def plot_panel(*args, **kwargs):  # the real panel, kept to be looked at
        panels.append(real_plot_panel(*args, **kwargs))
        return panels[-1]

    monkeypatch.setattr(StyleTransfer, "plot_panel", plot_panel)
    notes, trace = run_with_masks(sample_images, tmp_path, run_main, {
        "white.png": np.ones((20, 30, 3), np.float32), "black.png": np.zeros((20, 30, 3), np.float32)})
    (panel,) = panels
    assert [axis.get_title() for axis in panel.axes] == ["content", "style 1", "style 2: not applied", "result"]
    assert [axis.get_images()[0].get_alpha() for axis in panel.axes] == [None, None, PANEL_FADED_ALPHA, None]
    assert notes == [f"note: the mask {tmp_path / 'black.png'} is all black: its style is not applied anywhere"], \
        notes
    assert trace["settings"]["style_blend_weights"] is None  # as given: equal
    assert trace["level_blend_weights"] == [[0.5, 0.0]]  # as used: the black mask's style off, the other kept


def test_a_mask_of_another_shape_than_the_photo_gets_a_note(sample_images, tmp_path, run_main, vgg19_weights):
    """Any size will do, but a mask made for a portrait given with a landscape photo is
    stretched: allowed, and said (a mask of the photo's shape at another size is not)."""
    notes, _ = run_with_masks(sample_images, tmp_path, run_main, {
        "portrait.png": np.ones((30, 20, 3), np.float32),
        "landscape.png": np.ones((20, 30, 3), np.float32)})  # 1.5, the photo's 64x43 within 1 %
    assert notes == [f"note: the mask {tmp_path / 'portrait.png'} (20x30) is stretched to the photo's shape "
                     "(64x43)"], notes


def test_init_style_from_a_painting_of_another_shape_gets_a_note(sample_images, tmp_path, run_main, vgg19_weights):
    """--init style resizes the painting of the largest blend weight (a style masked out has
    none) to the photo: a portrait painting on a landscape photo is stretched, which is said,
    with the painting's own size (a landscape one is not), in a batch too."""
    paintings = {"landscape.png": (43, 64), "portrait.png": (640, 400)}
    for name, (height, width) in paintings.items():
        StyleTransfer.save_image(np.random.default_rng(0).uniform(0, 1, (height, width, 3)), tmp_path / name)
    StyleTransfer.save_image(np.ones((43, 64, 3)), tmp_path / "white.png")
    StyleTransfer.save_image(np.zeros((43, 64, 3)), tmp_path / "black.png")
    content = str(sample_images[0])
    landscape, portrait = str(tmp_path / "landscape.png"), str(tmp_path / "portrait.png")
    stretched = f"note: --init style: the painting {portrait} (400x640) is stretched to "
    single, batch = ["-o", str(tmp_path / "out.png")], ["-o", str(tmp_path / "batch")]
    for argv, expected in (
            ([content, landscape, portrait, "--style-blend-weights", "1,2", *single],
             [stretched + "the photo's shape (64x43)"]),
            ([content, landscape, portrait, "--style-blend-weights", "2,1", *single], []),
            ([content, landscape, portrait, "--style-blend-weights", "1,2", "--style-masks",
              str(tmp_path / "white.png"), str(tmp_path / "black.png"), *single],
             [f"note: the mask {tmp_path / 'black.png'} is all black: its style is not applied anywhere"]),
            (["--contents", content, "--styles", portrait, landscape, *batch],
             [stretched + f"{sample_images[0].name}'s shape (64x43)"])):
        status, stdout, stderr = run_main([*argv, "--init", "style", "--size", "64", "--iterations", "1",
                                           "--model", "vgg19", "--overwrite"])
        assert status == 0, stdout + stderr
        assert [line for line in stdout.splitlines() if line.startswith("note:")] == expected, stdout


def test_a_photo_enlarged_much_and_a_style_at_the_smallest_vgg_takes_get_a_note(sample_images, tmp_path, run_main,
                                                                                vgg19_weights):
    """A --size far above the photo's own gives a result no sharper than the photo, and a
    --style-scale that would make the painting smaller than VGG takes uses it larger than
    asked: both allowed, and said, in a batch too (for the pairs still to run only). The
    sample photo, shrunk to --size, gets no note, nor does a style its black mask switches off."""
    small, other, white, black = (tmp_path / name for name in ("small.png", "other.png", "white.png", "black.png"))
    StyleTransfer.save_image(np.random.default_rng(0).uniform(0, 1, (32, 40, 3)), small)
    StyleTransfer.save_image(np.random.default_rng(1).uniform(0, 1, (320, 512, 3)), other)  # as small as the style
    StyleTransfer.save_image(np.ones((43, 64, 3)), white)
    StyleTransfer.save_image(np.zeros((43, 64, 3)), black)
    content, style = str(sample_images[0]), str(sample_images[1])  # The Starry Night: 512x320
    enlarged = (f"note: {small} (40x32) is enlarged 1.6 times to 64x51 for --size 64: the result is no sharper "
                "than the photo (--size 40 keeps its size)")
    smallest = (f"note: the style {style} is used at 51x32, the smallest VGG takes (32 px on its "
                "short side), not at the long side of 32 px that --size 64 x --style-scale 0.5 asks for: its "
                "strokes come out larger than asked")
    single, batch = ["-o", str(tmp_path / "out.png"), "--overwrite"], ["-o", str(tmp_path / "batch")]
    for argv, expected in (  # the batch twice: the second run skips its pairs
            ([str(small), style, "--style-scale", "0.5", *single], [enlarged, smallest]),
            ([content, style, *single], []),
            ([content, style, str(other), "--style-masks", str(white), str(black), "--style-scale", "0.5", *single],
             [f"note: the mask {black} is all black: its style is not applied anywhere", smallest]),
            (["--contents", str(small), content, "--styles", style, "--style-scale", "0.5", *batch],
             [enlarged, smallest]),
            (["--contents", str(small), content, "--styles", style, "--style-scale", "0.5", *batch], [])):
        status, stdout, stderr = run_main([*argv, "--size", "64", "--iterations", "1", "--model", "vgg19",
                                           "--save-every", "0"])
        assert status == 0, stdout + stderr
        assert [line for line in stdout.splitlines() if line.startswith("note:")] == expected, stdout


def test_a_photo_is_noted_as_enlarged_from_one_and_a_half_times_and_a_style_below_the_smallest_vgg_takes():
    assert StyleTransfer.enlarged_note("a.jpg", (300, 451), 512) == []  # the sample photo at the default size
    assert StyleTransfer.enlarged_note("a.jpg", (100, 100), 149) == []
    assert StyleTransfer.enlarged_note("a.jpg", (100, 100), 150) == [
        "a.jpg (100x100) is enlarged 1.5 times to 150x150 for --size 150: the result is no sharper than the photo "
        "(--size 100 keeps its size)"]
    # A photo VGG refuses at its own size: the --size that enlarges it least, not its own
    assert StyleTransfer.enlarged_note("a.jpg", (25, 200), 512)[0].endswith(
        "(--size 252, the smallest it runs at, enlarges it least)")  # 252x32
    # One note per input, however often it is given
    assert len(StyleTransfer.size_notes(["a.jpg", "a.jpg"], ["b.jpg", "b.jpg"], {"a.jpg": (100, 100),
                                                                               "b.jpg": (320, 512)}, 256, 0.1)) == 2
    # A 512x320 painting is 32 px short at 51 px long, the smallest VGG takes
    assert StyleTransfer.style_floor_note("b.jpg", (320, 512), 256, 0.1) != []  # 26 px long asked
    assert StyleTransfer.style_floor_note("b.jpg", (320, 512), 512, 0.1) == []  # 51 px long asked


@pytest.mark.parametrize("mask, photo, expected", [
    ((300, 200), (43, 64), True),  # a portrait's mask on a landscape photo
    ((200, 300), (43, 64), False),  # 3:2 on 64x43 (1.488): within rounding
    ((67, 125), (35, 64), False),  # a 1200x647 photo's mask on the photo at --size 64: 1.4 % off, a pixel is 3 %
    ((100, 300), (43, 64), True),  # 3:1 on 3:2
], ids=["portrait-on-landscape", "same-shape", "rounded-photo", "wider"])
def test_a_mask_is_stretched_when_its_shape_differs_beyond_rounding(mask, photo, expected):
    assert StyleTransfer.stretched(mask, photo) is expected


def test_a_mask_black_only_once_shrunk_for_a_coarse_level_still_applies_there(sample_images):
    """Black or not is judged at full size, for every level alike: a small white spot,
    averaged below MASK_BLACK_LEVEL at a coarse level, would otherwise switch its style off
    there (or, the only style, refuse the run there) while it applies at full size."""
    content, style = load_image(sample_images[0], 512), load_image(sample_images[1], 64)
    spot = np.zeros(content.shape[:2], np.float32)
    spot[100, 100] = 1.0
    assert StyleTransfer.is_black(resize_image(spot[..., None], (43, 64))[..., 0])
    assert not StyleTransfer.is_black(spot)
    extractor = build_vgg("vgg16", [StyleTransfer.CONTENT_LAYER, *StyleTransfer.STYLE_LAYERS], None)
    loss_settings = dict(content_layer=StyleTransfer.CONTENT_LAYER, style_layers=StyleTransfer.STYLE_LAYERS,
                         style_layer_weights=None, blend_weights=None, content_weight=1.0, style_weight=1.0,
                         tv_weight=1.0)
    objective, _ = StyleTransfer.level_problem(extractor, [(content, [style])], 64, None, init="content", seed=0,
                                               style_scale=1.0, style_masks=[spot], loss_settings=loss_settings)
    assert objective.objectives[0].blend_weights == [1.0]


def test_a_mask_drawn_on_a_transparent_layer_is_black_where_transparent(tmp_path):
    """White paint on a transparent layer, as image editors save a region: the region is
    the paint (composited onto white, as photos are, the whole mask came out white and
    the style went everywhere)."""
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :15] = 255  # opaque white on the left, fully transparent on the right
    rgba[:, 15:, :3] = 255  # (white under the transparency: only the alpha says "not here")
    path = tmp_path / "region.png"
    Image.fromarray(rgba, "RGBA").save(path)
    mask = StyleTransfer.load_mask(str(path), ContentModel.MAX_IMAGE_PIXELS)
    assert mask.shape == (20, 30)
    np.testing.assert_allclose(mask[:, :14], 1.0)
    np.testing.assert_allclose(mask[:, 16:], 0.0)


def test_a_nearly_black_mask_counts_as_black_and_a_run_with_no_style_left_is_refused(images):
    """A black mask saved as JPEG comes back with noise of a few levels: it switches its
    style off as a black one does (its masked Gram matrices would be nearly 0, the style
    loss nearly the constant that a black mask is left out to avoid). When no style is
    left, the run would only rebuild the photo: an error, before any optimization."""
    content, style_a, style_b, _ = images
    extractor = build_vgg("vgg19", [StyleTransfer.CONTENT_LAYER, *StyleTransfer.STYLE_LAYERS], "imagenet")
    white = np.ones(content.shape[:2], np.float32)
    noisy_black = np.random.default_rng(0).integers(0, 4, content.shape[:2]).astype(np.float32) / 255
    objective = StyleTransfer.build_objective(extractor, content, [style_a, style_b], masks=[white, noisy_black])
    assert objective.blend_weights == [0.5, 0.0]
    with pytest.raises(StyleTransferError, match="no style applies anywhere"):
        stylize(content, [style_a, style_b], style_masks=[noisy_black, noisy_black], **FAST)
    with pytest.raises(StyleTransferError, match="no style applies anywhere"):
        stylize(content, [style_a, style_b], style_blend_weights=[1, 0], style_masks=[noisy_black, white], **FAST)


def test_init_style_starts_from_the_style_of_the_largest_blend_weight(images):
    content, style_a, style_b, _ = images
    start = StyleTransfer.initial_image(content, [style_a, style_b], "style", 0, [0.0, 1.0])
    np.testing.assert_array_equal(start, resize_image(style_b, content.shape[:2]))
    start = StyleTransfer.initial_image(content, [style_a, style_b], "style", 0, [0.5, 0.5])
    np.testing.assert_array_equal(start, resize_image(style_a, content.shape[:2]))  # the first of equals


def test_histogram_mode_optimizes_against_a_style_in_the_photos_colours(images, monkeypatch):
    content, style, _, _ = images
    seen = []
    original = StyleTransfer.build_objective

    def spy(extractor, level_content, level_styles, **kwargs):
        seen.append(level_styles[0])
        return original(extractor, level_content, level_styles, **kwargs)

    monkeypatch.setattr(StyleTransfer, "build_objective", spy)
    stylize(content, style, preserve_colors="histogram", **{**FAST, "iterations": 1})
    stylize(content, style, **{**FAST, "iterations": 1})
    matched, plain = (image.reshape(-1, 3) for image in seen)
    target = content.reshape(-1, 3)
    np.testing.assert_allclose(matched.mean(axis=0), target.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(np.cov(matched, rowvar=False), np.cov(target, rowvar=False), atol=0.005)
    np.testing.assert_allclose(plain.mean(axis=0), style.reshape(-1, 3).mean(axis=0), atol=1e-6)  # untouched


def test_style_layer_weights_choose_which_layers_the_style_is_matched_at(images):
    """Weights 1,0,0,0,0 match the style at block1_conv1 only: the same image as asking
    for that layer alone; the default (equal weights) gives another."""
    content, style, _, _ = images
    adam = {**FAST, "optimizer": "adam"}  # pixel by pixel: no line search to magnify rounding
    first_only = stylize(content, style, style_layer_weights=[1, 0, 0, 0, 0], **adam)
    alone = stylize(content, style, style_layers=["block1_conv1"], **adam)
    np.testing.assert_allclose(first_only.image, alone.image, atol=1e-5)
    equal = stylize(content, style, **adam)
    assert np.abs(equal.image - alone.image).max() > 1e-3


def test_count_mismatches_are_user_errors(images):
    content, style_a, style_b, _ = images
    with pytest.raises(StyleTransferError, match="3 style blend weights given for 2 style images"):
        stylize(content, [style_a, style_b], style_blend_weights=[1, 2, 3], **FAST)
    with pytest.raises(StyleTransferError, match="1 style mask given for 2 style images"):
        stylize(content, [style_a, style_b], style_masks=[np.ones(content.shape[:2])], **FAST)
    with pytest.raises(StyleTransferError, match="3 iteration counts given for 2 scales"):
        stylize(content, style_a, scales=2, **{**FAST, "iterations": [2, 2, 2]})


# --- multi-scale, style scale --------------------------------------------------------


def test_level_sizes_grow_geometrically_to_the_requested_size():
    assert level_sizes(512, 1) == [512]
    assert level_sizes(1024, 3) == [256, 512, 1024]
    assert level_sizes(2048, 4) == [256, 512, 1024, 2048]
    # below twice MULTISCALE_START the first level is half the size, then geometric
    assert level_sizes(300, 2) == [150, 300]
    assert level_sizes(96, 3) == [48, 68, 96]  # 48 * sqrt(2) = 67.9


def test_no_level_is_below_the_images_smallest_long_side():
    # 40 x 1024: at a long side of 807 the short side is 32 px (31.52, rounded), VGG's minimum here
    floor = smallest_long_side((40, 1024, 3))
    assert floor == 807 and resize_long(np.zeros((40, 1024, 3), np.float32), floor).shape[:2] == (32, 807)
    assert level_sizes(1024, 3, floor=floor) == [807, 909, 1024]
    assert level_sizes(32, 3) == [32, 32, 32]  # nothing smaller to start from: each level goes on


def test_a_wide_image_and_a_wide_small_style_run_at_every_level(images):
    """Before, the coarse level shrank this content to 256x10 px and the style at --style-scale
    0.1 to 32x13 px, and VGG's max-pooling failed on them."""
    _, style, _, _ = images
    content = np.random.default_rng(0).uniform(0, 1, (40, 1024, 3)).astype(np.float32)
    wide_style = resize_image(style, (100, 250))
    result = stylize(content, wide_style, scales=2, style_scale=0.1, **{**FAST, "iterations": [1, 1]})
    assert result.sizes == [(32, 807), (40, 1024)]
    assert result.image.shape == content.shape and np.isfinite(result.history[-1]["total"])


def test_a_content_image_too_small_for_vgg_is_refused_before_any_work(images):
    _, style, _, _ = images
    with pytest.raises(StyleTransferError, match="32 pixels on the short side"):
        stylize(np.zeros((20, 64, 3), np.float32), style, **FAST)


def test_multiscale_levels_have_the_right_sizes(sample_images, vgg19_weights):
    content = load_image(sample_images[0], 96)  # 96 x 64
    style = load_image(sample_images[1], 96)
    result = stylize(content, style, scales=2, **{**FAST, "iterations": [2, 2]})
    assert result.sizes == [(32, 48), (64, 96)]
    assert result.image.shape == content.shape
    assert [row["level"] for row in result.history] == [0, 0, 1, 1]
    assert [(row["height"], row["width"]) for row in result.history][-1] == (64, 96)


def test_each_level_starts_from_the_last_levels_result_upsampled(sample_images, vgg19_weights, monkeypatch):
    content = load_image(sample_images[0], 96)  # 96 x 64: levels of 48 and 96 px
    style = load_image(sample_images[1], 96)
    levels = []  # (start images, best images at the end) of each level
    original = StyleTransfer.optimize_level

    def spy(objective, start_images, iterations, record, **kwargs):
        original(objective, start_images, iterations, record, **kwargs)
        levels.append((np.asarray(start_images), record.images()))

    monkeypatch.setattr(StyleTransfer, "optimize_level", spy)
    result = stylize(content, style, scales=2, **{**FAST, "iterations": [2, 1]})
    (_, coarse_results), (fine_starts, _) = levels
    assert coarse_results[0].shape == (32, 48, 3) and fine_starts.shape == (1, 64, 96, 3)
    np.testing.assert_allclose(fine_starts[0], resize_image(coarse_results[0], (64, 96)), atol=1e-6)
    # not a fresh start at full size
    fresh = StyleTransfer.initial_image(content, [style], StyleTransfer.DEFAULT_INIT, StyleTransfer.DEFAULT_SEED, [1.0])
    assert np.abs(fine_starts[0] - fresh).mean() > 0.01
    assert result.image.shape == content.shape


def test_styles_are_loaded_at_style_scale_times_the_size(sample_images):
    """The CLI loads each style at --size x --style-scale (so --style-scale 2 is not an
    upsampled --size image), at least MIN_SIZE px on its short side."""
    assert StyleTransfer.style_load_size(512, 0.5) == 256 and StyleTransfer.style_load_size(64, 2.0) == 128
    # The Starry Night is 512 x 320: at 0.5, 32 px long would be 20 px short; it is kept at 32 x 51
    # (31.9 rounded).
    for scale, long_side in ((2.0, 128), (1.0, 64), (0.5, 51)):
        args = StyleTransfer.build_parser().parse_args(
            [str(sample_images[0]), str(sample_images[1]), "--size", "64", "--style-scale", str(scale)])
        content, (style,) = StyleTransfer.load_single_inputs(args, StyleTransfer.single_run_sources(args))
        assert max(content.shape[:2]) == 64
        assert max(style.shape[:2]) == long_side, (scale, style.shape)


@pytest.mark.parametrize("size, iterations, expected", [
    (512, 200, 1), (1023, 200, 1),  # measured: no faster to the same loss at 512 px
    (1024, 200, 3), (2048, 200, 4), (8192, 200, StyleTransfer.MAX_SCALES),
    # between powers of two, the nearest: log2(1400 / 256) = 2.45, log2(1500 / 256) = 2.55
    (1400, 200, 3), (1500, 200, 4),
    (512, [50, 200], 2), (4096, [300], 1),  # a list of counts sets the number of levels
])
def test_auto_scales_follow_the_size_or_the_iteration_counts(size, iterations, expected):
    assert StyleTransfer.resolve_scales("auto", size, iterations) == expected
    assert StyleTransfer.resolve_scales(2, size, iterations) == 2


@pytest.mark.parametrize("shape, expected", [((32, 4000), [4000]), ((100, 4000), [1260, 2245, 4000]),
                                             ((681, 1024), [256, 512, 1024])])
def test_auto_scales_count_the_doublings_from_as_small_as_a_wide_image_can_be(shape, expected):
    """A panorama cannot be shrunk as far as other images (VGG needs MIN_SIZE px on its short
    side): 'auto' gave a 4000x32 image five levels of 4000 px, 80 full-size iterations more."""
    floor = smallest_long_side(shape)
    scales = StyleTransfer.resolve_scales("auto", max(shape), 200, floor)
    assert StyleTransfer.level_sizes(max(shape), scales, floor=floor) == expected
    assert StyleTransfer.batch_levels_text(200, "auto", [shape]).endswith(f"{' / '.join(map(str, expected))} px"
                                                                          if len(expected) > 1 else "iterations")


def test_one_iteration_count_is_the_last_levels_and_coarse_levels_get_fewer():
    level_iterations = StyleTransfer.level_iterations
    coarse = StyleTransfer.COARSE_ITERATIONS
    assert level_iterations(200, 1) == [200]
    assert level_iterations(200, 3) == [coarse, coarse, 200]
    fewer = coarse // 2
    assert level_iterations(fewer, 3) == [fewer] * 3  # never more at a coarse level than at full size
    assert level_iterations([5, 6], 2) == [5, 6]
    assert StyleTransfer.levels_text(200, 3, 1024) == f"{coarse} + {coarse} + 200 iterations at 256 / 512 / 1024 px"
    assert StyleTransfer.levels_text(200, 1, 512) == "200 iterations"
    assert StyleTransfer.levels_text(1, 1, 512) == "1 iteration"


def test_auto_scales_run_one_level_per_iteration_count(sample_images, vgg19_weights):
    content = load_image(sample_images[0], 96)
    style = load_image(sample_images[1], 96)
    result = stylize(content, style, scales="auto", **{**FAST, "iterations": [2, 1]})
    assert result.sizes == [(32, 48), (64, 96)]
    assert [row["level"] for row in result.history] == [0, 0, 1]
    assert len(stylize(content, style, scales="auto", **{**FAST, "iterations": 2}).sizes) == 1


def test_many_levels_do_not_warn_about_retracing(images, caplog):
    """Each level compiles its own step, once; TensorFlow warned from the fifth on (on the
    terminal; here its logger's records reach pytest's log capture)."""
    content, style, _, _ = images
    for optimizer in ("adam", "lbfgs"):
        result = stylize(content, style, scales=StyleTransfer.MAX_SCALES, optimizer=optimizer,
                         **{**FAST, "iterations": [1] * StyleTransfer.MAX_SCALES})
        assert len(result.sizes) == StyleTransfer.MAX_SCALES
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]


def test_the_progress_bar_names_the_level_only_when_there_are_several():
    losses = {"content": 1.0, "style": 2.0, "tv": 3.0, "total": 6.0}
    several = StyleTransfer.Progress(5, 10, losses, 2.0, level=1, levels=3)
    one = StyleTransfer.Progress(5, 10, losses, 2.0)
    several, one = (bar_line(progress) for progress in (several, one))
    assert "5/10 level 2/3 " in several and "total 6" in several
    assert "level" not in one and "5/10 2s |" in one


def test_the_progress_line_gives_the_total_loss_first():
    """On an 80-column terminal the line was cut at '... tv 1…': the total, last, never showed."""
    progress = StyleTransfer.Progress(5, 10, {"content": 1.0, "style": 2.0, "tv": 3.0, "total": 6.0}, 2.0)
    assert bar_line(progress).endswith("| total 6 content 1 style 2 tv 3")


def bar_line(progress):
    """The line a fresh ProgressBar draws for ``progress``, the first it is called with."""
    bar = StyleTransfer.ProgressBar(progress.iterations, stream=io.StringIO())
    bar(progress)
    return bar.line(progress)


def test_the_progress_bar_gives_the_rate_of_the_level_running_leaving_out_its_first_iteration():
    """A level's first iteration is mostly tracing its step (10 s here): the rate counted from
    the run's start (16 iterations in 30 s: 0.53 it/s) would say the last level runs at half
    its speed (1 it/s), and the coarse level (4 it/s) at a fifth. Until a level's second
    iteration its rate is not known and not given."""
    stream = io.StringIO()
    bar = StyleTransfer.ProgressBar(20, stream=stream)
    lines = {}
    for iteration, level, elapsed in ((1, 0, 10.0), (9, 0, 12.0), (10, 1, 24.0), (16, 1, 30.0)):
        progress = StyleTransfer.Progress(iteration, 20, {"total": 6.0}, elapsed, level=level, levels=2)
        bar(progress)
        lines[iteration] = bar.line(progress)
    assert "it/s" not in lines[1] + lines[10]
    assert " 9/20 level 1/2 4.00 it/s 12s |" in lines[9]
    assert " 16/20 level 2/2 1.00 it/s 30s, about 4s left |" in lines[16]


def test_the_progress_bar_fills_with_the_iterations():
    bar = StyleTransfer.ProgressBar(10)
    width = StyleTransfer.ProgressBar.WIDTH
    for iteration, filled in ((0, 0), (5, width // 2), (10, width)):
        line = bar.line(StyleTransfer.Progress(iteration, 10, {"total": 6.0}, 2.0))
        assert line.startswith("[" + "#" * filled + " " * (width - filled) + "]"), line


def test_the_progress_bar_gives_the_time_left_on_the_last_level_from_its_second_iteration():
    """The first iteration of a level is mostly tracing its step (10 s here), and the coarse
    levels' iterations are faster than the last's: the time left is counted from the last
    level's own rate, from its first iteration on, and said only once that rate is known."""
    stream = io.StringIO()
    bar = StyleTransfer.ProgressBar(30, stream=stream)
    lines = {}
    for iteration, level, elapsed in ((5, 0, 3.0), (10, 0, 4.0), (11, 1, 14.0), (12, 1, 16.0), (20, 1, 32.0),
                                      (30, 1, 52.0)):
        progress = StyleTransfer.Progress(iteration, 30, {"total": 6.0}, elapsed, level=level, levels=2)
        bar(progress)
        lines[iteration] = bar.line(progress)
    assert "left" not in lines[5] + lines[10] + lines[11] + lines[30]
    assert "32s, about 20s left |" in lines[20]  # 2 s an iteration since the 11th; 10 to go
    assert "16s, about 36s left |" in lines[12]
    # A batch's running line says it too, for each group from its own start.
    pair = StyleTransfer.Pair("a.jpg", "wave.jpg", Path("out.png"))
    stream = FakeTerminal()
    batch = StyleTransfer.BatchProgress([pair], stream)
    for first, seconds_each, left in ((10.0, 1.5, 3), (4.0, 1.0, 2)):  # a group's clock starts at 0
        batch.start([pair])
        for iteration in (1, 2, 3):
            batch(StyleTransfer.Progress(iteration, 5, {"total": 6.0}, first + (iteration - 1) * seconds_each))
        drawn = stream.getvalue().split("\r")[-1]
        assert drawn == f"[1/1] a + wave ... 3/5, about {left}s left{StyleTransfer.CLEAR_LINE}"


def test_in_a_log_the_progress_bar_writes_a_line_every_tenth_of_the_run_and_the_last():
    for iterations, written in ((100, range(10, 101, 10)), (95, [*range(9, 91, 9), 95])):  # 95 // 10 = 9
        stream = io.StringIO()  # not a terminal
        bar = StyleTransfer.ProgressBar(iterations, stream=stream)
        for iteration in range(1, iterations + 1):
            bar(StyleTransfer.Progress(iteration, iterations, {"total": 6.0}, 1.0))
        lines = stream.getvalue().splitlines()
        assert [line.split("] ")[1].split()[0] for line in lines] == [f"{n}/{iterations}" for n in written]
        assert "\r" not in stream.getvalue()
    assert StyleTransfer.ProgressBar.LOG_LINES == 10


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_erases_a_longer_line_and_finish_ends_an_open_one():
    stream = FakeTerminal()
    bar = StyleTransfer.ProgressBar(10, stream=stream)
    bar(StyleTransfer.Progress(3, 10, {"total": 123456.0}, 1.0))
    bar(StyleTransfer.Progress(4, 10, {"total": 6.0}, 1.0))  # shorter: must not show the old tail
    assert "\n" not in stream.getvalue()
    bar.finish()
    bar.finish()  # a second call (a run that did reach its last iteration) adds nothing
    drawn = stream.getvalue().split("\r")
    assert drawn[-1].endswith(StyleTransfer.CLEAR_LINE + "\n") and stream.getvalue().count("\n") == 1
    assert all(line.endswith(StyleTransfer.CLEAR_LINE) for line in drawn[1:-1])


def test_on_an_80_column_terminal_the_progress_line_keeps_the_whole_total(monkeypatch):
    """'[###] 98/200 level 2/2 29.18 it/s 6s, about 10s left | total 9.74e…': the rate, then
    the level, then the time make room for the total loss, whole."""
    losses = {"content": 4.79e7, "style": 4.47e8, "tv": 1.49e6, "total": 9.74e8}
    for columns, kept in ((200, "level 2/2 5.10 it/s 11s, about 10s left | total 9.74e+08 content"),
                          (84, "] 150/200 level 2/2 11s, about 10s left | total 9.74e+08 "),
                          (80, "] 150/200 11s, about 10s left | total 9.74e+08 "),
                          (60, "] 150/200 | total 9.74e+08 ")):
        monkeypatch.setenv("COLUMNS", str(columns))
        stream = FakeTerminal()
        bar = StyleTransfer.ProgressBar(200, stream=stream)
        bar(StyleTransfer.Progress(99, 200, losses, 1.0, level=1, levels=2))
        bar(StyleTransfer.Progress(150, 200, losses, 6.1 + 4.9, level=1, levels=2))
        drawn = stream.getvalue().split("\r")[-1].removesuffix(StyleTransfer.CLEAR_LINE)
        assert kept in drawn and len(drawn) <= columns - 1, (columns, drawn)


def test_lines_drawn_in_place_fit_the_terminal(monkeypatch):
    """A line wider than the terminal wraps, and redrawing it in place rewrote only its last
    screen row: every iteration left a stale row. The bar is cut to the width less one
    column; batch mode's running line keeps its iteration count."""
    monkeypatch.setenv("COLUMNS", "40")
    stream = FakeTerminal()
    bar = StyleTransfer.ProgressBar(10, stream=stream)
    bar(StyleTransfer.Progress(3, 10, {"content": 4.79e7, "style": 4.47e8, "tv": 1.49e6, "total": 4.96e8}, 1.0))
    drawn = stream.getvalue().removeprefix("\r").removesuffix(StyleTransfer.CLEAR_LINE)
    assert len(drawn) == 39 and drawn.startswith("[" + "#" * 7) and drawn.endswith("…")
    pair = StyleTransfer.Pair("a" * 70 + ".jpg", "wave.jpg", Path("out.png"))
    stream = FakeTerminal()
    progress = StyleTransfer.BatchProgress([pair], stream)
    progress.start([pair])
    progress(StyleTransfer.Progress(12, 100, {"total": 6.0}, 1.0))
    first, redrawn = stream.getvalue().split("\r")
    assert len(first) == 39 and len(redrawn.removesuffix(StyleTransfer.CLEAR_LINE)) == 39
    assert redrawn.removesuffix(StyleTransfer.CLEAR_LINE).endswith("… 12/100")


def test_the_progress_bar_writes_to_stdout_as_it_is_when_made():
    with contextlib.redirect_stdout(io.StringIO()) as captured:
        StyleTransfer.ProgressBar(10)(StyleTransfer.Progress(10, 10, {"total": 6.0}, 1.0))
    assert "10/10" in captured.getvalue()


def test_style_scale_resizes_the_style_relative_to_the_output(images, monkeypatch):
    content, style, _, _ = images
    seen = []
    original = StyleTransfer.build_objective

    def spy(extractor, level_content, level_styles, **kwargs):
        seen.append((max(level_content.shape[:2]), max(level_styles[0].shape[:2])))
        return original(extractor, level_content, level_styles, **kwargs)

    monkeypatch.setattr(StyleTransfer, "build_objective", spy)
    stylize(content, style, style_scale=0.875, **{**FAST, "iterations": 1})
    stylize(content, style, style_scale=2.0, **{**FAST, "iterations": 1})
    wide_style = resize_image(style, (30, 120))
    stylize(content, wide_style, style_scale=0.5, **{**FAST, "iterations": 1})
    # the wide style is not shrunk below 32 px on its short side (VGG needs it): 126 x 32 (31.5
    # rounded), not 32 x 8
    assert seen == [(SIZE, SIZE * 7 // 8), (SIZE, SIZE * 2), (SIZE, 126)]
