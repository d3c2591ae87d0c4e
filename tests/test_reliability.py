"""Reliability of the style-transfer command line and of the code under it.

What the product promises, and what this file checks:

* bad input to ``python StyleTransfer.py CONTENT STYLE [flags]`` -> exactly one
  ``error: ...`` line on stderr, exit status 2, no traceback, nothing written and
  every input file byte-identical (one table-driven test, a real subprocess per row);
* a path with spaces and non-ASCII characters works end to end (the odd but valid
  images that must load, greyscale to animated GIF, are in test_images.py);
* work is never lost: an existing result is not replaced without --overwrite,
  writes are atomic, Ctrl-C saves the best image with its trace and panel;
* a non-finite loss stops the run with the best finite image (exit status 1);
* the seed makes runs reproducible;
* the image loader, fuzzed with Hypothesis, returns an image or raises
  StyleTransferError, never anything else.

The subprocess runs use tiny images (long side 64 px), a few iterations and
``--model vgg19``, whose real ImageNet weights conftest.py puts in a private
KERAS_HOME. The network is also closed for the subprocesses (a proxy on a port
nobody listens on), so ``--model vgg16`` with ImageNet weights fails the same
way on every machine.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import ContentModel
import StyleModel
import StyleTransfer
from ContentModel import MIN_SIZE, StyleTransferError, atomic_write, load_image, save_image
from png_chunks import png_file

SCRIPT = Path(StyleTransfer.__file__).resolve()
#: Small, fast runs with the real VGG19 weights (through KERAS_HOME).
FAST = ["--size", "64", "--iterations", "2", "--model", "vgg19"]
#: For the tests of the memory check: a run's memory is checked against the machine's on a CPU only.
ON_THE_CPU = ["--device", "cpu"]
#: The real VGG19 "notop" weights (the file conftest.py links into KERAS_HOME).
VGG19_WEIGHTS = SCRIPT.parent.parent / "shared" / "weights" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: Upper bound for one subprocess: far above a normal run, only there so a hang fails.
RUN_TIMEOUT_S = 300


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def our_lines(stderr: str) -> list[str]:
    """stderr's non-blank lines: all of them are ours (ContentModel silences
    TensorFlow's native start-up log lines)."""
    return [line for line in stderr.splitlines() if line.strip()]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree(root: Path) -> dict:
    """Every entry under ``root``: relative path -> content hash (or 'dir')."""
    return {
        str(p.relative_to(root)): ("dir" if p.is_dir() else sha256(p))
        for p in sorted(root.rglob("*"))
    }


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


def cli_env(subprocess_env: dict) -> dict:
    env = dict(subprocess_env)
    for name in ("no_proxy", "NO_PROXY"):
        env.pop(name, None)
    # Nothing listens on port 9: any download fails at once, online or not.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = "http://127.0.0.1:9"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, env=env, capture_output=True,
        text=True, encoding="utf-8", errors="replace", timeout=RUN_TIMEOUT_S,
    )


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"


def png_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", **kwargs)
    return buffer.getvalue()


