"""The optimization loop: both optimizers, initial images, callback, frames, errors."""

from __future__ import annotations

import inspect
import random
import signal
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import StyleTransfer
from ContentModel import StyleTransferError, build_vgg
from StyleTransfer import Progress, initial_image, stylize

ITERATIONS = 4
LOSS_KEYS = {"content", "style", "tv", "total"}


def objective_for(content, style, weights, model="vgg19"):
    """The objective stylize() minimises with its default settings."""
    extractor = build_vgg(model, [StyleTransfer.CONTENT_LAYER, *StyleTransfer.STYLE_LAYERS], weights)
    return StyleTransfer.build_objective(extractor, content, [style])


def total_loss(objective, image: np.ndarray) -> float:
    return float(objective(tf.constant(image[None], dtype=tf.float32))["total"])


class Recorder:
    def __init__(self):
        self.calls: list[Progress] = []

    def __call__(self, progress):
        self.calls.append(progress)


@pytest.fixture(scope="module")
def real_objective(small_pair, vgg19_weights):
    content, style = small_pair
    return objective_for(content, style, str(vgg19_weights))


@pytest.fixture(scope="module", params=["adam", "lbfgs"])
def run(request, small_pair, vgg19_weights):
    """One short real-weights run per optimizer, shared by the tests below."""
    content, style = small_pair
    recorder = Recorder()
    save_every = 2 if request.param == "adam" else 3
    # float32: the tests compare the history's losses with losses recomputed in float32.
    result = stylize(content, style, iterations=ITERATIONS, optimizer=request.param, model="vgg19",
                     weights=str(vgg19_weights), save_every=save_every, callback=recorder,
                     precision="float32")
    start = initial_image(content, [style], StyleTransfer.DEFAULT_INIT, StyleTransfer.DEFAULT_SEED)
    return {"optimizer": request.param, "result": result, "calls": recorder.calls,
            "save_every": save_every, "content": content, "start": start}


# --- the loss goes down ------------------------------------------------------------


def test_loss_goes_down(run, real_objective):
    history = run["result"].history
    initial = total_loss(real_objective, run["start"])
    assert np.isfinite(initial) and initial > 0
    assert history[-1]["total"] < history[0]["total"], history
    assert history[-1]["total"] < initial
    # The returned image really has a lower loss than the starting point.
    final = total_loss(real_objective, run["result"].image)
    assert final < 0.9 * initial, (final, initial)


def test_result_is_the_best_image_measured(run, real_objective):
    history = run["result"].history
    best = min(row["total"] for row in history)
    assert total_loss(real_objective, run["result"].image) == pytest.approx(best, rel=2e-3)


def recorder_for(stacks: int, save_every: int = 0) -> StyleTransfer.LevelRecorder:
    """A LevelRecorder for one image of shape (2, 2, 3), as stylize_batch makes it."""
    start = np.zeros((1, 2, 2, 3), np.float32)
    return StyleTransfer.LevelRecorder(
        [StyleTransfer.StylizeResult(image=start[0])], [start[0]], lambda image, original: image,
        level=0, levels=1, shape=(2, 2), iterations_before=0, total_iterations=stacks, start=0.0,
        save_every=save_every, callback=None, best=[(np.inf, start, 0)])


def losses_column(total: float) -> np.ndarray:
    """(terms, batch of 1), as a BatchObjective returns them."""
    return np.array([[0.0], [total], [0.0], [total]])


@pytest.mark.parametrize("totals, best", [
    ([5.0, 3.0, 4.0], 1),  # the loss rose after iteration 2: the result is iteration 2's image
    ([5.0, 3.0, np.nan], 1),  # a non-finite loss: the lowest finite one
    ([5.0, 4.0, 2.0], 2),
])
def test_the_recorder_keeps_the_lowest_loss_image(totals, best):
    """Unit test of the rule the runs above can not tell from 'the last image' (their loss
    only goes down): each iteration's pixels differ, so the image kept says which it was."""
    record = recorder_for(len(totals))
    stacks = [np.full((1, 2, 2, 3), 0.1 * (index + 1), np.float32) for index in range(len(totals))]
    going_on = [record(index + 1, stack, losses_column(total), index + 1)
                for index, (stack, total) in enumerate(zip(stacks, totals))]
    np.testing.assert_array_equal(record.images()[0], stacks[best][0])
    assert going_on == [True, True, bool(np.isfinite(totals[-1]))]
    assert [row["total"] for row in record.results[0].history][:2] == totals[:2]


def test_a_ctrl_c_while_a_batch_is_recorded_comes_after_every_image_is():
    """A real SIGINT as the first image of a batch of two is recorded: both images get the
    iteration (history, frame, best image), then the KeyboardInterrupt stops the run. Taken
    at once, it left the second image an iteration short of the first in its trace."""
    start = np.zeros((2, 2, 2, 3), np.float32)
    calls = []

    def present(image, original):
        if not calls:
            signal.raise_signal(signal.SIGINT)
        calls.append(image)
        return image

    record = StyleTransfer.LevelRecorder(
        [StyleTransfer.StylizeResult(image=image) for image in start], list(start), present,
        level=0, levels=1, shape=(2, 2), iterations_before=0, total_iterations=1, start=0.0,
        save_every=1, callback=None, best=[(np.inf, start, 0), (np.inf, start, 1)])
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        record(1, start + 0.5, np.array([[0.0, 0.0], [2.0, 3.0], [0.0, 0.0], [2.0, 3.0]]), 1)
    assert [len(result.history) for result in record.results] == [1, 1]
    assert [len(result.frames) for result in record.results] == [1, 1]
    assert [loss for loss, _, _ in record.best] == [2.0, 3.0]
    assert signal.getsignal(signal.SIGINT) is handler  # put back


def test_result_image_shape_and_range(run):
    image = run["result"].image
    assert image.shape == run["content"].shape
    assert image.dtype == np.float32
    assert np.all(np.isfinite(image))
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert not np.array_equal(image, run["start"])  # it moved from where it started
    assert run["result"].stopped_early is None
    assert run["result"].device in ("/CPU:0", "/GPU:0")


def test_history_has_one_entry_per_iteration(run):
    history = run["result"].history
    assert [row["iteration"] for row in history] == list(range(1, ITERATIONS + 1))
    for row in history:
        assert LOSS_KEYS | {"iteration", "seconds"} <= set(row)
        assert all(np.isfinite(row[key]) for key in LOSS_KEYS)
        assert row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"], rel=1e-5)
    seconds = [row["seconds"] for row in history]
    assert seconds == sorted(seconds)


def test_callback_receives_progress_for_iterations_1_to_n(run):
    calls = run["calls"]
    assert all(isinstance(call, Progress) for call in calls)
    assert [call.iteration for call in calls] == list(range(1, ITERATIONS + 1))
    assert all(call.iterations == ITERATIONS for call in calls)
    for call, row in zip(calls, run["result"].history):
        assert set(call.losses) == LOSS_KEYS
        assert call.losses["total"] == row["total"]
    elapsed = [call.elapsed for call in calls]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0


