"""The three scripts run as a user runs them: subprocesses from the repository root.

The real VGG19 weights come from the KERAS_HOME cache set up in conftest.py
(the scripts' default --weights is "imagenet").
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ContentModel
import StyleModel
import StyleTransfer

TIMEOUT = 300
ITERATIONS = 3
LOSS_KEYS = ("content", "style", "tv", "total", "seconds")


def run_script(script: str, *args, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_line_error(process: subprocess.CompletedProcess, *fragments: str) -> None:
    assert process.returncode == 2, process.stderr
    assert "Traceback" not in process.stderr, process.stderr
    errors = error_lines(process.stderr)
    # One line in all: TensorFlow's native start-up log lines are silenced too.
    assert process.stderr.splitlines() == errors and len(errors) == 1, process.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory, sample_images) -> tuple[Path, Path]:
    """Small copies of the sample pair (long side 96 px)."""
    folder = tmp_path_factory.mktemp("inputs")
    copies = []
    for source in sample_images:
        with Image.open(source) as image:
            image = image.convert("RGB")
            image.thumbnail((96, 96), Image.Resampling.LANCZOS)
            copy = folder / source.name
            image.save(copy, quality=95)
        copies.append(copy)
    return copies[0], copies[1]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, small_inputs, subprocess_env, repo_root, vgg19_weights):
    folder = tmp_path_factory.mktemp("cli")
    output = folder / "out.png"
    content, style = small_inputs
    arguments = [content, style, "-o", output, "--size", 64, "--iterations", ITERATIONS, "--model", "vgg19",
                 "--gif", "--save-every", 1]
    process = run_script("StyleTransfer.py", *arguments, env=subprocess_env, cwd=repo_root)
    return {"process": process, "folder": folder, "output": output, "content": content, "style": style,
            "arguments": [str(argument) for argument in arguments]}


def test_stylize_run_succeeds(cli_run):
    process = cli_run["process"]
    assert process.returncode == 0, f"stdout:\n{process.stdout}\nstderr:\n{process.stderr}"
    assert "Traceback" not in process.stderr
    assert error_lines(process.stderr) == []


def test_stylize_writes_every_output(cli_run):
    folder = cli_run["folder"]
    assert cli_run["process"].returncode == 0, cli_run["process"].stderr
    expected = {"out.png", "out_panel.png", "out_losses.png", "out.json", "out.gif"}
    assert expected <= {p.name for p in folder.iterdir()}
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], "temporary files left"
    for name in ("out.png", "out_panel.png", "out_losses.png"):
        with Image.open(folder / name) as image:
            assert image.format == "PNG", name
            image.verify()


def test_result_image_has_the_content_size(cli_run):
    assert cli_run["process"].returncode == 0, cli_run["process"].stderr
    expected = ContentModel.load_image(cli_run["content"], 64).shape
    result = ContentModel.load_image(cli_run["output"])
    assert result.shape == expected
    assert max(expected[:2]) == 64


def test_json_trace(cli_run, repo_root):
    assert cli_run["process"].returncode == 0, cli_run["process"].stderr
    trace = json.loads((cli_run["folder"] / "out.json").read_text())
    settings = trace["settings"]
    assert settings["iterations"] == ITERATIONS
    assert settings["model"] == "vgg19"
    assert settings["save_every"] == 1
    assert settings["seed"] == StyleTransfer.DEFAULT_SEED
    assert settings["preconditioner"] == StyleTransfer.DEFAULT_PRECONDITIONER
    assert trace["device"] in ("/CPU:0", "/GPU:0")
    # What made it: the command as typed, the arithmetic 'auto' chose, the sizes, the versions.
    assert trace["command"] == shlex.join(["python", "StyleTransfer.py", *cli_run["arguments"]])
    for name in ("out.png", "out_panel.png", "out_losses.png"):  # each picture says what made it
        assert ContentModel.png_text(cli_run["folder"] / name)["Description"] == trace["command"], name
    assert trace["working_directory"] == str(repo_root)
    assert trace["precision"] in ("float32", "mixed") and settings["precision"] == "auto"
    expected = ContentModel.load_image(cli_run["content"], 64).shape[:2]
    assert [tuple(size) for size in trace["level_sizes"]] == [expected]
    assert set(trace["versions"]) == {"code", "python", "tensorflow", "keras", "numpy", "pillow"}
    assert trace["versions"]["code"] == ContentModel.code_version()  # the checkout's commit
    assert trace["processor"] == ContentModel.processor_name()
    # Which files it read, by their bytes: a photo replaced under its old name is another input.
    assert trace["sha256"] == {"content": ContentModel.file_digest(cli_run["content"]),
                               "styles": [ContentModel.file_digest(cli_run["style"])], "style_masks": None}
    assert trace["stopped_early"] is None and trace["seconds"] == trace["history"][-1]["seconds"]
    history = trace["history"]
    assert len(history) == ITERATIONS
    assert [row["iteration"] for row in history] == list(range(1, ITERATIONS + 1))
    for row in history:
        for key in LOSS_KEYS:
            assert isinstance(row[key], (int, float)) and np.isfinite(row[key]), (key, row)
    evaluations = [row["evaluations"] for row in history]
    assert evaluations == sorted(evaluations) and evaluations[0] >= 2  # L-BFGS: the start and a step
    assert history[-1]["total"] < history[0]["total"]
    # The loss of the image kept, in the trace and on the line naming the files.
    assert trace["loss"] == min(row["total"] for row in history)
    assert f"done in {trace['seconds']:.1f} s, loss {trace['loss']:.3g}: " in cli_run["process"].stdout
    # The first line says what will run, and about how much memory it needs.
    first = cli_run["process"].stdout.splitlines()[0]
    assert first.startswith("StyleTransfer: vgg19 on ") and " GiB -> " in first and "about" in first


def test_a_results_loss_is_the_lowest_finite_one_of_its_last_level():
    """The kept image's loss; an earlier level's, measured at another size, does not compare."""
    rows = [(0, 5.0), (0, 1.0), (1, 9.0), (1, 3.0), (1, float("nan")), (1, 4.0)]
    history = [{"level": level, "total": total} for level, total in rows]
    image, two_levels = np.zeros((4, 4, 3), np.float32), [(2, 2), (4, 4)]
    assert StyleTransfer.StylizeResult(image=image, sizes=two_levels, history=history).loss == 3.0
    # A last level that measured nothing (L-BFGS ended before its first iteration): not level 0's loss.
    assert StyleTransfer.StylizeResult(image=image, sizes=two_levels, history=history[:2]).loss is None
    assert StyleTransfer.StylizeResult(image=image, sizes=[(4, 4)], history=[{"level": 0, "total": float("inf")}]) \
        .loss is None
    assert StyleTransfer.StylizeResult(image=image).loss is None


def test_a_run_that_measured_no_loss_says_it_is_done_without_one(tmp_path, small_inputs, run_main, vgg19_weights):
    """The content as the start with only the content loss: L-BFGS ends before its first
    iteration (the gradient is zero). The line naming the files was a TypeError traceback."""
    output = tmp_path / "r.png"
    status, stdout, stderr = run_main([*map(str, small_inputs), "--init", "content", "--style-weight", "0",
                                       "--tv-weight", "0", "--precision", "float32", "--size", "64",
                                       "--iterations", "3", "--model", "vgg19", "-o", str(output)])
    assert status == 0, stdout + stderr
    assert "note: L-BFGS ended after 0 of 3 iterations: the gradient is zero" in stdout
    assert re.search(rf"^done in [0-9.]+ s: {re.escape(str(output))}, ", stdout, re.MULTILINE), stdout
    assert json.loads(output.with_suffix(".json").read_text())["loss"] is None


def test_the_code_version_is_the_checkouts_commit_and_says_when_its_files_changed(tmp_path):
    """What a trace names as the code: the commit, '+changes' after it when a tracked file of
    code differs from it (a result, tracked for the gallery or not, is not code: the README's
    gallery commands rewrite tracked results and said '+changes'), None without a commit."""
    def git(*arguments: str) -> str:
        identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
        return subprocess.run(["git", "-C", str(tmp_path), *identity, *arguments], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    assert ContentModel.code_version(tmp_path) is None  # a checkout with no commit yet
    (tmp_path / "StyleTransfer.py").write_text("STYLE_WEIGHT = 1e-2\n")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "common.py").write_text("RUNS = 5\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "gallery.json").write_text("{}")
    git("add", "StyleTransfer.py", "benchmarks", "results")
    git("commit", "-q", "-m", "one")
    head = git("rev-parse", "HEAD")
    assert len(head) == 40 and ContentModel.code_version(tmp_path) == head
    (tmp_path / "result.png").write_bytes(b"not code")
    (tmp_path / "results" / "gallery.json").write_text('{"rerun": true}')  # tracked, rewritten by a run
    assert ContentModel.code_version(tmp_path) == head
    (tmp_path / "benchmarks" / "common.py").write_text("RUNS = 3\n")  # code in a folder
    assert ContentModel.code_version(tmp_path) == head + "+changes"
    git("checkout", "--", "benchmarks")
    (tmp_path / "StyleTransfer.py").write_text("STYLE_WEIGHT = 1e-3\n")
    assert ContentModel.code_version(tmp_path) == head + "+changes"
    assert ContentModel.code_version(tmp_path / "missing") is None


def test_a_trace_holds_numpy_values_as_json_numbers_and_nan_as_null(tmp_path):
    trace = {"loss": np.float32(2.5), "seed": np.int64(3), "sizes": np.array([[4, 6]]),
             "history": [{"total": np.float32("nan")}, {"total": float("inf")}]}
    StyleTransfer.write_trace(tmp_path / "t.json", trace)
    assert json.loads((tmp_path / "t.json").read_text()) == {
        "loss": 2.5, "seed": 3, "sizes": [[4, 6]], "history": [{"total": None}, {"total": None}]}


def test_the_trace_keeps_the_inputs_as_given_and_the_runs_notes():
    """A note (here: L-BFGS ended early at a level) goes into the trace, with the
    inputs as typed and the size asked for."""
    args = StyleTransfer.build_parser().parse_args(["photo.jpg", "a.jpg", "https://example.org/b.png",
                                                    "--size", "96"])
    args.command = "python StyleTransfer.py photo.jpg a.jpg https://example.org/b.png --size 96"
    result = StyleTransfer.StylizeResult(image=np.zeros((64, 96, 3), np.float32), device="/CPU:0",
                                         precision="float32", sizes=[(64, 96)], blend_weights=[[0.7, 0.3]],
                                         history=[{"iteration": 1, "level": 0, "total": 2.0, "seconds": 1.5}],
                                         notes=["L-BFGS ended after 1 of 2 iterations: a minimum"])
    settings = StyleTransfer.settings_from_args(args)
    digests = {"content": "0" * 64, "styles": ["1" * 64, "2" * 64], "style_masks": None}
    trace = StyleTransfer.run_trace(args, Path("out/r.png"), args.content, args.styles, settings, result, digests)
    assert trace["image"] == "r.png"  # beside the trace: its name only
    assert trace["content"] == "photo.jpg" and trace["styles"] == ["a.jpg", "https://example.org/b.png"]
    assert trace["sha256"] == digests
    assert trace["size"] == 96 and trace["settings"] == settings and trace["command"] == args.command
    assert trace["notes"] == result.notes and trace["seconds"] == 1.5 and trace["level_sizes"] == [(64, 96)]
    assert trace["level_blend_weights"] == [[0.7, 0.3]]


def test_gif_is_animated(cli_run):
    assert cli_run["process"].returncode == 0, cli_run["process"].stderr
    with Image.open(cli_run["folder"] / "out.gif") as gif:
        assert gif.format == "GIF"
        # The command in its comment marks it as a run's, which a later run may remove.
        trace = json.loads((cli_run["folder"] / "out.json").read_text())
        assert gif.info["comment"].decode() == f"{trace['command']}\nresult: out.png"
        assert StyleTransfer.made_by_a_run(cli_run["folder"] / "out.gif")
        assert gif.is_animated
        # --save-every 1: the starting image and one frame per iteration
        assert gif.n_frames == ITERATIONS + 1


def test_the_gif_ends_on_the_result_held(tmp_path):
    """The GIF's last frame, held, is the result, also where the last frame taken is not it
    (the lowest loss came before the last iteration, or L-BFGS ended between frames): it
    ended on that frame, another image than the result written beside it."""
    red, green, blue = (np.full((8, 12, 3), colour, np.float32) for colour in np.eye(3))
    for frames, result, colours in [([red, green], blue, [red, green, blue]), ([red, blue], blue, [red, blue])]:
        path = StyleTransfer.save_gif(frames, result, tmp_path / "run.gif")
        with Image.open(path) as gif:
            shown, held = [], []
            for index in range(gif.n_frames):
                gif.seek(index)
                shown.append(np.asarray(gif.convert("RGB"), np.float32)[0, 0] / 255)
                held.append(gif.info["duration"])
        np.testing.assert_array_equal(shown, [colour[0, 0] for colour in colours])
        assert held[-1] == StyleTransfer.GIF_FRAME_MS * StyleTransfer.GIF_LAST_FRAME_HOLD > held[0]


@pytest.mark.parametrize("script, image_index, layers", [
    ("ContentModel.py", 0, ["block5_conv2"]),
    ("StyleModel.py", 1, ["block1_conv1", "block5_conv1"]),
])
def test_figure_scripts(script, image_index, layers, tmp_path, small_inputs, subprocess_env, repo_root,
                        vgg19_weights):
    output = tmp_path / "figure.png"
    arguments = [str(small_inputs[image_index]), "--model", "vgg19", "-o", str(output), "--size", "64"]
    script = str(repo_root / script)  # run from elsewhere: the command records the script's path as typed
    process = run_script(script, *arguments, env=subprocess_env, cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    with Image.open(output) as image:
        assert image.format == "PNG"
        assert min(image.size) > 64
    # The figure carries the command that made it, as it can be typed again in the same folder.
    assert ContentModel.png_text(output)["Description"] == shlex.join(["python", script, *arguments])
    for layer in layers:
        assert layer in process.stdout


HELP_FLAGS = {
    "StyleTransfer.py": ["--output", "--overwrite", "--size", "--iterations", "--optimizer", "--init",
                         "--seed", "--gif", "--save-every", "--content-weight", "--style-weight",
                         "--tv-weight", "--style-layers", "--model", "--weights", "--device"],
    "ContentModel.py": ["--layer", "--content-layer", "--size", "--count", "--output", "--model", "--weights"],
    "StyleModel.py": ["--layers", "--style-layers", "--count", "--size", "--output", "--model", "--weights"],
}


def test_help_of_each_script(subprocess_env, repo_root):
    processes = {
        script: subprocess.Popen([sys.executable, script, "--help"], cwd=repo_root, env=subprocess_env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for script in HELP_FLAGS
    }
    for script, process in processes.items():
        stdout, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, (script, stderr)
        assert stdout.startswith("usage:"), (script, stdout)
        for flag in HELP_FLAGS[script]:
            assert flag in stdout, (script, flag)
        assert "vgg16" in stdout and "vgg19" in stdout, script
        # Defaults as a user would type them: words, not a Python list; bundled files relative.
        assert "['" not in stdout and str(repo_root) not in stdout, (script, stdout)
        usage = " ".join(stdout.split("\n\n")[0].split())
        if script == "StyleTransfer.py":
            words = " ".join(stdout.split())
            assert "content photo (file or URL; default: the sample images/content/chelsea.jpg)" in words
            assert usage.endswith("[content] [style ...]"), usage  # the samples stand in for them
        else:
            assert usage.endswith("] image"), usage  # required, so not in brackets


# --- in-process: cheap checks of the argument handling ------------------------------


def test_native_stderr_is_silenced_only_when_asked(capfd):
    """What native code writes to file descriptor 2 inside the block is dropped
    (TensorFlow's import-time log lines); stderr works again after it."""
    with ContentModel.native_stderr_silenced(True):
        os.write(2, b"native chatter\n")
    os.write(2, b"after\n")
    with ContentModel.native_stderr_silenced(False):
        os.write(2, b"kept\n")
    assert capfd.readouterr().err == "after\nkept\n"


@pytest.mark.parametrize("argv, fragment", [
    (["--optimizer", "sgd"], "sgd"),
    (["--iterations", "many"], "many"),
    (["--model", "resnet"], "resnet"),
    # A value that starts with '-' is still a value (argparse before 3.13 took it for a flag).
    (["--style-layer-weights", "-1,1,1,1,1"], "style layer weights must be finite, non-negative"),
    (["--style-blend-weights", "-1,2"], "2 style blend weights given for 1 style image"),
    (["--iterations", "0,2"], "--iterations must be positive (got 0,2)"),  # was a Python list, '[0, 2]'
    (["--max-pixels", "2.5e0"], "expected a whole number (such as 50000000 or 5e7), got '2.5e0'"),
    (["--max-pixels", "1e999999999"], "expected at most 1,000,000,000,000,000,000 pixels"),
    # An unset shell variable ("$STYLES"): read as a path, '' is the current folder.
    (["", str(StyleTransfer.SAMPLE_STYLE)], "an input's name is empty ('': an unset shell variable?)"),
    (["--contents", str(StyleTransfer.SAMPLE_CONTENT), "--styles", " "], "an input's name is empty (' ': "),
    (["--contents", str(StyleTransfer.SAMPLE_CONTENT), "--styles", str(StyleTransfer.SAMPLE_STYLE), "-o", ""],
     "-o is empty; give a folder such as results/batch"),
])
def test_bad_flag_is_one_error_line(capsys, argv, fragment):
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main(argv)
    assert info.value.code == 2
    stderr = capsys.readouterr().err
    errors = error_lines(stderr)
    assert len(errors) == 1 and fragment in errors[0], stderr


@pytest.mark.parametrize("argv, sources, hinted", [
    ([], [str(StyleTransfer.SAMPLE_CONTENT), str(StyleTransfer.SAMPLE_STYLE)], False),
    (["c.jpg"], ["c.jpg", str(StyleTransfer.SAMPLE_STYLE)], False),
    (["--style-masks", "m.png", "c.jpg", "s.jpg"], [str(StyleTransfer.SAMPLE_CONTENT),
                                                    str(StyleTransfer.SAMPLE_STYLE)], True),
    (["--style-masks", "m.png", "--", "c.jpg", "s.jpg"], ["c.jpg", "s.jpg"], False),  # the hint's advice
    (["--style-layers", "block1_conv1", "block2_conv1"], [str(StyleTransfer.SAMPLE_CONTENT),
                                                          str(StyleTransfer.SAMPLE_STYLE)], False),
    (["c.jpg", "--style-masks", "m.png", "s.jpg"], ["c.jpg", str(StyleTransfer.SAMPLE_STYLE)], True),  # STYLE only
])
def test_the_samples_stand_in_for_images_not_given_and_a_swallowed_image_is_hinted(argv, sources, hinted,
                                                                                  monkeypatch):
    monkeypatch.chdir(StyleTransfer.PROJECT_DIR)  # the note names the sample as typed from here
    args = StyleTransfer.build_parser().parse_args(argv)
    assert StyleTransfer.single_run_sources(args) == sources
    assert bool(StyleTransfer.swallowed_images_hint(args)) is hinted
    # A content without a style gets a note that the sample painting stands in; the demo does not.
    sample_style = args.content is not None and sources[1:] == [str(StyleTransfer.SAMPLE_STYLE)]
    assert StyleTransfer.sample_notes(args) == (
        ["no STYLE given: using the sample images/styles/starry_night.jpg"] if sample_style else [])


def test_the_sample_note_names_the_painting_as_it_can_be_typed_from_the_current_folder(monkeypatch, tmp_path):
    """Run from outside the project, images/styles/... would name nothing there."""
    args = StyleTransfer.build_parser().parse_args(["c.jpg"])
    monkeypatch.chdir(StyleTransfer.PROJECT_DIR / "images")
    assert StyleTransfer.sample_notes(args) == ["no STYLE given: using the sample styles/starry_night.jpg"]
    monkeypatch.chdir(tmp_path)
    assert StyleTransfer.sample_notes(args) == [f"no STYLE given: using the sample {StyleTransfer.SAMPLE_STYLE}"]


def test_styles_that_do_less_than_they_seem_get_a_note(tmp_path):
    """A style of blend weight 0 is not applied, and one given twice (the same file under
    two names here) without masks only weighs more: each says so. With masks, the same
    painting in two regions is meant, and gets no note."""
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "a.jpg")
    a, link, b = (str(tmp_path / name) for name in ("a.jpg", "link.jpg", "b.jpg"))
    assert StyleTransfer.style_notes([a, b], None, None) == []
    assert StyleTransfer.style_notes([a, b], [1, 0], None) == [f"the style {b} has blend weight 0: it is not applied"]
    assert StyleTransfer.style_notes([a, b, link], None, None) == [
        f"the style {a} is given twice without masks: it weighs as one style of blend weight 0.667"]
    assert StyleTransfer.style_notes([a, b, a, a], [1, 500, 1, 1], None) == [
        f"the style {a} is given 3 times without masks: it weighs as one style of blend weight 0.00596"]
    assert StyleTransfer.style_notes([a, link, b, a], [0, 0.5, 0.25, 0.25], None) == [
        f"the style {a} has blend weight 0: it is not applied",
        f"the style {link} is given twice without masks: it weighs as one style of blend weight 0.75"]
    assert StyleTransfer.style_notes([a, a], None, ["left.png", "right.png"]) == []


