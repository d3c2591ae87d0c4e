"""Several contents sharing a style, optimized together in one batch.

A batch is one forward pass per step for all of its images, each with its own
loss: under Adam every image must come out as it does alone; under L-BFGS
each image's loss must still fall. Batch mode groups pairs by style and size.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import ContentModel
import StyleTransfer
from ContentModel import StyleTransferError, load_image, save_image
from StyleTransfer import (
    NOT_RUN,
    SKIPPED,
    Pair,
    batch_size,
    estimate_memory,
    plan_groups,
    stylize,
    stylize_batch,
)

FAST = {"model": "vgg19", "save_every": 0, "precision": "float32"}
#: For the tests of the memory check: a run's memory is checked against the machine's on a CPU only.
ON_THE_CPU = ["--device", "cpu"]


def two_contents(content: np.ndarray) -> list[np.ndarray]:
    """Two different photos of one size: the sample and its mirror image."""
    return [content, np.ascontiguousarray(content[:, ::-1])]


def test_adam_on_a_batch_gives_each_image_what_it_gets_alone(small_pair, vgg19_weights):
    content, style = small_pair
    contents = two_contents(content)
    settings = dict(iterations=6, optimizer="adam", **FAST)

    together = stylize_batch(contents, style, **settings)

    assert len(together) == 2
    assert np.abs(together[0].image - together[1].image[:, ::-1]).max() > 0.01  # not one image twice
    for content_image, result in zip(contents, together):
        alone = stylize(content_image, style, **settings)
        assert result.image.shape == content_image.shape
        np.testing.assert_allclose(result.image, alone.image, atol=1e-4)
        assert [row["total"] for row in result.history] == pytest.approx(
            [row["total"] for row in alone.history], rel=1e-4)


@pytest.mark.parametrize("preserve_colors, passes_per_level", [("none", 1), ("histogram", 3)])
def test_contents_that_share_a_style_share_its_targets(small_pair, vgg19_weights, monkeypatch,
                                                       preserve_colors, passes_per_level):
    """The style's Gram targets are computed once per level for the whole batch, not once
    per content; with --preserve-colors histogram each content has its own recoloured style."""
    content, style = small_pair
    passes = []
    real = StyleTransfer.style_targets

    def counted(extractor, style_images, style_layers):
        passes.append(len(style_images))
        return real(extractor, style_images, style_layers)

    monkeypatch.setattr(StyleTransfer, "style_targets", counted)
    contents = [*two_contents(content), np.ascontiguousarray(content[::-1])]
    results = stylize_batch(contents, style, iterations=[1, 1], scales=2, preserve_colors=preserve_colors, **FAST)
    assert len(results) == 3 and passes == [1] * (2 * passes_per_level)


def test_lbfgs_on_a_batch_lowers_every_images_loss(small_pair, vgg19_weights):
    content, style = small_pair
    results = stylize_batch(two_contents(content), style, iterations=8, optimizer="lbfgs", **FAST)

    for result in results:
        totals = [row["total"] for row in result.history]
        assert len(totals) == 8 and totals[-1] < 0.5 * totals[0]
        assert result.stopped_early is None and np.all((result.image >= 0) & (result.image <= 1))


def test_a_batch_goes_through_every_level_and_control(small_pair, vgg19_weights):
    content, style = small_pair
    contents = two_contents(content)
    results = stylize_batch(contents, [style, style[::-1]], iterations=[2, 2], scales=2,
                            preserve_colors="luminance", style_blend_weights=[0.5, 0.5], **FAST)
    for content_image, result in zip(contents, results):
        assert result.image.shape == content_image.shape
        assert len(result.sizes) == 2 and result.sizes[-1] == content_image.shape[:2]
        assert [row["level"] for row in result.history] == [0, 0, 1, 1]


def test_contents_of_different_sizes_are_refused(small_pair):
    content, style = small_pair
    with pytest.raises(StyleTransferError, match="one size"):
        stylize_batch([content, content[:-2]], style, iterations=1, **FAST)
    with pytest.raises(StyleTransferError, match="no content image"):
        stylize_batch([], style, iterations=1, **FAST)


def nan_for_the_second_image(monkeypatch, after: int) -> None:
    """Make the second image's TV term NaN from its evaluation ``after + 1`` on.

    In a batch of two, the TV term is evaluated for image 0, then image 1, in
    every step (stateful ops run in program order), so even counts are image 1.
    """
    real = StyleTransfer.total_variation_loss
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)

    def poisoned(image):
        count = counter.assign_add(1)
        poison = tf.logical_and(count > 2 * after, tf.equal(count % 2, 0))
        return real(image) * tf.where(poison, tf.constant(float("nan")), tf.constant(1.0))

    monkeypatch.setattr(StyleTransfer, "total_variation_loss", poisoned)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_non_finite_loss_in_one_image_stops_the_batch_keeping_finite_images(
        monkeypatch, small_pair, vgg19_weights, optimizer):
    content, style = small_pair
    nan_for_the_second_image(monkeypatch, after=3)

    first, second = stylize_batch(two_contents(content), style, iterations=20, optimizer=optimizer, **FAST)

    assert second.non_finite and "nan" in second.stopped_early
    assert not first.non_finite and "another image" in first.stopped_early
    assert np.isfinite(first.history[-1]["total"]) and len(first.history) < 20
    for result in (first, second):
        assert np.all(np.isfinite(result.image)) and result.image.min() >= 0 and result.image.max() <= 1


# --- batch mode: grouping and the command line ----------------------------------------


def test_pairs_are_grouped_by_style_and_size_in_order(tmp_path):
    images = {"a": np.zeros((4, 6, 3)), "b": np.zeros((4, 6, 3)), "c": np.zeros((6, 4, 3)),
              "d": np.zeros((4, 6, 3))}
    pairs = [Pair(content, style, tmp_path / f"{content}_{style}.png")
             for content in images for style in ("x", "y")]
    pairs[2].status = SKIPPED  # b + x was done before: it takes no place in a group

    groups = plan_groups(pairs, images, group_size=2)

    assert [[pair.output.stem for pair in group] for group in groups] == [
        ["a_x", "d_x"], ["a_y", "b_y"], ["c_x"], ["c_y"], ["d_y"]]
    assert all(pair.status == NOT_RUN for group in groups for pair in group)
    assert [len(group) for group in plan_groups(pairs, images, group_size=1)] == [1] * 7


def test_auto_batch_size_is_one_on_a_cpu_and_memory_caps_a_larger_one(monkeypatch):
    settings = {"model": "vgg19", "optimizer": "lbfgs", "precision": "float32",
                "content_layer": StyleTransfer.CONTENT_LAYER, "style_layers": StyleTransfer.STYLE_LAYERS}
    shape = (512, 512)
    assert batch_size("auto", "/CPU:0", shape, settings) == 1
    assert batch_size("auto", "/GPU:0", shape, settings) == StyleTransfer.AUTO_BATCH_SIZE["gpu"]
    one, three = (estimate_memory(shape, model="vgg19", precision="float32", batch=n) for n in (1, 3))
    assert one < three < 3 * one  # TensorFlow itself is counted once
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: three)
    assert batch_size(8, "/CPU:0", shape, settings) == 3
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: 1)
    assert batch_size(8, "/CPU:0", shape, settings) == 1


def test_a_huge_batch_size_is_cut_to_the_largest_group_at_once(monkeypatch):
    """'--batch-size 99999999999999999999' hung for minutes, silent: the size came down to
    what memory holds one at a time, each step an estimate."""
    settings = {"model": "vgg19", "optimizer": "lbfgs", "precision": "float32",
                "content_layer": StyleTransfer.CONTENT_LAYER, "style_layers": StyleTransfer.STYLE_LAYERS}
    estimates = []
    real_estimate = StyleTransfer.settings_memory
    monkeypatch.setattr(StyleTransfer, "settings_memory",
                        lambda *args, **kwargs: estimates.append(kwargs["batch"]) or real_estimate(*args, **kwargs))
    huge = 10**20
    assert batch_size(huge, "/GPU:0", (64, 64), settings, most=3) == 3  # no more than the pairs to run
    assert batch_size(huge, "/GPU:0", (64, 64), settings) == huge  # no limit given: as asked (a GPU's is not known)
    seven = estimate_memory((64, 64), model="vgg19", precision="float32", batch=7)
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: seven)
    assert batch_size(huge, "/CPU:0", (64, 64), settings) == 7
    assert len(estimates) < 80  # about log2(1e20) estimates, not 1e20


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("1", 1), ("3", 3)])
def test_batch_size_flag_takes_auto_or_a_positive_count(text, expected):
    assert StyleTransfer.batch_size_argument(text) == expected


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_batch_size_flag_refuses_other_values(text):
    with pytest.raises(argparse.ArgumentTypeError):
        StyleTransfer.batch_size_argument(text)


def photo_and_mirror_folder(photo_path: Path, tmp_path: Path) -> Path:
    """A folder of two 64-px contents of one size: a sample photo and its mirror image."""
    contents = tmp_path / "contents"
    contents.mkdir()
    photo = load_image(photo_path, 64)
    save_image(photo, contents / "photo.png")
    save_image(np.ascontiguousarray(photo[:, ::-1]), contents / "mirror.png")
    return contents


def test_batch_mode_keeps_its_inputs_in_8_bits_and_gets_back_the_same_floats(sample_images, tmp_path):
    """Batch mode holds every input for the whole batch: a quarter of float32's memory, and
    nothing lost, since the images were decoded from 8 bits."""
    missing = str(tmp_path / "missing.jpg")
    kept = StyleTransfer.load_sources([str(sample_images[0]), missing], 96, ContentModel.MAX_IMAGE_PIXELS)
    assert kept[str(sample_images[0])].dtype == np.uint8
    np.testing.assert_array_equal(ContentModel.to_array(kept[str(sample_images[0])]), load_image(sample_images[0], 96))
    assert isinstance(kept[missing], StyleTransferError)


def test_batch_mode_optimizes_same_size_contents_together(sample_images, tmp_path, run_main,
                                                           vgg19_weights):
    contents = photo_and_mirror_folder(sample_images[0], tmp_path)
    arguments = ["--contents", str(contents), "--styles", str(sample_images[1]), "--size", "64",
                 "--iterations", "3", "--optimizer", "adam", "--model", "vgg19", "--precision", "float32",
                 "--save-every", "0"]
    style = Path(sample_images[1]).stem

    status, stdout, _ = run_main([*arguments, "--batch-size", "2", "-o", str(tmp_path / "together")])
    assert status == 0, stdout
    assert "up to 2 at a time" in stdout and stdout.count("(a batch of 2)") == 2
    status, stdout, _ = run_main([*arguments, "--batch-size", "1", "-o", str(tmp_path / "apart")])
    assert status == 0 and "(a batch of" not in stdout

    for name in ("photo", "mirror"):
        together = tmp_path / "together" / f"{name}_{style}.png"
        trace = json.loads(together.with_suffix(".json").read_text())
        assert sorted(trace["batch"]) == sorted([f"mirror + {style}", f"photo + {style}"])
        # Adam: the same image as alone, up to the 8-bit rounding of the files.
        apart = load_image(tmp_path / "apart" / f"{name}_{style}.png")
        assert np.abs(load_image(together) - apart).max() <= 2 / 255


def test_batch_size_outside_batch_mode_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        StyleTransfer.main(["--batch-size", "2", "--size", "64"])
    assert caught.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "batch mode" in error and "\n" not in error


def test_a_batch_pair_that_cannot_fit_fails_alone_with_the_fix(sample_images, tmp_path, run_main, monkeypatch):
    """On a CPU a batch pair is checked against the memory available, as a single run is,
    instead of being left to the system's out-of-memory killer."""
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: StyleTransfer.BASELINE_BYTES)  # TensorFlow's own
    status, stdout, stderr = run_main(["--contents", str(sample_images[0]), "--styles", str(sample_images[1]),
                                       "--size", "64", "--iterations", "1", "--model", "vgg19", *ON_THE_CPU,
                                       "-o", str(tmp_path / "out")])
    assert status == StyleTransfer.EXIT_FAILED, stdout + stderr
    assert "1 pair: 0 done, 0 skipped, 1 failed" in stdout
    assert "GiB" in stderr and "--size" in stderr
    assert [path.name for path in (tmp_path / "out").iterdir()] == [StyleTransfer.CONTACT_SHEET_NAME]