def test_save_every_collects_frames(run):
    save_every, result, content = run["save_every"], run["result"], run["content"]
    expected_iterations = [i for i in range(1, ITERATIONS + 1) if i % save_every == 0 or i == ITERATIONS]
    frame_iterations = [call.iteration for call in run["calls"] if call.frame is not None]
    assert frame_iterations == expected_iterations
    # the starting image, then one frame per saved iteration
    assert len(result.frames) == 1 + len(expected_iterations)
    np.testing.assert_array_equal(result.frames[0], run["start"])
    for frame in result.frames:
        assert frame.shape == content.shape
        assert frame.min() >= 0.0 and frame.max() <= 1.0
    with_frame = [call.frame for call in run["calls"] if call.frame is not None]
    for sent, kept in zip(with_frame, result.frames[1:]):
        np.testing.assert_array_equal(sent, kept)
    assert not np.array_equal(result.frames[0], result.frames[-1])


def test_save_every_zero_takes_no_frames(small_pair):
    content, style = small_pair
    recorder = Recorder()
    result = stylize(content, style, iterations=2, optimizer="adam", model="vgg16", weights=None,
                     save_every=0, callback=recorder)
    assert result.frames == []
    assert all(call.frame is None for call in recorder.calls)
    assert [call.iteration for call in recorder.calls] == [1, 2]


# --- initial images ----------------------------------------------------------------


def test_initial_image_content_is_a_copy(small_pair):
    content, style = small_pair
    start = initial_image(content, [style], "content", 0)
    np.testing.assert_array_equal(start, content)
    assert start is not content and not np.shares_memory(start, content)


def test_initial_image_style_is_resized_to_the_content(small_pair):
    content, style = small_pair
    assert content.shape != style.shape  # 43x64 vs 40x64: the test means something
    start = initial_image(content, [style], "style", 0)
    assert start.shape == content.shape
    assert start.dtype == np.float32
    assert start.min() >= 0.0 and start.max() <= 1.0
    # the colours are the painting's, not the photo's
    assert np.abs(start.mean(axis=(0, 1)) - style.mean(axis=(0, 1))).max() < 0.02


def test_palette_pools_the_pixels_of_its_images_by_weight():
    rng = np.random.default_rng(0)
    first, second = rng.random((10, 12, 3)), rng.random((10, 12, 3)) ** 2
    pooled = StyleTransfer.color_statistics(np.concatenate([first, second]))
    for got, want in zip(StyleTransfer.palette([first, second], [0.5, 0.5]), pooled):
        np.testing.assert_allclose(got, want, atol=1e-12)
    for got, want in zip(StyleTransfer.palette([first, second], [1.0, 0.0]),
                         StyleTransfer.color_statistics(first)):
        np.testing.assert_allclose(got, want, atol=1e-12)
    # Weights that do not sum to 1, as an objective's are when a mask removes a style.
    for got, want in zip(StyleTransfer.palette([first, second], [0.7, 0.0]),
                         StyleTransfer.color_statistics(first)):
        np.testing.assert_allclose(got, want, atol=1e-12)
    for got, want in zip(StyleTransfer.palette([first, second], [3.0, 3.0]), pooled):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_initial_image_palette_moves_the_photo_halfway_to_the_paintings_colours():
    rng = np.random.default_rng(1)
    # Narrow colour spreads, so that no pixel is clipped and the means are exact.
    content = (0.3 + 0.1 * rng.random((20, 30, 3))).astype(np.float32)
    style = (np.array([0.6, 0.5, 0.2]) + 0.2 * rng.random((24, 30, 3))).astype(np.float32)
    start = initial_image(content, [style], "palette", 0)
    assert start.shape == content.shape and start.dtype == np.float32
    want = StyleTransfer.PALETTE_MIX * style.mean(axis=(0, 1)) \
        + (1 - StyleTransfer.PALETTE_MIX) * content.mean(axis=(0, 1))
    np.testing.assert_allclose(start.mean(axis=(0, 1)), want, atol=1e-5)
    # The photo's own palette leaves it as it is. (No style applying anywhere, blend weights all
    # 0, is refused before a start is made: build_objective.)
    np.testing.assert_allclose(initial_image(content, [content], "palette", 0), content, atol=1e-5)
    # Blend weights 1, 0: the first style's palette alone.
    np.testing.assert_array_equal(initial_image(content, [style, content], "palette", 0, [1.0, 0.0]), start)


def test_initial_image_noise_is_seeded(small_pair):
    content, style = small_pair
    first = initial_image(content, [style], "noise", 7)
    again = initial_image(content, [style], "noise", 7)
    other = initial_image(content, [style], "noise", 8)
    assert first.shape == content.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert 0.4 < first.mean() < 0.6 and first.std() > 0.2  # uniform noise, not a constant


def test_initial_image_unknown_mode(small_pair):
    with pytest.raises(StyleTransferError, match="init"):
        initial_image(small_pair[0], [small_pair[1]], "zeros", 0)


@pytest.mark.parametrize("init", ["palette", "content", "style", "noise"])
def test_stylize_starts_from_the_requested_image(small_pair, init):
    content, style = small_pair
    result = stylize(content, style, iterations=1, optimizer="adam", init=init, model="vgg16",
                     weights=None, save_every=1, seed=3)
    np.testing.assert_array_equal(result.frames[0], initial_image(content, [style], init, 3))
    assert result.image.shape == content.shape


def test_without_keep_frames_a_run_keeps_only_the_latest_frame_and_the_callback_still_gets_each(small_pair):
    """A run that makes no animation (no --gif) holds one frame, not one every --save-every
    iterations (0.7 GB at 2048 px); the progress bar still saves each as it comes."""
    content, style = small_pair
    runs = {}
    for keep in (True, False):
        seen = []
        runs[keep] = stylize(content, style, iterations=4, optimizer="adam", model="vgg16", weights=None,
                             save_every=2, seed=3, keep_frames=keep,
                             callback=lambda progress: seen.append(progress.frame) and None), seen
    (kept, kept_seen), (latest, latest_seen) = runs[True], runs[False]
    assert len(kept.frames) == 3 and len(latest.frames) == 1  # the start, iterations 2 and 4
    np.testing.assert_array_equal(latest.frames[0], kept.frames[-1])
    assert [frame is None for frame in latest_seen] == [frame is None for frame in kept_seen] == [True, False] * 2
    for a, b in zip(latest_seen, kept_seen):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(latest.image, kept.image)


def test_noise_run_is_reproducible_with_the_same_seed(small_pair, vgg19_weights, monkeypatch):
    content, style = small_pair
    # Op determinism matters on a GPU (its sums may run in any order); check that each run asks for it.
    determinism = []
    enable = tf.config.experimental.enable_op_determinism
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: determinism.append(1) or enable())
    runs = [stylize(content, style, iterations=2, optimizer="adam", init="noise", seed=seed, model="vgg19",
                    weights=str(vgg19_weights), save_every=0) for seed in (11, 11, 12)]
    np.testing.assert_array_equal(runs[0].image, runs[1].image)
    assert [r["total"] for r in runs[0].history] == [r["total"] for r in runs[1].history]
    assert not np.array_equal(runs[0].image, runs[2].image)
    assert len(determinism) == 3


# --- stopping early ----------------------------------------------------------------