@pytest.mark.parametrize("main, argv, error", [
    (StyleTransfer.main, ["c.jpg", "s.jpg", "--scale", "2"],  # meant for --style-scale, it ran as --scales 2
     "error: unrecognized arguments: --scale 2 (--scale: did you mean --scales or --style-scale?) (see --help)"),
    (StyleTransfer.main, ["c.jpg", "s.jpg", "--iteration=3", "--out", "x.png"],
     "error: unrecognized arguments: --iteration=3 --out x.png (--iteration: did you mean --iterations?; "
     "--out: did you mean --output?) (see --help)"),
    (StyleModel.main, ["--style-l", "block1_conv1", "painting.jpg"],
     "error: unrecognized arguments: --style-l painting.jpg (--style-l: did you mean --style-layers?) (see --help)"),
    (ContentModel.main, ["photo.jpg", "--zzz"], "error: unrecognized arguments: --zzz (see --help)"),
])
def test_a_shortened_or_mistyped_flag_is_refused_naming_the_closest_flags(capsys, main, argv, error):
    """argparse took any unambiguous start of a flag: '--scale 2', meant for --style-scale,
    ran as --scales 2 without a word. Every flag must be whole; a wrong one is named with
    the flags it is closest to."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == [error]


@pytest.mark.parametrize("main, argv, error", [
    # An option after '--' was 'unrecognized', with '--gif: did you mean --gif?'.
    (StyleTransfer.main, ["c.jpg", "s.jpg", "--", "--gif"],
     "error: --gif comes after '--', so it is read as a file name, and there is no such file; put the options "
     "before '--' (see --help)"),
    (ContentModel.main, ["--", "photo.jpg", "--model", "vgg19"],
     "error: --model comes after '--', so it is read as a file name, and there is no such file; put the options "
     "before '--' (see --help)"),
    # The file names before '--' take their places first: the one after it had none.
    (StyleTransfer.main, ["c.jpg", "--size", "64", "--", "s.jpg"],
     "error: unrecognized arguments: -- s.jpg (with '--', put every file name after it) (see --help)"),
    (StyleTransfer.main, ["c.jpg", "-art.jpg"],
     "error: unrecognized arguments: -art.jpg (-art.jpg is a file: write ./-art.jpg, as a word that starts with "
     "'-' is read as a flag) (see --help)"),
    (StyleModel.main, ["a.jpg", "b.jpg"],
     "error: unrecognized arguments: b.jpg (more file names than StyleModel.py takes) (see --help)"),
])
def test_file_names_that_argparse_cannot_place_are_explained(capsys, tmp_path, monkeypatch, main, argv, error):
    """Each was 'unrecognized arguments' alone, or with a hint that named the flag itself."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.jpg", "b.jpg", "-art.jpg"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == [error]


