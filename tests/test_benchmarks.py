"""The benchmark scripts and their shared helpers (benchmarks/common.py).

The benchmarks themselves are timed runs, not tests; these check the parts
whose mistakes a table would not show, such as which memory a peak is read from,
and that the scripts treat bad input and existing outputs as the product's
command line does: one 'error: ...' line, exit status 2, before anything is
measured, and nothing replaced without --overwrite.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import ContentModel
import StyleTransfer
from ContentModel import StyleTransferError

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
COMMON = BENCHMARKS / "common.py"
SPEC = importlib.util.spec_from_file_location("benchmark_common", COMMON)
common = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(common)


def resident_bytes() -> int:
    """This process's resident set now (VmRSS), in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


@pytest.fixture
def no_gpu(monkeypatch):
    real = tf.config.list_logical_devices
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: [] if kind == "GPU" else real(kind))


@pytest.fixture
def a_gpu(monkeypatch):
    """TensorFlow made to report one GPU whose allocator peaked at 3 GiB."""
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: ["/device:GPU:0"] if kind == "GPU" else ["/device:CPU:0"])
    asked = []

    def memory_info(device):
        asked.append(device)
        return {"current": 2 ** 30, "peak": 3 * 2 ** 30}

    monkeypatch.setattr(tf.config.experimental, "get_memory_info", memory_info)
    return asked