def test_non_finite_loss_stops_the_run_and_keeps_a_finite_image(small_pair):
    content, style = small_pair
    # 1e38 * a positive content loss overflows float32 once the image leaves the content photo.
    result = stylize(content, style, iterations=12, optimizer="adam", model="vgg16", weights=None,
                     content_weight=1e38, save_every=0)
    assert result.stopped_early, "a non-finite loss must be reported"
    assert len(result.history) < 12
    assert not np.isfinite(result.history[-1]["total"])
    assert np.all(np.isfinite(result.image))
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0


def _pixel_cases(content, style) -> list:
    """(stylize_batch arguments, keyword arguments, the error's words) for inputs that break
    the one pixel convention, (H, W, 3) floats in [0, 1], or name what is missing."""
    ones = np.ones(content.shape[:2], np.float32)
    return [
        (([(content * 255).astype(np.uint8)], style), {}, "the content image must hold floats in [0, 1] "
                                                          "(got uint8: divide 8-bit values by 255)"),
        (([content * 255], style), {}, "the content image must hold floats in [0, 1] (got values from 0 to "),
        (([content[..., 0]], style), {}, f"the content image must be an (H, W, 3) array (got shape "
                                         f"{content.shape[:2]})"),
        (([content[None]], style), {}, "the content image must be an (H, W, 3) array (got shape (1, "),
        (([content], style[..., 0]), {}, "the style image must be an (H, W, 3) array"),
        (([content], [style, np.full_like(style, np.nan)]), {}, "style image 2 must hold floats in [0, 1] "
                                                                 "(got NaN or infinite values)"),
        (([content], style), {"style_masks": [(ones * 255).astype(np.uint8)]}, "the style mask must hold floats"),
        (([content], style), {"style_masks": [ones[..., None].repeat(3, -1)]}, "the style mask must be an (H, W) "
                                                                               "array"),
        (([content], []), {}, "no style image given"),
        (([content], None), {}, "no style image given"),
        (([content], Path("painting.jpg")), {}, "the style image is a file name (painting.jpg), not an array: "
                                                "read it with load_image"),
        (([content], ["a.jpg", style]), {}, "style image 1 is a file name (a.jpg)"),
        (([content], style), {"style_masks": [ones > 0]}, "the style mask must hold floats in [0, 1] (got bool: "
                                                          "use .astype(np.float32))"),
        ((content, style), {}, "content_images is one image: give a list of them, or call stylize()"),
        (([content], style), {"style_layers": "block1_conv1"}, "layers are a list of names, not one string"),
        (([content], style), {"weights": "none"}, "for random weights pass weights=None"),
    ]


def test_inputs_that_break_the_pixel_convention_are_one_clear_error(small_pair, monkeypatch):
    """From Python, an 8-bit image would run without a word and come out nearly white, and
    a wrong shape would fail deep inside TensorFlow: each is refused before any work, saying
    what was given and what is expected."""
    monkeypatch.setattr(StyleTransfer, "build_vgg", lambda *args, **kwargs: pytest.fail("the network was built"))
    for arguments, settings, words in _pixel_cases(*small_pair):
        with pytest.raises(StyleTransferError) as error:
            StyleTransfer.stylize_batch(*arguments, **{"weights": None, "iterations": 1, **settings})
        assert words in str(error.value), (words, str(error.value))


def test_every_style_masked_out_is_refused_before_the_network_loads(small_pair, monkeypatch):
    """Black masks everywhere would leave only the photo to rebuild: the refusal comes
    before the network is built (at 2048 px with VGG19 that takes seconds)."""
    monkeypatch.setattr(StyleTransfer, "build_vgg", lambda *args, **kwargs: pytest.fail("the network was built"))
    content, style = small_pair
    black, white = np.zeros(content.shape[:2], np.float32), np.ones(content.shape[:2], np.float32)
    for masks, blend in (([black, black], None), ([black, white], [1, 0])):
        with pytest.raises(StyleTransferError, match="no style applies anywhere"):
            StyleTransfer.stylize_batch([content], [style, style], style_masks=masks, style_blend_weights=blend,
                                        weights=None, iterations=1)


def test_lbfgs_that_ends_before_its_iterations_says_why(small_pair):
    """L-BFGS can end on its own (here: the start is already optimal, loss 0).

    Then the run did fewer iterations than asked, and StylizeResult.notes must
    say so (it is not an error: the run is not stopped_early).
    """
    content, style = small_pair
    result = stylize(content, style, iterations=3, optimizer="lbfgs", model="vgg16", weights=None,
                     style_weight=0.0, tv_weight=0.0, save_every=0, init="content")
    assert len(result.history) < 3
    assert result.stopped_early is None and not result.non_finite
    assert result.notes == [f"L-BFGS ended after {len(result.history)} of 3 iterations: the gradient is zero "
                            "on the free pixels: a minimum"]
    np.testing.assert_allclose(result.image, content, atol=1e-6)
    # With levels, the note names the level as the progress bar does: counted from 1.
    result = stylize(content, style, iterations=3, scales=2, optimizer="lbfgs", model="vgg16", weights=None,
                     style_weight=0.0, tv_weight=0.0, save_every=0, init="content")
    assert result.notes and result.notes[0].startswith("level 1/2: L-BFGS ended after "), result.notes


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_callback_returning_false_stops_the_run(small_pair, optimizer):
    content, style = small_pair
    seen = []

    def stop_after_two(progress):
        seen.append(progress.iteration)
        return progress.iteration < 2

    result = stylize(content, style, iterations=6, optimizer=optimizer, model="vgg16", weights=None,
                     save_every=0, callback=stop_after_two)
    assert seen == [1, 2]
    assert [row["iteration"] for row in result.history] == [1, 2]
    assert result.stopped_early


def test_a_ctrl_c_as_the_next_level_is_prepared_keeps_the_levels_done(small_pair, monkeypatch):
    """A Ctrl-C as a coarse-to-fine run builds its next level (the targets: seconds at a large
    size) ends the run with the levels done, as one inside a level does: it escaped stylize,
    and the run wrote nothing. One as the first level is built, with nothing done, still
    escapes (the caller says so)."""
    content, style = small_pair
    built = []
    level_problem = StyleTransfer.level_problem

    def interrupted_at(level):
        def build(*args, **kwargs):
            built.append(level)
            if len(built) == level + 1:
                raise KeyboardInterrupt
            return level_problem(*args, **kwargs)
        return build

    monkeypatch.setattr(StyleTransfer, "level_problem", interrupted_at(1))
    try:
        result = stylize(content, style, iterations=[2, 3], model="vgg16", weights=None, save_every=0)
    except KeyboardInterrupt:  # (let through, it would stop pytest itself)
        pytest.fail("the Ctrl-C escaped stylize, and the level done with it")
    assert result.stopped_early == StyleTransfer.INTERRUPTED
    assert [row["level"] for row in result.history] == [0, 0]
    assert result.image.shape == content.shape and len(result.sizes) == 1
    built.clear()
    monkeypatch.setattr(StyleTransfer, "level_problem", interrupted_at(0))
    with pytest.raises(KeyboardInterrupt):
        stylize(content, style, iterations=[2, 3], model="vgg16", weights=None, save_every=0)