def jpeg_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=90, **kwargs)
    return buffer.getvalue()


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def png_claiming_size(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header claims ``width`` x ``height`` RGB pixels."""
    return png_file(8, 2, width, height, b"\x00" * 1024)


@pytest.fixture(scope="module")
def env(subprocess_env) -> dict:
    return cli_env(subprocess_env)


@pytest.fixture(scope="module")
def pair_bytes(sample_images) -> tuple[bytes, bytes]:
    """(content PNG, style JPEG) bytes: the samples shrunk to 64x48."""
    content = np.asarray(Image.open(sample_images[0]).convert("RGB").resize((64, 48)))
    style = np.asarray(Image.open(sample_images[1]).convert("RGB").resize((64, 48)))
    return png_bytes(content), jpeg_bytes(style)


# ---------------------------------------------------------------------------
# Bad input: one table, one subprocess per row
# ---------------------------------------------------------------------------
#
# Each row builds its inputs in a fresh folder (``inputs``: content.png and
# style.jpg exist there) and returns (argv, fragments the error line must
# contain). The result goes to out/result.png unless the row sets -o itself.


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _missing(d, c, s, o):
    return [d / "missing.jpg", s, *FAST, "-o", o], ["no such file", "missing.jpg"]


def _directory(d, c, s, o):
    (d / "photos").mkdir()
    return [c, d / "photos", *FAST, "-o", o], ["photos", "folder"]


def _empty(d, c, s, o):
    return [_write(d / "empty.png", b""), s, *FAST, "-o", o], ["empty.png", "empty"]


def _text_as_jpg(d, c, s, o):
    path = _write(d / "notes.jpg", b"shopping list: milk, eggs\n" * 20)
    return [c, path, *FAST, "-o", o], ["notes.jpg", "cannot read"]


def _truncated_jpeg(d, c, s, o):
    data = jpeg_bytes(noise(64, 64))
    return [c, _write(d / "cut.jpg", data[: len(data) // 2]), *FAST, "-o", o], ["cut.jpg", "cannot read"]


def _truncated_png(d, c, s, o):
    data = png_bytes(noise(64, 64))
    return [_write(d / "cut.png", data[: len(data) // 2]), s, *FAST, "-o", o], ["cut.png", "cannot read"]


def _svg(d, c, s, o):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'
    return [c, _write(d / "drawing.svg", svg), *FAST, "-o", o], ["drawing.svg", "cannot read"]


def _random_tiff(d, c, s, o):
    data = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return [_write(d / "scan.tiff", data), s, *FAST, "-o", o], ["scan.tiff", "cannot read"]


def _damaged_lzw_tiff(d, c, s, o):
    """libtiff prints its own complaint ('Using code not yet in table') before the error."""
    buffer = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buffer, format="TIFF", compression="tiff_lzw")
    data = bytearray(buffer.getvalue())
    data[200:600] = bytes((byte * 7 + 13) % 256 for byte in data[200:600])
    return [_write(d / "scan.tif", bytes(data)), s, *FAST, "-o", o], ["scan.tif", "cannot read"]


def _name_not_utf8(d, c, s, o):
    """A file name in Latin-1 (from an old system or archive): it failed once the run was done."""
    name = os.fsdecode(b"caf\xe9.png")
    return [_write(d / name, Path(c).read_bytes()), s, *FAST, "-o", o], ["caf\ufffd.png", "not UTF-8"]


def _too_small(d, c, s, o):
    # A strip: 64 px long at --size 64 leaves it 3 px high (a small 10x10 file would be enlarged).
    return [_write(d / "tiny.png", png_bytes(noise(5, 100))), s, *FAST, "-o", o], ["tiny.png", str(MIN_SIZE)]


def _bomb_header(d, c, s, o):
    path = _write(d / "bomb.png", png_claiming_size(100_000, 100_000))
    return [path, s, *FAST, "-o", o], ["bomb.png", "--max-pixels"]


def _max_pixels_flag(d, c, s, o):
    return [c, s, *FAST, "--max-pixels", "1000", "-o", o], ["--max-pixels"]


def _flag(flag, value, *fragments):
    def build(d, c, s, o):
        return [c, s, *FAST, flag, value, "-o", o], [*fragments]
    return build


def _o_under_a_file(d, c, s, o):
    _write(d / "file.txt", b"not a folder\n")
    return [c, s, *FAST, "-o", d / "file.txt" / "out.png"], ["file.txt"]


def _o_is_the_content(d, c, s, o):
    return [c, s, *FAST, "-o", c, "--overwrite"], ["input"]


def _o_bmp(d, c, s, o):
    return [c, s, *FAST, "-o", o.with_suffix(".bmp")], [".png"]


def _o_is_a_folder(d, c, s, o):
    o.mkdir(parents=True)  # out/result.png is a folder: even --overwrite cannot replace it
    return [c, s, *FAST, "-o", o, "--overwrite"], ["result.png"]


def _o_is_an_existing_folder(d, c, s, o):
    return [c, s, *FAST, "-o", o.parent], ["is a folder", "-o needs a file name"]


def _weights_empty(d, c, s, o):
    return [c, s, *FAST, "--weights", "", "-o", o], ["--weights is empty"]


def _vgg16_offline(d, c, s, o):
    return [c, s, "--size", "64", "--iterations", "2", "--model", "vgg16", "-o", o], \
        ["--weights", "KERAS_HOME", "has the vgg19 weights: --model vgg19 uses them"]


def _corrupt_weights(d, c, s, o):
    path = _write(d / "broken.h5", np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return [c, s, *FAST, "--weights", path, "-o", o], ["broken.h5"]


def _weights_of_another_model(d, c, s, o):
    return [c, s, "--size", "64", "--iterations", "2", "--model", "vgg16", "--weights", VGG19_WEIGHTS,
            "-o", o], ["holds the layers of vgg19, not vgg16: use --model vgg19"]


def _batch_vgg16_offline(d, c, s, o):
    return ["--contents", c, "--styles", s, "--size", "64", "--iterations", "2", "--model", "vgg16",
            "-o", o.parent / "batch"], ["--weights", "KERAS_HOME"]


def _batch_weights_of_another_model(d, c, s, o):
    return ["--contents", c, "--styles", s, "--size", "64", "--iterations", "2", "--model", "vgg16",
            "--weights", VGG19_WEIGHTS, "-o", o.parent / "batch"], ["vgg16"]


def _masks_took_the_images(d, c, s, o):
    mask = _write(d / "mask.png", png_bytes(noise(64, 64)))
    return ["--style-masks", mask, c, s, *FAST, "-o", o], ["3 style masks", "end its list with --"]


def _every_style_masked_out(d, c, s, o):
    mask = _write(d / "black.png", png_bytes(np.zeros((20, 30, 3), np.uint8)))
    return [c, s, "--style-masks", mask, *FAST, "-o", o], ["no style applies anywhere"]


def _style_layers_took_the_images(d, c, s, o):
    return ["--style-layers", "block1_conv1", c, s, *FAST, "-o", o], \
        ["content.png", "put CONTENT and STYLE before it"]


BAD_INPUTS = [
    pytest.param(_missing, id="missing-file"),
    pytest.param(_directory, id="a-directory"),
    pytest.param(_empty, id="empty-file"),
    pytest.param(_text_as_jpg, id="text-named-jpg"),
    pytest.param(_truncated_jpeg, id="truncated-jpeg"),
    pytest.param(_truncated_png, id="truncated-png"),
    pytest.param(_svg, id="svg"),
    pytest.param(_random_tiff, id="random-bytes-tiff"),
    pytest.param(_damaged_lzw_tiff, id="damaged-lzw-tiff"),
    pytest.param(_name_not_utf8, id="file-name-not-utf8"),
    pytest.param(_too_small, id="5x100-png"),
    pytest.param(_bomb_header, id="decompression-bomb-header"),
    pytest.param(_max_pixels_flag, id="max-pixels-1000"),
    pytest.param(_flag("--size", "0", "--size"), id="size-0"),
    pytest.param(_flag("--size", "-5", "--size"), id="size-negative"),
    pytest.param(_flag("--size", "100000", "--size"), id="size-huge"),
    pytest.param(_flag("--iterations", "0", "--iterations"), id="iterations-0"),
    pytest.param(_flag("--scales", "0", "--scales", "auto"), id="scales-0"),
    pytest.param(_flag("--scales", "many", "--scales", "many"), id="scales-word"),
    pytest.param(_flag("--style-weight", "-1", "--style-weight"), id="style-weight-negative"),
    pytest.param(_flag("--content-weight", "nan", "--content-weight"), id="content-weight-nan"),
    pytest.param(_flag("--model", "foo", "foo", "vgg19"), id="model-foo"),
    pytest.param(_flag("--content-layer", "nope", "nope", "block5_conv2", "block1_conv1"),
                 id="content-layer-unknown"),
    pytest.param(_flag("--style-layers", "block9_conv1", "block9_conv1"), id="style-layer-unknown"),
    pytest.param(_flag("--style-layer-weights", "1,2", "2", "5"), id="style-layer-weights-count"),
    pytest.param(_flag("--style-layer-weights", "nan,1,1,1,1", "weight"), id="style-layer-weights-nan"),
    pytest.param(_flag("--seed", "-1", "seed"), id="seed-negative"),
    pytest.param(_masks_took_the_images, id="style-masks-took-the-images"),
    pytest.param(_style_layers_took_the_images, id="style-layers-took-the-images"),
    pytest.param(_every_style_masked_out, id="every-style-masked-out"),
    pytest.param(_o_under_a_file, id="output-under-a-file"),
    pytest.param(_o_is_the_content, id="output-is-the-content"),
    pytest.param(_o_bmp, id="output-bmp"),
    pytest.param(_o_is_a_folder, id="output-is-a-folder"),
    pytest.param(_o_is_an_existing_folder, id="output-an-existing-folder"),
    pytest.param(_weights_empty, id="weights-empty"),
    pytest.param(_vgg16_offline, id="vgg16-imagenet-offline"),
    pytest.param(_corrupt_weights, id="corrupt-weights-file"),
    pytest.param(_weights_of_another_model, id="vgg19-weights-for-vgg16"),
    pytest.param(_batch_vgg16_offline, id="batch-vgg16-imagenet-offline"),
    pytest.param(_batch_weights_of_another_model, id="batch-vgg19-weights-for-vgg16"),
]


BAD_INPUT_TEST = "test_bad_input_is_one_error_line_exit_2_and_nothing_written"
#: Rows run side by side: each is mostly TensorFlow's (largely single-threaded) start-up.
PARALLEL_RUNS = 3


def _prepare_bad_input(build, root: Path, pair_bytes) -> dict:
    inputs = root / "inputs"
    content = _write(inputs / "content.png", pair_bytes[0])
    style = _write(inputs / "style.jpg", pair_bytes[1])
    out = root / "out"
    out.mkdir()
    argv, fragments = build(inputs, content, style, out / "result.png")
    input_files = [Path(a) for a in argv if Path(a).is_file()]
    return {"root": root, "out": out, "argv": argv, "fragments": fragments, "input_files": input_files,
            "hashes_before": {p: sha256(p) for p in input_files}, "tree_before": tree(root)}


@pytest.fixture(scope="module")
def bad_input_runs(request, tmp_path_factory, env, pair_bytes, keras_home) -> dict:
    """Every selected row of BAD_INPUTS, prepared and run PARALLEL_RUNS at a time.

    Returns {row id: case}; each case holds its folder, argv, what existed before
    and either the finished process or the exception running it raised.
    """
    builders = {param.id: param.values[0] for param in BAD_INPUTS}
    selected = [item.callspec.id for item in request.session.items
                if getattr(item, "originalname", None) == BAD_INPUT_TEST
                and Path(item.path) == Path(__file__)]
    cases = {row: _prepare_bad_input(builders[row], tmp_path_factory.mktemp(row), pair_bytes)
             for row in selected}
    cache_before = sorted(os.listdir(keras_home / "models"))

    def execute(case):
        try:
            case["proc"] = run_cli(case["argv"], cwd=case["root"], env=env)
        except Exception as error:  # reported by the row's own test
            case["error"] = error

    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        list(pool.map(execute, cases.values()))
    for case in cases.values():
        case["cache_before"] = cache_before
    return cases


@pytest.mark.parametrize("build", BAD_INPUTS)
def test_bad_input_is_one_error_line_exit_2_and_nothing_written(build, request, bad_input_runs, keras_home):
    case = bad_input_runs[request.node.callspec.id]
    if "error" in case:
        raise case["error"]
    proc = case["proc"]

    lines = our_lines(proc.stderr)
    assert proc.returncode == ContentModel.EXIT_USAGE, describe(proc)
    assert "Traceback" not in proc.stderr + proc.stdout, describe(proc)
    assert len(lines) == 1 and lines[0].startswith("error:"), describe(proc)
    for fragment in case["fragments"]:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    # Nothing written: not in out/, not beside the inputs, not in ./results (the cwd is the row's folder).
    assert files_in(case["out"]) == [], describe(proc)
    assert tree(case["root"]) == case["tree_before"]
    assert {p: sha256(p) for p in case["input_files"]} == case["hashes_before"]
    assert sorted(os.listdir(keras_home / "models")) == case["cache_before"]  # no half download left


# ---------------------------------------------------------------------------
# Names and paths that must work (the image modes that must load: test_images.py)
# ---------------------------------------------------------------------------


def test_non_ascii_path_with_spaces_end_to_end(tmp_path, env, pair_bytes, vgg19_weights):
    """A path with spaces and non-ASCII characters, odd image modes (LA content,
    animated GIF style), through the command line; then the output is loaded back."""
    folder = tmp_path / "my pics"
    folder.mkdir()
    content = folder / "café ☕.png"
    Image.open(io.BytesIO(pair_bytes[0])).convert("LA").save(content)
    style = folder / "stÿle ☕.gif"
    frame = Image.open(io.BytesIO(pair_bytes[1])).convert("RGB")
    frame.save(style, save_all=True, append_images=[Image.new("RGB", frame.size, (0, 255, 0))])
    output = folder / "résultat ☕.png"

    proc = run_cli([content, style, *FAST, "-o", output], cwd=tmp_path, env=env)

    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)
    assert load_image(output).shape == (48, 64, 3)
    trace = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    assert trace["content"] == str(content) and trace["stopped_early"] is None
    assert Path(f"{output.with_suffix('')}_panel.png").is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files


# ---------------------------------------------------------------------------
# Never lose work
# ---------------------------------------------------------------------------


def test_existing_result_is_kept_without_overwrite_and_replaced_with_it(tmp_path, env, pair_bytes, vgg19_weights):
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "out" / "result.png"

    first = run_cli([content, style, *FAST, "-o", output, "--gif"], cwd=tmp_path, env=env)
    assert first.returncode == 0, describe(first)
    written = tree(output.parent)
    assert {"result.png", "result.json", "result_panel.png", "result_losses.png", "result.gif"} <= set(written)

    again = run_cli([content, style, *FAST, "-o", output], cwd=tmp_path, env=env)
    lines = our_lines(again.stderr)
    assert again.returncode == ContentModel.EXIT_USAGE, describe(again)
    assert len(lines) == 1 and lines[0].startswith("error:") and "--overwrite" in lines[0], describe(again)
    assert tree(output.parent) == written  # every file unchanged

    replaced = run_cli([content, style, *FAST, "--init", "noise", "--seed", "3", "-o", output, "--overwrite"],
                       cwd=tmp_path, env=env)
    assert replaced.returncode == 0, describe(replaced)
    assert sha256(output) != written["result.png"]
    trace = json.loads(output.with_suffix(".json").read_text())
    assert trace["settings"]["init"] == "noise" and trace["settings"]["seed"] == 3
    # The first run's GIF went with the files it was replaced with: left, it would show another run.
    assert not output.with_suffix(".gif").exists()
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]


def test_a_name_too_long_for_the_folder_is_refused_before_any_work(tmp_path, run_main, pair_bytes, monkeypatch,
                                                                   vgg19_weights):
    """Names count with their temporary names (atomic_write: 10 bytes more). Before, a long
    -o ran the whole optimization and then could not write its panel (leaving the image and
    trace, which blocked the rerun), and a long default name was a traceback (OSError)."""
    monkeypatch.chdir(tmp_path)
    content = _write(tmp_path / ("a" * 240 + ".png"), pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    cases = [
        ([str(style), str(style), "-o", str(tmp_path / "out" / ("x" * 236 + ".png"))], "choose a shorter -o"),
        # Past the system's own limit, in a folder that exists: looking for a run's GIF there was
        # 'error: yyy...y.gif: File name too long' (exit status 1), naming a GIF not asked for.
        ([str(style), str(style), "-o", str(tmp_path / ("y" * 300 + ".png"))], "choose a shorter -o"),
        ([str(content), str(style)], "name the output with -o"),
        (["--contents", str(content), "--styles", str(style), "-o", str(tmp_path / "batch")],
         f"rename {content} or {style}"),
    ]
    for argv, advice in cases:
        status, stdout, stderr = run_main([*argv, *FAST])
        errors = our_lines(stderr)
        assert status == ContentModel.EXIT_USAGE and len(errors) == 1, (argv, stdout, stderr)
        assert errors[0].startswith("error: the file name ") and "is too long" in errors[0], errors
        assert advice in errors[0], errors
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([content.name, style.name])
    run_main([str(style), str(style), "-o", str(tmp_path / "out" / ("x" * 234 + ".png")), *FAST])
    assert (tmp_path / "out" / ("x" * 234 + "_losses.png")).is_file()  # the longest that fits


def test_a_broken_link_on_the_output_path_is_one_error_line_not_an_endless_loop(tmp_path, run_main, pair_bytes,
                                                                                monkeypatch):
    """results/ linked to a drive not mounted: the default name looped for ever (claim_output
    could not make the folder, which was taken for another run having taken the name), an -o
    through it was said to exist, and with --overwrite failed once the run was done."""
    monkeypatch.chdir(tmp_path)
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    Path("results").symlink_to(tmp_path / "unmounted")
    Path("gone.png").symlink_to(tmp_path / "nowhere.png")
    for output in ([], ["-o", "results/x.png", "--overwrite"], ["-o", "gone.png", "--overwrite"],
                   ["--contents", str(content), "--styles", str(style)]):
        argv = [*output, *FAST] if "--contents" in output else [str(content), str(style), *output, *FAST]
        status, stdout, stderr = run_main(argv)
        errors = our_lines(stderr)
        assert status == ContentModel.EXIT_USAGE and len(errors) == 1, (argv, stdout, stderr)
        assert "is a symbolic link that leads nowhere (to " in errors[0], errors
    assert not (tmp_path / "unmounted").exists() and not (tmp_path / "nowhere.png").exists()


def test_an_output_folder_that_refuses_files_says_why(tmp_path, monkeypatch):
    """-o under /proc: the folder exists but no file can be made in it, which the system
    calls 'No such file or directory' (misleading beside a folder that is there). Other
    refusals keep the system's words."""
    with pytest.raises(StyleTransferError) as error:
        ContentModel.writable_folder(Path("/proc/result.png"))
    assert str(error.value) == "cannot write to /proc: no files can be made there"

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    with pytest.raises(StyleTransferError) as error:
        ContentModel.writable_folder(tmp_path / "result.png")
    assert str(error.value) == f"cannot write to {tmp_path}: Permission denied"


def test_a_path_the_system_refuses_is_one_error_line(tmp_path, run_main, pair_bytes, monkeypatch):
    """A folder name over 255 bytes, or a loop of symbolic links: Python's pathlib raised
    OSError or RuntimeError from the checks, a traceback."""
    monkeypatch.chdir(tmp_path)
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    Path("circle").symlink_to("circle")
    too_long = "d" * 300
    for argv, said in (([str(content), str(style), "-o", f"{too_long}/x.png"], "File name too long"),
                       ([f"{too_long}.png", str(style)], "File name too long"),  # the input itself, first
                       (["--contents", f"{too_long}.png", "--styles", str(style)], "File name too long"),
                       ([str(content), str(style), "-o", "circle/x.png"], "circle is a loop of symbolic links"),
                       (["circle", str(style)], "circle is a loop of symbolic links")):  # was "no such file"
        status, stdout, stderr = run_main([*argv, *FAST])
        errors = our_lines(stderr)
        assert status in (ContentModel.EXIT_USAGE, ContentModel.EXIT_FAILED), (argv, status, stdout, stderr)
        assert len(errors) == 1 and errors[0].startswith("error: ") and said in errors[0], (argv, stdout, stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["circle", "content.png", "style.jpg"]


def test_an_option_after_double_dash_is_said_to_be_read_as_a_file(tmp_path, run_main, pair_bytes, monkeypatch):
    """'a.png b.jpg -- -o out.png' read '-o' as a second style image: 'no such file: -o'
    said nothing of why. A word argparse takes as a file without '--' ('-2.jpg', as it
    reads '-2' as a number) is not said to follow one; a file named '-x.png' may follow it."""
    monkeypatch.chdir(tmp_path)
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    for argv in ([*FAST, str(content), str(style), "--", "-o", str(tmp_path / "out.png")],
                 [*FAST, "--contents", str(content), "--styles", str(style), "--", "-o"]):
        status, stdout, stderr = run_main(argv)
        errors = our_lines(stderr)
        assert status == ContentModel.EXIT_USAGE and len(errors) == 1, (argv, stdout, stderr)
        assert errors[0] == ("error: -o comes after '--', so it is read as a file name, and there is no such "
                             "file; put the options before '--' (see --help)"), errors
    status, stdout, stderr = run_main([*FAST, "-2.jpg", str(style)])
    assert status == ContentModel.EXIT_USAGE and our_lines(stderr) == ["error: no such file: -2.jpg"], stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["content.png", "style.jpg"]
    (tmp_path / "-x.jpg").write_bytes(style.read_bytes())
    status, stdout, stderr = run_main([*FAST, "-o", "out.png", "--", str(content), "-x.jpg"])
    assert status == 0 and (tmp_path / "out.png").is_file(), stdout + stderr


def test_a_folder_of_inputs_holding_a_name_that_is_not_utf8_leaves_it_out_with_a_note(tmp_path, run_main,
                                                                                     pair_bytes):
    """Such a name can be opened but not printed, drawn in a title or recorded: the batch
    failed at that pair, and again at every rerun; refusing it cost the folder's other photos."""
    photos = tmp_path / "photos"
    _write(photos / "fine.png", pair_bytes[0])
    _write(photos / os.fsdecode(b"caf\xe9.png"), pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    status, stdout, stderr = run_main(["--contents", str(photos), "--styles", str(style), "-o",
                                       str(tmp_path / "out"), *FAST])
    assert status == 0, (stdout, stderr)
    assert f"note: left out of the folder {photos}: 1 name that is not UTF-8 (rename it): caf\ufffd.png" in stdout
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == [
        "contact_sheet.png", "fine_style.png", "fine_style_losses.png", "fine_style_panel.png"]


def test_a_batch_names_a_pair_on_one_line_whatever_its_file_name(tmp_path, run_main, pair_bytes):
    """A newline in a photo's file name is shown escaped, as Python writes it: printed as it
    is, it broke the pair's progress line in two."""
    photos = tmp_path / "photos"
    _write(photos / "new\nline.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    status, stdout, stderr = run_main(["--contents", str(photos), "--styles", str(style), "-o",
                                       str(tmp_path / "out"), *FAST])
    assert status == 0, (stdout, stderr)
    assert any(line.startswith("[1/1] new\\nline + style ... done in ") for line in stdout.splitlines()), stdout
    assert (tmp_path / "out" / "new\nline_style.png").is_file()
    assert ContentModel.printable_name("a\tb\x1bc\u00e9") == "a\\tb\\x1bc\u00e9"
    assert ContentModel.printable_name("a\ud800b") == "a\\ud800b"  # a lone surrogate, from JSON: no UnicodeError


def test_names_the_font_cannot_draw_give_no_warnings(tmp_path, env, pair_bytes, vgg19_weights):
    """A photo named 日本.jpg, where no installed font draws Japanese (as on the machine the
    tests run on): its name is drawn in the panel's title as boxes, which matplotlib said in
    a UserWarning per character, on stderr."""
    content = _write(tmp_path / "日本.png", pair_bytes[0])
    style = _write(tmp_path / "café.jpg", pair_bytes[1])
    proc = run_cli([content, style, *FAST, "-o", tmp_path / "out.png"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, describe(proc)
    assert "Glyph" not in proc.stderr and "Warning" not in proc.stderr, describe(proc)
    assert (tmp_path / "out_panel.png").is_file()


def test_a_name_the_default_font_lacks_is_drawn_in_an_installed_font_that_has_it(tmp_path):
    """A photo named ᶁ.jpg (U+1D81, which DejaVu Sans lacks and matplotlib's own STIX fonts
    have), as a 日本.jpg on a machine with a Japanese font: its name was drawn as a box,
    matplotlib falling back only to fonts named. The title now names, after its own fonts,
    one that draws it: drawn again, no glyph is missing (matplotlib warns for each)."""
    import warnings

    image = np.zeros((16, 24, 3), np.float32)
    figure = StyleTransfer.plot_panel(image, [image], image, "\u1d81.jpg")
    families = figure.texts[0].get_fontfamily()
    ContentModel.save_figure(figure, tmp_path / "panel.png")
    assert figure.texts[0].get_fontfamily()[:len(families)] == families
    assert len(figure.texts[0].get_fontfamily()) > len(families)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 'Glyph 7553 ... missing from font(s) DejaVu Sans', were it a box
        figure.savefig(tmp_path / "again.png")
    fonts = figure.texts[0].get_fontfamily()
    ContentModel.save_figure(figure, tmp_path / "panel.png")
    assert figure.texts[0].get_fontfamily() == fonts  # saved twice: each font named once


def test_fallback_fonts_are_found_without_building_hidden_ticks(monkeypatch):
    """The contact sheet's cells are axes drawn without ticks: asking for every text of the
    figure (findobj) made matplotlib build them all, 5 s for 20 x 20 cells. Only the texts
    that can name a file are looked at: titles, and a cell's text."""
    from matplotlib.axis import Axis

    image = np.zeros((16, 24, 3), np.float32)
    inputs = [(f"\u1d81{index}", image) for index in range(3)]
    figure = StyleTransfer.plot_contact_sheet(inputs, inputs, [[image, image, "failed: \u1d81.jpg"]] * 3)
    monkeypatch.setattr(Axis, "get_major_ticks", lambda *args, **kwargs: pytest.fail("ticks built"))
    ContentModel.add_fallback_fonts(figure)
    titled = [axes.title for axes in figure.axes if axes.title.get_text()]
    cells = [text for axes in figure.axes for text in axes.texts if "\u1d81" in text.get_text()]
    assert len(titled) == 6 and len(cells) == 3
    assert all(len(text.get_fontfamily()) > 1 for text in [*titled, *cells])


def test_drawing_leaves_matplotlib_as_it_was_for_a_notebook(tmp_path):
    """The pictures are drawn on Figures of their own, with their text settings for the time
    they are drawn: a notebook's backend, its TeX maths in titles and its warning filters
    stay as they were, and no figure is left open in pyplot."""
    import warnings

    import matplotlib

    image = np.zeros((16, 24, 3), np.float32)
    backend = matplotlib.get_backend()
    matplotlib.use("pdf")  # a backend of the caller's own, which the pictures must not switch
    try:
        filters = list(warnings.filters)
        font_log_level = logging.getLogger("matplotlib.font_manager").level
        figure = StyleTransfer.plot_panel(image, [image], image, "a$_$b.jpg")  # '$': TeX maths, were it parsed
        ContentModel.save_figure(figure, tmp_path / "panel.png")
        assert figure.texts[0].get_parse_math() is False and figure.texts[0].get_text() == "a$_$b.jpg"
        assert matplotlib.get_backend() == "pdf" and matplotlib.rcParams["text.parse_math"] is True
        assert warnings.filters == filters
        assert logging.getLogger("matplotlib.font_manager").level == font_log_level
        assert "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()
    finally:
        matplotlib.use(backend)
    assert ContentModel.open_image(tmp_path / "panel.png").size[0] > 0


def test_the_loss_plots_log_axis_is_labelled_as_powers_of_ten(tmp_path):
    """Its tick labels are TeX (made while the figure is saved): drawn as maths, 10⁵, where
    they once showed as written, '$\\mathdefault{10^{5}}$'. Only the title, a file name, is
    drawn as written."""
    history = [dict(iteration=i, level=0, content=1e5 / i, style=1e7 / i, tv=1e4, total=1e7 / i) for i in (1, 2, 3)]
    figure = StyleTransfer.plot_losses(history, "a$_$b.jpg")
    ContentModel.save_figure(figure, tmp_path / "losses.png")
    axis = figure.axes[0]
    labels = [label for label in axis.get_yticklabels() if label.get_text()]
    assert labels and all(label.get_parse_math() and "$" in label.get_text() for label in labels)
    assert axis.title.get_parse_math() is False and axis.title.get_text() == "a$_$b.jpg"


def test_the_loss_plot_ticks_whole_iterations_and_names_the_level_marks(tmp_path):
    """Three iterations were ticked 1.0, 1.25, ... 3.0; a level's dotted line was in no legend."""
    history = [dict(iteration=i, level=int(i > 2), content=1.0, style=2.0, tv=0.5, total=3.5) for i in (1, 2, 3)]
    figure = StyleTransfer.plot_losses(history)
    ContentModel.save_figure(figure, tmp_path / "losses.png")
    axis = figure.axes[0]
    ticks = [tick for tick in axis.get_xticks() if 1 <= tick <= 3]
    assert ticks and all(tick == int(tick) for tick in ticks), ticks
    assert [text.get_text() for text in axis.get_legend().get_texts()] == [*StyleTransfer.LOSS_TERMS,
                                                                           "next level (larger)"]


def test_a_loss_term_that_is_0_throughout_is_named_not_drawn(tmp_path):
    """--tv-weight 0: drawn at the log axis's floor (1e-12) the term stretched the axis over
    some 20 decades and squeezed the others together at its top."""
    history = [dict(iteration=i, level=0, content=1e5 / i, style=1e7 / i, tv=0.0, total=1.01e7 / i) for i in (1, 2, 3)]
    figure = StyleTransfer.plot_losses(history)
    ContentModel.save_figure(figure, tmp_path / "losses.png")
    axis = figure.axes[0]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["content", "style", "tv: 0 throughout",
                                                                           "total"]
    assert axis.get_ylim()[0] > 1e3  # the drawn terms' range, not the floor's


def test_a_panoramas_panel_stacks_its_images_and_fills_the_width(tmp_path):
    """Side by side, a 1600x200 photo and its result were thin strips in a picture mostly
    empty: stacked, each image is as wide as the panel."""
    panorama, painting = np.zeros((20, 160, 3), np.float32), np.zeros((30, 40, 3), np.float32)
    figure = StyleTransfer.plot_panel(panorama, [painting], panorama, "pano.jpg + wave.jpg")
    ContentModel.save_figure(figure, tmp_path / "panel.png")
    assert [axis.get_subplotspec().get_geometry()[:2] for axis in figure.axes] == [(3, 1)] * 3
    width = figure.get_figwidth()
    for axis in figure.axes:  # each image spans nearly the panel's width
        assert axis.get_position().width * width > 0.85 * width
    side_by_side = StyleTransfer.plot_panel(painting, [panorama], painting)  # only a panoramic content is stacked
    assert [axis.get_subplotspec().get_geometry()[:2] for axis in side_by_side.axes] == [(1, 3)] * 3


def test_a_panel_of_landscape_images_has_no_band_of_empty_space(tmp_path):
    """Square cells left about a quarter of the sample pair's panel blank, between the
    title and the images."""
    photo, painting = np.full((300, 451, 3), 0.5, np.float32), np.full((256, 320, 3), 0.2, np.float32)
    ContentModel.save_figure(StyleTransfer.plot_panel(photo, [painting], photo, "chelsea.jpg + starry_night.jpg"),
                             tmp_path / "panel.png")
    pixels = np.asarray(ContentModel.open_image(tmp_path / "panel.png").convert("L"))
    blank_rows = np.mean(pixels.min(axis=1) > 250)  # rows of white alone (text rows have dark pixels)
    assert blank_rows < 0.15, blank_rows


def test_long_names_on_the_contact_sheet_are_wrapped_and_never_drawn_over_each_other():
    """Two paintings' long names, side by side, were drawn over each other, unreadable."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    image = np.full((30, 40, 3), 0.5, np.float32)
    styles = ["Katsushika Hokusai - The Great Wave off Kanagawa (1831)", "Vincent van Gogh - The Starry Night (1889)",
              "IMG_20240101_000000_HDR_final_edit_v2"]
    figure = StyleTransfer.plot_contact_sheet([("photo", image)], [(name, image) for name in styles],
                                              [[image] * len(styles)])
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    titles = [axis.title for axis in figure.axes if axis.title.get_text()]
    assert [title.get_text().replace("\n", " ") for title in titles[:2]] == styles[:2]  # whole, wrapped at spaces
    assert titles[2].get_text().count("\n") == 1 and titles[2].get_text().replace("\n", "") == styles[2]
    boxes = [title.get_window_extent(renderer) for title in titles]
    assert not any(first.overlaps(second) for i, first in enumerate(boxes) for second in boxes[i + 1:])
    assert StyleTransfer.sheet_title("x" * 100) == "x" * 26 + "\n" + "x" * 26 + "\n" + "x" * 25 + "…"  # cut short


def test_runs_started_together_never_share_an_output(tmp_path, monkeypatch):
    """The name is held from the moment it is chosen (an empty file), not from the first
    save seconds later: a second run started meanwhile numbers past it, or is refused
    for the same -o; a name nothing was written to is given back."""
    monkeypatch.chdir(tmp_path)
    with ContentModel.reserved_output("cat_art", None, []) as first:
        assert first == Path("results/cat_art.png") and first.stat().st_size == 0
        with ContentModel.reserved_output("cat_art", None, []) as second:
            assert second == Path("results/cat_art_2.png")
            save_image(np.zeros((8, 8, 3), np.float32), second)
        # Empty: the first run's placeholder, which the message tells from a finished file.
        with pytest.raises(StyleTransferError, match=r"^results/cat_art.png is being written by another run now "
                                                     r"\(the empty file it holds\); wait for it to finish, or "
                                                     r"choose another -o$"):
            with ContentModel.reserved_output("cat_art", "results/cat_art.png", []):
                pass
        # --overwrite replaces a result, not one being written: refused for -o, numbered past without
        with pytest.raises(StyleTransferError, match=r"^results/cat_art.png is being written by another run now"):
            with ContentModel.reserved_output("cat_art", "results/cat_art.png", [], overwrite=True):
                pass
        with ContentModel.reserved_output("cat_art", None, [], overwrite=True) as third:
            assert third == Path("results/cat_art_2.png")  # the finished result, replaced as asked
    assert sorted(os.listdir("results")) == ["cat_art_2.png"]  # the first wrote nothing: its name is free again


def another_run(code: str, folder: Path) -> subprocess.Popen:
    """A process running Python ``code`` in ``folder`` with this project importable: another
    run, which the test kills, its stdin and stdout piped."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(Path(ContentModel.__file__).parent)})


def test_a_placeholder_is_held_while_its_run_lives_and_taken_over_once_it_was_killed(tmp_path, monkeypatch):
    """A run killed outright (kill -9, the out-of-memory killer) left its empty placeholder,
    and a rerun was refused ('exists and is empty ...; delete it or pass --overwrite'). The
    live run's lock on it goes with the process: the rerun now takes the name over."""
    monkeypatch.chdir(tmp_path)
    claim = ("import sys, ContentModel; from pathlib import Path; ContentModel.claim_output(Path('out.png')); "
             "print('held', flush=True); sys.stdin.read()")
    holder = another_run(claim, tmp_path)
    try:
        assert holder.stdout.readline() == "held\n"
        assert ContentModel.held_placeholder(Path("out.png")) and not ContentModel.stale_placeholder(Path("out.png"))
        with pytest.raises(StyleTransferError, match="out.png is being written by another run now"):
            with ContentModel.reserved_output("x", "out.png", []):
                pass
    finally:
        holder.kill()  # SIGKILL: nothing of its own is run, as the out-of-memory killer's
        holder.wait()
    assert Path("out.png").stat().st_size == 0 and ContentModel.stale_placeholder(Path("out.png"))
    with ContentModel.reserved_output("x", "out.png", []) as path:  # no --overwrite needed
        assert path == Path("out.png") and ContentModel.held_placeholder(path)
        save_image(np.zeros((8, 8, 3), np.float32), path)
    assert Path("out.png").stat().st_size > 0 and not ContentModel.held_placeholder(Path("out.png"))


def test_a_run_holds_its_name_after_its_first_save_until_it_ends(tmp_path, monkeypatch):
    """The placeholder's lock goes when a run first saves its image over it (--save-every
    10: after ten iterations), and a run replacing a result with --overwrite had none: a
    second --overwrite run of the same name then wrote over the first's files as it ran, and
    both said 'done'. The name's run lock (lock_output) lasts the whole run: the second is
    refused for -o, numbered past without, until the first ends, however it ends."""
    monkeypatch.chdir(tmp_path)
    Path("results").mkdir()
    Path("results/cat_art.png").write_bytes(b"an earlier result")
    run = ("import sys, numpy as np, ContentModel\n"
           "with ContentModel.reserved_output('cat_art', None, [], overwrite=True) as path:\n"
           "    ContentModel.save_image(np.zeros((8, 8, 3), np.float32), path)  # its first save\n"
           "    print(path, flush=True)\n"
           "    sys.stdin.read()\n")
    holder = another_run(run, tmp_path)
    try:
        assert holder.stdout.readline() == "results/cat_art.png\n"
        assert Path("results/cat_art.png").stat().st_size > 0  # no placeholder now: the image
        with pytest.raises(StyleTransferError, match=r"^results/cat_art.png is being written by another run now; "
                                                     r"wait for it to finish, or choose another -o$"):
            with ContentModel.reserved_output("cat_art", "results/cat_art.png", [], overwrite=True):
                pass
        with ContentModel.reserved_output("cat_art", None, [], overwrite=True) as second:
            assert second == Path("results/cat_art_2.png")
            assert ContentModel.run_lock_held(second)
        assert not ContentModel.run_lock_held(second)  # given back as the block ends
    finally:
        holder.kill()  # SIGKILL: its lock goes with it
        holder.wait()
    with ContentModel.reserved_output("cat_art", None, [], overwrite=True) as path:
        assert path == Path("results/cat_art.png")


def test_the_run_lock_is_on_the_name_written_and_in_a_folder_of_the_users_own(tmp_path, monkeypatch):
    """-o link.png, a link to target.png: the run replaces the link with its image, and its
    lock, named after the link's target, no longer held link.png once it had saved (a second
    --overwrite run wrote over it), while target.png, which no run writes, was refused. The
    locks' folder is one of the user's own: a folder that is another's (it could be made to
    hold or block the user's locks), or a link, is not used (the placeholder still tells)."""
    monkeypatch.chdir(tmp_path)
    Path("target.png").write_bytes(b"a result")
    Path("link.png").symlink_to("target.png")
    with ContentModel.reserved_output("x", "link.png", [], overwrite=True) as path:
        save_image(np.zeros((8, 8, 3), np.float32), path)
        assert not Path("link.png").is_symlink()  # replaced by the image
        with pytest.raises(StyleTransferError, match="^link.png is being written by another run now"):
            with ContentModel.reserved_output("x", "link.png", [], overwrite=True):
                pass
        with ContentModel.reserved_output("x", "target.png", [], overwrite=True) as other:
            assert other == Path("target.png")
    monkeypatch.setattr(ContentModel.tempfile, "gettempdir", lambda: str(tmp_path))
    own = tmp_path / ContentModel.RUN_LOCKS_FOLDER.format(user=os.getuid())
    assert ContentModel.run_locks_folder() == own and stat.S_IMODE(own.stat().st_mode) == 0o700
    lock = ContentModel.lock_output(Path("a.png"))
    assert lock.descriptor is not None and ContentModel.run_lock_held(Path("a.png"))
    lock.release()
    own.rename(tmp_path / "elsewhere")
    own.symlink_to(tmp_path / "elsewhere")
    assert ContentModel.run_locks_folder() is None
    assert ContentModel.lock_output(Path("a.png")).descriptor is None  # no lock, not a refusal
    another_user = os.getuid() + 1
    monkeypatch.setattr(ContentModel.os, "getuid", lambda: another_user)  # a folder of this name: not this one's
    assert ContentModel.run_locks_folder() is None and not ContentModel.run_lock_held(Path("a.png"))


def test_a_run_checking_a_lock_does_not_refuse_a_run_taking_it(tmp_path, monkeypatch):
    """A run checks a lock by taking it shared for a moment (run_lock_held): a run taking
    it then was refused, as if a live run held the name ('fresh.png exists'). It tries again."""
    monkeypatch.chdir(tmp_path)
    flock, checks = ContentModel.fcntl.flock, []

    def checked_meanwhile(file, operation):
        if operation & ContentModel.fcntl.LOCK_EX and not checks:
            checks.append(file)
            raise BlockingIOError  # another run's check holds it, for a moment
        return flock(file, operation)

    monkeypatch.setattr(ContentModel.fcntl, "flock", checked_meanwhile)
    with ContentModel.reserved_output("x", "fresh.png", []) as path:
        assert path == Path("fresh.png") and len(checks) == 1


def test_a_name_taken_between_the_choice_and_the_claim_is_not_shared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    choose = ContentModel.choose_output
    taken = []

    def and_another_run_takes_it(*args, **kwargs):
        path = choose(*args, **kwargs)
        if not taken:  # the other run writes the name just after we looked
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"theirs")
            taken.append(path)
        return path

    monkeypatch.setattr(ContentModel, "choose_output", and_another_run_takes_it)
    with ContentModel.reserved_output("cat_art", None, []) as path:
        assert path == Path("results/cat_art_2.png") and path.stat().st_size == 0
    taken.clear()
    with pytest.raises(StyleTransferError, match="mine.png exists; pass --overwrite"):
        with ContentModel.reserved_output("cat_art", "mine.png", []):
            pass
    assert Path("mine.png").read_bytes() == b"theirs" and Path("results/cat_art.png").read_bytes() == b"theirs"
    monkeypatch.setattr(ContentModel, "choose_output", choose)
    claim = ContentModel.claim_output

    def another_run_claims_it_first(path):
        if not taken:
            taken.append(path)
            path.write_bytes(b"theirs")
            raise FileExistsError(path)
        return claim(path)

    taken.clear()  # with --overwrite the default name is chosen again, the same, and is replaced
    monkeypatch.setattr(ContentModel, "claim_output", another_run_claims_it_first)
    with ContentModel.reserved_output("dog_art", None, [], overwrite=True) as path:
        assert path == Path("results/dog_art.png") and path.read_bytes() == b"theirs"
    monkeypatch.setattr(ContentModel, "claim_output", claim)
    live = []

    def and_a_live_run_claims_it(*args, **kwargs):
        path = choose(*args, **kwargs)
        if not live:  # a run started with ours holds the name just after we looked
            live.append(claim(path))
        return path

    monkeypatch.setattr(ContentModel, "choose_output", and_a_live_run_claims_it)
    with ContentModel.reserved_output("owl_art", None, [], overwrite=True) as path:  # --overwrite: not its files
        assert path == Path("results/owl_art_2.png")
    ContentModel.release_unwritten(live.pop())
    with pytest.raises(StyleTransferError, match="owl.png is being written by another run now"):
        with ContentModel.reserved_output("owl_art", "owl.png", [], overwrite=True):
            pass
    ContentModel.release_unwritten(live.pop())


def test_overwrite_takes_an_empty_file_where_no_lock_can_tell_a_live_run(tmp_path, monkeypatch):
    """Without fcntl (Windows) every empty file may be a live run's placeholder: refused
    without --overwrite, taken with it (a killed run's, there, could not be otherwise)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ContentModel, "fcntl", None)
    Path("stale.png").write_bytes(b"")
    with pytest.raises(StyleTransferError, match="stale.png is being written by another run now"):
        ContentModel.choose_output("x", "stale.png", [])
    assert ContentModel.choose_output("x", "stale.png", [], overwrite=True) == Path("stale.png")


def test_a_run_that_fails_after_choosing_its_output_leaves_nothing(tmp_path, run_main, pair_bytes):
    content = _write(tmp_path / "content.png", b"not a picture")
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    status, _, stderr = run_main([str(content), str(style), *FAST, "-o", str(tmp_path / "new" / "sub" / "out.png")])
    assert status == ContentModel.EXIT_USAGE and "cannot read" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.jpg"]  # no placeholder, no folder


@pytest.mark.parametrize("output, message", [
    ("", "error: -o is empty; give a file name such as result.png"),
    (".", "error: . is a folder; -o needs a file name"),
    ("/", "error: / is a folder; -o needs a file name"),
    ("out.png/", "error: out.png/ is a folder; -o needs a file name"),  # it wrote out.png
    ("out.png/.", "error: out.png/. is a folder; -o needs a file name"),  # so did this
    ("..", "error: .. is a folder; -o needs a file name"),
])
@pytest.mark.parametrize("script", [StyleTransfer, ContentModel])
def test_an_output_with_no_file_name_is_one_error_line(tmp_path, monkeypatch, capsys, pair_bytes, script,
                                                       output, message):
    monkeypatch.chdir(tmp_path)
    content = _write(tmp_path / "content.png", pair_bytes[0])
    with pytest.raises(SystemExit) as info:
        script.main([str(content), "-o", output])
    assert info.value.code == ContentModel.EXIT_USAGE
    assert our_lines(capsys.readouterr().err) == [message]


def test_a_write_that_fails_is_one_error_line_and_exit_status_1(tmp_path, run_main, pair_bytes, monkeypatch,
                                                                vgg19_weights):
    """A full disk as the panel is written: the result image is there, the run says
    which file it could not write, and ends with status 1, not a traceback."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "out.png"
    replace = os.replace

    def disk_full_for_the_panel(source, target):
        if str(target).endswith("_panel.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target)

    monkeypatch.setattr(os, "replace", disk_full_for_the_panel)
    status, _, stderr = run_main([str(content), str(style), *FAST, "-o", str(output)])
    assert status == ContentModel.EXIT_FAILED
    assert our_lines(stderr) == [f"error: could not write {tmp_path / 'out_panel.png'}: No space left on device"]
    assert output.is_file() and not list(tmp_path.glob(".*"))  # no temporary file left


def _no_temporaries(folder: Path, keep: set) -> None:
    assert {p.name for p in folder.iterdir()} == keep


def test_atomic_write_and_save_image_leave_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    assert atomic_write(target, lambda tmp: Path(tmp).write_text("hello")) == target
    assert target.read_text() == "hello"
    save_image(np.full((40, 40, 3), 0.5, np.float32), tmp_path / "sub" / "image.png")
    save_image(np.full((40, 40, 3), 0.5, np.float32), tmp_path / "sub" / "image.jpg")
    _no_temporaries(tmp_path / "sub", {"file.txt", "image.png", "image.jpg"})
    assert load_image(tmp_path / "sub" / "image.png").shape == (40, 40, 3)


@pytest.mark.parametrize("failure, raised", [
    (OSError(errno.ENOSPC, "No space left on device"), ContentModel.WriteError),  # one line, exit 1
    (KeyboardInterrupt(), KeyboardInterrupt),
], ids=["oserror", "ctrl-c"])
def test_failed_write_keeps_the_previous_file(tmp_path, failure, raised):
    target = tmp_path / "result.png"
    save_image(np.zeros((40, 40, 3), np.float32), target)
    before = sha256(target)

    def write(tmp):
        Path(tmp).write_bytes(b"half a fi")  # partial output, then the failure
        raise failure

    with pytest.raises(raised) as info:
        atomic_write(target, write)
    if raised is ContentModel.WriteError:
        assert str(info.value) == f"could not write {target}: No space left on device"
        assert info.value.exit_status == ContentModel.EXIT_FAILED
    assert sha256(target) == before
    _no_temporaries(tmp_path, {"result.png"})


def test_a_scripts_main_puts_the_signal_handlers_back_for_the_program_that_called_it(tmp_path, capsys):
    """run_cli takes SIGINT, SIGTERM and SIGHUP as Ctrl-C while a script runs; a program (or
    test) that calls main() keeps its own handlers afterwards, as after interrupt_ends_quietly."""
    def own(signum, frame):
        pass

    numbers = [signal.SIGINT, *ContentModel.INTERRUPTING_SIGNALS]
    before = {number: signal.signal(number, own) for number in numbers}
    try:
        with pytest.raises(SystemExit) as stopped:
            ContentModel.main([str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "x.png")])
        assert stopped.value.code == ContentModel.EXIT_USAGE
        assert {number: signal.getsignal(number) for number in numbers} == {number: own for number in numbers}
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    assert capsys.readouterr().err.startswith("error: ")


def test_ctrl_c_while_writing_finishes_the_file_then_interrupts(tmp_path):
    """A real SIGINT in the middle of a write (as when Ctrl-C meets a periodic save): the
    file is completed and renamed into place, no temporary file is left behind (one was,
    once, in the Ctrl-C test below), and the KeyboardInterrupt comes right after."""
    target = tmp_path / "result.txt"

    def write(tmp):
        with open(tmp, "w") as file:
            file.write("first half, ")
            os.kill(os.getpid(), signal.SIGINT)
            file.write("second half")

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            atomic_write(target, write)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert target.read_text() == "first half, second half"
    _no_temporaries(tmp_path, {"result.txt"})


def test_ctrl_c_while_a_figure_is_written_still_says_where_it_is(tmp_path, capsys, sample_images,
                                                                  ctrl_c_during_first_savefig):
    """ContentModel.py (and StyleModel.py, through the same figure_main) hit by Ctrl-C while
    the figure is being written: the figure is finished, the line naming it is printed,
    and then the run ends as interrupted."""
    output = tmp_path / "maps.png"
    with pytest.raises(SystemExit) as info:
        ContentModel.main([str(sample_images[0]), "--weights", "none", "--size", "64", "-o", str(output)])
    captured = capsys.readouterr()
    assert info.value.code == ContentModel.EXIT_INTERRUPTED
    assert Image.open(output).size[0] > 0
    assert f"figure -> {output}" in captured.out and captured.err.strip() == "interrupted"


@pytest.mark.parametrize("stopped_first, write_fails", [(False, False), (True, False), (True, True)],
                         ids=["finished-run", "run-stopped-by-a-first-ctrl-c", "and-a-file-that-cannot-be-written"])
def test_ctrl_c_while_a_runs_files_are_written_finishes_them_and_says_where(
        stopped_first, write_fails, tmp_path, sample_images, run_main, monkeypatch, vgg19_weights,
        ctrl_c_during_first_savefig):
    """StyleTransfer.py hit by Ctrl-C (a real SIGINT) as it writes its panel: the image,
    panel, loss curve and trace are all written, the line naming them is printed, and
    then the run ends as interrupted, said once. When a first Ctrl-C had stopped the
    optimization, its line naming the best image says it (a bare 'interrupted' used to
    follow); when that line never came (the panel could not be written), 'interrupted' does."""
    real_call = StyleTransfer.ProgressBar.__call__

    def ctrl_c_at_the_second_iteration(self, progress):
        real_call(self, progress)
        if progress.iteration == 2:
            raise KeyboardInterrupt

    def ctrl_c_then_a_full_disk(figure, path, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        raise ContentModel.WriteError(f"cannot write {path}: No space left on device")

    if stopped_first:
        monkeypatch.setattr(StyleTransfer.ProgressBar, "__call__", ctrl_c_at_the_second_iteration)
    if write_fails:
        monkeypatch.setattr(StyleTransfer, "save_figure", ctrl_c_then_a_full_disk)
    output = tmp_path / "r.png"
    status, stdout, stderr = run_main([str(sample_images[0]), str(sample_images[1]), "-o", str(output),
                                       "--size", "64", "--iterations", "50" if stopped_first else "2",
                                       "--model", "vgg19"])
    assert status == ContentModel.EXIT_INTERRUPTED, stdout + stderr
    paths = StyleTransfer.output_paths(output)
    if write_fails:
        assert stderr.strip() == "interrupted"
        return
    assert all(paths[kind].is_file() for kind in ("image", "panel", "losses", "trace"))
    if stopped_first:
        assert json.loads(paths["trace"].read_text())["stopped_early"] == "interrupted"
        assert stderr.splitlines() == [f"interrupted: the best image so far is in {output} (trace, panel and "
                                       "loss curve beside it)"]
    else:
        assert f"{paths['trace']}" in stdout.splitlines()[-1] and stderr.strip() == "interrupted"


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_ctrl_c_before_the_first_iteration_writes_nothing(optimizer, tmp_path, sample_images, run_main,
                                                          monkeypatch, vgg19_weights):
    """Ctrl-C while the first step is being compiled: there is no image of the run's own, so
    no file is written and the name is free for the rerun. Before, the start image and an
    empty loss chart were written, and rerunning the command needed --overwrite."""
    def ctrl_c_at_once(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(StyleTransfer, f"{optimizer}_optimize", ctrl_c_at_once)
    (tmp_path / "out").mkdir()
    output = tmp_path / "out" / "r.png"
    status, stdout, stderr = run_main([str(sample_images[0]), str(sample_images[1]), "-o", str(output),
                                       "--size", "64", "--optimizer", optimizer, "--model", "vgg19"])
    assert status == ContentModel.EXIT_INTERRUPTED, stdout + stderr
    assert stderr.splitlines() == ["interrupted before the first iteration: nothing written"]
    assert list(output.parent.iterdir()) == []


def test_a_file_name_with_tex_maths_in_it_is_drawn_as_written(tmp_path):
    """A '$' pair in a file name ('us$_$x.jpg'), shown in a picture's title, is text, not
    TeX maths for matplotlib to parse (its parser refused this one and the run lost its
    panel and trace)."""
    name = "us$_$x + starry_night"
    image = np.full((8, 8, 3), 0.5, np.float32)
    history = [{"iteration": i, "level": 1, **{term: 1.0 for term in StyleTransfer.LOSS_TERMS}} for i in (1, 2)]
    figures = {
        "panel": StyleTransfer.plot_panel(image, [image], image, title=name),
        "losses": StyleTransfer.plot_losses(history, title=name),
        "sheet": StyleTransfer.plot_contact_sheet([(name, image)], [("$x$_$", image)], [[image]]),
    }
    for what, figure in figures.items():
        assert Image.open(ContentModel.save_figure(figure, tmp_path / f"{what}.png")).size[0] > 0


def test_failed_save_image_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "result.jpg"
    save_image(np.zeros((40, 40, 3), np.float32), target)
    before = sha256(target)

    def broken_save(self, *args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ContentModel.WriteError, match="No space left on device"):
        save_image(np.ones((40, 40, 3), np.float32), target)
    assert sha256(target) == before
    _no_temporaries(tmp_path, {"result.jpg"})


@contextlib.contextmanager
def ending(proc: subprocess.Popen):
    """A process, killed at the end of the block if it is still running (an assertion failed
    or a read timed out before it ended)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["ctrl-c", "sigterm", "sighup"])
def test_ctrl_c_saves_the_best_image_trace_and_panel(stop, tmp_path, env, pair_bytes, vgg19_weights):
    """Ctrl-C, SIGTERM (kill, timeout) or SIGHUP (the terminal closed) during a run: the
    best image so far is saved with its panel and trace, and the run exits 130."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "out" / "result.png"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(content), str(style), "--size", "64", "--iterations", "500",
         "--model", "vgg19", "-o", str(output)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        encoding="utf-8", errors="replace")
    lines: queue.Queue = queue.Queue()
    stderr_text: list[str] = []

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)  # end of output

    threading.Thread(target=pump, daemon=True).start()
    stderr_reader = threading.Thread(target=lambda: stderr_text.append(proc.stderr.read()), daemon=True)
    stderr_reader.start()
    seen = []
    with ending(proc):
        while True:  # bounded: every get() has a timeout and the run ends by itself
            line = lines.get(timeout=RUN_TIMEOUT_S)
            if line is None:
                pytest.fail(f"the run ended before any progress line (exit {proc.wait()}):\n"
                            + "".join(seen))
            seen.append(line)
            if "/500" in line:
                break
        proc.send_signal(stop)
        status = proc.wait(timeout=RUN_TIMEOUT_S)
    while lines.get(timeout=RUN_TIMEOUT_S) is not None:
        pass  # stdout fully read
    stderr_reader.join(timeout=RUN_TIMEOUT_S)
    report = f"exit {status}\nstdout: {''.join(seen)}\nstderr: {''.join(stderr_text)}"

    assert status == ContentModel.EXIT_INTERRUPTED, report
    assert "Traceback" not in "".join(stderr_text), report
    image = load_image(output)
    assert image.shape == (48, 64, 3)
    trace = json.loads(output.with_suffix(".json").read_text())
    assert trace["stopped_early"] == "interrupted"
    assert trace["history"] and all(np.isfinite(row["total"]) for row in trace["history"])
    assert trace["history"][-1]["iteration"] < 500
    assert (output.parent / "result_panel.png").is_file()
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("flags, first_line", [
    ([], "StyleTransfer: "),  # the start line; the next is a progress line
    (["--optimizer", "adam", "--preconditioner", "pyramid"], "note: "),  # a note; the next is the start line
], ids=["after-the-start-line", "after-a-note"])
def test_a_run_whose_output_pipe_closes_still_saves_its_result(flags, first_line, tmp_path, env, pair_bytes,
                                                                vgg19_weights):
    """`python StyleTransfer.py ... | head -1`: the reader goes away after the first line.
    Before, the next line printed raised BrokenPipeError (a traceback, exit 1) and the run's
    work was lost; now what follows goes nowhere and the run finishes."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "out" / "result.png"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(content), str(style), "--size", "64",
                             "--iterations", "20", "--model", "vgg19", "-o", str(output), *flags],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with ending(proc):
        first = proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read()
        status = proc.wait(timeout=RUN_TIMEOUT_S)
    assert first.startswith(first_line), first
    assert status == 0 and stderr == "", stderr
    assert load_image(output).shape == (48, 64, 3)
    assert json.loads(output.with_suffix(".json").read_text())["stopped_early"] is None


def test_a_run_started_with_its_output_closed_saves_its_result(tmp_path, env, pair_bytes, vgg19_weights):
    """`python StyleTransfer.py ... >&-`: Python then has no sys.stdout, and the run's first
    print ended it with a traceback (AttributeError: 'NoneType' object has no attribute 'write')."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "out" / "result.png"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(content), str(style), "--size", "64",
                           "--iterations", "3", "--model", "vgg19", "-o", str(output)],
                          cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT_S,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert load_image(output).shape == (48, 64, 3)
    assert json.loads(output.with_suffix(".json").read_text())["stopped_early"] is None


def test_under_nohup_sighup_stays_ignored(tmp_path, env, pair_bytes, vgg19_weights):
    """nohup starts a run with SIGHUP ignored, so that it outlives its terminal: the run
    keeps it ignored (handled as a Ctrl-C, it would stop the run at logout)."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "result.png"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(content), str(style), "--size", "64",
                             "--iterations", "30", "--model", "vgg19", "-o", str(output)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    with ending(proc):
        for line in proc.stdout:
            if "/30" in line:  # the first progress line: the run is under way
                proc.send_signal(signal.SIGHUP)
                break
        stdout = proc.stdout.read()
        status = proc.wait(timeout=RUN_TIMEOUT_S)
    assert status == 0, stdout + proc.stderr.read()
    assert json.loads(output.with_suffix(".json").read_text())["stopped_early"] is None


#: Runs a script as `python SCRIPT ...` does, with Ctrl-C arriving while TensorFlow loads.
CTRL_C_WHILE_LOADING = """
import builtins, runpy, sys
real_import = builtins.__import__
def importing(name, *args, **kwargs):
    if name == "tensorflow":
        raise KeyboardInterrupt  # what Python raises on Ctrl-C
    return real_import(name, *args, **kwargs)
builtins.__import__ = importing
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


#: The same, with SIGTERM or SIGHUP (argv[1]) sent to the process as TensorFlow starts to load.
SIGNAL_WHILE_LOADING = """
import builtins, os, runpy, signal, sys
real_import = builtins.__import__
stop = getattr(signal, sys.argv[1])
def importing(name, *args, **kwargs):
    if name == "tensorflow":
        os.kill(os.getpid(), stop)
    return real_import(name, *args, **kwargs)
builtins.__import__ = importing
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGHUP"])
def test_a_signal_while_tensorflow_loads_is_a_ctrl_c(stop, tmp_path, env, pair_bytes):
    """Before, the process ended on the spot (status 143 or 129), without a word."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    proc = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_LOADING, stop, str(SCRIPT), str(content),
                           "-o", str(tmp_path / "out.png")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == ContentModel.EXIT_INTERRUPTED, describe(proc)
    assert proc.stderr == "interrupted\n" and proc.stdout == "", describe(proc)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["content.png"]


@pytest.mark.parametrize("script", ["StyleTransfer.py", "StyleModel.py", "ContentModel.py"])
def test_ctrl_c_while_tensorflow_loads_is_one_line(script, tmp_path, env, pair_bytes):
    """The first seconds of every run: before, a traceback of TensorFlow's import machinery."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    proc = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_LOADING, str(SCRIPT.parent / script),
                           str(content), "-o", str(tmp_path / "out.png")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == ContentModel.EXIT_INTERRUPTED, describe(proc)
    assert proc.stderr == "interrupted\n" and proc.stdout == "", describe(proc)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["content.png"]


# ---------------------------------------------------------------------------
# Non-finite loss
# ---------------------------------------------------------------------------


def poison_total_variation(monkeypatch, after: int, gradient_too: bool = True):
    """Make the loss NaN from evaluation number ``after + 1`` on (inside tf.function).

    ``gradient_too``: the TV term is multiplied by NaN, so the gradient is NaN as
    well (what a diverging run gives); otherwise only the loss value is replaced
    by NaN and the gradient stays finite.
    """
    import tensorflow as tf

    real = StyleTransfer.total_variation_loss
    counter = tf.Variable(0, dtype=tf.int64, trainable=False)

    def poisoned(image):
        count = counter.assign_add(1)
        if gradient_too:
            return real(image) * tf.where(count > after, tf.constant(float("nan")), tf.constant(1.0))
        return tf.where(count > after, tf.constant(float("nan")), real(image))

    monkeypatch.setattr(StyleTransfer, "total_variation_loss", poisoned)
    return counter


@pytest.mark.parametrize("gradient_too", [False, True], ids=["nan-loss", "nan-loss-and-gradient"])
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_non_finite_loss_stops_with_the_best_finite_image(monkeypatch, small_pair, vgg19_weights, optimizer,
                                                          gradient_too):
    content, style = small_pair
    poison_total_variation(monkeypatch, after=3, gradient_too=gradient_too)

    result = StyleTransfer.stylize(content, style, iterations=20, optimizer=optimizer, model="vgg19",
                                   save_every=1)

    assert result.stopped_early is not None, f"the run did not report the NaN loss: {result.history}"
    assert "loss" in result.stopped_early and "nan" in result.stopped_early.lower()
    totals = [row["total"] for row in result.history]
    assert not np.isfinite(totals[-1]) and len(totals) < 20
    assert np.all(np.isfinite(result.image))
    assert result.image.min() >= 0 and result.image.max() <= 1
    finite = [(total, row["iteration"]) for total, row in zip(totals, result.history) if np.isfinite(total)]
    assert finite, "no finite loss was measured before the NaN"
    best_iteration = min(finite)[1]
    # frames[0] is the starting image, frames[i] the image measured at iteration i.
    np.testing.assert_array_equal(result.image, result.frames[best_iteration])


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_loss_non_finite_from_the_start_is_reported(monkeypatch, small_pair, vgg19_weights, optimizer):
    """NaN at the very first evaluation: the run must still say so, and keep the start image."""
    content, style = small_pair
    poison_total_variation(monkeypatch, after=0)

    result = StyleTransfer.stylize(content, style, iterations=5, optimizer=optimizer, model="vgg19",
                                   init="content")

    assert result.stopped_early is not None and "nan" in result.stopped_early.lower(), (
        f"stopped_early={result.stopped_early!r}, history={result.history}")
    np.testing.assert_array_equal(result.image, content)  # the start: nothing better was seen


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_non_finite_loss_exits_1_and_keeps_the_result(monkeypatch, tmp_path, pair_bytes, capsys,
                                                      vgg19_weights, optimizer):
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "out" / "result.png"
    poison_total_variation(monkeypatch, after=3)

    with pytest.raises(SystemExit) as exit_info:
        StyleTransfer.main([str(content), str(style), "--size", "64", "--iterations", "20",
                            "--optimizer", optimizer, "--model", "vgg19", "-o", str(output)])

    captured = capsys.readouterr()
    assert exit_info.value.code == ContentModel.EXIT_FAILED, captured.out + captured.err
    lines = our_lines(captured.err)
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "nan" in errors[0], lines
    assert str(output) in errors[0] and "lower loss weights" in errors[0]  # where the image is, and a fix
    assert ("--learning-rate" in errors[0]) == (optimizer == "adam")  # L-BFGS has no learning rate
    assert "the image with the lowest finite loss" in errors[0]


def test_a_loss_never_finite_says_the_start_image_was_kept(monkeypatch, tmp_path, pair_bytes, capsys,
                                                           vgg19_weights):
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    output = tmp_path / "result.png"
    poison_total_variation(monkeypatch, after=0)
    with pytest.raises(SystemExit) as exit_info:
        StyleTransfer.main([str(content), str(style), *FAST, "--init", "content", "-o", str(output)])
    assert exit_info.value.code == ContentModel.EXIT_FAILED
    errors = [line for line in our_lines(capsys.readouterr().err) if line.startswith("error:")]
    assert len(errors) == 1 and "no image had a finite loss; the one it started from is in" in errors[0], errors
    np.testing.assert_allclose(load_image(output), load_image(content, 64), atol=1 / 255)
    image = load_image(output)
    assert np.all((image >= 0) & (image <= 1))
    trace = json.loads(output.with_suffix(".json").read_text())
    assert "nan" in trace["stopped_early"]


# ---------------------------------------------------------------------------
# Seed
# ---------------------------------------------------------------------------


def test_same_seed_same_pixels_other_seed_other_pixels(small_pair, vgg19_weights):
    content, style = small_pair
    options = dict(iterations=3, init="noise", model="vgg19", save_every=0)
    first = StyleTransfer.stylize(content, style, seed=7, **options).image
    second = StyleTransfer.stylize(content, style, seed=7, **options).image
    other = StyleTransfer.stylize(content, style, seed=8, **options).image
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("batch, styles", [(1, 1), (2, 1), (1, 2)])
def test_loss_and_gradient_repeat_bit_for_bit_at_512_px(batch, styles):
    """At 512 px TensorFlow's graph optimizer rewrites a sum of more than two large
    gradients into accumulation in whatever order they are ready; the total-variation
    term (four slices of the image) and tf.add_n over the style layers met that, so
    the same run gave other pixels each time. Those sums are now in a fixed order: the
    same images must give the same losses and gradient, to the bit. Also checked: a
    batch (its features split once per tensor) and two masked styles (three gradients
    into each style layer's features, the next layer's and each style's)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    contents = [rng.uniform(size=(341, 512, 3)).astype(np.float32) for _ in range(batch)]
    style_images = [rng.uniform(size=(341, 512, 3)).astype(np.float32) for _ in range(styles)]
    left = np.zeros((341, 512), np.float32)
    left[:, :256] = 1.0
    masks = None if styles == 1 else [left, 1.0 - left]
    extractor = ContentModel.build_vgg("vgg16", [StyleTransfer.CONTENT_LAYER, *StyleTransfer.STYLE_LAYERS],
                                       None, "float32")
    objective = StyleTransfer.BatchObjective(
        [StyleTransfer.build_objective(extractor, content, style_images, masks=masks) for content in contents])
    image = tf.constant(rng.uniform(size=(batch, 341, 512, 3)).astype(np.float32))

    @tf.function
    def loss_and_gradient():
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = objective(image)
            total = tf.reduce_sum(losses[StyleTransfer.TOTAL_ROW])
        return losses, tape.gradient(total, image)

    runs = [[tensor.numpy() for tensor in loss_and_gradient()] for _ in range(4)]
    for losses, gradient in runs[1:]:
        np.testing.assert_array_equal(losses, runs[0][0])
        np.testing.assert_array_equal(gradient, runs[0][1])


# ---------------------------------------------------------------------------
# Fuzzing the loader
# ---------------------------------------------------------------------------


def check_loader_on(data: bytes, suffix: str) -> None:
    """load_image returns a float32 (H, W, 3) image in [0, 1] or raises StyleTransferError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            image = load_image(path)
        except StyleTransferError:
            return
        assert image.dtype == np.float32
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= MIN_SIZE
        assert np.all((image >= 0) & (image <= 1))
        assert Path(path).read_bytes() == data  # never modified


SUFFIXES = st.sampled_from([".png", ".jpg", ".gif", ".tiff", ".webp", ".bmp", ".bin"])
VALID = {
    "png": png_bytes(noise(40, 48, seed=5)),
    "jpeg": jpeg_bytes(noise(48, 40, seed=6)),
}


@st.composite
def mutated(draw):
    """A valid small PNG or JPEG with bytes flipped, cut, inserted or deleted."""
    data = bytearray(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if action == "flip":
            data[where] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[max(where, 1):]
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[where:where + draw(st.integers(1, 16))]
        if len(data) < 2:
            break
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), suffix=SUFFIXES)
def test_fuzz_loader_random_bytes(data, suffix):
    check_loader_on(data, suffix)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated(), suffix=SUFFIXES)
def test_fuzz_loader_mutated_png_and_jpeg(data, suffix):
    check_loader_on(data, suffix)


# ---------------------------------------------------------------------------
# Memory: the estimate, and the refusal of a run that cannot fit
# ---------------------------------------------------------------------------


def test_memory_estimate_grows_with_size_and_shrinks_with_precision_and_adam():
    def estimate(size, **settings):
        return StyleTransfer.estimate_memory((size * 2 // 3, size), model="vgg19", **settings)

    for precision in ("float32", "mixed"):
        small, large = estimate(512, precision=precision), estimate(1024, precision=precision)
        baseline = StyleTransfer.BASELINE_BYTES
        assert 3.5 < (large - baseline) / (small - baseline) < 4.5  # about the pixel count
    assert estimate(1024, precision="mixed") < estimate(1024, precision="float32")
    assert estimate(1024, precision="float32", optimizer="adam") < estimate(1024, precision="float32")


def test_memory_estimate_counts_the_activations_up_to_the_deepest_layer_used():
    """By hand, 32 x 48 px, VGG16 cut after block2_conv1: block 1's two convolutions
    (64 channels at full size) and block 2's first (128 channels at half size)."""
    shape = (32, 48)
    elements = 2 * 64 * 32 * 48 + 1 * 128 * 16 * 24
    optimizer = 32 * 48 * 3 * StyleTransfer.OPTIMIZER_VECTORS["lbfgs"] * StyleTransfer.FLOAT32_BYTES
    expected = StyleTransfer.BASELINE_BYTES + int(
        elements * StyleTransfer.FLOAT32_BYTES * StyleTransfer.ACTIVATION_COPIES + optimizer)
    assert StyleTransfer.estimate_memory(shape, model="vgg16", optimizer="lbfgs", precision="float32",
                                         content_layer="block2_conv1", style_layers=["block1_conv1"]) == expected
    # Two convolutions deeper in block 5 (512 channels at 1/16 size) cost exactly those two more.
    shallow, deep = (StyleTransfer.estimate_memory(shape, model="vgg16", precision="float32", content_layer=name,
                                                   style_layers=["block1_conv1"])
                     for name in ("block5_conv1", "block5_conv3"))
    assert deep - shallow == int(2 * 512 * 2 * 3 * StyleTransfer.FLOAT32_BYTES * StyleTransfer.ACTIVATION_COPIES)


def test_reduced_precision_estimate_counts_a_float32_copy_of_each_style_layer():
    """Gram matrices are computed in float32, so each style layer's features get a
    float32 copy; in float32 there is nothing to copy."""
    shape = (340, 512)

    def extra(precision):
        with_layer, without = (
            StyleTransfer.estimate_memory(shape, model="vgg19", precision=precision,
                                          content_layer="block5_conv2", style_layers=layers)
            for layers in (["block1_conv1", "block3_conv1"], ["block1_conv1"]))
        return with_layer - without

    assert extra("float32") == 0
    assert extra("mixed") == 4 * 256 * (340 // 4) * (512 // 4)  # block3_conv1: 256 channels at 1/4 size


def test_style_target_estimate_counts_one_forward_pass_by_hand():
    """By hand, 32 x 48 px, VGG16 cut after block2_conv1: the same activations as the
    optimization's, FORWARD_PASS_COPIES of them, and no optimizer."""
    elements = 2 * 64 * 32 * 48 + 1 * 128 * 16 * 24
    expected = StyleTransfer.BASELINE_BYTES + int(
        elements * ContentModel.FLOAT32_BYTES * ContentModel.FORWARD_PASS_COPIES)
    assert StyleTransfer.estimate_style_memory((32, 48), model="vgg16", precision="float32",
                                               content_layer="block2_conv1", style_layers=["block1_conv1"]) == expected


def test_a_figure_s_memory_check_counts_its_own_layers_and_only_on_a_cpu(monkeypatch):
    """A figure's pass goes only as deep as the layers it shows: at 4096 px, block1_conv1
    fits where the content layer (block5) would not. On a GPU the figure is not refused
    (the host's memory does not hold its activations)."""
    shape, network = (4096, 4096), dict(model="vgg16", precision="float32")
    shallow = ContentModel.forward_pass_memory(shape, layers=["block1_conv1"], **network)
    deep = ContentModel.forward_pass_memory(shape, layers=[ContentModel.CONTENT_LAYER], **network)
    assert shallow < deep
    monkeypatch.setattr(ContentModel, "default_device", lambda: "/CPU:0")
    monkeypatch.setattr(ContentModel, "available_memory", lambda: shallow)
    ContentModel.check_forward_pass_memory(shape, layers=["block1_conv1"], **network)
    with pytest.raises(ContentModel.NotEnoughMemoryError, match="^this figure needs about"):
        ContentModel.check_forward_pass_memory(shape, layers=[ContentModel.CONTENT_LAYER], **network)
    with pytest.raises(StyleTransferError, match="unknown layer block9_conv1"):  # read only once checked
        ContentModel.check_forward_pass_memory(shape, layers=["block9_conv1"], **network)
    monkeypatch.setattr(ContentModel, "default_device", lambda: "/GPU:0")
    ContentModel.check_forward_pass_memory(shape, layers=[ContentModel.CONTENT_LAYER], **network)


def test_the_figure_functions_refuse_what_cannot_fit_from_python_too(monkeypatch, tmp_path, sample_images):
    monkeypatch.setattr(ContentModel, "default_device", lambda: "/CPU:0")
    monkeypatch.setattr(ContentModel, "available_memory", lambda: ContentModel.BASELINE_BYTES // 2)
    for show in (ContentModel.show_content_features, StyleModel.show_style_features):
        with pytest.raises(ContentModel.NotEnoughMemoryError,
                           match="whatever the settings, this figure is estimated at 1 GiB.*free some memory"):
            show(sample_images[0], weights=None, size=64)


def test_a_figure_s_own_errors_come_before_its_memory_check_and_its_download(monkeypatch, sample_images, tmp_path):
    """A style layer given twice, a missing weights file, an unknown layer: each is said as
    such, not as memory that 'a smaller --size' would cure, and before a URL is downloaded."""
    monkeypatch.setattr(ContentModel, "default_device", lambda: "/CPU:0")
    monkeypatch.setattr(ContentModel, "available_memory", lambda: 0)  # any figure would be refused
    with pytest.raises(StyleTransferError, match="block1_conv1 given more than once"):
        StyleModel.show_style_features(sample_images[1], layers=["block1_conv1"] * 2, weights=None, size=64)
    with pytest.raises(StyleTransferError, match="weights file not found"):
        ContentModel.show_content_features(sample_images[0], weights=str(tmp_path / "none.h5"), size=64)

    def downloaded(*args, **kwargs):
        raise AssertionError("the image was downloaded")

    monkeypatch.setattr(ContentModel, "local_image", downloaded)
    with pytest.raises(StyleTransferError, match="unknown layer nope"):
        ContentModel.show_content_features("https://example.com/cat.jpg", layer="nope", weights=None)
    with pytest.raises(StyleTransferError, match="precision"):
        StyleModel.show_style_features("https://example.com/wave.jpg", precision="float8", weights=None)


def test_a_run_needs_the_larger_of_the_optimization_and_the_style_targets():
    settings = dict(model="vgg19", optimizer="lbfgs", precision="float32",
                    content_layer=StyleTransfer.CONTENT_LAYER, style_layers=StyleTransfer.STYLE_LAYERS)
    shape = (340, 512)
    alone = StyleTransfer.settings_memory(shape, settings, "/CPU:0")
    with_adam = StyleTransfer.estimate_memory(shape, **{**settings, "optimizer": "adam"})
    assert alone == StyleTransfer.MemoryNeed(StyleTransfer.estimate_memory(shape, **settings), 0, False, with_adam) \
        and alone.total == alone.optimization > with_adam
    # A style as large as the content: its forward pass needs less than the optimization.
    same = StyleTransfer.settings_memory(shape, settings, "/CPU:0", style_shapes=[shape])
    assert 0 < same.style_targets < same.optimization and same.total == same.optimization
    assert not same.style_bound
    # At --style-scale 4 (4 x 4 as many pixels) the largest style sets the need.
    styles = [shape, (4 * 340, 4 * 512), (2 * 340, 2 * 512)]
    large = StyleTransfer.settings_memory(shape, settings, "/CPU:0", style_shapes=styles)
    biggest = {key: settings[key] for key in ("model", "precision", "content_layer", "style_layers")}
    assert large.style_targets == StyleTransfer.estimate_style_memory((4 * 340, 4 * 512), **biggest)
    assert large.total == large.style_targets > large.optimization and large.style_bound
    assert large.optimization == alone.optimization  # the batch, not the styles, multiplies it


def test_the_refusal_names_only_fixes_that_can_help():
    settings = dict(model="vgg19", optimizer="lbfgs", precision="float32", style_scale=2.0)
    styles_larger = StyleTransfer.MemoryNeed(optimization=2, style_targets=5)
    assert StyleTransfer.memory_advice(settings, "/CPU:0", styles_larger, available=3) == \
        "use a smaller --style-scale, a smaller --size or --precision mixed"  # Adam would not shrink the styles
    # ... unless the optimization would not fit either.
    assert StyleTransfer.memory_advice(settings, "/CPU:0", styles_larger, available=1) == \
        "use a smaller --style-scale, a smaller --size, --precision mixed or --optimizer adam"
    at_minimum = {**settings, "style_scale": StyleTransfer.MIN_STYLE_SCALE}
    assert StyleTransfer.memory_advice(at_minimum, "/CPU:0", styles_larger, available=3) == \
        "use a smaller --size or --precision mixed"
    for need in (None, StyleTransfer.MemoryNeed(optimization=5, style_targets=2)):
        assert StyleTransfer.memory_advice(settings, "/CPU:0", need) == \
            "use a smaller --size, --precision mixed or --optimizer adam"


def test_the_refusal_names_adam_only_where_the_run_would_fit_with_it():
    """8192 px with L-BFGS needed 110 GiB, with Adam 79, and 23 were available: 'use a smaller
    --size or --optimizer adam' offered a fix that would not have fitted either."""
    settings = dict(model="vgg19", optimizer="lbfgs", precision="mixed", style_scale=1.0,
                    content_layer=StyleTransfer.CONTENT_LAYER, style_layers=StyleTransfer.STYLE_LAYERS)
    need = StyleTransfer.settings_memory((1024, 1536), settings, "/CPU:0", style_shapes=[(1024, 1536)])
    assert need.with_adam < need.optimization
    assert StyleTransfer.memory_advice(settings, "/CPU:0", need, available=need.with_adam) == \
        "use a smaller --size or --optimizer adam"
    assert StyleTransfer.memory_advice(settings, "/CPU:0", need, available=need.with_adam - 1) == \
        "use a smaller --size"
    assert StyleTransfer.settings_memory((1024, 1536), {**settings, "optimizer": "adam"}, "/CPU:0").with_adam is None


def test_the_refusal_leaves_out_style_scale_for_a_style_at_its_smallest():
    """A thin strip is held at MIN_SIZE px on its short side whatever the --style-scale:
    when it sets the need, a smaller scale would not shrink it."""
    settings = dict(model="vgg19", optimizer="lbfgs", precision="float32", style_scale=2.0,
                    content_layer=StyleTransfer.CONTENT_LAYER, style_layers=StyleTransfer.STYLE_LAYERS)
    floor = StyleTransfer.MIN_SIZE
    strip = StyleTransfer.settings_memory((32, 48), settings, "/CPU:0", style_shapes=[(48, 64), (floor, 60 * floor)])
    assert strip.style_bound and strip.style_at_floor
    assert StyleTransfer.memory_advice(settings, "/CPU:0", strip, available=strip.optimization + 1) == \
        "use a smaller --size or --precision mixed"
    # A style of the same need that is not at its floor can still shrink.
    wide = StyleTransfer.settings_memory((32, 48), settings, "/CPU:0", style_shapes=[(4 * floor, 15 * floor)])
    assert wide.style_bound and not wide.style_at_floor
    assert StyleTransfer.memory_advice(settings, "/CPU:0", wide, available=wide.optimization + 1) == \
        "use a smaller --style-scale, a smaller --size or --precision mixed"
    # The floor of a style that does not set the need changes nothing.
    small = StyleTransfer.settings_memory((32, 48), settings, "/CPU:0", style_shapes=[(floor, 2 * floor)])
    assert small.style_at_floor and not small.style_bound
    assert StyleTransfer.memory_advice(settings, "/CPU:0", small) == \
        "use a smaller --size, --precision mixed or --optimizer adam"


def test_the_refusal_never_says_a_run_needs_what_is_available(monkeypatch):
    """1.14 GiB needed, 1.12 available: both '1.1' at one decimal, so two are given."""
    gib = StyleTransfer.GIB
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: int(1.12 * gib))
    settings = dict(model="vgg19", optimizer="adam", precision="mixed", style_scale=1.0)
    with pytest.raises(StyleTransfer.NotEnoughMemoryError,
                       match=r"^this run needs about 1\.14 GiB of memory but only 1\.12 GiB is available"):
        StyleTransfer.check_memory(StyleTransfer.MemoryNeed(int(1.14 * gib), 0), settings, "/CPU:0")
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: int(0.9 * gib))
    with pytest.raises(StyleTransfer.NotEnoughMemoryError, match=r"needs about 1\.1 GiB of memory but only 0\.9 GiB"):
        StyleTransfer.check_memory(StyleTransfer.MemoryNeed(int(1.14 * gib), 0), settings, "/CPU:0")


def test_the_refusal_offers_no_setting_where_none_could_help(monkeypatch):
    """Less memory than TensorFlow and the weights need alone: 'a smaller --size' cannot help."""
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: int(0.9 * StyleTransfer.GIB))
    settings = dict(model="vgg19", optimizer="lbfgs", precision="float32", style_scale=1.0)
    with pytest.raises(StyleTransfer.NotEnoughMemoryError) as caught:
        StyleTransfer.check_memory(StyleTransfer.MemoryNeed(int(1.14 * StyleTransfer.GIB), 0), settings, "/CPU:0")
    assert str(caught.value).endswith("is available; whatever the settings, this run is estimated at 1 GiB or more "
                                      "(TensorFlow and the weights): free some memory (close other programs)")


def _cgroup(folder: Path, files: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_a_cgroup_v2_limit_above_the_process_group_bounds_the_memory_available(tmp_path):
    """A systemd slice's 4 GiB limit binds its job's group, which sets none: the headroom is
    the limit less the slice's working set (its usage less the inactive page cache)."""
    gib = ContentModel.GIB
    proc = tmp_path / "cgroup"
    proc.write_text("0::/user.slice/job.scope\n")
    mount = tmp_path / "sys"
    _cgroup(mount, {"cgroup.controllers": "cpu memory"})  # the root sets no limit: no memory.max
    _cgroup(mount / "user.slice", {"memory.max": f"{4 * gib}\n", "memory.current": f"{3 * gib}\n",
                                   "memory.stat": f"anon {2 * gib}\nfile {gib}\nactive_file {gib // 2}\n"
                                                  f"inactive_file {gib // 2}\n"})
    _cgroup(mount / "user.slice" / "job.scope", {"memory.max": "max\n", "memory.current": f"{gib}\n",
                                                 "memory.stat": "inactive_file 0\n"})
    assert ContentModel.cgroup_available(proc, mount) == 4 * gib - (3 * gib - gib // 2)
    # A tighter limit further down wins.
    (mount / "user.slice" / "job.scope" / "memory.max").write_text(f"{gib + gib // 4}\n")
    assert ContentModel.cgroup_available(proc, mount) == gib // 4
    # Used past the limit (page cache counted) is no room, not a negative one.
    (mount / "user.slice" / "job.scope" / "memory.current").write_text(f"{2 * gib}\n")
    assert ContentModel.cgroup_available(proc, mount) == 0


def test_a_cgroup_v1_container_limit_is_found_at_the_mount_root(tmp_path):
    """Docker without a cgroup namespace: /proc/self/cgroup names the host's path, which the
    container cannot see; its own group is the memory controller's root."""
    gib = ContentModel.GIB
    proc = tmp_path / "cgroup"
    proc.write_text("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/docker/abc\n")
    mount = tmp_path / "sys"
    _cgroup(mount / "memory", {"memory.limit_in_bytes": f"{2 * gib}\n", "memory.usage_in_bytes": f"{gib}\n",
                               "memory.stat": f"cache {gib // 2}\ninactive_file 1\n"
                                              f"total_inactive_file {gib // 4}\n"})
    assert ContentModel.cgroup_available(proc, mount) == 2 * gib - (gib - gib // 4)
    # v1's 'no limit' is the largest page-rounded 64-bit count.
    (mount / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert ContentModel.cgroup_available(proc, mount) is None
    assert ContentModel.cgroup_available(tmp_path / "no such file", mount) is None


def test_the_memory_available_is_the_least_of_the_machine_s_and_the_cgroup_s(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       25165824 kB\nMemFree:         1048576 kB\n"
                       "MemAvailable:   20971520 kB\n")
    assert ContentModel.meminfo_available(meminfo) == 20 * ContentModel.GIB
    assert ContentModel.meminfo_available(tmp_path / "none") is None
    monkeypatch.setattr(ContentModel, "meminfo_available", lambda: 20 * ContentModel.GIB)
    monkeypatch.setattr(ContentModel, "cgroup_available", lambda: 3 * ContentModel.GIB)
    assert ContentModel.available_memory() == 3 * ContentModel.GIB
    monkeypatch.setattr(ContentModel, "cgroup_available", lambda: None)
    assert ContentModel.available_memory() == 20 * ContentModel.GIB
    monkeypatch.setattr(ContentModel, "meminfo_available", lambda: None)
    assert ContentModel.available_memory() is None


def test_the_start_line_gives_the_larger_need(monkeypatch, tmp_path, pair_bytes, run_main, vgg19_weights):
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    needs = []
    real = StyleTransfer.settings_memory
    monkeypatch.setattr(StyleTransfer, "settings_memory", lambda *args, **kwargs: needs.append(real(*args, **kwargs))
                        or needs[-1])
    status, out, err = run_main([str(content), str(style), *FAST, "--style-scale", "4", "--precision", "float32",
                                 "-o", str(tmp_path / "r.png")])
    assert status == 0, out + err
    assert needs[-1].style_bound and f"{needs[-1].total / StyleTransfer.GIB:.1f}" != \
        f"{needs[-1].optimization / StyleTransfer.GIB:.1f}"
    assert f", about {needs[-1].total / StyleTransfer.GIB:.1f} GiB -> " in out.splitlines()[0]


def test_a_run_that_cannot_fit_is_refused_before_its_images_are_decoded(monkeypatch, tmp_path, pair_bytes,
                                                                         run_main):
    """At --size x --style-scale the decoded images alone can be gigabytes: the estimate is
    made from the files' headers, and a refused run never decodes them, nor its masks."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    decoded = []
    monkeypatch.setattr(StyleTransfer, "load_image", lambda *args, **kwargs: decoded.append(args))
    monkeypatch.setattr(StyleTransfer, "load_mask", lambda *args, **kwargs: decoded.append(args))
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: 2 ** 29)
    status, out, err = run_main([str(content), str(style), *FAST, "--style-scale", "4", *ON_THE_CPU,
                                 "--style-masks", str(content), "-o", str(tmp_path / "out" / "r.png")])
    assert status == ContentModel.EXIT_USAGE, out + err
    assert our_lines(err)[0].startswith("error: this run needs about"), err
    assert decoded == []


def test_an_image_too_small_for_vgg_is_said_to_be_before_the_memory(monkeypatch, tmp_path, pair_bytes, run_main):
    """The header check refuses a 1000x2 photo for its shape (8192x16 at --size 8192), not
    for the memory a run at --size 8192 would need."""
    content = tmp_path / "tiny.png"
    Image.new("RGB", (1000, 2)).save(content)
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: 2 ** 30)
    status, out, err = run_main([str(content), str(style), "--size", "8192", "--model", "vgg19",
                                 "-o", str(tmp_path / "out" / "r.png")])
    assert status == ContentModel.EXIT_USAGE, out + err
    assert our_lines(err) == [f"error: {content} resized to a long side of 8192 is 8192x16 pixels; the short "
                              "side must be at least 32, which no --size (at most 8192) gives: crop it"]


@pytest.mark.parametrize("style_scale, refused", [("4", True), ("1", False)])
def test_large_style_images_are_counted_before_the_run(monkeypatch, tmp_path, pair_bytes, run_main,
                                                      style_scale, refused, vgg19_weights):
    """With room for the optimization but not for a style four times the size, a run is
    refused with --style-scale as the first fix (--optimizer adam would not help); at
    --style-scale 1 the same room is enough."""
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    needs = []
    real = StyleTransfer.settings_memory

    def recorded(*args, **kwargs):
        needs.append(real(*args, **kwargs))
        return needs[-1]

    monkeypatch.setattr(StyleTransfer, "settings_memory", recorded)
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: needs[-1].optimization + 1)
    status, out, err = run_main([str(content), str(style), *FAST, "--style-scale", style_scale, *ON_THE_CPU,
                                 "--precision", "float32", "-o", str(tmp_path / "out" / "r.png")])
    lines = our_lines(err)
    if refused:
        assert status == ContentModel.EXIT_USAGE, out + err
        assert len(lines) == 1 and lines[0].endswith(
            "is available; use a smaller --style-scale, a smaller --size or --precision mixed"), lines
        assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []
    else:
        assert status == 0, out + err
        assert not needs[-1].style_bound and (tmp_path / "out" / "r.png").exists()


@pytest.mark.parametrize("error", ["ResourceExhaustedError", "InternalError"])
def test_out_of_device_memory_is_one_error_line(monkeypatch, tmp_path, pair_bytes, run_main, error):
    """The estimate is checked on a CPU only; a GPU that runs out says so in one line too,
    also where TensorFlow calls it an InternalError (a copy to the GPU that finds no room)."""
    import tensorflow as tf

    message = {"ResourceExhaustedError": "OOM when allocating tensor",
               "InternalError": "Failed copying input tensor to /GPU:0: Dst tensor is not initialized."}[error]

    def out_of_memory(*args, **kwargs):
        raise getattr(tf.errors, error)(None, None, message)

    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    monkeypatch.setattr(StyleTransfer, "stylize", out_of_memory)
    status, out, err = run_main([str(content), str(style), *FAST, "-o", str(tmp_path / "out" / "r.png")])
    lines = our_lines(err)
    assert status == ContentModel.EXIT_USAGE, out + err
    assert len(lines) == 1 and lines[0].startswith("error: out of memory") and "--size" in lines[0], lines
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []


def test_other_internal_errors_are_not_taken_for_running_out_of_memory():
    import tensorflow as tf

    with pytest.raises(tf.errors.InternalError, match="cuDNN launch failure"):
        with ContentModel.out_of_memory_named():
            raise tf.errors.InternalError(None, None, "cuDNN launch failure")


@pytest.mark.parametrize("flags, fix", [
    (["--precision", "float32"], "use a smaller --size or --precision mixed"),  # Adam would not fit in 0.5 GiB
    (["--precision", "mixed", "--optimizer", "adam"], "use a smaller --size"),  # not what it uses already
])
def test_a_run_that_cannot_fit_is_refused_with_the_fix(monkeypatch, tmp_path, pair_bytes, run_main, flags, fix):
    content = _write(tmp_path / "content.png", pair_bytes[0])
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    monkeypatch.setattr(StyleTransfer, "available_memory", lambda: StyleTransfer.BASELINE_BYTES)  # TensorFlow's own
    status, out, err = run_main([str(content), str(style), *FAST, *flags, *ON_THE_CPU,
                                 "-o", str(tmp_path / "out" / "r.png")])
    lines = our_lines(err)
    assert status == ContentModel.EXIT_USAGE, out + err
    assert len(lines) == 1 and lines[0].startswith("error:") and "GiB" in lines[0], lines
    assert lines[0].endswith(f"is available; {fix}"), lines
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []


def test_errors_notes_and_failures_name_a_file_on_one_line_whatever_its_name(tmp_path, run_main, pair_bytes,
                                                                             capsys):
    """A newline in a file's name, in an error, a note or a batch's failure, is shown escaped
    as Python writes it: printed as it is, it broke the one line each is in two."""
    style = _write(tmp_path / "style.jpg", pair_bytes[1])
    status, stdout, stderr = run_main([str(tmp_path / "no\nsuch.jpg"), str(style), *FAST])
    assert status == 2 and stderr == f"error: no such file: {tmp_path}/no\\nsuch.jpg\n", stderr
    small = tmp_path / "sm\nall.png"
    StyleTransfer.save_image(np.random.default_rng(0).uniform(0, 1, (32, 40, 3)), small)
    status, stdout, stderr = run_main([str(small), str(style), *FAST, "-o", str(tmp_path / "o\nut.png")])
    assert status == 0, (stdout, stderr)
    assert f"note: {tmp_path}/sm\\nall.png (40x32) is enlarged 1.6 times" in stdout, stdout
    assert f"GiB -> {tmp_path}/o\\nut.png" in stdout and f": {tmp_path}/o\\nut.png, " in stdout, stdout  # where to
    assert (tmp_path / "o\nut.png").is_file()
    StyleModel.main([str(small), "--model", "vgg19", "--size", "64", "--count", "1", "-o",  # the figure's line too
                     str(tmp_path / "fig\nure.png")])
    assert f"figure -> {tmp_path}/fig\\nure.png\n" in capsys.readouterr().out
    photos = tmp_path / "photos"
    _write(photos / "bro\nken.png", pair_bytes[0][:200])  # a truncated file
    status, stdout, stderr = run_main(["--contents", str(photos), "--styles", str(style), "-o",
                                       str(tmp_path / "batch"), *FAST])
    failures = [line for line in stderr.splitlines() if line.startswith("failed: ")]
    assert status == 1 and len(failures) == 1 and f"{photos}/bro\\nken.png" in failures[0], stderr
    (line,) = [line for line in stdout.splitlines() if line.startswith("[1/1] ")]  # the pair's own line
    assert line.endswith(f"failed: {failures[0].split(': ', 2)[2]}"), stdout