@pytest.mark.parametrize("text, pixels", [("5e7", 50_000_000), ("1_000_000", 1_000_000), ("25E1", 250),
                                          ("123456789012345678", 123456789012345678)])  # past a float's 53 bits
def test_max_pixels_may_be_written_in_exponent_notation(text, pixels):
    assert StyleTransfer.build_parser().parse_args(["--max-pixels", text]).max_pixels == pixels


def test_a_trailing_double_dash_after_a_list_flag_ends_it():
    """'... --style-masks a.png b.png --': nothing follows the --, so it changes nothing
    (argparse alone refuses it there); the command recorded in the trace keeps it."""
    argv = ["c.jpg", "s.jpg", "t.jpg", "--style-masks", "a.png", "b.png", "--"]
    arguments, command = ContentModel.invocation("StyleTransfer.py", argv)
    args = StyleTransfer.build_parser().parse_args(arguments)
    assert (args.content, args.styles, args.style_masks) == ("c.jpg", ["s.jpg", "t.jpg"], ["a.png", "b.png"])
    assert command == "python StyleTransfer.py c.jpg s.jpg t.jpg --style-masks a.png b.png --"


def test_flags_may_come_between_the_file_names():
    """'c.jpg --iterations 3 s.jpg': argparse alone filled both positionals at c.jpg, and
    called s.jpg (and the flag) unrecognized."""
    args = StyleTransfer.build_parser().parse_args(["c.jpg", "--iterations", "3", "s.jpg", "-o", "r.png", "t.jpg"])
    assert (args.content, args.styles, args.iterations, args.output) == ("c.jpg", ["s.jpg", "t.jpg"], 3, "r.png")


