"""Shared set-up for the test suite.

Everything that must happen before Keras is imported happens at the top of
this file, which pytest imports before any test module:

* a private Keras cache folder (``KERAS_HOME``) whose ``models/`` holds a
  symlink to the real VGG19 "notop" ImageNet weights in ../shared/weights, so
  ``weights="imagenet"`` works offline for VGG19 and fails for VGG16 (whose
  weights are not available), exactly as on an offline machine;
* the repository root on ``sys.path`` so ``import ContentModel`` works;
* quiet TensorFlow start-up;
* Hypothesis's property tests made repeatable (the same examples every run).

Subprocess tests get the same environment through the ``subprocess_env`` fixture.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VGG19_FILE_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_WEIGHTS = (REPO_ROOT.parent / "shared" / "weights" / VGG19_FILE_NAME).resolve()

# --- before keras / tensorflow / the project modules are imported -----------------
KERAS_HOME = Path(tempfile.mkdtemp(prefix="nst-tests-keras-home-"))
(KERAS_HOME / "models").mkdir()
if VGG19_WEIGHTS.is_file():
    (KERAS_HOME / "models" / VGG19_FILE_NAME).symlink_to(VGG19_WEIGHTS)
os.environ["KERAS_HOME"] = str(KERAS_HOME)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
atexit.register(shutil.rmtree, KERAS_HOME, ignore_errors=True)

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
# ----------------------------------------------------------------------------------

import hypothesis  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The property tests draw the same examples on every run: a failure in CI can be run again
# here, and one that appeared at random on some run would say nothing about the change.
hypothesis.settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis.settings.load_profile("repeatable")

CONTENT_SAMPLE = REPO_ROOT / "images" / "content" / "chelsea.jpg"
STYLE_SAMPLE = REPO_ROOT / "images" / "styles" / "starry_night.jpg"


def _require_vgg19_weights() -> Path:
    if not VGG19_WEIGHTS.is_file():
        pytest.fail(
            f"the real VGG19 ImageNet weights are missing: expected the file {VGG19_WEIGHTS} "
            f"(../shared/weights/{VGG19_FILE_NAME} relative to the repository root). "
            "These tests need them and must not be skipped.",
            pytrace=False,
        )
    return VGG19_WEIGHTS


@pytest.fixture(scope="session")
def vgg19_weights() -> Path:
    """Path of the real VGG19 notop weights; the test FAILS (never skips) without them.

    The same file is reachable as weights="imagenet" through the KERAS_HOME set above.
    """
    return _require_vgg19_weights()


@pytest.fixture(scope="session", autouse=True)
def tensorflow_started():
    """TensorFlow's devices set up before the first test: then a command line run in this
    process with --device cpu cannot hide a GPU from every test after it (keep_off_the_gpus
    leaves devices that are set up as they are)."""
    import tensorflow as tf

    tf.constant(0.0)  # the first operation sets the devices up


@pytest.fixture(autouse=True)
def the_same_random_numbers_in_every_test():
    """Every test starts from the same random state, whatever ran before it: random VGG
    weights (weights=None) drawn outside stylize, which seeds its own, are the same in every
    run of the suite (Python's own generator starts from the system's entropy)."""
    import keras

    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def keras_home() -> Path:
    return KERAS_HOME


@pytest.fixture
def read_only_keras_home(keras_home, monkeypatch) -> Path:
    """The tests' Keras cache folder as a shared, read-only one (a cluster's, a container's)
    answers os.access: not writable, so Keras keeps its downloads under /tmp/.keras."""
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode == os.W_OK and Path(path).expanduser() == keras_home:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    return keras_home


@pytest.fixture(scope="session")
def subprocess_env() -> dict:
    """Environment for running the scripts: same KERAS_HOME, quiet TensorFlow."""
    env = dict(os.environ)
    env["KERAS_HOME"] = str(KERAS_HOME)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_images() -> tuple[Path, Path]:
    """(content, style) sample images shipped with the project."""
    for path in (CONTENT_SAMPLE, STYLE_SAMPLE):
        if not path.is_file():
            pytest.fail(f"sample image missing: {path}", pytrace=False)
    return CONTENT_SAMPLE, STYLE_SAMPLE


@pytest.fixture(scope="session")
def small_pair(sample_images) -> tuple[np.ndarray, np.ndarray]:
    """Tiny content/style arrays (long side 64 px, short side >= 32 px)."""
    import ContentModel

    content = ContentModel.load_image(sample_images[0], 64)
    style = ContentModel.load_image(sample_images[1], 64)
    return content, style


def main_in_process(argv: list[str]) -> tuple[int, str, str]:
    """StyleTransfer.main in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    import StyleTransfer

    out, err = io.StringIO(), io.StringIO()
    status = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            StyleTransfer.main(argv)
        except SystemExit as exit_:
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def run_main():
    """StyleTransfer.main run in this process: argv -> (exit status, stdout, stderr)."""
    return main_in_process


@pytest.fixture
def ctrl_c_during_first_savefig(monkeypatch):
    """A real SIGINT sent to this process as the first matplotlib figure is saved, as when
    Ctrl-C meets a run writing its pictures; SIGINT's handler (which run_cli sets) is put
    back after the test."""
    import matplotlib.figure

    real_savefig = matplotlib.figure.Figure.savefig
    sent = []

    def savefig_meeting_ctrl_c(self, *args, **kwargs):
        if not sent:
            sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real_savefig(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig_meeting_ctrl_c)
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)


def pytest_configure(config):
    # Keras' own numpy-2 conversion warning (keras/src/backend/tensorflow/core.py); not ours to fix.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
    )