# --- invalid arguments -------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"iterations": 0}, "iterations"),
    ({"iterations": -5}, "iterations"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"preconditioner": "diagonal"}, "preconditioner"),
    ({"save_every": -1}, "save-every"),
    ({"content_weight": -1.0}, "content"),
    ({"style_weight": -1e-3}, "style"),
    ({"tv_weight": -1.0}, "tv"),
    ({"style_weight": float("nan")}, "style"),
    ({"style_layer_weights": [1, 1, -1, 1, 1]}, "weight"),
    ({"style_layer_weights": [1, 1]}, "weight"),
    ({"init": "zeros"}, "init"),
    ({"device": "tpu"}, "device"),
    ({"style_layers": ["block9_conv1"]}, "block9_conv1"),
    ({"content_weight": 1e300}, r"content-weight must be a number from 0 to 3.4e\+38"),  # float32's largest
    ({"learning_rate": 1e39}, "learning-rate"),
    ({"optimizer": "adam", "learning_rate": 0}, r"--learning-rate must be above 0 for Adam"),  # no step
    ({"content_weight": 0, "style_weight": 0, "tv_weight": 0}, "all 0: nothing to optimize"),
    ({"style_layers": ["block1_conv1", "block2_conv1", "block1_conv1"]}, "block1_conv1 given more than once"),
    ({"scales": "3"}, "scales"),  # a number as text: a one-line error, not a TypeError
    # Wrong types from Python: one line naming the setting, not a TypeError from deep inside.
    ({"iterations": []}, "--iterations is an empty list"),
    ({"iterations": 2.5}, r"--iterations must be a whole number \(got 2.5\)"),
    ({"iterations": None}, r"--iterations must be a whole number \(got None\)"),
    ({"iterations": "5"}, r"--iterations must be a whole number \(got '5'\)"),
    ({"iterations": [2, "3"]}, r"--iterations must be a whole number \(got '3'\)"),
    ({"seed": "1"}, r"--seed must be a whole number \(got '1'\)"),
    ({"seed": 1.5}, r"--seed must be a whole number"),
    ({"save_every": 1.5}, r"--save-every must be a whole number"),
    ({"style_scale": True}, r"--style-scale must be a number \(got True\)"),
    ({"style_weight": "1"}, r"--style-weight must be a number \(got '1'\)"),
    ({"content_weight": 10 ** 400}, r"--content-weight must be a number from 0 to 3.4e\+38 \(got inf\)"),
    ({"scales": np.array([1, 2])}, r"--scales must be a whole number"),
    ({"iterations": np.array(3)}, r"--iterations must be a whole number \(got array\(3\)\)"),
    ({"style_weight": np.array(True)}, r"--style-weight must be a number"),
    ({"tv_weight": 1 + 2j}, r"--tv-weight must be a number"),
    ({"learning_rate": bytearray(b"0.1")}, r"--learning-rate must be a number"),
    ({"content_weight": None}, r"--content-weight must be a number \(got None\)"),
    ({"content_layer": ["block4_conv2"]}, r"--content-layer must be one layer name"),
    ({"style_layers": [1, 2]}, r"layers are a list of names \(got \[1, 2\]\)"),
    ({"style_layers": None}, r"layers are a list of names \(got None\)"),
    ({"style_blend_weights": "1"}, r"style blend weights must be a list of numbers, one per style image"),
    ({"style_blend_weights": {0: 1}}, r"style blend weights must be a list of numbers"),
    ({"style_layer_weights": "11111"}, r"style layer weights must be a list of numbers"),
    ({"weights": False}, r"weights must be 'imagenet', None or a file \(got False\)"),
    ({"weights": "no_such_file.h5"}, "weights file not found"),
])
def test_invalid_arguments_raise_style_transfer_error(small_pair, kwargs, match):
    content, style = small_pair
    called = []
    with pytest.raises(StyleTransferError, match=match):
        stylize(content, style, **{"iterations": 2, "model": "vgg16", "weights": None,
                                   "callback": called.append, **kwargs})
    assert called == []  # refused before any optimization


def test_adam_moves_the_image_by_its_learning_rate(small_pair):
    """A larger rate moves the image further from where it starts (a rate of 0, which would
    not move it, is refused: test_invalid_arguments_raise_style_transfer_error)."""
    content, style = small_pair
    runs = {rate: stylize(content, style, iterations=2, optimizer="adam", learning_rate=rate, init="content",
                          model="vgg16", weights=None, save_every=0).image for rate in (0.01, 0.05)}
    assert 0 < np.abs(runs[0.01] - content).max() < np.abs(runs[0.05] - content).max()


def test_each_preconditioner_takes_its_own_path(small_pair):
    """L-BFGS with 'none', 'fourier' and 'pyramid' from the same start: three other images."""
    content, style = small_pair
    images = [stylize(content, style, iterations=2, optimizer="lbfgs", preconditioner=name, model="vgg16",
                      weights=None, save_every=0).image for name in StyleTransfer.PRECONDITIONERS]
    assert len(images) == 3
    for index, image in enumerate(images):
        for other in images[index + 1:]:
            assert np.abs(image - other).max() > 1e-3