def test_on_a_cpu_the_peak_is_the_resident_set_and_follows_allocations(no_gpu):
    assert common.peak_memory_kind() == "resident set"
    before = common.peak_memory_bytes()
    assert before >= resident_bytes()
    # Touch more memory than the process has ever held: the peak must rise by about as much.
    extra = before + 64 * 2 ** 20 - resident_bytes()
    block = np.ones(extra // 8, dtype=np.float64)
    after = common.peak_memory_bytes()
    assert after >= before + 0.9 * 64 * 2 ** 20
    assert after == common.peak_resident_bytes()
    del block


def test_on_a_gpu_the_peak_is_tensorflows_device_allocation(a_gpu):
    assert common.peak_memory_kind() == "GPU device memory"
    assert common.peak_memory_bytes() == 3 * 2 ** 30  # not the host's resident set
    assert a_gpu == ["GPU:0"]


# ---------------------------------------------------------------------------
# Bad input and existing outputs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("parse, text", [
    (common.positive_int, "0"), (common.positive_int, "-3"), (common.positive_int, "2.5"),
    (common.positive_int, "many"), (common.size_argument, "31"), (common.size_argument, "8193"),
    (common.scales_argument, "0"), (common.scales_argument, "7"), (common.positive_number, "0"),
    (common.positive_number, "-1"), (common.positive_number, "nan"), (common.positive_number, "inf"),
    (common.positive_number, "soon"), (common.style_scale_argument, "0.05"), (common.style_scale_argument, "4.5"),
])
def test_the_argument_types_refuse_what_cannot_work(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
        parse(text)


def test_the_argument_types_take_what_can():
    assert common.positive_int("1") == 1
    assert common.size_argument("32") == 32 and common.size_argument("8192") == 8192
    assert common.scales_argument("6") == 6
    assert common.positive_number("0.5") == 0.5
    assert common.style_scale_argument("0.1") == 0.1 and common.style_scale_argument("4") == 4.0


def reserved(*args, **kwargs) -> Path:
    """The report's path from common.reserved_report, the block left at once."""
    with common.reserved_report(*args, **kwargs) as path:
        return path


def test_the_report_is_refused_if_it_or_a_file_beside_it_exists(tmp_path):
    report, picture = tmp_path / "report.json", tmp_path / "picture.jpg"
    picture.write_text("kept")
    with pytest.raises(StyleTransferError, match=f"^{re.escape(str(picture))} exists .*; pass --overwrite"):
        reserved(report, False, beside=lambda path: [path.with_name("picture.jpg")])
    report.write_text("kept")
    with pytest.raises(StyleTransferError, match=f"^{re.escape(str(report))} exists; pass --overwrite to replace"):
        reserved(report, False)
    assert reserved(report, True, beside=lambda path: [picture]) == report
    assert report.read_text() == picture.read_text() == "kept"


def test_the_report_puts_json_in_place_of_a_stems_suffix_and_never_writes_over_an_input(tmp_path):
    assert reserved(tmp_path / "run", False, stem=True) == tmp_path / "run.json"
    assert reserved(tmp_path / "run.v2", False, stem=True) == tmp_path / "run.json"
    photo = tmp_path / "run.jpg"
    photo.write_text("an input")
    with pytest.raises(StyleTransferError, match="would replace the input"):
        reserved(tmp_path / "run", True, stem=True, beside=lambda path: [path.with_suffix(".jpg")], inputs=[photo])


def test_the_report_is_refused_as_a_folder_and_the_message_names_the_flag(tmp_path):
    folder = tmp_path / "earlier"
    folder.mkdir()
    # With stem the folder is not made into 'earlier.json' beside it: it is refused as a folder.
    with pytest.raises(StyleTransferError, match=f"^{folder} is a folder; -o needs a file name$"):
        reserved(folder, False, stem=True)
    with pytest.raises(StyleTransferError, match="^-o is empty; give a file name such as result.json$"):
        reserved(" ", False, stem=True)
    with pytest.raises(StyleTransferError, match=f"^{tmp_path} is a folder; --json needs a file name$"):
        reserved(tmp_path, False, flag="--json")
    # A name ending in a slash is a folder, existing or not: not a report named without it.
    for stem in (False, True):
        for name in ("out/", "out/."):
            with pytest.raises(StyleTransferError, match=f"^{tmp_path}/{name} is a folder; --json needs a file name$"):
                reserved(f"{tmp_path}/{name}", False, stem=stem, flag="--json")
    assert list(tmp_path.iterdir()) == [folder]


def test_the_report_is_held_while_the_block_runs_and_kept_once_written(tmp_path):
    report = tmp_path / "sub" / "report.json"
    with common.reserved_report(report, False) as path:
        assert path == report and report.read_text() == ""  # a placeholder: the name is taken
        with pytest.raises(StyleTransferError, match=f"^{re.escape(str(report))} is being written by another run "
                                                     "now .*; wait for it to finish"):
            reserved(report, False)
        path.write_text("{}")
    assert report.read_text() == "{}"


def test_a_report_never_written_leaves_nothing_behind(tmp_path):
    report = tmp_path / "sub" / "report.json"
    with pytest.raises(KeyboardInterrupt):
        with common.reserved_report(report, False):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # neither the placeholder nor the folder made for it


class Measured(Exception):
    """Raised by the stand-ins of what the scripts measure with: the script got that far."""


#: What each script measures with, replaced in the tests by a function that raises Measured.
MEASURING = {
    "benchmark": ["matmul_rate", "build_vgg", "stylize", "run_in_fresh_process"],
    "batching": ["stylize_batch"],
    "compare_optimizers": ["stylize"],
    "initial_image": ["stylize"],
    "iterate_averaging": ["stylize"],
    "multiscale": ["stylize"],
    "recompute": ["run_in_fresh_process"],
}


class Parsed(Exception):
    """Raised in place of parsing a script's command line: its parser is ``args[0]``."""


@pytest.mark.parametrize("name", ["batching", "benchmark", "initial_image", "multiscale", "recompute"])
def test_a_benchmark_list_flag_given_twice_joins_its_lists(name, monkeypatch):
    """As the product's list flags do (ContentModel.JoinedLists): argparse alone keeps the last
    list, so '--sizes 256 --sizes 512' measured 512 only."""
    def parse_args(parser, *args, **kwargs):
        raise Parsed(parser)

    monkeypatch.setattr(ContentModel.ArgumentParser, "parse_args", parse_args)
    with pytest.raises(Parsed) as parsed:
        script_module(name).main([])
    parser = parsed.value.args[0]
    monkeypatch.undo()
    list_flags = [action for action in parser._actions if action.nargs == "+"]
    assert list_flags
    for action in list_flags:
        flag, (first, second) = action.option_strings[0], [str(value) for value in (action.default * 2)[:2]]
        alone = [getattr(parser.parse_args([flag, value]), action.dest) for value in (first, second)]
        assert getattr(parser.parse_args([flag, first, flag, second]), action.dest) == alone[0] + alone[1], flag


@functools.cache
def script_module(name: str):
    """benchmarks/<name>.py imported as a module, to call its main(argv) in this process."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # the scripts import common as their neighbour
    spec = importlib.util.spec_from_file_location(f"benchmark_script_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def script(monkeypatch, tmp_path):
    """A script's main(argv), run in tmp_path (its default outputs go there), with nothing
    measured: what it measures with raises Measured."""
    monkeypatch.chdir(tmp_path)

    def measured(*args, **kwargs):
        raise Measured

    def main(name: str, argv: list[str]):
        module = script_module(name)
        for function in MEASURING[name]:
            monkeypatch.setattr(module, function, measured)
        module.main(argv)

    return main


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


MISSING = "no/such/photo.jpg"
#: The real VGG19 weights (the tests fail, never skip, without them: conftest.py).
VGG19_WEIGHTS = str(Path(__file__).resolve().parent.parent.parent / "shared" / "weights"
                    / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
BAD_INPUT = [
    ("benchmark", ["--sizes", "256", "0"], "argument --sizes: expected a whole number from 32 to 8192, got '0'"),
    ("benchmark", ["--models", "vgg99"], "argument --models: invalid choice: 'vgg99'"),
    ("benchmark", ["--model", "vgg99"], "argument --model: invalid choice: 'vgg99'"),
    ("benchmark", ["--optimizers", "sgd"], "argument --optimizers: invalid choice: 'sgd'"),
    ("benchmark", ["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
    ("benchmark", ["--memory-precisions", "float16"], "argument --memory-precisions: invalid choice"),
    ("benchmark", ["--repeats", "0"], "argument --repeats: expected a whole number of at least 1"),
    ("benchmark", ["--classic-loss", "5e6"], "--classic-loss and --classic-seconds go together"),
    ("benchmark", ["--sections", "speed", "memory", "--sizes", "64", "--memory-sizes", "40"],
     "chelsea.jpg at a long side of 40 px is under 32 px on its short side, which VGG needs; give larger "
     "sizes (48 px always do)"),
    ("benchmark", ["--sections", "speed", "--weights", MISSING], f"weights file not found: {MISSING}"),
    ("benchmark", ["--overhead-iterations", "31"],  # L-BFGS's memory fills in 30; nothing would be timed
     "argument --overhead-iterations: expected a whole number of at least 32, got '31'"),
    ("batching", ["--sizes", "64", "0"], "argument --sizes: expected a whole number from 32 to 8192"),
    ("batching", ["--batches", "1", "0"], "argument --batches: expected a whole number of at least 1"),
    ("batching", ["--steps", "3"], "argument --steps: expected a whole number of at least 4"),
    ("batching", ["--precision", "half"], "argument --precision: invalid choice: 'half'"),
    ("batching", ["--sizes", "64", "--content", MISSING], f"no such file: {MISSING}"),
    ("compare_optimizers", ["--seconds", "-1"], "argument --seconds: expected a number above 0, got '-1'"),
    ("compare_optimizers", ["--max-iterations", "0"], "argument --max-iterations: expected a whole number"),
    ("compare_optimizers", ["--size", "64", "--style", MISSING], f"no such file: {MISSING}"),
    ("initial_image", ["--pairs", "foo"], "argument --pairs: expected photo+painting, with a photo from "
     "images/content (astronaut, camera, chelsea, coffee, hubble_deep_field, rocket) and a painting from "
     "images/styles (composition_vii, great_wave, shipwreck, starry_night, the_scream, water_lilies), got 'foo'"),
    ("initial_image", ["--pairs", "chelsea+starry_night", "chelsea+nosuch"], "got 'chelsea+nosuch'"),
    ("initial_image", ["--iterations", "0"], "argument --iterations: expected a whole number of at least 1"),
    ("initial_image", ["--model", "vgg99"], "argument --model: invalid choice: 'vgg99'"),
    ("iterate_averaging", ["--size", "0"], "argument --size: expected a whole number from 32 to 8192"),
    ("iterate_averaging", ["--iterations", "0"], "argument --iterations: expected a whole number"),
    ("multiscale", ["--scales", "2", "0"], "argument --scales: expected a whole number from 1 to 6, got '0'"),
    ("multiscale", ["--coarse-iterations", "0"], "argument --coarse-iterations: expected a whole number"),
    ("multiscale", ["--size", "9000"], "argument --size: expected a whole number from 32 to 8192"),
    ("multiscale", ["--report", MISSING], f"cannot read {MISSING}"),
    ("multiscale", ["--size", "64", "--content", MISSING], f"no such file: {MISSING}"),
    ("recompute", ["--sizes", "0"], "argument --sizes: expected a whole number from 32 to 8192"),
    ("recompute", ["--model", "vgg99"], "argument --model: invalid choice: 'vgg99'"),
    ("recompute", ["--precisions", "float16"], "argument --precisions: invalid choice: 'float16'"),
    ("recompute", ["--repeats", "0"], "argument --repeats: expected a whole number of at least 1"),
    # Measured in fresh processes, which report a failure as a row: the weights are loaded first.
    ("recompute", ["--sizes", "64", "--model", "vgg16", "--weights", VGG19_WEIGHTS],
     "holds the layers of vgg19, not vgg16: use --model vgg19"),
    ("benchmark", ["--sections", "memory", "--memory-sizes", "64", "--model", "vgg16", "--weights", VGG19_WEIGHTS],
     "holds the layers of vgg19, not vgg16: use --model vgg19"),
    # A name ending in a slash is a folder: not a report named without the slash (out, out.json).
    ("benchmark", ["--sections", "speed", "--json", "out/"], "results/out/ is a folder; --json needs a file name"),
    ("batching", ["--sizes", "64", "-o", "out/"], "out/ is a folder; -o needs a file name"),
]


@pytest.mark.parametrize("name, argv, fragment", BAD_INPUT, ids=[f"{n} {' '.join(a)}" for n, a, _ in BAD_INPUT])
def test_bad_input_is_one_error_line_before_anything_is_measured(script, capsys, name, argv, fragment):
    with pytest.raises(SystemExit) as exit_info:
        script(name, argv)
    assert exit_info.value.code == 2
    assert fragment in one_error_line(capsys)


#: (script, its flags with {out} for an output folder, the file under it that exists).
OUTPUTS = [
    ("benchmark", ["--sections", "speed", "--output-dir", "{out}", "--json", "b.json"], "b.json"),
    ("benchmark", ["--sections", "precision", "--output-dir", "{out}", "--json", "b.json"], "benchmark_precision.jpg"),
    ("batching", ["--sizes", "64", "-o", "{out}/b"], "b.json"),
    ("compare_optimizers", ["--size", "64", "-o", "{out}/o.json"], "o.json"),
    ("compare_optimizers", ["--size", "64", "-o", "{out}/o.json"], "benchmark_adam.jpg"),
    ("compare_optimizers", ["--size", "64", "-o", "{out}/o.json"], "benchmark_lbfgs.jpg"),
    ("initial_image", ["--size", "64", "-o", "{out}/init"], "init.json"),
    ("initial_image", ["--size", "64", "-o", "{out}/init"], "init.jpg"),
    ("multiscale", ["--size", "64", "-o", "{out}/ms"], "ms.json"),
    ("multiscale", ["--size", "64", "-o", "{out}/ms"], "ms.jpg"),
    ("recompute", ["--sizes", "64", "-o", "{out}/r.json"], "r.json"),
]


def with_existing_output(tmp_path: Path, argv: list[str], existing: str) -> tuple[list[str], Path]:
    """``argv`` with its output folder in ``tmp_path``, where the file ``existing`` is made."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / existing).write_text("an earlier run's")
    return [arg.format(out=folder) for arg in argv], folder / existing


@pytest.mark.parametrize("name, argv, existing", OUTPUTS, ids=[f"{n} {e}" for n, _, e in OUTPUTS])
def test_an_existing_output_is_refused_before_anything_is_measured(script, capsys, tmp_path, name, argv, existing):
    argv, path = with_existing_output(tmp_path, argv, existing)
    with pytest.raises(SystemExit) as exit_info:
        script(name, argv)
    assert exit_info.value.code == 2
    error = one_error_line(capsys)
    assert error.startswith(f"error: {path} exists") and error.endswith("; pass --overwrite to replace it")
    assert path.read_text() == "an earlier run's"


@pytest.mark.parametrize("name, argv, existing", OUTPUTS, ids=[f"{n} {e}" for n, _, e in OUTPUTS])
def test_with_overwrite_the_run_goes_ahead(script, tmp_path, name, argv, existing):
    argv, _ = with_existing_output(tmp_path, argv, existing)
    with pytest.raises(Measured):
        script(name, [*argv, "--overwrite"])


REPORTS = [(name, argv, existing) for name, argv, existing in OUTPUTS if existing.endswith(".json")]


@pytest.mark.parametrize("name, argv, report", REPORTS, ids=[name for name, _, _ in REPORTS])
def test_a_run_holds_its_report_while_it_measures_and_lets_it_go_if_it_fails(monkeypatch, tmp_path, name, argv,
                                                                              report):
    """A second run started meanwhile with the same name is refused (as the first test of
    reserved_report shows) instead of replacing the first's report when it ends."""
    folder = tmp_path / "out"  # not there yet: made for the placeholder, and removed with it
    held = []

    def measured(*args, **kwargs):
        held.append((folder / report).read_text() == "")
        raise Measured

    module = script_module(name)
    for function in MEASURING[name]:
        monkeypatch.setattr(module, function, measured)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Measured):
        module.main([arg.format(out=folder) for arg in argv])
    assert held == [True] and not folder.exists()