@pytest.mark.parametrize("flag, dest", [("--style-layers", "style_layers"), ("--style-masks", "style_masks"),
                                        ("--contents", "batch_contents"), ("--styles", "batch_styles")])
def test_a_list_flag_given_twice_joins_its_lists(flag, dest):
    """argparse alone keeps the last list: '--style-layers a b --style-layers c' was c only."""
    args = StyleTransfer.build_parser().parse_args([flag, "a", "b", flag, "c"])
    assert getattr(args, dest) == ["a", "b", "c"]
    assert StyleTransfer.build_parser().parse_args([flag, "c"]).__dict__[dest] == ["c"]  # the default is replaced


def test_style_model_layers_given_twice_shows_both(capsys, tmp_path, small_inputs):
    StyleModel.main([str(small_inputs[1]), "--layers", "block1_conv1", "--layers", "block2_conv1", "--weights",
                     "none", "--size", "64", "-o", str(tmp_path / "f.png")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["vgg16 block1_conv1: Gram matrix (64, 64)", "vgg16 block2_conv1: Gram matrix (128, 128)"]


@pytest.mark.parametrize("main, argv, hint", [
    (StyleTransfer.main, ["-o", "-.png"], "('-.png' starts with '-', as a flag does: write -o=-.png)"),
    (StyleTransfer.main, ["--output", "-.png"], "write --output=-.png)"),
    (ContentModel.main, ["photo.jpg", "-o", "-x.png"], "write -o=-x.png)"),
    (StyleTransfer.main, ["--output"], None),  # no value at all: nothing to hint
    (StyleTransfer.main, ["--output", "--gif"], None),  # a flag after it is a flag
    (StyleTransfer.main, ["--output", "--gi"], None),  # and so is a flag shortened
    (StyleTransfer.main, ["--output", "--gif=1"], None),
    (StyleTransfer.main, ["-o", "--", "c.jpg"], None),  # '--' ends the flags
    (StyleTransfer.main, ["-o", "--", "-x.png"], None),  # and is no flag to write '--=-x.png' with
])
def test_a_value_that_starts_with_a_dash_gets_the_equals_sign_hint(capsys, main, argv, hint):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "expected one argument" in errors[0], errors
    assert (hint in errors[0]) if hint else ("starts with '-'" not in errors[0])


def test_an_output_that_starts_with_a_dash_is_given_with_an_equals_sign():
    for flag in ("-o", "--output"):
        assert StyleTransfer.build_parser().parse_args([f"{flag}=-.png"]).output == "-.png"


@pytest.mark.parametrize("flags, fragment", [
    (["--gif", "--save-every", "0"], "--gif needs frames"),  # before, it wrote no GIF and said it did
    (["--iterations", ",".join(["1"] * (StyleTransfer.MAX_SCALES + 1))],
     f"at most {StyleTransfer.MAX_SCALES} levels"),  # --scales auto: one level per count
])
def test_flags_that_cannot_work_together_are_one_error_line(capsys, tmp_path, small_inputs, flags, fragment):
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "r.png"),
                            "--size", "64", *flags])
    assert info.value.code == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and fragment in errors[0], errors
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, text", [
    (["--model", "vgg19"], "vgg19"),
    (["--model", "vgg19", "--weights", "none"], "vgg19 (random weights)"),
    (["--weights", "NONE"], "vgg16 (random weights)"),
    (["--weights", "ImageNet"], "vgg16"),  # before: 'weights file not found: ImageNet'
])
def test_the_first_line_says_when_the_weights_are_random(argv, text):
    settings = StyleTransfer.settings_from_args(StyleTransfer.build_parser().parse_args(argv))
    assert StyleTransfer.model_text(settings) == text
    assert settings["weights"] in (None, "imagenet")
    StyleTransfer.check_weights(settings["weights"])