def test_the_content_layer_is_the_one_matched(small_pair, monkeypatch):
    """The objective's content target is the features of the layer asked for, and another
    layer gives another image."""
    content, style = small_pair
    targets = []
    real_build_objective = StyleTransfer.build_objective

    def recording(extractor, content_image, *args, **kwargs):
        objective = real_build_objective(extractor, content_image, *args, **kwargs)
        targets.append((kwargs["content_layer"], objective.content_target.shape))
        return objective

    monkeypatch.setattr(StyleTransfer, "build_objective", recording)
    images = {layer: stylize(content, style, iterations=2, content_layer=layer, model="vgg16", weights=None,
                             save_every=0).image for layer in ("block2_conv2", "block4_conv2")}
    height, width = content.shape[:2]
    assert targets == [("block2_conv2", (1, height // 2, width // 2, 128)),
                       ("block4_conv2", (1, height // 8, width // 8, 512))]
    assert np.abs(images["block2_conv2"] - images["block4_conv2"]).max() > 1e-3


def test_numpy_numbers_and_python_lists_do_as_python_numbers_and_arrays(small_pair):
    """From a notebook a seed comes from np.arange, a count from np.int64, a rate typed as 1,
    an image as nested lists: each does what its Python or array form does (Keras itself
    refuses a NumPy seed and an integer learning rate)."""
    content, style = small_pair
    plain = stylize(content, style, iterations=2, scales=1, seed=3, learning_rate=1.0, optimizer="adam",
                    init="noise", model="vgg16", weights=None, save_every=0)
    numpy = stylize(content.tolist(), [style.astype(np.float64)], iterations=np.int64(2), scales=np.int64(1),
                    seed=np.int64(3), learning_rate=1, optimizer="adam", init="noise", model="vgg16", weights=None,
                    save_every=np.int32(0), style_scale=Fraction(1), tv_weight=np.float64(StyleTransfer.TV_WEIGHT))
    assert numpy.image.dtype == np.float32
    np.testing.assert_array_equal(numpy.image, plain.image)


def test_one_style_or_one_mask_as_nested_lists_is_one_image(small_pair):
    """As an array, one style (H, W, 3) or one mask (H, W) is one image; as nested lists it
    was read as H images: 'style image 1 must be an (H, W, 3) array (got shape (48, 3))'."""
    content, style = small_pair
    mask = np.ones(content.shape[:2], np.float32)
    settings = dict(iterations=1, scales=1, optimizer="adam", model="vgg16", weights=None, save_every=0)
    arrays = stylize(content, style, style_masks=mask, **settings)
    lists = stylize(content, style.tolist(), style_masks=mask.tolist(), **settings)
    np.testing.assert_array_equal(lists.image, arrays.image)
    two = stylize(content, [style.tolist(), style.tolist()], style_masks=[mask.tolist(), mask.tolist()], **settings)
    assert two.image.shape == content.shape  # a list of them is still a list of images


@pytest.mark.parametrize("answer, stops", [(False, True), (np.False_, True), (None, False), (0, False),
                                           (np.array([1, 2]), False)],
                         ids=["False", "numpy-False", "None", "0", "an-array"])
def test_a_callback_stops_the_run_by_answering_false(small_pair, answer, stops):
    """False or NumPy's False stops the run; any other answer (None, the 0 of os.system, an
    array, whose truth is ambiguous) goes on."""
    content, style = small_pair
    result = stylize(content, style, iterations=2, model="vgg16", weights=None, save_every=0,
                     callback=lambda progress: answer)
    assert len(result.history) == (1 if stops else 2)
    assert result.stopped_early == ("stopped by the callback" if stops else None)


def test_a_stack_of_contents_or_styles_is_split_into_images(small_pair):
    """An (N, H, W, 3) array is N images: contents for stylize_batch, styles for either."""
    content, style = small_pair
    settings = dict(iterations=1, model="vgg16", weights=None, save_every=0)
    results = StyleTransfer.stylize_batch(np.stack([content, content]), np.stack([style, style]), **settings)
    assert len(results) == 2 and results[0].blend_weights == [[0.5, 0.5]]
    masks = np.stack([np.ones(content.shape[:2], np.float32), np.zeros(content.shape[:2], np.float32)])
    result = stylize(content, np.stack([style, style]), style_masks=masks, **settings)  # (N, H, W): N masks
    assert result.blend_weights == [[0.5, 0.0]]


def test_stylize_leaves_python_and_numpy_random_numbers_as_they_were(small_pair):
    """The seed is set for the run (random weights are drawn from it), then Python's and NumPy's
    generators are put back: a notebook's own random numbers do not repeat for having called it."""
    content, style = small_pair
    random.seed(11)
    np.random.seed(11)
    expected = random.random(), np.random.random()
    random.seed(11)
    np.random.seed(11)
    stylize(content, style, iterations=1, model="vgg16", weights=None, save_every=0, seed=5)
    assert (random.random(), np.random.random()) == expected


def test_the_cli_the_checks_and_the_core_function_name_the_same_settings():
    """One flag per keyword of stylize_batch (style guide, point 5), with its default, all
    checked by check_settings. Not settings: the images, and what the caller does with the
    run as it goes (callback: the progress bar; keep_frames: --gif), which leave the result
    as it is."""
    core = set(inspect.signature(StyleTransfer.stylize_batch).parameters) - {
        "content_images", "style_images", "callback", "keep_frames"}
    checked = set(inspect.signature(StyleTransfer.check_settings).parameters)
    defaults = StyleTransfer.settings_from_args(StyleTransfer.build_parser().parse_args([]))
    assert core == checked == set(defaults)
    parameters = inspect.signature(StyleTransfer.stylize_batch).parameters
    for name, value in defaults.items():  # and the same defaults (a tuple of layers typed as a list)
        default = parameters[name].default
        assert value == (list(default) if isinstance(default, tuple) else default), name


def test_gpu_device_request(small_pair):
    if tf.config.list_logical_devices("GPU"):
        assert StyleTransfer.resolve_device("gpu") == "/GPU:0"
    else:
        with pytest.raises(StyleTransferError, match="GPU"):
            StyleTransfer.resolve_device("gpu")
    assert StyleTransfer.resolve_device("cpu") == "/CPU:0"


class BoxedQuadratic:
    """A stand-in objective with a known answer: sum(w * (x - target)^2) over a
    (batch, H, W, 3) stack, shaped like a BatchObjective's output. Its minimum in
    the [0, 1] box is the target clipped to the box, whatever the weights."""

    def __init__(self, shape, seed=0):
        rng = np.random.default_rng(seed)
        self.target = rng.uniform(-0.5, 1.5, shape).astype(np.float32)  # a third outside the box
        self.weights = rng.uniform(1.0, 100.0, shape).astype(np.float32)  # ill-conditioned

        # Less the minimum's own value, so that the loss is 0 there and float32 can
        # resolve the last steps to it.
        self.floor = self.weights * np.square(np.clip(self.target, 0.0, 1.0) - self.target)

    def __call__(self, images):
        per_image = tf.reduce_sum(self.weights * tf.square(images - self.target) - self.floor, axis=[1, 2, 3])
        zero = tf.zeros_like(per_image)
        return tf.stack([zero, zero, zero, per_image])  # content, style, tv, total


@pytest.mark.parametrize("precondition", [None, StyleTransfer.pyramid_preconditioner,
                                          StyleTransfer.fourier_preconditioner])
def test_lbfgs_finds_the_minimum_inside_the_pixel_box(precondition):
    shape = (2, 6, 5, 3)
    objective = BoxedQuadratic(shape)
    seen = []

    def report(iteration, pixels, losses, evaluations):
        seen.append((iteration, np.asarray(pixels), float(np.sum(losses[StyleTransfer.TOTAL_ROW])), evaluations))
        return True

    start = np.full(shape, 0.5, dtype=np.float32)
    StyleTransfer.lbfgs_optimize(objective, start, 60, report, precondition=precondition)
    totals = [total for _, _, total, _ in seen]
    assert all(later <= earlier for earlier, later in zip(totals, totals[1:])), "the loss must never rise"
    final = seen[-1][1]
    assert final.min() >= 0.0 and final.max() <= 1.0
    np.testing.assert_allclose(final, np.clip(objective.target, 0.0, 1.0), atol=1e-3)
    assert [iteration for iteration, *_ in seen] == list(range(1, len(seen) + 1))
    assert all(evaluations > iteration for iteration, _, _, evaluations in seen)  # the start counts too


@pytest.mark.parametrize("precondition", [StyleTransfer.pyramid_preconditioner,
                                          StyleTransfer.fourier_preconditioner])
@pytest.mark.parametrize("shape", [(2, 17, 23, 3), (2, 16, 24, 3)])
def test_preconditioners_are_symmetric_positive_definite_and_per_image(precondition, shape):
    """L-BFGS needs a symmetric positive definite starting guess; odd sizes (the
    pyramid's zeros beyond the edge, the FFT's unpaired frequencies) and even ones
    (the FFT's Nyquist frequency), and the images of a stack must not mix."""
    rng = np.random.default_rng(0)
    u, v = (tf.constant(rng.normal(size=shape), tf.float32) for _ in range(2))
    np.testing.assert_allclose(float(tf.reduce_sum(u * precondition(v))),
                               float(tf.reduce_sum(precondition(u) * v)), rtol=1e-5)
    assert float(tf.reduce_sum(v * precondition(v))) > float(tf.reduce_sum(v * v))
    np.testing.assert_allclose(precondition(v)[1:].numpy(), precondition(v[1:]).numpy(), atol=1e-5)


def test_pyramid_preconditioner_adds_every_block_average():
    """On 16 x 16 px: the image plus its 2x2, 4x4, 8x8 and 16x16 block averages."""
    image = np.random.default_rng(1).normal(size=(1, 16, 16, 2)).astype(np.float32)
    expected = image.copy()
    for block in (2, 4, 8, 16):
        blocks = image.reshape(1, 16 // block, block, 16 // block, block, 2)
        expected += np.broadcast_to(blocks.mean(axis=(2, 4), keepdims=True), blocks.shape).reshape(image.shape)
    np.testing.assert_allclose(StyleTransfer.pyramid_preconditioner(tf.constant(image)).numpy(),
                               expected, atol=1e-5)
    np.testing.assert_allclose(StyleTransfer.pyramid_preconditioner(tf.constant(image), strength=0.0), image)


def test_fourier_preconditioner_scales_each_frequency_by_the_power_law():
    """A cosine pattern is scaled by (reference / f) ** exponent at its frequency f, the
    mean by (reference * long side) ** exponent; exponent 0 leaves every vector as it is."""
    height, width, exponent = 12, 20, StyleTransfer.FOURIER_EXPONENT
    reference = StyleTransfer.FOURIER_REFERENCE
    rows, columns = np.mgrid[:height, :width]
    for cycles_down, cycles_across in ((0, 1), (3, 0), (2, 5), (6, 10)):
        pattern = np.cos(2 * np.pi * (cycles_down * rows / height + cycles_across * columns / width))
        image = np.stack([pattern, -2 * pattern], axis=-1)[None].astype(np.float32)
        frequency = np.hypot(cycles_down / height, cycles_across / width)
        np.testing.assert_allclose(StyleTransfer.fourier_preconditioner(tf.constant(image)).numpy(),
                                   (reference / frequency) ** exponent * image, atol=1e-4)
    flat = np.full((1, height, width, 1), 0.25, np.float32)
    np.testing.assert_allclose(StyleTransfer.fourier_preconditioner(tf.constant(flat)).numpy(),
                               (reference * width) ** exponent * flat, rtol=1e-5)
    noise = np.random.default_rng(3).normal(size=(2, height, width, 3)).astype(np.float32)
    np.testing.assert_allclose(StyleTransfer.fourier_preconditioner(tf.constant(noise), exponent=0.0).numpy(),
                               noise, atol=1e-5)


class SmoothnessProblem:
    """A stand-in with the trouble the preconditioners are for: sum of squared
    differences between the image's neighbouring pixels and a target's (plus a little
    of the pixels themselves), whose curvature is tiny for large-scale changes and
    large for pixel-scale ones, as with the style loss's low layers."""

    def __init__(self, shape):
        self.target = np.random.default_rng(2).uniform(0.1, 0.9, shape).astype(np.float32)

    def __call__(self, images):
        difference = images - self.target
        per_image = (tf.reduce_sum(tf.square(difference[:, 1:] - difference[:, :-1]), axis=[1, 2, 3])
                     + tf.reduce_sum(tf.square(difference[:, :, 1:] - difference[:, :, :-1]), axis=[1, 2, 3])
                     + 1e-3 * tf.reduce_sum(tf.square(difference), axis=[1, 2, 3]))
        zero = tf.zeros_like(per_image)
        return tf.stack([zero, zero, zero, per_image])


def test_preconditioners_speed_up_large_scale_changes():
    shape = (1, 64, 48, 3)
    problem = SmoothnessProblem(shape)
    start = np.full(shape, 0.5, dtype=np.float32)
    final = {}
    for name, precondition in (("plain", None), ("pyramid", StyleTransfer.pyramid_preconditioner),
                               ("fourier", StyleTransfer.fourier_preconditioner)):
        losses = []
        StyleTransfer.lbfgs_optimize(problem, start, 30, lambda i, pixels, terms, e: losses.append(
            float(terms[StyleTransfer.TOTAL_ROW][0])) or True, precondition=precondition)
        final[name] = losses[-1]
    assert final["pyramid"] < final["plain"] / 10, final
    assert final["fourier"] < final["plain"] / 10, final


def test_lbfgs_stops_on_a_gradient_that_is_not_finite():
    """A finite loss with a NaN gradient (here: sqrt(|x - 0.5|) at x = 0.5) must stop
    the run like a NaN loss, reporting the image whose gradient failed with a NaN total."""
    shape = (2, 4, 4, 3)
    seen = []

    def objective(images):
        root = tf.reduce_sum(tf.sqrt(tf.abs(images - 0.5)), axis=[1, 2, 3]) * tf.constant([1.0, 0.0])
        total = root + tf.reduce_sum(tf.square(images - 0.25), axis=[1, 2, 3])
        zero = tf.zeros_like(total)
        return tf.stack([zero, zero, zero, total])

    start = np.full(shape, 0.5, dtype=np.float32)  # the first image's gradient is NaN here
    ended = StyleTransfer.lbfgs_optimize(objective, start, 5, lambda *args: seen.append(args) or True)
    assert ended == "the loss was not finite"
    assert len(seen) == 1
    totals = np.asarray(seen[0][2])[StyleTransfer.TOTAL_ROW]
    assert np.isnan(totals[0]) and np.isfinite(totals[1])  # only the image whose gradient failed


def random_pairs(count: int, shape, seed: int = 0) -> tuple[list, list]:
    """``count`` pairs (s, y = A s) of a quadratic with a diagonal positive definite A."""
    rng = np.random.default_rng(seed)
    curvature = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    steps = [tf.constant(rng.normal(size=shape), tf.float32) for _ in range(count)]
    return steps, [step * curvature for step in steps]


def dense_bfgs_inverse_hessian(steps: list, changes: list, precondition) -> np.ndarray:
    """The BFGS inverse Hessian as a matrix, updated pair by pair from the oldest
    (Nocedal & Wright, eq. 6.17), starting from P scaled by s.y / y.P(y) of the newest."""
    shape = steps[0].shape
    size = int(np.prod(shape))
    basis = np.eye(size, dtype=np.float32).reshape(size, *shape)
    p = np.stack([np.ravel(precondition(tf.constant(vector[None]))) for vector in basis[:, 0]], axis=1)
    s, y = (np.stack([np.ravel(vector) for vector in vectors]).astype(np.float64) for vectors in (steps, changes))
    h = p * (s[0] @ y[0]) / (y[0] @ p @ y[0])
    for step, change in zip(s[::-1], y[::-1]):  # oldest to newest
        rho = 1.0 / (step @ change)
        left = np.eye(size) - rho * np.outer(step, change)
        h = left @ h @ left.T + rho * np.outer(step, step)
    return h


def memory_of(pairs_newest_first: tuple, memory_size: int, precondition,
              in_place: bool | None = None) -> StyleTransfer.LbfgsMemory:
    """An LbfgsMemory that has remembered the pairs, oldest first."""
    steps, changes = pairs_newest_first
    memory = StyleTransfer.LbfgsMemory(np.zeros(steps[0].shape, np.float32), memory_size, precondition, in_place)
    for step, change in zip(reversed(steps), reversed(changes)):
        memory.remember(step, change)
    return memory


@pytest.mark.parametrize("precondition", [tf.identity, StyleTransfer.fourier_preconditioner])
def test_two_loop_direction_is_minus_the_bfgs_inverse_hessian_times_the_gradient(precondition):
    """The two-loop recursion computes -H g without forming H: compare it with H built
    as a matrix by the BFGS update; H also meets the secant condition H y = s for the
    newest pair. With no pairs the direction is the preconditioned gradient."""
    shape = (1, 3, 2, 3)
    steps, changes = random_pairs(3, shape)  # newest first
    memory = memory_of((steps, changes), 3, precondition)
    assert memory.in_place == (not tf.config.list_physical_devices("GPU"))  # on a CPU the pairs are written by XLA
    inside = tf.fill(shape, 0.5)  # no pixel at a bound
    gradient = tf.constant(np.random.default_rng(1).normal(size=shape), tf.float32)
    direction, slope, length = memory.direction(inside, gradient)
    h = dense_bfgs_inverse_hessian(steps, changes, precondition)
    np.testing.assert_allclose(np.ravel(direction), -h @ np.ravel(gradient), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(slope), float(tf.reduce_sum(gradient * direction)), rtol=1e-5)
    np.testing.assert_allclose(float(length), float(tf.norm(direction)), rtol=1e-5)
    secant, _, _ = memory.direction(inside, changes[0])
    np.testing.assert_allclose(secant.numpy(), -steps[0].numpy(), atol=1e-4)

    memory.clear()
    direction, _, _ = memory.direction(inside, gradient)
    np.testing.assert_allclose(direction.numpy(), -precondition(gradient).numpy(), atol=1e-5)


def correlated_pairs(count: int, shape, seed: int = 0) -> tuple[list, list]:
    """``count`` pairs as an optimization makes them: steps along similar directions (each
    the last plus a little), so that s_i . y_j is far from 0 for i != j, on the quadratic
    of random_pairs. Newest first."""
    rng = np.random.default_rng(seed)
    curvature = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    step, steps = rng.normal(size=shape), []
    for _ in range(count):
        step = 0.7 * step + 0.3 * rng.normal(size=shape)
        steps.insert(0, tf.constant(step, tf.float32))
    return steps, [step * curvature for step in steps]


@pytest.mark.parametrize("in_place", [True, False], ids=["xla-write", "slice-write"])
@pytest.mark.parametrize("precondition", [tf.identity, StyleTransfer.fourier_preconditioner])
def test_a_wrapped_memory_gives_the_bfgs_direction_of_its_newest_pairs(precondition, in_place):
    """The pairs go into slots reused oldest first: after 7 pairs in a memory of 4 the
    slots hold them out of order, and the direction is -H g for H built from the 4
    newest alone. The pairs are correlated, as in a real run: the recursion reads
    s_i . y_j only where s_i is no newer than y_j, and a mix-up there would show. Both
    ways of writing a pair (XLA's, the CPU's default; a slice, a GPU's) give the same."""
    shape = (1, 3, 2, 3)
    steps, changes = correlated_pairs(7, shape)  # newest first
    memory = memory_of((steps, changes), 4, precondition, in_place)
    assert memory.in_place == in_place and len(memory) == 4
    np.testing.assert_array_equal(memory.steps.numpy()[memory.slots[-1]], np.ravel(steps[0]))  # the newest
    gradient = tf.constant(np.random.default_rng(2).normal(size=shape), tf.float32)
    direction, _, _ = memory.direction(tf.fill(shape, 0.5), gradient)
    h = dense_bfgs_inverse_hessian(steps[:4], changes[:4], precondition)
    np.testing.assert_allclose(np.ravel(direction), -h @ np.ravel(gradient), rtol=1e-3, atol=1e-4)


def test_two_loop_direction_leaves_pixels_held_at_a_bound():
    """A pixel at 0 whose gradient is positive (downhill leaves the box), or at 1
    whose gradient is negative, gets no move; the others move downhill."""
    pixels = tf.constant([[[[0.0, 1.0, 0.5], [0.0, 1.0, 0.5]]]])
    gradient = tf.constant([[[[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]]])
    memory = StyleTransfer.LbfgsMemory(np.zeros(pixels.shape, np.float32), 2, tf.identity)
    direction, slope, _ = memory.direction(pixels, gradient)
    np.testing.assert_array_equal(direction.numpy(), [[[[0.0, 0.0, -1.0], [1.0, -1.0, 1.0]]]])
    assert float(slope) < 0


def test_lbfgs_memory_keeps_the_newest_pairs_with_positive_curvature():
    shape = (1, 4, 4, 3)
    memory = StyleTransfer.LbfgsMemory(np.zeros(shape, np.float32), memory_size=2, precondition=tf.identity)
    steps, changes = random_pairs(3, shape)
    memory.remember(steps[0], -changes[0])  # s.y < 0: would break positive definiteness
    assert len(memory) == 0
    for step, change in zip(steps, changes):
        memory.remember(step, change)
    assert len(memory) == 2
    kept = [memory.steps.numpy()[slot] for slot in memory.slots]  # oldest first, the first dropped
    np.testing.assert_array_equal(kept, [np.ravel(steps[1]), np.ravel(steps[2])])
    newest = memory.slots[-1]
    np.testing.assert_allclose(memory.step_dot_changes.numpy()[newest, newest],
                               float(tf.reduce_sum(steps[2] * changes[2])), rtol=1e-5)
    direction, _, _ = memory.direction(tf.fill(shape, 0.5), changes[2])
    np.testing.assert_allclose(direction.numpy(), -steps[2].numpy(), atol=1e-4)  # the secant condition


def test_lbfgs_memory_not_yet_full_gives_the_bfgs_direction_of_its_pairs():
    """Unused slots must change nothing: with 2 pairs in a memory of 5, the direction
    is -H g for H built from those 2 pairs alone (the scale from the newest)."""
    shape = (1, 3, 2, 3)
    steps, changes = correlated_pairs(2, shape)  # newest first
    memory = memory_of((steps, changes), 5, StyleTransfer.fourier_preconditioner)
    gradient = tf.constant(np.random.default_rng(2).normal(size=shape), tf.float32)
    direction, _, _ = memory.direction(tf.fill(shape, 0.5), gradient)
    h = dense_bfgs_inverse_hessian(steps, changes, StyleTransfer.fourier_preconditioner)
    np.testing.assert_allclose(np.ravel(direction), -h @ np.ravel(gradient), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 8, 8, 3), (1, 128, 96, 3)])
def test_lbfgs_first_step_starts_where_the_tangent_reaches_zero(shape):
    """On |x - t|^2 from x0, the gradient direction's tangent reaches zero at half
    the way to t (Polyak's step); doubling it lands on t, and the quadratic model
    (exact here) says a further doubling cannot help. So the first iteration takes
    three evaluations (the start, half way, all the way) at any image size: starting
    from a move of norm 1 instead, a large image would need many more doublings."""
    target = np.random.default_rng(3).uniform(0.2, 0.8, shape).astype(np.float32)

    def objective(images):
        total = tf.reduce_sum(tf.square(images - target), axis=[1, 2, 3])
        zero = tf.zeros_like(total)
        return tf.stack([zero, zero, zero, total])

    assert StyleTransfer.first_step_length(8.0, -4.0, 3.0) == 2.0
    assert StyleTransfer.first_step_length(0.0, -4.0, 4.0) == 0.25  # nothing to go by: a move of norm 1
    # 10 -> 3 with a first-order change of -9: the parabola through (0, 10, -9) and (1, 3) is
    # 10 - 9 t + 2 t^2, lower at t = 2 (0) than at 1 (3); 10 -> 5 gives 10 - 9 t + 4 t^2: 8 at t = 2.
    assert StyleTransfer.worth_doubling(10.0, 3.0, -9.0)
    assert not StyleTransfer.worth_doubling(10.0, 5.0, -9.0)
    assert not StyleTransfer.worth_doubling(10.0, 4.0, -9.0)  # equal at t = 1 and 2: no gain
    seen = []
    StyleTransfer.lbfgs_optimize(objective, np.full(shape, 0.5, np.float32), 1,
                                 lambda *args: seen.append(args) or True)
    (_, pixels, losses, evaluations), = seen
    assert evaluations == 3
    np.testing.assert_allclose(np.asarray(pixels), target, atol=1e-5)


def test_the_line_search_halves_a_step_that_lowers_the_loss_too_little():
    """Armijo's sufficient decrease: on |x - t|^2 from x0, the step x0 - s g (g the
    gradient) lands on t at s = 1/2, lowers the loss for any s < 1, and lowers it by
    enough exactly when s <= 1 - ARMIJO_C1. Just past that the loss is lower but not
    by enough, and the search must halve the step, landing near t."""
    shape = (1, 4, 3, 3)
    target = np.full(shape, 0.25, np.float32)

    def objective(images):
        total = tf.reduce_sum(tf.square(images - target), axis=[1, 2, 3])
        zero = tf.zeros_like(total)
        return tf.stack([zero, zero, zero, total])

    pixels = tf.fill(shape, 0.5)
    gradient = 2 * (pixels - target)
    loss = float(tf.reduce_sum(tf.square(pixels - target)))
    trial = partial(StyleTransfer.trial_point, objective)
    too_long = 1 - StyleTransfer.ARMIJO_C1 / 2  # lowers the loss, by too little
    accepted, last, tried = StyleTransfer.line_search(trial, pixels, gradient, loss, -gradient, too_long,
                                                      expand=False)
    assert tried == 2 and accepted is last
    np.testing.assert_allclose(np.asarray(accepted.pixels), target, atol=1e-4)
    # the step it declined did lower the loss: only Armijo's condition refused it
    declined, *_ = StyleTransfer.trial_point(objective, pixels, gradient, -gradient, tf.constant(too_long))
    assert float(tf.reduce_sum(tf.square(declined - target))) < loss


def test_lbfgs_forgets_its_memory_when_it_points_uphill(monkeypatch):
    """In exact arithmetic L-BFGS's direction is always downhill; float rounding can make
    it not. Then the memory is cleared and the run goes on along the preconditioned
    gradient, instead of a line search that can find no lower point."""
    made = []

    class UphillOnce(StyleTransfer.LbfgsMemory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.turned, self.events = False, []
            made.append(self)

        def direction(self, pixels, gradient):
            direction, slope, norm = super().direction(pixels, gradient)
            if len(self) and not self.turned:  # the first direction from memory, turned uphill
                self.turned = True
                self.events.append("uphill")
                return -direction, -slope, norm
            return direction, slope, norm

        def clear(self):
            self.events.append("clear")
            super().clear()

    monkeypatch.setattr(StyleTransfer, "LbfgsMemory", UphillOnce)
    shape = (2, 6, 5, 3)
    objective = BoxedQuadratic(shape)
    seen = []

    def report(iteration, pixels, losses, evaluations):
        seen.append(np.asarray(pixels))
        return True

    StyleTransfer.lbfgs_optimize(objective, np.full(shape, 0.5, np.float32), 60, report)
    (memory,) = made
    # cleared at once (and again if rounding later points uphill near the minimum)
    assert memory.events[:2] == ["uphill", "clear"]
    np.testing.assert_allclose(seen[-1], np.clip(objective.target, 0.0, 1.0), atol=1e-3)


@pytest.mark.parametrize("overlap", [False, True])
def test_adam_reports_the_images_after_each_step_the_last_included(overlap):
    """Iteration k is the images after k steps, with their own loss: one iteration moves
    the start, and the last step's images are measured (they were once dropped, each
    iteration reporting the images its step started from)."""
    shape = (1, 6, 5, 3)
    objective = BoxedQuadratic(shape)
    start = np.full(shape, 0.5, dtype=np.float32)
    for iterations in (1, 3):
        reports = []

        def report(iteration, pixels, losses, evaluations):
            reports.append((iteration, np.asarray(pixels), float(np.sum(losses[StyleTransfer.TOTAL_ROW]))))
            return True

        StyleTransfer.adam_optimize(objective, start, iterations, 0.05, report, overlap=overlap)
        assert [iteration for iteration, *_ in reports] == list(range(1, iterations + 1))
        images = [start] + [pixels for _, pixels, _ in reports]
        for before, after in zip(images, images[1:]):
            assert np.abs(after - before).max() > 0.01  # a step apart, each
        for _, pixels, loss in reports:
            np.testing.assert_allclose(loss, float(np.sum(objective(pixels)[StyleTransfer.TOTAL_ROW])), rtol=1e-5)
        assert reports[-1][2] < float(np.sum(objective(start)[StyleTransfer.TOTAL_ROW]))


@pytest.mark.parametrize("stop_at", [None, 3])
def test_adam_overlapping_reports_reports_the_same_steps(stop_at):
    """overlap (used on a GPU) reports each step after queuing the next: the same
    iterations, images and losses must reach ``report`` as without it, in order,
    and a report returning False must still be the last one."""
    shape = (2, 6, 5, 3)
    objective = BoxedQuadratic(shape)
    start = np.full(shape, 0.5, dtype=np.float32)
    seen = {}
    for overlap in (False, True):
        reports = seen[overlap] = []

        def report(iteration, pixels, losses, evaluations):
            reports.append((iteration, evaluations, np.asarray(pixels), np.asarray(losses)))
            return iteration != stop_at

        StyleTransfer.adam_optimize(objective, start, 8, 0.05, report, overlap=overlap)
    expected = list(range(1, (stop_at or 8) + 1))
    for overlap, reports in seen.items():
        assert [iteration for iteration, *_ in reports] == expected, overlap
        assert [evaluations for _, evaluations, *_ in reports] == [n + 1 for n in expected], overlap  # the start's too
    for plain, overlapped in zip(seen[False], seen[True]):
        np.testing.assert_array_equal(plain[2], overlapped[2])
        np.testing.assert_array_equal(plain[3], overlapped[3])
    assert not np.array_equal(seen[True][0][2], seen[True][-1][2])  # the images did move