STYLIZING = [(name, argv, report) for name, argv, report in REPORTS if name != "benchmark" and name != "recompute"]


@pytest.mark.parametrize("name, argv, report", STYLIZING, ids=[name for name, _, _ in STYLIZING])
def test_ctrl_c_during_a_measured_run_stops_the_script_and_leaves_no_report(monkeypatch, tmp_path, capsys, name,
                                                                           argv, report):
    """On Ctrl-C the product ends a run early and returns its best image so far; a script
    that went on would print and save a cut-short measurement as a finished one (exit 0).
    It stops instead: 'interrupted', exit status 130, and its report's placeholder goes."""
    def interrupted(contents, style, **settings):
        return [StyleTransfer.StylizeResult(image=content, device="/CPU:0", precision="float32",
                                            stopped_early=StyleTransfer.INTERRUPTED) for content in contents]

    monkeypatch.setattr(StyleTransfer, "stylize_batch", interrupted)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        script_module(name).main([arg.format(out=folder) for arg in argv])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.splitlines()[-1] == "interrupted"
    assert not folder.exists()


def test_the_benchmark_report_may_go_to_a_new_subfolder(script, tmp_path, monkeypatch):
    """--json sub/b.json: the folder is made when the report is written, after the sections."""
    monkeypatch.setattr(script_module("benchmark"), "speed", lambda args, report: report.update(speed=["row"]))
    script("benchmark", ["--sections", "speed", "--output-dir", str(tmp_path / "out"), "--json", "sub/b.json"])
    assert json.loads((tmp_path / "out" / "sub" / "b.json").read_text())["speed"] == ["row"]