def cut_short_hdf5() -> bytes:
    """The first half of a small HDF5 file: a download that stopped half way."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file["kernel"] = np.zeros(10_000, np.float32)
    whole = buffer.getvalue()
    return whole[:len(whole) // 2]


@pytest.mark.parametrize("contents, message", [
    pytest.param(None, "weights file not found: {path}", id="missing"),
    # e.g. a web page saved under the file's name
    pytest.param(b"<html>not the weights</html>" * 50,
                 "weights file {path} is not an HDF5 file: it is corrupt, or not a Keras weights file",
                 id="not-hdf5"),
    # then HDF5's own words, which name the file's length and the length its header records
    pytest.param(cut_short_hdf5(), "weights file {path} cannot be read (cut short by a download?): ",
                 id="cut-short"),
])
def test_a_weights_file_that_cannot_be_loaded_is_refused_before_the_run_starts(capsys, tmp_path, small_inputs,
                                                                               contents, message):
    path = tmp_path / "inputs" / "weights.h5"
    path.parent.mkdir()
    if contents is not None:
        path.write_bytes(contents)
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "r.png"),
                            "--size", "64", "--weights", str(path)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no "StyleTransfer: ..." start line before the error
    errors = error_lines(captured.err)
    assert len(errors) == 1 and errors[0].startswith(f"error: {message.format(path=path)}"), errors
    assert [written.name for written in tmp_path.iterdir()] == ["inputs"]  # nothing written


def weights_refusal(capsys, tmp_path, small_inputs, vgg19_weights, path: Path) -> list[str]:
    """The error lines of a run given the real VGG19 file under ``path``'s name, after checking
    that it exits 2 before the run's first line."""
    path.parent.mkdir()
    path.symlink_to(vgg19_weights)
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "r.png"),
                            "--size", "64", "--model", "vgg19", "--weights", str(path)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # before the run's first line
    return error_lines(captured.err)


def test_the_imagenet_weights_named_as_a_keras_3_weights_file_are_refused_before_the_run_starts(
        capsys, tmp_path, small_inputs, vgg19_weights):
    """Keras 3 reads a name ending in .weights.h5 as its own format: the real VGG19 file so
    named passed every check, then failed after 16 warnings, in an error that asked whether
    it was corrupt."""
    path = tmp_path / "inputs" / "vgg19.weights.h5"
    assert weights_refusal(capsys, tmp_path, small_inputs, vgg19_weights, path) == [
        f"error: weights file {path} is in the older Keras format of the ImageNet files, which Keras does not "
        "read from a name ending in .weights.h5: rename it, or copy it, to end in plain .h5"]
    assert [written.name for written in tmp_path.iterdir()] == ["inputs"]


def test_a_keras_3_weights_file_is_read(tmp_path):
    """A file saved in Keras 3's own format (model.save_weights, random weights here) has that
    ending, and loads."""
    saved = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    saved.save_weights(path)
    assert ContentModel.check_weights(path) == str(path)
    loaded = ContentModel.build_vgg("vgg16", ["block1_conv2"], weights=str(path))
    np.testing.assert_array_equal(loaded.get_layer("block1_conv2").kernel.numpy(),
                                  saved.get_layer("block1_conv2").kernel.numpy())


@pytest.mark.parametrize("name", ["W.H5", "weights.bin", "weights"])
def test_a_weights_file_named_as_keras_does_not_read_weights_is_refused_before_the_run_starts(
        capsys, tmp_path, small_inputs, vgg19_weights, name):
    """Keras reads weights by the name's ending, case included: the real VGG19 file as W.H5
    gave "File format not supported" once the model was built, in an error that asked
    whether the file was corrupt. The same file named .hdf5 loads."""
    path = tmp_path / "inputs" / name
    assert weights_refusal(capsys, tmp_path, small_inputs, vgg19_weights, path) == [
        f"error: weights file {path} is not named as Keras reads weights: it takes only names ending in .h5 "
        "or .hdf5 (lower case); rename it, or copy it to such a name"]
    renamed = tmp_path / "inputs" / "weights.hdf5"
    renamed.symlink_to(vgg19_weights)
    assert ContentModel.check_weights(renamed) == str(renamed)
    kernels = [ContentModel.build_vgg("vgg19", ["block1_conv1"], weights=str(file)).get_layer("block1_conv1").kernel
               for file in (renamed, vgg19_weights)]
    np.testing.assert_array_equal(kernels[0].numpy(), kernels[1].numpy())


@pytest.mark.parametrize("script, drawing", [(ContentModel, "show_content_features"),
                                             (StyleModel, "show_style_features")])
def test_a_figure_script_out_of_memory_is_one_error_line(capsys, tmp_path, small_inputs, monkeypatch, script,
                                                        drawing):
    import tensorflow as tf

    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1,3277,4096,64]")

    monkeypatch.setattr(script, drawing, out_of_memory)
    with pytest.raises(SystemExit) as info:
        script.main([str(small_inputs[0]), "-o", str(tmp_path / "figure.png"), "--size", "4096"])
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == ["error: out of memory at --size 4096; try a smaller --size"]
    assert list(tmp_path.iterdir()) == []  # nor is the name it had reserved left behind


@pytest.mark.parametrize("script, precision, fix", [
    (ContentModel, "float32", "use a smaller --size or --precision mixed"),
    (StyleModel, "mixed", "use a smaller --size")])  # mixed already
def test_a_figure_that_clearly_cannot_fit_is_refused_before_its_image_is_decoded(
        capsys, tmp_path, small_inputs, monkeypatch, script, precision, fix):
    """Without an estimate, StyleModel.py --size 8192 ran for 13 minutes and took 18 GB before
    it was stopped: a figure's forward pass is checked as StyleTransfer.py checks a run."""
    monkeypatch.setattr(ContentModel, "default_device", lambda: "/CPU:0")
    monkeypatch.setattr(ContentModel, "available_memory", lambda: 2 * ContentModel.GIB)

    def decoded(*args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ContentModel, "load_image", decoded)
    with pytest.raises(SystemExit) as info:
        script.main([str(small_inputs[0]), "-o", str(tmp_path / "figure.png"), "--size", "4096",
                     "--precision", precision, "--weights", "none"])
    assert info.value.code == 2
    [line] = error_lines(capsys.readouterr().err)
    assert re.fullmatch(rf"error: this figure needs about \d+\.\d GiB of memory but only 2\.0 GiB is available; {fix}",
                        line), line
    assert list(tmp_path.iterdir()) == []  # nor is the name it had reserved left behind