def test_a_batch_pair_that_cannot_fit_is_refused_before_its_images_are_decoded(sample_images, tmp_path,
                                                                               run_main, monkeypatch):
    """At --size x --style-scale the decoded images alone can be gigabytes: as in a single
    run, a pair is checked against the memory from the files' headers, and one refused is
    never decoded at its size; the contact sheet still shows its images, read small."""
    decoded, sheet = [], {}
    real_load_pil, real_plot = StyleTransfer.load_pil, StyleTransfer.plot_contact_sheet

    def recording_load_pil(path, max_size=None, *args, **kwargs):
        decoded.append(max_size)
        return real_load_pil(path, max_size, *args, **kwargs)

    monkeypatch.setattr(StyleTransfer, "load_pil", recording_load_pil)
    monkeypatch.setattr(StyleTransfer, "plot_contact_sheet",
                        lambda rows, columns, cells: sheet.update(rows=rows, columns=columns)
                        or real_plot(rows, columns, cells))
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: StyleTransfer.BASELINE_BYTES)  # TensorFlow's own
    status, stdout, stderr = run_main(["--contents", str(sample_images[0]), "--styles", str(sample_images[1]),
                                       "--size", "2048", "--style-scale", "4", "--model", "vgg19", *ON_THE_CPU,
                                       "-o", str(tmp_path / "out")])
    assert status == StyleTransfer.EXIT_FAILED, stdout + stderr
    assert "1 pair: 0 done, 0 skipped, 1 failed" in stdout and "a smaller --style-scale" in stderr
    assert decoded == [StyleTransfer.SHEET_THUMBNAIL] * 2  # the sheet's two headers, nothing else
    assert all(isinstance(image, np.ndarray) and max(image.shape[:2]) == StyleTransfer.SHEET_THUMBNAIL
               for _, image in sheet["rows"] + sheet["columns"])