def test_the_benchmark_names_the_processor_in_its_first_line_and_its_report(script, tmp_path, monkeypatch,
                                                                            capsys):
    benchmark = script_module("benchmark")
    monkeypatch.setattr(benchmark, "speed", lambda args, report: None)
    monkeypatch.setattr(benchmark, "processor_name", lambda: "Some CPU (family 1, model 2)")
    script("benchmark", ["--sections", "speed", "--output-dir", str(tmp_path), "--json", "b.json"])
    assert capsys.readouterr().out.startswith("# StyleTransfer benchmark: Some CPU (family 1, model 2), ")
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["processor"] == "Some CPU (family 1, model 2)"
    assert report["code"] == ContentModel.code_version()  # and the code it measured


def test_the_processor_is_named_with_its_family_and_model_where_linux_gives_them(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    two_cores = "".join(f"processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
                        f"model name\t: AMD EPYC\nflags\t\t: fpu avx512_bf16\n\n" for n in range(2))
    cpuinfo.write_text(two_cores)
    assert ContentModel.processor_name(cpuinfo) == "AMD EPYC (family 26, model 2)"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some ARM core\n")
    assert ContentModel.processor_name(cpuinfo) == "Some ARM core"
    # No model name (some ARM kernels), or no such file (not Linux): the platform module's word.
    monkeypatch.setattr(ContentModel.platform, "processor", lambda: "")
    monkeypatch.setattr(ContentModel.platform, "machine", lambda: "aarch64")
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n")
    assert ContentModel.processor_name(cpuinfo) == "aarch64"
    assert ContentModel.processor_name(tmp_path / "missing") == "aarch64"


def test_the_speed_section_takes_the_rows_in_turn_and_gives_each_rows_medians(capsys, tmp_path, monkeypatch):
    """A real run, small, with --runs 3: every row is measured once before any is measured
    again, each measurement against the matmul rate taken just before it (here a stand-in
    that changes from call to call), and the table gives each row's medians."""
    benchmark = script_module("benchmark")
    rates = iter([100e9, 300e9, 200e9, 150e9, 120e9, 180e9])
    order = []
    real_stylize = benchmark.stylize

    def stylize(*args, optimizer, **kwargs):
        order.append(optimizer)
        return real_stylize(*args, optimizer=optimizer, **kwargs)

    monkeypatch.setattr(benchmark, "matmul_rate", lambda: next(rates))
    monkeypatch.setattr(benchmark, "stylize", stylize)
    monkeypatch.chdir(tmp_path)
    benchmark.main(["--sections", "speed", "--models", "vgg16", "--sizes", "64", "--repeats", "2",
                    "--runs", "3", "--output-dir", str(tmp_path), "--json", "s.json"])
    assert order == ["adam", "lbfgs"] * 3
    report = json.loads((tmp_path / "s.json").read_text())
    adam, lbfgs = report["speed"]
    assert [one["matmul_flops"] for one in adam["runs"]] == [100e9, 200e9, 120e9]
    assert [one["matmul_flops"] for one in lbfgs["runs"]] == [300e9, 150e9, 180e9]
    for row in (adam, lbfgs):
        assert len(row["runs"]) == 3 and row["size"] == "64x43"
        for one in row["runs"]:  # each measurement against its own rate
            assert one["fraction"] == pytest.approx(row["flops"] / one["seconds_per_evaluation"] / one["matmul_flops"])
        for key in ("matmul_flops", "seconds_per_evaluation", "seconds_per_iteration", "fraction"):
            assert row[key] == pytest.approx(np.median([one[key] for one in row["runs"]]))
    assert report["matmul_float32_flops"] == pytest.approx(165e9)  # the median of all six
    out = capsys.readouterr().out
    assert len(re.findall(r"^speed, run [12] of 3: vgg16 (adam|lbfgs) 64x43 [0-9.]+ s / evaluation", out,
                          re.MULTILINE)) == 4
    assert re.search(r"^\| vgg16 \| lbfgs \| 64x43 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \| "
                     r"180\.0 \| [0-9]+% \|$", out, re.MULTILINE)


def test_the_timed_gaps_leave_out_the_warm_up_and_adams_last_forward_pass():
    """adam_optimize measures its last image with a forward pass of its own, traced on that
    call: the gap before the last iteration is not a step, and the speed tables leave it out
    as they leave out the warm-up's."""
    benchmark, batching = script_module("benchmark"), script_module("batching")
    seconds = [9.0, 10.0, 11.0, 13.0, 40.0]  # compiling, warm-up, two timed steps, the last forward pass
    history = [dict(iteration=i, seconds=s, evaluations=i + 1) for i, s in enumerate(seconds, 1)]
    assert common.iteration_gaps(history, 2) == [(2.0, 1)]
    assert benchmark.per_evaluation_seconds(history) == (2.0, 2.0)
    assert batching.seconds_per_step(history) == 1.5  # only the compiling step left out at the start


def test_a_benchmark_scores_random_weights_on_the_network_a_run_with_the_default_seed_draws():
    """Random weights (weights=None) come from the seed: an objective built without it
    would score a run, or compare two processes' runs, on another network."""
    content = np.random.default_rng(0).random((40, 48, 3), dtype=np.float32)
    first, second = (common.seeded_objective("vgg16", None, content, [content]) for _ in range(2))
    for a, b in zip(first.extractor.weights, second.extractor.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with ContentModel.seeded(ContentModel.DEFAULT_SEED):  # as stylize builds it
        kernel = ContentModel.build_vgg("vgg16", ["block1_conv1"], None).get_layer("block1_conv1").kernel
    np.testing.assert_array_equal(kernel.numpy(), first.extractor.get_layer("block1_conv1").kernel.numpy())


def test_the_overhead_section_times_both_optimizers_for_every_timed_iteration(capsys, tmp_path, monkeypatch):
    """A real run, small: the loss that costs next to nothing keeps L-BFGS going for all its
    iterations (else the medians would be of a few), and every figure is there."""
    monkeypatch.chdir(tmp_path)
    script_module("benchmark").main(["--sections", "overhead", "--overhead-sizes", "64", "--overhead-iterations",
                                     "34", "--repeats", "2", "--output-dir", str(tmp_path), "--json", "o.json"])
    [row] = json.loads((tmp_path / "o.json").read_text())["overhead"]
    assert row["size"] == "64x43" and row["lbfgs_iterations"] == 34
    assert 1 <= row["lbfgs_evaluations_per_iteration"] < 2
    assert all(np.isfinite(row[key]) and row[key] > 0 for key in ("adam_ms", "lbfgs_ms", "two_loop_ms",
                                                                   "store_pair_ms"))
    out = capsys.readouterr().out
    assert re.search(r"^\| 64x43 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| -?[0-9.]+ \| [0-9.]+ \| [0-9.]+ \|$",
                     out, re.MULTILINE)


def test_the_overhead_section_says_when_lbfgs_ended_early(capsys, tmp_path, monkeypatch):
    benchmark = script_module("benchmark")

    def ends_after_31(loss, images, iterations, report, precondition):
        for iteration in range(1, 32):
            report(iteration, images, loss(tf.constant(images)), iteration)
        return "no lower loss"

    monkeypatch.setattr(benchmark, "lbfgs_optimize", ends_after_31)
    monkeypatch.chdir(tmp_path)
    benchmark.main(["--sections", "overhead", "--overhead-sizes", "64", "--overhead-iterations", "34",
                    "--repeats", "2", "--output-dir", str(tmp_path), "--json", "o.json"])
    assert "\nL-BFGS ended after 31 of 34 iterations at 64x43: its figures there are of fewer.\n" \
        in capsys.readouterr().out
    assert json.loads((tmp_path / "o.json").read_text())["overhead"][0]["lbfgs_iterations"] == 31


def test_the_sustained_section_says_why_a_run_did_fewer_iterations(capsys, tmp_path, monkeypatch):
    """L-BFGS can end on its own before the heading's count (at 64 px with random weights it
    did): the product's note is printed under the table and kept in the report."""
    benchmark = script_module("benchmark")
    note = "L-BFGS ended after 2 of 5 iterations: no lower loss along the search direction"

    def ends_after_2(content, style, **settings):
        history = [{"iteration": i, "evaluations": i, "seconds": float(i), "total": 1.0, "level": 0} for i in (1, 2)]
        return StyleTransfer.StylizeResult(image=content, device="/CPU:0", precision="float32", sizes=[(43, 64)],
                                           history=history, notes=[note])

    monkeypatch.setattr(benchmark, "stylize", ends_after_2)
    monkeypatch.chdir(tmp_path)
    benchmark.main(["--sections", "sustained", "--sustained-size", "64", "--sustained-iterations", "5",
                    "--optimizers", "lbfgs", "--weights", "none", "--output-dir", str(tmp_path), "--json", "s.json"])
    assert f"| lbfgs | float32 | 1 | 2 | 2 | 1.0 | 1.0 | 2.0 |\n\nlbfgs: {note}\n" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["sustained"][0]["notes"] == [note]


def test_the_optimizer_table_says_none_yet_before_the_first_iteration():
    compare = script_module("compare_optimizers")
    history = [{"seconds": 2.0, "total": 5e6}, {"seconds": 3.0, "total": 4e6}, {"seconds": 4.0, "total": 4.5e6}]
    assert [compare.loss_cell(history, t) for t in (1.0, 2.0, 3.5, 9.0)] == ["none yet", "5e+06", "4e+06", "4e+06"]


def test_the_cheap_loss_has_the_objectives_layout_and_is_its_style_and_total_terms():
    benchmark = script_module("benchmark")
    images = np.random.default_rng(0).uniform(0, 1, (2, 8, 12, 3)).astype(np.float32)
    loss = benchmark.CheapLoss(images)
    terms = loss(tf.constant(images)).numpy()
    assert terms.shape == (len(benchmark.LOSS_TERMS), 2)
    rows = dict(zip(benchmark.LOSS_TERMS, terms))
    assert np.all(rows["total"] > 0) and np.array_equal(rows["total"], rows["style"])
    assert not rows["content"].any() and not rows["tv"].any()
    assert np.allclose(loss(loss.target).numpy(), 0)  # its minimum is the target


def test_the_matmul_rate_is_of_a_product_large_enough_for_the_device(a_gpu, monkeypatch):
    benchmark = script_module("benchmark")
    assert benchmark.matmul_size() == benchmark.MATMUL_SIZE["gpu"] > benchmark.MATMUL_SIZE["cpu"]
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [] if kind == "GPU" else ["CPU:0"])
    assert benchmark.matmul_size() == benchmark.MATMUL_SIZE["cpu"]


def test_on_a_gpu_the_benchmark_takes_device_memory_as_needed(script, tmp_path, monkeypatch):
    """Else TensorFlow reserves the whole GPU for the parent, and the memory section's
    fresh processes fail for lack of it (as they did on an H100 at 1024 px and above)."""
    benchmark = script_module("benchmark")
    gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu] if kind == "GPU" else real(kind))
    calls = []
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda device, grow: calls.append((device, grow)))
    monkeypatch.setattr(benchmark, "speed", lambda args, report: calls.append("speed"))
    script("benchmark", ["--sections", "speed", "--output-dir", str(tmp_path)])
    assert calls == [(gpu, True), "speed"]  # before any section touches the GPU