@pytest.mark.parametrize("argv, hinted", [
    (["--layers", "block1_conv1", "painting.jpg"], "--layers"),  # --layers took the image
    (["--layers", "block1_conv1"], None),
    (["--style-layers", "block1_conv1", "painting.jpg"], "--style-layers"),  # named as typed
    (["--layers", "block1_conv1", "--style-layers=block2_conv1", "--style-layers", "block3_conv1", "painting.jpg"],
     "--style-layers"),  # the last one typed
])
def test_style_model_says_when_layers_took_the_image(capsys, argv, hinted):
    with pytest.raises(SystemExit) as info:
        StyleModel.main(argv)
    assert info.value.code == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and errors[0].startswith("error: the following arguments are required: image")
    assert ("takes every word after it" in errors[0]) is (hinted is not None)
    if hinted:
        assert f"({hinted} takes every word after it: if the image came after {hinted}," in errors[0], errors


def test_the_figure_scripts_take_style_transfers_names_of_their_flags(tmp_path, small_inputs, capsys):
    """--content-layer and --style-layers, as StyleTransfer.py names them, work in the figure
    scripts too (beside --layer and --layers); StyleModel.py takes --count as ContentModel.py."""
    ContentModel.main([str(small_inputs[0]), "--content-layer", "block2_conv2", "--weights", "none", "--size", "64",
                       "-o", str(tmp_path / "content.png")])
    assert "vgg16 block2_conv2: features (21, 32, 128)" in capsys.readouterr().out
    StyleModel.main([str(small_inputs[1]), "--style-layers", "block1_conv1", "block2_conv1", "--count", "2",
                     "--weights", "none", "--size", "64", "-o", str(tmp_path / "style.png")])
    assert capsys.readouterr().out.splitlines()[:2] == ["vgg16 block1_conv1: Gram matrix (64, 64)",
                                                        "vgg16 block2_conv1: Gram matrix (128, 128)"]
    with Image.open(tmp_path / "style.png") as figure:
        assert figure.height < 1.5 * figure.width  # 1 + 2 rows of 2 columns (7 x 6 in); 4 maps: 1 + 4 (11 x 6 in)


@pytest.mark.parametrize("script, count, limits", [
    (StyleModel, "0", "from 1 to 16"), (StyleModel, "17", "from 1 to 16"), (ContentModel, "0", "at least 1"),
])
def test_the_figure_scripts_refuse_a_count_out_of_range_before_any_work(capsys, tmp_path, small_inputs,
                                                                        monkeypatch, script, count, limits):
    """Before the output is reserved (and a URL downloaded): StyleModel.py's figure has a row
    per map, so at most 16; ContentModel.py's grid shows all of a layer's channels at most."""
    monkeypatch.setattr(ContentModel, "reserved_output", lambda *args, **kwargs: pytest.fail("output reserved"))
    with pytest.raises(SystemExit) as info:
        script.main([str(small_inputs[1]), "--count", count, "--weights", "none", "-o", str(tmp_path / "f.png")])
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == [f"error: --count must be {limits} (got {count})"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", [ContentModel, StyleModel])
def test_the_figure_scripts_refuse_an_empty_name(capsys, tmp_path, script):
    """It was '. is a folder, not an image': the current folder, as Path('') reads it."""
    with pytest.raises(SystemExit) as info:
        script.main(["", "--weights", "none", "-o", str(tmp_path / "f.png")])
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == ["error: an input's name is empty ('': an unset shell variable?)"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("count", ["0", "-1"])
def test_content_model_count_must_be_positive(capsys, tmp_path, small_inputs, count):
    with pytest.raises(SystemExit) as info:
        ContentModel.main([str(small_inputs[0]), "--count", count, "--weights", "none",
                           "-o", str(tmp_path / "f.png")])
    assert info.value.code == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "--count" in errors[0], errors
    assert list(tmp_path.iterdir()) == []


def test_content_model_says_when_count_is_more_than_the_layer_has(capsys, tmp_path, small_inputs):
    ContentModel.main([str(small_inputs[0]), "--layer", "block1_conv1", "--count", "80", "--weights", "none",
                       "--size", "64", "-o", str(tmp_path / "f.png")])
    lines = capsys.readouterr().out.splitlines()
    assert "note: block1_conv1 has 64 channels: all are shown" in lines
    assert (tmp_path / "f.png").is_file()


def test_style_model_refuses_a_layer_given_twice_as_style_transfer_does(capsys, tmp_path, small_inputs):
    with pytest.raises(SystemExit) as info:
        StyleModel.main([str(small_inputs[1]), "--layers", "block1_conv1", "block2_conv1", "block1_conv1",
                         "--weights", "none", "-o", str(tmp_path / "f.png")])
    assert info.value.code == 2
    errors = error_lines(capsys.readouterr().err)
    assert errors == ["error: style layer block1_conv1 given more than once"], errors
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", ["16", "10000"])
def test_size_out_of_range(capsys, tmp_path, small_inputs, size):
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "r.png"),
                            "--size", size])
    assert info.value.code == 2
    assert len(error_lines(capsys.readouterr().err)) == 1
    assert list(tmp_path.iterdir()) == []


def test_output_that_is_an_input_is_refused(capsys, small_inputs):
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(small_inputs[0]),
                            "--overwrite", "--size", "64"])
    assert info.value.code == 2
    assert len(error_lines(capsys.readouterr().err)) == 1
    assert small_inputs[0].is_file()


@pytest.mark.parametrize("missing", ["content", "mask"])
def test_a_missing_input_is_said_before_an_existing_output(capsys, tmp_path, small_inputs, missing):
    """'out.png exists; pass --overwrite' came first, for a run that --overwrite could not start."""
    (tmp_path / "out.png").write_bytes(b"mine")
    content = str(tmp_path / "nope.jpg") if missing == "content" else str(small_inputs[0])
    masks = ["--style-masks", str(tmp_path / "nope.jpg")] if missing == "mask" else []
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([content, str(small_inputs[1]), *masks, "-o", str(tmp_path / "out.png"), "--size", "64"])
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == [f"error: no such file: {tmp_path / 'nope.jpg'}"]
    assert (tmp_path / "out.png").read_bytes() == b"mine"


def test_output_with_an_unknown_suffix_is_refused(capsys, tmp_path, small_inputs):
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "r.bmp")])
    assert info.value.code == 2
    assert len(error_lines(capsys.readouterr().err)) == 1


@pytest.mark.parametrize("device, hidden", [("cpu", [([], "GPU")]), ("auto", [])])
def test_device_cpu_hides_the_gpus_from_tensorflow(capsys, tmp_path, small_inputs, monkeypatch, device, hidden):
    """Else what runs outside the optimization's device scope would take a GPU's memory."""
    calls = []
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda *args: calls.append(args))
    taken = tmp_path / "r.png"
    taken.write_bytes(b"mine")  # refused once the run starts: after the devices are chosen, before any work
    with pytest.raises(SystemExit):
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(taken), "--device", device])
    assert "exists" in capsys.readouterr().err
    assert calls == hidden