def run_small_batch(sample_images, tmp_path: Path, run_main, monkeypatch, stylize, contents: Path | None = None,
                     batch: int = 2) -> tuple:
    """Batch mode over the photo-and-mirror folder (or ``contents``) and one style, ``batch``
    contents to a group, with stylize_batch replaced by ``stylize(real_stylize_batch,
    content_images, style, **settings)``. Returns (exit status, stdout, stderr)."""
    contents = contents or photo_and_mirror_folder(sample_images[0], tmp_path)
    real = StyleTransfer.stylize_batch
    monkeypatch.setattr(StyleTransfer, "stylize_batch",
                        lambda content_images, style, **settings: stylize(real, content_images, style, **settings))
    return run_main(["--contents", str(contents), "--styles", str(sample_images[1]), "--batch-size", str(batch),
                     "--size", "64", "--iterations", "2", "--model", "vgg19", "--save-every", "0",
                     "-o", str(tmp_path / "out")])


def test_a_batch_pair_whose_style_images_do_not_fit_fails_with_the_fix(sample_images, tmp_path, run_main,
                                                                       monkeypatch, vgg19_weights):
    """Room for optimizing one content but not for the style's targets at --style-scale 4:
    each pair fails alone, naming --style-scale first, and nothing else is written."""
    contents = photo_and_mirror_folder(sample_images[0], tmp_path)
    shape = load_image(contents / "photo.png", 64).shape[:2]
    room = estimate_memory(shape, model="vgg19", precision="float32") + 1
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: room)
    status, stdout, stderr = run_main(["--contents", str(contents), "--styles", str(sample_images[1]),
                                       "--size", "64", "--iterations", "2", "--model", "vgg19", *ON_THE_CPU,
                                       "--precision", "float32", "--style-scale", "4", "-o", str(tmp_path / "out")])
    assert status == StyleTransfer.EXIT_FAILED, stdout + stderr
    assert "up to 1 at a time" in stdout  # a batch of two did not fit either
    assert "2 pairs: 0 done, 0 skipped, 2 failed" in stdout
    failures = [line for line in stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 2 and all(line.endswith(
        "is available; use a smaller --style-scale, a smaller --size or --precision mixed") for line in failures)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["contact_sheet.png"]


def test_a_batch_the_device_has_no_room_for_runs_again_one_pair_at_a_time(sample_images, tmp_path, run_main,
                                                                           monkeypatch, vgg19_weights):
    """On a GPU the estimate is not checked, so a batch can run out of device memory: its
    pairs are then run one at a time, and each still finishes."""
    sizes = []
    monkeypatch.setenv("COLUMNS", "200")  # the running line is cut to the terminal's width: room for it all

    def no_room_for_two(real_stylize, content_images, style, **settings):
        sizes.append(len(content_images))
        if len(content_images) > 1:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real_stylize(content_images, style, **settings)

    real_init = StyleTransfer.BatchProgress.__init__

    def as_on_a_terminal(self, pairs, stream):  # draw the running line, as on a terminal
        real_init(self, pairs, stream)
        self.interactive = True

    monkeypatch.setattr(StyleTransfer.BatchProgress, "__init__", as_on_a_terminal)
    status, stdout, stderr = run_small_batch(sample_images, tmp_path, run_main, monkeypatch, no_room_for_two)
    assert status == 0, stdout + stderr
    assert sizes == [2, 1, 1]
    assert "2 pairs: 2 done, 0 skipped, 0 failed" in stdout
    assert stdout.count(" done in ") == 2 and "(a batch of" not in stdout  # each line says it ran alone
    style = Path(sample_images[1]).stem
    for number, name in ((1, "mirror"), (2, "photo")):  # the iteration count is drawn beside the pair's own name
        assert f"\r[{number}/2] {name} + {style} ... 2/2" in stdout, stdout
    assert f"[1,2/2] mirror + {style}, photo + {style} ... 1/" not in stdout  # the pair never ran
    for name in ("photo", "mirror"):
        trace = json.loads((tmp_path / "out" / f"{name}_{Path(sample_images[1]).stem}.json").read_text())
        assert trace["batch"] == [f"{name} + {Path(sample_images[1]).stem}"]  # run alone


@pytest.mark.parametrize("batch, room, sizes, ran_in", [(4, 2, [4, 2, 2], [2, 2, 2, 2]),
                                                      (2, 1, [2, 1, 1, 1, 1], [1, 1, 1, 1]),
                                                      (3, 2, [3, 2, 1, 1], [1, 1, 2, 2])])
def test_a_batch_that_ran_out_of_memory_runs_again_in_halves_and_no_later_batch_is_larger(
        batch, room, sizes, ran_in, sample_images, tmp_path, run_main, monkeypatch, vgg19_weights):
    """Four contents of one size. A batch of 4 where the device holds 2 runs again as 2 + 2
    (not four times alone); a batch of 2 where it holds 1 runs alone, and so does the next
    group (not tried at 2 first, to run out of memory again); a batch of 3 as 2 + 1."""
    contents = photo_and_mirror_folder(sample_images[0], tmp_path)
    for name in ("photo", "mirror"):  # and each upside down: four contents of one size
        save_image(np.ascontiguousarray(load_image(contents / f"{name}.png")[::-1]), contents / f"{name}_flipped.png")
    tried = []

    def room_for(real_stylize, content_images, style, **settings):
        tried.append(len(content_images))
        if len(content_images) > room:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real_stylize(content_images, style, **settings)

    status, stdout, stderr = run_small_batch(sample_images, tmp_path, run_main, monkeypatch, room_for, contents,
                                              batch)
    assert status == 0, stdout + stderr
    assert tried == sizes
    assert "4 pairs: 4 done, 0 skipped, 0 failed" in stdout
    batches = [json.loads(path.read_text())["batch"] for path in (tmp_path / "out").glob("*.json")]
    assert sorted(len(names) for names in batches) == ran_in  # each pair's trace names the batch it ran in


def test_a_batch_refused_for_another_reason_is_not_run_again_pair_by_pair(sample_images, tmp_path, run_main,
                                                                          monkeypatch):
    """Only a lack of memory is helped by running pairs one at a time: any other refusal
    fails the group's pairs at once, each with the message."""
    sizes = []

    def refuses(real_stylize, content_images, style, **settings):
        sizes.append(len(content_images))
        raise StyleTransferError("the weights file is not VGG19's")

    status, stdout, stderr = run_small_batch(sample_images, tmp_path, run_main, monkeypatch, refuses)
    assert status == StyleTransfer.EXIT_FAILED, stdout + stderr
    assert sizes == [2]
    assert "2 pairs: 0 done, 0 skipped, 2 failed" in stdout
    assert stderr.count("the weights file is not VGG19's") == 2, stderr


def test_a_batch_refused_for_memory_runs_again_one_pair_at_a_time(sample_images, tmp_path, run_main,
                                                                  monkeypatch, vgg19_weights):
    """Memory can shrink between planning the groups and running one: a group that
    check_memory then refuses is run again one pair at a time, and each still finishes."""
    monkeypatch.setattr(StyleTransfer, "settings_memory", lambda shape, settings, device, batch=1, style_shapes=():
                        StyleTransfer.MemoryNeed(optimization=batch, style_targets=0))
    real_check = StyleTransfer.check_memory

    def room_for_one(need, settings, device_name):
        if need.total > 1:  # the faked estimate is the number of images
            raise StyleTransfer.NotEnoughMemoryError("this run needs about 9.0 GiB of memory")
        real_check(need, settings, device_name)

    monkeypatch.setattr(StyleTransfer, "check_memory", room_for_one)
    sizes = []

    def counting(real_stylize, content_images, style, **settings):
        sizes.append(len(content_images))
        return real_stylize(content_images, style, **settings)

    status, stdout, stderr = run_small_batch(sample_images, tmp_path, run_main, monkeypatch, counting)
    assert status == 0, stdout + stderr
    assert sizes == [1, 1]
    assert "2 pairs: 2 done, 0 skipped, 0 failed" in stdout
    assert stdout.count(" done in ") == 2 and "(a batch of" not in stdout


def test_ctrl_c_during_a_pair_by_pair_rerun_keeps_the_pairs_already_done(sample_images, tmp_path, run_main,
                                                                         monkeypatch, vgg19_weights):
    """A group run again one pair at a time can be interrupted between its pairs: the
    pair already written stays done; only the one that was stopped is interrupted."""
    calls = []

    def no_room_then_ctrl_c(real_stylize, content_images, style, **settings):
        calls.append(len(content_images))
        if len(content_images) > 1:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C outside the optimization, before the second pair
        return real_stylize(content_images, style, **settings)

    status, stdout, stderr = run_small_batch(sample_images, tmp_path, run_main, monkeypatch, no_room_then_ctrl_c)
    assert status == StyleTransfer.EXIT_INTERRUPTED, stdout + stderr
    assert calls == [2, 1, 1]
    assert "2 pairs: 1 done, 0 skipped, 0 failed, 1 interrupted" in stdout