def test_a_gpu_already_set_up_is_left_as_it_is(monkeypatch):
    """In a process where TensorFlow has started (a test suite that runs several benchmarks),
    set_memory_growth raises RuntimeError: the benchmark goes on with the GPU as it is."""
    common = sys.modules.get("common") or script_module("benchmark") and sys.modules["common"]
    gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    calls = []

    def started(device, grow):
        calls.append(device)
        raise RuntimeError("Physical devices cannot be modified after being initialized")

    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", started)
    common.grow_gpu_memory()
    assert calls == gpus[:1]


@pytest.mark.parametrize("script_name, argv", [
    ("recompute", ["--sizes", "64", "--precisions", "float32"]),
])
def test_the_recompute_benchmark_takes_device_memory_as_needed_before_building_vgg(script, tmp_path, monkeypatch,
                                                                                  script_name, argv):
    """recompute.py builds VGG in the parent (check_network) before its fresh processes run:
    the parent must not reserve the whole GPU first."""
    recompute = script_module(script_name)
    calls = []
    monkeypatch.setattr(recompute, "grow_gpu_memory", lambda: calls.append("grow"))
    monkeypatch.setattr(recompute, "check_network", lambda *args: calls.append("network"))
    monkeypatch.setattr(recompute, "measure_row", lambda *args: calls.append("row") or {})
    script(script_name, [*argv, "--output", str(tmp_path / "r.json")])
    assert calls[:2] == ["grow", "network"]