def test_the_image_is_saved_every_save_every_iterations_while_it_runs(tmp_path, small_inputs, monkeypatch,
                                                                      run_main, vgg19_weights):
    """--save-every N: the current image goes to the output path during the run (so a long
    run can be watched, and a crash loses little), then the result at the end."""
    saved = []
    real_save = StyleTransfer.save_image

    def recording_save(image, path, **options):
        saved.append((Path(path), np.array(image)))
        return real_save(image, path, **options)

    monkeypatch.setattr(StyleTransfer, "save_image", recording_save)
    output = tmp_path / "out.png"
    status, stdout, stderr = run_main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(output),
                                       "--size", "64", "--iterations", "5", "--save-every", "2",
                                       "--model", "vgg19", "--precision", "float32"])
    assert status == 0, stdout + stderr
    assert [path for path, _ in saved] == [output] * 4  # iterations 2, 4 and 5 (the last), then the result
    frames = [image for _, image in saved[:3]]
    assert not np.array_equal(frames[0], frames[1])  # each save is the image of its moment
    np.testing.assert_allclose(ContentModel.load_image(output), saved[-1][1], atol=1 / 255)  # the result's file

    saved.clear()
    status, _, _ = run_main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "quiet.png"),
                             "--size", "64", "--iterations", "2", "--save-every", "0", "--model", "vgg19"])
    assert status == 0 and [path.name for path, _ in saved] == ["quiet.png"]  # the result only


def test_a_taken_default_name_gets_the_next_number(tmp_path, small_inputs, monkeypatch, run_main,
                                                   vgg19_weights):
    """Without -o the result goes to results/<content>_<style>.png, and a second run never
    replaces the first: it writes <content>_<style>_2.png and its own trace, panel and curve."""
    monkeypatch.chdir(tmp_path)
    flags = [str(small_inputs[0]), str(small_inputs[1]), "--size", "64", "--iterations", "1", "--model", "vgg19"]
    assert run_main(flags)[0] == 0
    first = {path.name: path.read_bytes() for path in (tmp_path / "results").iterdir()}
    assert set(first) == {"chelsea_starry_night" + suffix for suffix in
                          (".png", "_panel.png", "_losses.png", ".json")}
    status, stdout, _ = run_main(flags)
    assert status == 0 and "results/chelsea_starry_night_2.png" in stdout
    second = {path.name: path.read_bytes() for path in (tmp_path / "results").iterdir()}
    assert {name: data for name, data in second.items() if name in first} == first  # untouched
    assert set(second) - set(first) == {"chelsea_starry_night_2" + suffix for suffix in
                                        (".png", "_panel.png", "_losses.png", ".json")}


def test_overwrite_without_o_numbers_past_another_results_files(tmp_path, small_inputs, monkeypatch, run_main,
                                                                 vgg19_weights):
    """The gallery's results/chelsea_starry_night.jpg: its trace and panel are named as the
    sample pair's default .png would name them, so '--overwrite' without -o was refused
    ("choose another -o", which was not given). Now it numbers past them, and a second
    --overwrite replaces its own _2."""
    monkeypatch.chdir(tmp_path)
    flags = [str(small_inputs[0]), str(small_inputs[1]), "--size", "64", "--iterations", "1", "--model", "vgg19"]
    assert run_main([*flags, "-o", "results/chelsea_starry_night.jpg"])[0] == 0
    gallery = {path.name: path.read_bytes() for path in (tmp_path / "results").iterdir()}
    for _ in range(2):
        status, stdout, stderr = run_main([*flags, "--overwrite"])
        assert status == 0 and "results/chelsea_starry_night_2.png" in stdout, stdout + stderr
    after = {path.name: path.read_bytes() for path in (tmp_path / "results").iterdir()}
    assert {name: data for name, data in after.items() if name in gallery} == gallery  # untouched
    assert set(after) - set(gallery) == {"chelsea_starry_night_2" + suffix for suffix in
                                         (".png", "_panel.png", "_losses.png", ".json")}


def test_an_existing_file_beside_the_output_is_named(capsys, tmp_path, small_inputs):
    """-o a.png writes a.json beside it: when only that exists, the error names it."""
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "a.png")])
    assert info.value.code == 2
    errors = error_lines(capsys.readouterr().err)
    assert errors == [f"error: {tmp_path / 'a.json'} exists (a run writing {tmp_path / 'a.png'} replaces it); "
                      "pass --overwrite to replace it"]
    assert [path.name for path in tmp_path.iterdir()] == ["a.json"]


def test_a_gif_of_the_users_with_the_outputs_name_is_left_alone_without_gif(capsys, tmp_path, small_inputs):
    """A run without --gif writes no GIF, so a file of the user's named as its GIF would be
    is none of its business: neither in its way nor removed by --overwrite (a run's own GIF,
    whose comment names the command, is: it would show another result). With --gif it is
    the run's to write: in its way without --overwrite."""
    def run(name: str, *flags: str) -> None:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / name),
                            "--weights", "none", "--size", "64", "--iterations", "1", *flags])

    own = tmp_path / "a.gif"
    Image.new("RGB", (8, 6), "red").save(own, comment="my holiday")
    original = own.read_bytes()
    assert not StyleTransfer.made_by_a_run(own)
    run("a.png")
    assert own.read_bytes() == original and (tmp_path / "a.json").exists()
    run("a.png", "--overwrite")
    assert own.read_bytes() == original
    assert error_lines(capsys.readouterr().err) == []
    (tmp_path / "b.gif").write_bytes(original)
    with pytest.raises(SystemExit) as info:
        run("b.png", "--gif")
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: {tmp_path / 'b.gif'} exists (a run writing {tmp_path / 'b.png'} replaces it); "
        "pass --overwrite to replace it"]


def test_overwrite_removes_only_the_gif_of_its_own_results_earlier_run_and_says_so(capsys, tmp_path, small_inputs):
    """A run's g.gif copied to w.gif was removed by a run writing w.png --overwrite: its
    comment named a run, not which result. The earlier g.png's own GIF is removed (it would
    show that run), with a note; before, without a word."""
    def run(name: str, *flags: str) -> str:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / name),
                            "--weights", "none", "--size", "64", "--iterations", "1", *flags])
        return capsys.readouterr().out

    run("g.png", "--gif", "--save-every", "1")
    (tmp_path / "w.gif").write_bytes((tmp_path / "g.gif").read_bytes())
    assert not StyleTransfer.made_by_a_run(tmp_path / "w.gif")  # its comment names g.png
    assert "removed" not in run("w.png", "--overwrite") and (tmp_path / "w.gif").is_file()
    assert (f"note: removed {tmp_path / 'g.gif'}, the animation of an earlier g.png (this run made none: --gif)"
            in run("g.png", "--overwrite").splitlines())
    assert not (tmp_path / "g.gif").exists()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_beside_the_output_is_named_as_in_the_way(capsys, tmp_path, small_inputs, overwrite):
    """-o a.png writes a_losses.png beside it: a folder of that name is in the way (even
    --overwrite replaces no folder), and the error says so rather than that -o is a folder."""
    (tmp_path / "a_losses.png").mkdir()
    with pytest.raises(SystemExit) as info:
        StyleTransfer.main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "a.png"), *overwrite])
    assert info.value.code == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: {tmp_path / 'a_losses.png'} is a folder, in the way of a file that -o {tmp_path / 'a.png'} "
        "writes beside it; remove the folder or choose another -o"]
    assert [path.name for path in tmp_path.iterdir()] == ["a_losses.png"]