def test_the_multiscale_report_gives_the_level_sizes_the_runs_had(script, capsys, tmp_path):
    """A 512 x 40 image's first level cannot be shrunk to level_sizes's plain 256 px (its
    short side would fall below 32): the table gives the sizes the run had, from its history."""
    def row(level, height, width, total):
        return {"iteration": 1, "level": level, "height": height, "width": width, "total": total, "seconds": 1.0}
    saved = {"args": {"size": 512, "iterations": 1},
             "histories": {"1": [row(0, 40, 512, 2.0)],
                           "2:10": [row(0, 32, 410, 9.0), row(1, 40, 512, 1.0)],
                           "3:10": [row(0, 32, 410, 9.0), row(1, 36, 458, 5.0), row(2, 40, 512, 2.5)]}}
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(saved))
    script("multiscale", ["--report", str(path)])
    lines = capsys.readouterr().out.splitlines()
    assert "| 2 | 410/512 | 1+1 | 1.0 | 1 | 1.0 |" in lines
    assert "| 3 | 410/458/512 | 1+1+1 | 1.0 | 2.5 | not reached |" in lines


@pytest.mark.parametrize("saved", [
    {"args": {"size": 64, "iterations": 1}, "histories": {"1": []}},  # no rows
    {"args": {"size": 64, "iterations": 1}, "histories": {"2:10": [{"total": 1.0}]}},  # no single-scale run
    {"args": {"size": 64, "iterations": 1}, "histories": {"1": [{"iteration": 1}]}},  # a row without its loss
])
def test_a_multiscale_report_that_is_not_the_scripts_is_one_error_line(script, capsys, tmp_path, saved):
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(saved))
    with pytest.raises(SystemExit) as exit_info:
        script("multiscale", ["--report", str(path)])
    assert exit_info.value.code == 2
    assert one_error_line(capsys).startswith(f"error: cannot read {path} as this script's JSON")


SUBPROCESS_CASES = [
    ("benchmark.py", ["--models", "vgg99"]),
    ("compare_optimizers.py", ["--seconds", "-1"]),
    ("initial_image.py", ["--pairs", "foo"]),
    ("recompute.py", ["-o", "{out}/benchmark_recompute.json"]),
]


@pytest.mark.parametrize("name, argv", SUBPROCESS_CASES, ids=[name for name, _ in SUBPROCESS_CASES])
def test_run_as_a_script_a_bad_input_is_one_line_and_no_traceback(subprocess_env, tmp_path, name, argv):
    # What the in-process tests cannot see: TensorFlow's start-up, and how the process ends.
    existing = tmp_path / "benchmark_recompute.json"
    existing.write_text("an earlier run's")
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *[arg.format(out=tmp_path) for arg in argv]],
                          cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert existing.read_text() == "an earlier run's"