def test_overwrite_does_not_replace_a_result_that_is_named_as_a_runs_picture(tmp_path, small_inputs, run_main,
                                                                            vgg19_weights):
    """-o k_panel.png made a result; -o k.png --overwrite, as the 'exists' error advised,
    then replaced it with k.png's panel (and k_losses.png likewise). Refused, also in a
    batch whose pair writes that panel; the result is left as it was."""
    fast = ["--size", "64", "--iterations", "1", "--model", "vgg19"]
    inputs = [str(small_inputs[0]), str(small_inputs[1])]
    for name in ("k_panel.png", "k_losses.png"):
        status, stdout, stderr = run_main([*inputs, "-o", str(tmp_path / name), *fast])
        assert status == 0, stdout + stderr
        result = (tmp_path / name).read_bytes()
        for overwrite in ([], ["--overwrite"]):
            status, stdout, stderr = run_main([*inputs, "-o", str(tmp_path / "k.png"), *overwrite, *fast])
            assert status == 2 and error_lines(stderr) == [
                f"error: {tmp_path / name} is another result (the trace beside it names it), which a run writing "
                f"{tmp_path / 'k.png'} would replace with a picture of its own; choose another -o"], stderr
        assert (tmp_path / name).read_bytes() == result and not (tmp_path / "k.png").exists()
        for path in tmp_path.iterdir():
            path.unlink()
    stem = f"{small_inputs[0].stem}_{small_inputs[1].stem}"
    run_main([*inputs, "-o", str(tmp_path / f"{stem}_panel.png"), *fast])
    result = (tmp_path / f"{stem}_panel.png").read_bytes()
    status, stdout, stderr = run_main(["--contents", inputs[0], "--styles", inputs[1], "-o", str(tmp_path),
                                       "--overwrite", *fast])
    panel = tmp_path / f"{stem}_panel.png"
    assert status == StyleTransfer.EXIT_FAILED and (
        f"failed: {panel} is another result (the trace beside it names it), which a run writing {tmp_path / stem}.png "
        "would replace with a picture of its own; move it with the files beside it, or write the batch to another "
        "-o folder") in stdout, stdout + stderr
    assert (tmp_path / f"{stem}_panel.png").read_bytes() == result


def test_overwrite_does_not_take_the_files_of_a_result_under_another_ending(tmp_path, small_inputs, run_main,
                                                                            vgg19_weights):
    """-o k.png --overwrite beside a run's k.jpg replaced k.jpg's trace and panel and deleted
    its GIF, leaving k.jpg beside files of another run (the README's gallery, so rerun). A
    trace from before traces named their image is judged by the images there."""
    fast = ["--size", "64", "--iterations", "1", "--model", "vgg19"]
    inputs = [str(small_inputs[0]), str(small_inputs[1])]
    status, stdout, stderr = run_main([*inputs, "-o", str(tmp_path / "k.jpg"), "--gif", *fast])
    assert status == 0, stdout + stderr
    assert json.loads((tmp_path / "k.json").read_text())["image"] == "k.jpg"
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert sorted(before) == ["k.gif", "k.jpg", "k.json", "k_losses.png", "k_panel.png"]
    message = (f"error: the files beside {tmp_path / 'k.png'} (trace, panel, loss curve) are those of another "
               f"result, {tmp_path / 'k.jpg'}, and a run writing {tmp_path / 'k.png'} would replace them; choose "
               f"another -o, or remove {tmp_path / 'k.jpg'} first")
    status, stdout, stderr = run_main([*inputs, "-o", str(tmp_path / "k.png"), "--overwrite", *fast])
    assert status == 2 and error_lines(stderr) == [message], stderr
    trace = json.loads((tmp_path / "k.json").read_text())
    del trace["image"]  # as the gallery's traces are
    (tmp_path / "k.json").write_text(json.dumps(trace))
    before["k.json"] = (tmp_path / "k.json").read_bytes()
    status, stdout, stderr = run_main([*inputs, "-o", str(tmp_path / "k.png"), "--overwrite", *fast])
    assert status == 2 and error_lines(stderr) == [message], stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    # A result's own files are replaced, even beside an input of the same name (photo.jpg -> photo.png).
    (tmp_path / "photo.jpg").write_bytes(small_inputs[0].read_bytes())
    for _ in range(2):
        status, stdout, stderr = run_main([str(tmp_path / "photo.jpg"), inputs[1], "-o", str(tmp_path / "photo.png"),
                                           "--overwrite", *fast])
        assert status == 0, stdout + stderr


def test_the_readme_flag_tables_match_help(repo_root):
    """README's 'Every flag' has one row per flag of StyleTransfer.py, with --help's text
    (backticks aside), so the two cannot drift apart."""
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Every flag", 1)[1].split("\n### ", 1)[0]
    rows = {match.group(1): match.group(2).replace("`", "") for match in
            re.finditer(r"^\| (?:`-\w`, )?`(--[\w-]+)` \| [^|]* \| (.*) \|$", section, re.M)}
    helps = {action.option_strings[-1]: action.help.replace("%%", "%")
             for action in StyleTransfer.build_parser()._actions
             if action.option_strings and action.option_strings[-1] != "--help"}
    assert rows == helps


@pytest.mark.parametrize("flags, note", [
    (["--optimizer", "adam", "--preconditioner", "pyramid"], "note: --preconditioner is for L-BFGS"),
    (["--learning-rate", "0.5"], "note: --learning-rate is Adam's step size"),
    (["--learning-rate", "0"], "note: --learning-rate is Adam's step size"),  # refused for Adam only
    ([], None),
])
def test_a_flag_the_optimizer_does_not_use_gets_a_note(tmp_path, small_inputs, run_main, vgg19_weights,
                                                       flags, note):
    status, stdout, stderr = run_main([str(small_inputs[0]), str(small_inputs[1]), "-o", str(tmp_path / "r.png"),
                                       "--size", "64", "--iterations", "1", "--model", "vgg19", *flags])
    assert status == 0, stdout + stderr
    notes = [line for line in stdout.splitlines() if line.startswith("note:")]
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(note), notes


def test_the_readme_python_example_runs_as_written(repo_root, tmp_path, subprocess_env, vgg19_weights):
    """README's 'From Python' block, unchanged, in a scratch folder that sees the bundled images."""
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    code = readme.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "images").symlink_to(repo_root / "images")
    process = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env,
                             capture_output=True, text=True, timeout=TIMEOUT)
    assert process.returncode == 0, process.stderr
    total, device, precision = process.stdout.split()[-3:]
    assert float(total) > 0 and device in ("/CPU:0", "/GPU:0") and precision in ("float32", "mixed")
    written = ContentModel.load_image(tmp_path / "chelsea_starry_night.png")
    assert written.shape == ContentModel.load_image(repo_root / "images" / "content" / "chelsea.jpg", 256).shape
