"""Content features: what VGG "sees" in a photo, and the shared backbone.

This module holds what the three scripts share:

* ``build_vgg`` - the one VGG16/VGG19 feature extractor, frozen, with the
  ImageNet preprocessing inside it and cut off after the deepest layer asked for;
* ``load_image`` / ``save_image`` - small image I/O functions (RGB floats in [0, 1]);
* ``download_image`` - an http(s) URL fetched once into the Keras cache;
* ``content_loss`` - the content term of Gatys, Ecker & Bethge (2015);
* the command-line plumbing (shared flags, one-line errors).

Run directly, it shows the feature maps of one layer as a picture::

    python ContentModel.py images/content/chelsea.jpg
    python ContentModel.py photo.jpg --layer block3_conv1 --model vgg19 -o maps.png

Offline, point Keras at a cache folder that holds the weights
(``KERAS_HOME=/path/to/cache``, with the file in ``/path/to/cache/models/``)
or pass the file itself with ``--weights PATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import decimal
import difflib
import errno
import functools
import hashlib
import io
import logging
import math
import numbers
import operator
import os
import platform
import random
import re
import shlex
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import warnings
from pathlib import Path

try:
    import fcntl  # Unix: the locks that tell a live run's placeholder from a killed one's
except ImportError:  # Windows
    fcntl = None

#: The TF_CPP_MIN_LOG_LEVEL that asks for no native log lines at all.
QUIET_LOG_LEVEL = "3"
# TensorFlow prints start-up chatter on stderr; keep the terminal for our own
# messages (a user can still override these from the environment).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)
# oneDNN's CPU kernels are where the CPU speed comes from (README: Performance). They are
# TensorFlow's default on Linux x86; asked for here so every platform runs the same kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


#: Held while stderr is sent to the null device: two threads doing it at once could leave it there.
_STDERR_SILENCED = threading.RLock()


@contextlib.contextmanager
def native_stderr_silenced(silence: bool):
    """While the block runs, send what native code writes to stderr (file
    descriptor 2) to the null device.

    Why: TensorFlow 2.21's C++ logging prints six lines at import (oneDNN and
    CUDA notices) before it reads TF_CPP_MIN_LOG_LEVEL, and libtiff prints its
    complaints about a damaged TIFF itself: either would come before a one-line
    error. Python's own exceptions are printed after the block, when stderr is back.
    """
    if not silence:
        yield
        return
    with _STDERR_SILENCED:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


#: Exit statuses of the three scripts.
EXIT_FAILED = 1  # the run stopped (e.g. the loss became NaN); what it had is saved
EXIT_USAGE = 2  # bad input: a one-line 'error: ...' and nothing written
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


#: Signals that end a run as a Ctrl-C does (run_cli): SIGTERM (kill, timeout) and SIGHUP
#: (the terminal closed, an SSH session lost). Left to their defaults, they ended the
#: process on the spot, with a run's output name still held by an empty file.
INTERRUPTING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def interrupting_signals() -> list:
    """The INTERRUPTING_SIGNALS this process was not started to ignore: under nohup, which
    ignores SIGHUP so that a long run outlives its terminal, SIGHUP stays ignored."""
    return [number for number in INTERRUPTING_SIGNALS if signal.getsignal(number) != signal.SIG_IGN]


def put_back(handlers: dict) -> None:
    """Set each signal's handler back to what ``handlers`` (signal -> its handler before ours,
    as signal.getsignal or signal.signal answers) holds: None is a handler not set from Python."""
    for number, handler in handlers.items():
        signal.signal(number, signal.SIG_DFL if handler is None else handler)


def raise_interrupt(signum, frame) -> None:
    """A signal handler: the signal taken as a Ctrl-C, where it arrives."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_ends_quietly():
    """Ctrl-C (or an INTERRUPTING_SIGNALS) inside the block prints 'interrupted' and exits
    with status 130.

    Why: loading TensorFlow takes the first seconds of every run, the moment a
    user notices a typo and presses Ctrl-C, and a KeyboardInterrupt there printed
    a traceback of TensorFlow's import machinery. Nothing has been done yet, so
    there is nothing to save. (Later, run_cli turns Ctrl-C into the same line.)
    The line is printed here, outside native_stderr_silenced, once stderr is back.
    The signals' own handlers are put back after the block: a program that imports
    this module keeps its own.
    """
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # where Python lets handlers be set
        handlers = {number: signal.signal(number, raise_interrupt) for number in interrupting_signals()}
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        put_back(handlers)


with interrupt_ends_quietly():
    import h5py  # noqa: E402  (Keras's own reader of .h5 weights files)
    import numpy as np  # noqa: E402
    from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError  # noqa: E402

    with native_stderr_silenced(os.environ["TF_CPP_MIN_LOG_LEVEL"] == QUIET_LOG_LEVEL):
        import keras  # noqa: E402
        import tensorflow as tf  # noqa: E402

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

#: The two backbones Gatys et al. style transfer is usually run with. Each entry
#: is (Keras application, its preprocessing function, its weights file name).
VGG_MODELS = {
    "vgg16": (
        keras.applications.VGG16,
        keras.applications.vgg16.preprocess_input,
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "vgg19": (
        keras.applications.VGG19,
        keras.applications.vgg19.preprocess_input,
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
}
#: The md5 Keras checks each ImageNet weights file against (its get_file's file_hash): we
#: check it where Keras would not (cached_weights).
IMAGENET_WEIGHTS_MD5 = {
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5": "6d6bbae143d832006294945121d1f1fc",
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5": "253f8cb515780f3b799900260a226db6",
}
#: VGG's convolutions per block, and the channels of each block (Simonyan & Zisserman, table 1).
VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_CHANNELS = (64, 128, 256, 512, 512)
#: VGG16 by default, as the design asks (Gatys et al. used VGG19: --model vgg19).
DEFAULT_MODEL = "vgg16"
DEFAULT_WEIGHTS = "imagenet"

#: --precision -> Keras dtype policy of the VGG layers. 'mixed' keeps float32
#: weights and computes in bfloat16; 'bfloat16' stores the weights in it too.
PRECISIONS = {"float32": "float32", "mixed": "mixed_bfloat16", "bfloat16": "bfloat16"}
#: 'auto' is 'mixed' on a CPU with fast bfloat16 arithmetic, else 'float32' (see resolve_precision).
DEFAULT_PRECISION = "auto"
PRECISION_CHOICES = ("auto", *PRECISIONS)
#: CPU features with fast bfloat16 dot products (/proc/cpuinfo flags).
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

#: The content layer. Departure from the paper: Gatys et al. use conv4_2
#: (--content-layer block4_conv2); this project, like the TensorFlow style-transfer
#: tutorial, uses the last conv block, which keeps the layout but lets the style
#: redraw details.
CONTENT_LAYER = "block5_conv2"

#: Keras' VGG expects pixel values in [0, 255]; our images are in [0, 1].
PIXEL_SCALE = 255.0
#: Image files by name: what a folder given to StyleTransfer's --contents / --styles
#: contributes, and how a hint tells an image from a flag's value (list_flag_hint). .jfif: the
#: JPEGs some browsers save.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
#: Pixel bounds: every image in this project is RGB in [0, 1].
PIXEL_MIN, PIXEL_MAX = 0.0, 1.0
#: The largest value of an 8-bit channel: image files hold 0..255, our arrays 0..1.
UINT8_MAX = 255.0
#: The largest value of a 16-bit greyscale pixel (PNG and TIFF can hold them).
UINT16_MAX = 65535.0
#: Largest value of a 32-bit integer image (Pillow's mode 'I', signed).
INT32_MAX = 2.0 ** 31 - 1
#: Pillow's raw modes of a PNG's greyscale below 8 bits (1-bit is mode '1'), by bits a pixel:
#: it decodes them to 'L', scaled up to 0..255.
LOW_BIT_GREY_RAW_MODES = {"L;2": 2, "L;4": 4}
#: JPEG quality of saved .jpg results (Pillow's scale: 95 is near lossless, 75 its default).
JPEG_QUALITY = 92

#: Default long side (pixels) of images loaded for the feature-map figures
#: (StyleTransfer's own DEFAULT_SIZE for results is larger).
FIGURE_SIZE = 384
#: The seed of random weights (--weights none) and of StyleTransfer's noise start by default.
DEFAULT_SEED = 0
#: Smallest short side (pixels) of an image we give VGG: its deepest blocks need that much.
MIN_SIZE = 32
#: Largest --size accepted. Memory, not this, is the real limit: at 8192 px a run needs
#: about 100 GiB or more, a figure's one forward pass tens of GiB (each is estimated first,
#: and refused on a CPU that has less: check_forward_pass_memory, StyleTransfer's check_memory).
MAX_SIZE = 8192
#: Largest image we decode (pixels). Pillow's own decompression-bomb check is
#: replaced by this limit so that a user can raise it (--max-pixels): with its limit
#: None, Pillow never raises its DecompressionBombError.
MAX_IMAGE_PIXELS = 100_000_000
#: The largest --max-pixels read: far beyond any image (ten billion times the default), and
#: small enough that reading it costs nothing.
MAX_PIXEL_COUNT = 10**18
Image.MAX_IMAGE_PIXELS = None
#: Number of feature maps drawn in the ContentModel figure.
FEATURE_MAPS_SHOWN = 16
#: What atomic_write's temporary name adds to a file's: ".<name>." and 8 random characters
#: (tempfile.mkstemp), the extension kept.
TEMPORARY_NAME_EXTRA = 10
#: The longest file name (bytes) where the file system does not say (most take 255).
NAME_MAX_BYTES = 255
#: Resolution of saved figures (matplotlib's dots per inch; its own default too).
FIGURE_DPI = 100
#: Height (inches) a figure keeps for two lines of title.
FIGURE_TITLE_INCHES = 0.5
#: The tallest a feature-map cell gets, as a multiple of its width: a 32 x 4096 px strip's
#: maps, drawn at their own shape, made a figure 100,000 px tall.
MAX_CELL_ASPECT = 4
#: Bytes read at a time when an input file is fingerprinted (file_digest).
DIGEST_CHUNK_BYTES = 1 << 20

RESULTS_DIR = Path("results")
#: The folder of the three scripts and the bundled images/.
PROJECT_DIR = Path(__file__).parent

#: Inputs that are downloaded rather than read from disk.
URL_SCHEMES = ("http", "https")
#: Seconds a download may wait for the server before giving up (per connection
#: attempt or read, not in total: a slow but steady server is fine).
DOWNLOAD_TIMEOUT = 30.0
#: The endings by which Keras's load_weights reads a file as HDF5 weights, the format of the
#: ImageNet files: it goes by the name, case included (a 'W.H5' is "File format not supported").
WEIGHTS_SUFFIXES = (".h5", ".hdf5")
#: The ending by which Keras 3 reads a file in its own weights format: the older format of
#: the ImageNet files, under such a name, fails to load (as 16 warnings and "could not be loaded").
KERAS_WEIGHTS_SUFFIX = ".weights.h5"
#: Weights files named when --weights is a folder that holds them.
LISTED_WEIGHTS_FILES = 3
#: The attribute at the root of a weights file in the older Keras (HDF5) format.
LEGACY_WEIGHTS_ATTRIBUTE = "layer_names"
#: Largest download kept: far above any photo, far below what would fill a disk.
MAX_DOWNLOAD_BYTES = 50_000_000
#: Downloads live in this folder of the Keras cache ($KERAS_HOME or ~/.keras).
DOWNLOAD_CACHE_SUBDIR = "images"
#: How Keras's get_file announces a download: the one line of it kept off a terminal.
DOWNLOAD_ANNOUNCEMENT = "Downloading data from "
#: Hex digits of the URL's hash in a cached file's name (URLs that end in the
#: same file name, e.g. .../1/photo.jpg and .../2/photo.jpg, must not collide).
URL_HASH_DIGITS = 12
#: Background used when an image with transparency is flattened to RGB.
ALPHA_BACKGROUND = (255, 255, 255)
#: The endings a result image may have (-o), each a format save_image writes.
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Most characters of a library's own message quoted in a one-line error.
ERROR_DETAIL_WIDTH = 160


class StyleTransferError(ValueError):
    """A problem with the user's input: reported as one line, never a traceback."""

    exit_status = EXIT_USAGE


class WriteError(StyleTransferError):
    """A file could not be written (a full disk, a folder in its place): one line too, and
    the exit status of a run that failed rather than of bad input."""

    exit_status = EXIT_FAILED


def counted(count: int, noun: str) -> str:
    """'1 pair', '2 pairs': a count and its noun, for messages."""
    return f"{count} {noun}{'s' * (count != 1)}"


# ---------------------------------------------------------------------------
# The shared VGG builder
# ---------------------------------------------------------------------------


def conv_layer_names(model: str = DEFAULT_MODEL) -> list[str]:
    """Names of the convolution layers of ``model`` in order, low to high level
    (Keras' names: block<b>_conv<c>), read from VGG_BLOCKS without building a model."""
    _vgg_entry(model)  # an unknown model is a user error
    return [f"block{block}_conv{conv}" for block, convs in enumerate(VGG_BLOCKS[model], start=1)
            for conv in range(1, convs + 1)]


def layer_position(name: str) -> tuple[int, int]:
    """(block, conv) of a conv layer's Keras name: 'block4_conv2' -> (4, 2)."""
    block, conv = name.removeprefix("block").split("_conv")
    return int(block), int(conv)


def check_layers(model: str, layers) -> None:
    """Raise StyleTransferError unless every name is a conv layer of ``model``."""
    if isinstance(layers, str):  # else read letter by letter: 'unknown layer b, l, o, ...'
        raise StyleTransferError(f"layers are a list of names, not one string: [{layers!r}], not {layers!r}")
    if not isinstance(layers, (list, tuple)) or not all(isinstance(name, str) for name in layers):
        raise StyleTransferError(f"layers are a list of names (got {layers!r})")
    if not layers:
        raise StyleTransferError("no layers requested")
    known = conv_layer_names(model)
    unknown = [name for name in layers if name not in known]
    if unknown:
        # '--style-layers a,b': the weights' flags take commas, so a list of names is tried that way too.
        commas = "; separate the names with spaces, not commas" if any("," in name for name in unknown) else ""
        raise StyleTransferError(
            f"unknown layer {', '.join(name or repr(name) for name in unknown)} for {model}{commas}; "
            f"valid layers: {', '.join(known)}"
        )


def number_setting(name: str, value, whole: bool = False) -> int | float:
    """The setting ``name`` as Python's int (``whole``) or float, from any number (NumPy's, a
    Fraction; an int too large for a float is infinite), else StyleTransferError. Converted
    before its range is checked (a string would fail there with a TypeError that names no
    setting), and because Keras refuses NumPy integers where it wants a seed, and integers
    where it wants a rate."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):  # not an array, a complex
        if not whole:
            try:
                return float(value)
            except OverflowError:
                return math.inf
        try:
            return operator.index(value)
        except TypeError:  # 2.5, a NumPy float
            pass
    raise StyleTransferError(f"--{name} must be {'a whole number' if whole else 'a number'} (got {value!r})")


def check_choice(name: str, value, allowed) -> None:
    """Raise StyleTransferError unless ``value`` is one of ``allowed`` (a flag's choices)."""
    if value not in allowed:
        raise StyleTransferError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")


def _vgg_entry(model: str):
    check_choice("model", model, VGG_MODELS)
    return VGG_MODELS[model]


def cpu_has_fast_bfloat16() -> bool:
    """Whether this machine's CPU does bfloat16 arithmetic faster than float32."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:  # not Linux: stay with float32
        return False
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def default_device() -> str:
    """The device a run uses unless told otherwise: the first GPU TensorFlow sees, else the CPU."""
    return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"


def resolve_precision(precision: str, device: str | None = None) -> str:
    """'auto' -> 'mixed' where ``device`` (default: the GPU if TensorFlow sees one, else
    the CPU) is a CPU with fast bfloat16 arithmetic, else 'float32'.

    Not on a GPU, even one with bfloat16 tensor cores: there TensorFlow already runs
    float32 convolutions on the tensor cores (as TF32, its default from Ampere on), and
    mixed precision measured slower on an H100, 0.93x at 512 px and 0.84x at 1024
    (benchmarks/benchmark.py --sections precision)."""
    check_choice("precision", precision, PRECISION_CHOICES)
    if precision != "auto":
        return precision
    device = device or default_device()
    return "mixed" if not device.startswith("/GPU") and cpu_has_fast_bfloat16() else "float32"


def _load_backbone(model: str, weights: str | None, precision: str = "float32") -> keras.Model:
    """The Keras VGG convolutional base with ``weights`` ("imagenet", a path or None),
    its layers computing in ``precision``."""
    application, _, file_name = _vgg_entry(model)
    precision = resolve_precision(precision)
    # Keras gives new layers the global dtype policy: set it while the backbone is made.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISIONS[precision])
    try:
        return _application_with_weights(application, model, file_name, weights)
    finally:
        keras.config.set_dtype_policy(previous)


def weights_path(weights) -> str | None:
    """``weights`` as Keras takes them: "imagenet", None or a file's path as a string (a
    pathlib.Path will do); anything else is a StyleTransferError."""
    if isinstance(weights, os.PathLike):
        return os.fspath(weights)
    if weights is not None and not isinstance(weights, str):
        raise StyleTransferError(f"weights must be 'imagenet', None or a file (got {weights!r})")
    return weights


def folder_weights_hint(folder: Path) -> str:
    """What to give instead of ``folder`` as --weights: the weights files in it, or in its
    models/ (a Keras cache such as ~/.keras keeps them there), by name."""
    try:
        found = sorted(str(path) for place in (folder, folder / "models") if place.is_dir()
                       for path in place.iterdir() if path.name.endswith(WEIGHTS_SUFFIXES) and path.is_file())
    except OSError:  # a folder that cannot be listed
        found = []
    if not found:
        return f"give a weights file (ending in {' or '.join(WEIGHTS_SUFFIXES)}); it holds none"
    if len(found) == 1:
        return f"give the weights file in it: {found[0]}"
    more = f" (and {len(found) - LISTED_WEIGHTS_FILES} more)" if len(found) > LISTED_WEIGHTS_FILES else ""
    return f"give one of the weights files in it: {', '.join(found[:LISTED_WEIGHTS_FILES])}{more}"


def check_weights(weights: str | os.PathLike | None) -> str | None:
    """``weights`` as Keras takes them (weights_path), after raising StyleTransferError unless
    they are "imagenet", None or an existing file named as Keras reads weights (WEIGHTS_SUFFIXES,
    and not KERAS_WEIGHTS_SUFFIX for the older format) that is an HDF5 file and opens: cheap
    checks, made before a run starts. (Whether the file fits the model is found out only by
    loading it.)"""
    weights = weights_path(weights)
    if weights in (None, "imagenet"):
        return weights
    if weights.lower() == "none" and not Path(weights).exists():  # the command line's word, in Python
        raise StyleTransferError("for random weights pass weights=None (the command line's --weights none)")
    if not weights.strip():
        raise StyleTransferError("--weights is empty; give 'imagenet', 'none' or a .h5 file")
    if Path(weights).is_dir():
        raise StyleTransferError(f"--weights {weights} is a folder; {folder_weights_hint(Path(weights))}")
    if Path(weights).exists() and not Path(weights).is_file():
        raise StyleTransferError(f"--weights {weights} is not a file (a pipe or a device?)")
    if not Path(weights).is_file():
        raise StyleTransferError(f"weights file not found: {weights}")
    if not weights.endswith(WEIGHTS_SUFFIXES):
        endings = " or ".join(WEIGHTS_SUFFIXES)
        raise StyleTransferError(f"weights file {weights} is not named as Keras reads weights: it takes only "
                                 f"names ending in {endings} (lower case); rename it, or copy it to such a name")
    if not h5py.is_hdf5(weights):
        raise StyleTransferError(f"weights file {weights} is not an HDF5 file: it is corrupt, or not "
                                 "a Keras weights file")
    try:
        # Opening reads only the file's header, which records its length: a download cut
        # short is found here, in a moment, instead of after the model is built.
        with h5py.File(weights, "r") as file:
            legacy = LEGACY_WEIGHTS_ATTRIBUTE in file.attrs
    except OSError as error:
        raise StyleTransferError(f"weights file {weights} cannot be read (cut short by a download?): "
                                 f"{error_summary(error)}") from error
    if legacy and weights.endswith(KERAS_WEIGHTS_SUFFIX):
        raise StyleTransferError(f"weights file {weights} is in the older Keras format of the ImageNet files, "
                                 f"which Keras does not read from a name ending in {KERAS_WEIGHTS_SUFFIX}: "
                                 "rename it, or copy it, to end in plain .h5")
    return weights


def keras_cache() -> Path:
    """The Keras cache folder a user sets up: $KERAS_HOME, else ~/.keras."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()


def keras_download_folder(subdir: str) -> Path:
    """The folder keras.utils.get_file keeps ``subdir``'s files in: in the Keras cache
    (keras_cache), or, as get_file decides, under /tmp/.keras when it cannot write to that
    folder (a shared, read-only one)."""
    base = keras_cache()
    if not os.access(base, os.W_OK):
        base = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"
    return base / subdir


def cached_weights(file_name: str) -> str:
    """'imagenet', or the ImageNet weights file ``file_name`` in the Keras cache's models/ when
    Keras would not look there: in a cache folder it cannot write to (a shared, read-only
    one) it looks only under /tmp/.keras instead, and would download the file again. The
    file is checked as Keras checks it, by its md5: another file under that name (weights
    trained further, say) would otherwise be loaded as the ImageNet weights."""
    cached = keras_cache() / "models" / file_name
    if not cached.is_file() or keras_download_folder("models") == cached.parent:  # Keras finds it itself
        return "imagenet"
    try:
        weights = check_weights(cached)  # a file cut short is found now, not once the model is built
        if file_digest(cached, "md5") == IMAGENET_WEIGHTS_MD5[file_name]:
            return weights
    except StyleTransferError:
        pass
    return "imagenet"  # Keras goes its own way (and its message says where it looked)


def cached_models() -> list[str]:
    """The models whose ImageNet weights file is in Keras's cache folder, whole (its md5, as
    Keras checks it): offline, these run."""
    def whole(path: Path) -> bool:
        try:
            return path.is_file() and file_digest(path, "md5") == IMAGENET_WEIGHTS_MD5[path.name]
        except StyleTransferError:  # unreadable
            return False

    return [model for model, (_, _, file_name) in VGG_MODELS.items() if whole(keras_cache() / "models" / file_name)]


def _application_with_weights(application, model: str, file_name: str, weights) -> keras.Model:
    weights = check_weights(weights)
    if weights == "imagenet":
        weights = cached_weights(file_name)
    download_output = keras_download_output()  # outside the try: a failure of its own is not the weights'
    try:
        with download_output:  # the ImageNet weights, on a first run
            return application(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as error:  # Keras raises several types here; all mean "no usable weights".
        if weights == "imagenet":
            cache = keras_cache() / "models" / file_name
            elsewhere = "" if os.access(keras_cache(), os.W_OK) else \
                f"; Keras cannot write to {keras_cache()}, so it looked under /tmp/.keras instead"
            others = "".join(f"; {keras_cache() / 'models'} has the {other} weights: --model {other} uses them"
                             for other in cached_models() if other != model)
            raise StyleTransferError(
                f"could not get the ImageNet weights for {model} "
                f"({error_summary(error.__cause__ or error.__context__ or error)}); "
                f"on an offline machine pass the file with --weights PATH, or put {file_name} "
                f"in a cache folder's models/ and set KERAS_HOME to that folder (looked for {cache}{elsewhere})"
                f"{others}"
            ) from error
        holds = weights_file_model(weights)
        if holds is not None and holds != model:  # the other VGG's file: say which model takes it
            raise StyleTransferError(f"weights file {weights} holds the layers of {holds}, not {model}: "
                                     f"use --model {holds}, or a {model} 'notop' file") from error
        raise StyleTransferError(
            f"weights file {weights} does not fit {model} (is it a {model} 'notop' file, "
            f"not corrupt?): {error_summary(error)}"
        ) from error


def weights_file_model(weights: str) -> str | None:
    """The VGG whose convolution layers a weights file in the ImageNet files' (older) format
    names, all of them and no others (VGG_BLOCKS); None for another file."""
    try:
        with h5py.File(weights, "r") as file:
            names = [name.decode() if isinstance(name, bytes) else str(name)
                     for name in file.attrs.get(LEGACY_WEIGHTS_ATTRIBUTE, [])]
    except OSError:
        return None
    convolutions = sorted(name for name in names if "_conv" in name)
    return next((model for model, blocks in VGG_BLOCKS.items()
                 if convolutions == sorted(f"block{block}_conv{number}" for block, count in enumerate(blocks, 1)
                                           for number in range(1, count + 1))), None)


def error_summary(error: BaseException | str, width: int = ERROR_DETAIL_WIDTH) -> str:
    """The first line of a library's error message (the error, or its message as a string:
    urllib's reasons), cut at a word to fit in a one-line error."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return textwrap.shorten(lines[0], width, placeholder=" ...")


@contextlib.contextmanager
def seeded(seed: int):
    """Python's, NumPy's and TensorFlow's global random generators seeded with ``seed``
    (keras.utils.set_random_seed: Keras draws random weights, weights=None, from them), and
    Python's and NumPy's put back as they were afterwards, so that a caller's own random
    numbers do not change for having called stylize. TensorFlow's and Keras's global seed
    stay set (TensorFlow has no way to read its back)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def build_vgg(
    model: str = DEFAULT_MODEL,
    layers: list[str] | tuple[str, ...] = (CONTENT_LAYER,),
    weights: str | None = DEFAULT_WEIGHTS,
    precision: str = "float32",
) -> keras.Model:
    """A frozen VGG feature extractor: RGB image in [0, 1] -> {layer name: features}.

    The model accepts a batch of images of any height and width from MIN_SIZE px (fewer
    leave VGG's deepest blocks nothing to pool). The ImageNet preprocessing (scale to
    [0, 255], RGB->BGR, subtract the mean pixel) is its first layer, so callers never
    see VGG's pixel convention. The network is cut after the deepest requested layer:
    later blocks are never computed.
    ``precision`` 'mixed' or 'bfloat16' runs the convolutions in bfloat16
    (preprocessing stays in float32; the outputs are bfloat16); 'auto' picks
    'mixed' where that is fast (resolve_precision).

    Departures from the paper: Gatys et al. replace VGG's max pooling with average
    pooling ("slightly more appealing results"), and use a VGG whose weights they
    rescaled so that each filter's mean activation over ImageNet images is 1. This keeps
    Keras' network as it is, max pooling and ImageNet weights unscaled, as the
    TensorFlow tutorial does; so the style layers' terms differ in scale, and equal
    layer weights (normalized_layer_weights) do not weigh them equally: for chelsea
    against The Starry Night (VGG19, 384 px) the photo's style terms run from 3e6 at
    block1_conv1 to 4e11 at block4_conv1, which makes 99 % of the style loss.
    (--style-layer-weights sets other weights.)
    """
    check_layers(model, layers)  # first: a string would be split into letters by the next line
    layers = list(dict.fromkeys(layers))  # unique, order kept

    base = _load_backbone(model, weights, precision)
    preprocess = VGG_MODELS[model][1]
    image = keras.Input(shape=(None, None, 3), name="image")
    # The output shape given, not inferred: Keras infers it inside a bare 'except:' that turns
    # a Ctrl-C arriving then into "could not infer the shape of the Lambda's output".
    x = keras.layers.Lambda(lambda rgb: preprocess(rgb * PIXEL_SCALE), output_shape=(None, None, 3),
                            name="vgg_preprocess", dtype="float32")(image)
    outputs = {}
    for layer in base.layers[1:]:  # layers[0] is the backbone's own input
        x = layer(x)
        if layer.name in layers:
            outputs[layer.name] = x
            if len(outputs) == len(layers):
                break  # truncate: nothing deeper is needed
    extractor = keras.Model(image, {name: outputs[name] for name in layers},
                            name=f"{model}_features")
    extractor.trainable = False
    return extractor


# ---------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------


def build_content_model(
    layer: str = CONTENT_LAYER, model: str = DEFAULT_MODEL, weights: str | None = DEFAULT_WEIGHTS,
    precision: str = "float32",
) -> keras.Model:
    """The content extractor: one layer of VGG (the last conv block by default)."""
    return build_vgg(model, [layer], weights, precision)


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Squared error between feature maps (Gatys et al. 2015, eq. 1).

    Departure from the paper: the mean instead of half the sum, so the loss
    does not grow with the image size and one weight suits every size.
    """
    tf.TensorShape(features.shape).assert_is_compatible_with(target.shape)  # else they would broadcast, silently
    return tf.reduce_mean(tf.square(features - target))


# ---------------------------------------------------------------------------
# Image I/O: small pure functions, RGB float32 in [0, 1]
# ---------------------------------------------------------------------------


def to_rgb(image: Image.Image, background: tuple = ALPHA_BACKGROUND) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparency is composited onto ``background`` (white)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit greyscale spans 0..65535. 32-bit integer and float images carry no
        # range of their own: guess it from the values (0..2**31 - 1, 0..65535, 0..255 or 0..1).
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("some of its pixels are not numbers (NaN) or are infinite")
        if image.mode.startswith("I;16"):
            top = UINT16_MAX
        else:
            largest = values.max()
            top = (INT32_MAX if largest > UINT16_MAX else UINT16_MAX if largest > UINT8_MAX
                   else UINT8_MAX if largest > 1 else 1.0)
        grey = Image.fromarray(np.clip(values / top * UINT8_MAX, 0, UINT8_MAX).astype(np.uint8))
        transparent = image.info.get("transparency")
        if isinstance(transparent, int):
            # a 16-bit PNG's tRNS grey: matched here, while the pixels still have all their bits
            alpha = Image.fromarray(np.where(values == transparent, 0, UINT8_MAX).astype(np.uint8))
            grey = Image.merge("LA", (grey, alpha))
        image = grey
    if image.mode in ("P", "PA") or (image.mode in ("RGB", "L", "1") and "transparency" in image.info):
        # A palette's transparency, or one colour marked transparent (a PNG's tRNS chunk, as
        # PNG optimizers write an RGBA image whose alpha is only on or off)
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        canvas = Image.new("RGB", image.size, background)
        canvas.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return canvas
    return image.convert("RGB")


def long_side_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled so that the longer of the two is ``long_side``."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def loaded_shape(shape, max_size: int | None = None, keep_short_side: bool = False,
                 what: str = "the image") -> tuple[int, int]:
    """The (height, width) load_image gives an image of ``shape`` ((height, width, ...)): the
    long side resized to ``max_size`` (None keeps the size), with ``keep_short_side`` no
    further down than MIN_SIZE pixels on the short side. StyleTransferError, naming
    ``what``, for an image too small for VGG at the size it is loaded at: a 45x30 photo at a
    long side of 128 is 128x85, which VGG takes (it was refused for its size on disk)."""
    height, width = shape[:2]
    if max_size is None:
        check_short_side(what, width, height)
        return height, width
    needed = smallest_long_side((height, width))
    if keep_short_side:
        max_size = max(max_size, needed)
    height, width = long_side_shape(height, width, max_size)
    if min(height, width) < MIN_SIZE:
        fix = f": use a --size of at least {needed}" if needed <= MAX_SIZE else \
            f", which no --size (at most {MAX_SIZE}) gives: crop it"
        raise StyleTransferError(
            f"{what} resized to a long side of {max_size} is {width}x{height} pixels; "
            f"the short side must be at least {MIN_SIZE}{fix}")
    return height, width


def smallest_long_side(shape) -> int:
    """The long side at which an image of ``shape`` ((height, width, ...)) is MIN_SIZE
    pixels on its short side: VGG's deepest blocks need that much, so no image is
    shrunk further (StyleTransfer's coarse levels and style images)."""
    short, long = sorted(shape[:2])
    # long_side_shape rounds: from a short side of MIN_SIZE - 0.5 up, it is MIN_SIZE (the
    # ceiling of MIN_SIZE * long / short was up to a pixel more than needed). Counted up
    # from just below, for the float rounding of the scale.
    side = max(MIN_SIZE, math.floor((MIN_SIZE - 0.5) * long / short) - 1)
    while min(long_side_shape(short, long, side)) < MIN_SIZE:
        side += 1
    return side


def resize_image(image: np.ndarray, shape) -> np.ndarray:
    """Resize an (H, W, C) float array to ``shape`` = (height, width), antialiased."""
    height, width = int(shape[0]), int(shape[1])
    if tuple(image.shape[:2]) == (height, width):
        return np.asarray(image, dtype=np.float32)
    return tf.image.resize(image, (height, width), method="bilinear", antialias=True).numpy()


def resize_long(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize an (H, W, C) float array so its long side is ``long_side`` pixels."""
    return resize_image(image, long_side_shape(*image.shape[:2], long_side))


#: The first bytes of image files (their signatures), to tell a damaged image from a file
#: that is not one: WebP's also has 'WEBP' at byte 8.
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF",
                    b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "WebP"}


def format_by_signature(path: Path) -> str | None:
    """The image format whose signature a file begins with (IMAGE_SIGNATURES), or None."""
    with open(path, "rb") as file:
        start = file.read(12)
    return next((name for signature, name in IMAGE_SIGNATURES.items() if start.startswith(signature)
                 and (name != "WebP" or start[8:12] == b"WEBP")), None)


#: The characters of a shell pattern ('photos/*.jpg'), which only the shell expands.
SHELL_PATTERN_CHARACTERS = "*?["


def missing_path_hint(path: str | os.PathLike) -> str:
    """For 'no such file': what the shell would have done with a name given in quotes (or
    after '=', where it expands no '~'): a pattern it lists, a '~' it makes the home folder.
    And a space at either end of the name, which a message shows no sign of."""
    text = str(path)
    if text != text.strip():
        return f" (the name is {text!r}: it has a space at an end)"
    if text.startswith("~"):
        return f" ('~' is expanded by the shell, not in quotes or after '=': write {Path(text).expanduser()})"
    if any(character in text for character in SHELL_PATTERN_CHARACTERS):
        return " (a pattern is expanded by the shell, not in quotes: give it unquoted)"
    return ""


def check_output_tilde(output: str, flag: str) -> None:
    """Refuse an output under a folder named '~' that is not there: '--output=~/art.png' (no
    shell expands a '~' after '=') made a folder './~' without a word."""
    first = Path(output).parts[0] if Path(output).parts else ""
    if first.startswith("~") and not os.path.lexists(first):
        raise StyleTransferError(f"{flag} {output}: there is no folder {first}{missing_path_hint(output)}")


@contextlib.contextmanager
def image_file(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS):
    """An image file opened by Pillow with only its header read: what open_image and
    stored_shape check first. Files that are not images, truncated (found once the block
    decodes them), or larger than ``max_pixels`` (a decompression bomb, or simply too big)
    raise StyleTransferError."""
    check_address(path)  # an empty name: Path() would make it '.', the current folder
    if is_url(path):  # Path() would make it 'https:/host/...', a file not found
        raise StyleTransferError(f"{path} is an address, not a file: download it first with local_image")
    path = Path(path)
    if not path.exists():
        check_no_broken_link(path)  # a link to nothing, or a loop of links, is said to be one
        raise StyleTransferError(f"no such file: {path}{missing_path_hint(path)}")
    if path.is_dir():
        raise StyleTransferError(f"{path} is a folder, not an image")
    if not path.is_file():  # before its size: a pipe's or a device's is 0
        raise StyleTransferError(f"{path} is not a file (a pipe or a device?): save the image to a file first")
    if path.stat().st_size == 0:
        raise StyleTransferError(f"{path} is empty (0 bytes)")
    try:
        with metadata_warnings_ignored():  # a JPEG's EXIF block and MPO index are read as it opens
            opened = Image.open(path)
        with opened as image:
            width, height = image.size  # read from the header, before decoding
            if width * height > max_pixels:
                raise StyleTransferError(
                    f"{path} is {width}x{height} = {width * height:,} pixels, above the limit of "
                    f"{max_pixels:,}; raise it with --max-pixels if you trust the file"
                )
            yield image
    except StyleTransferError:
        raise
    except UnidentifiedImageError as error:
        known = format_by_signature(path)
        if known:  # a damaged header: Pillow's own checks (a chunk's CRC, say) fail before it names the format
            raise StyleTransferError(f"cannot read {path} as an image (damaged or truncated?): it begins as "
                                     f"a {known} file does, but Pillow cannot open it") from error
        raise StyleTransferError(f"cannot read {path}: not an image in a format Pillow knows") from error
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        raise StyleTransferError(f"cannot read {path} as an image (damaged or truncated?): "
                                 f"{error_summary(error)}") from error


def open_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS,
               background: tuple = ALPHA_BACKGROUND) -> Image.Image:
    """Decode an image file into an upright 8-bit RGB PIL image.

    The first frame of an animation is used, EXIF orientation is applied and
    any mode becomes RGB (transparency composited onto ``background``). A file that
    cannot be (image_file) raises StyleTransferError.
    """
    with image_file(path, max_pixels) as image, native_stderr_silenced(image.format == "TIFF"):  # libtiff's lines
        image.seek(0)  # animated images: the first frame
        if image.mode in ("RGB", "L", "1"):
            transparent = transparency_in_8_bits(image)
            if transparent is None:
                image.info.pop("transparency", None)  # left opaque, as before
            else:
                image.info["transparency"] = transparent
        return to_rgb(upright(image), background)


def transparency_in_8_bits(image: Image.Image) -> int | tuple | None:
    """The one colour an RGB, greyscale or black-and-white PNG just opened marks transparent
    (its tRNS chunk), at the 8 bits a channel Pillow decodes it to; None where there is none
    or it cannot be matched. A 2- or 4-bit grey is scaled up as Pillow scales the pixels
    (0..3 to 0..255); a 16-bit RGB PNG's colour cannot be: Pillow keeps it in 16 bits while
    the pixels keep only their high bytes, so that to_rgb would take other pixels for it.
    (A 16-bit grey PNG opens as 'I;16', with all its bits: to_rgb matches its grey itself.)"""
    transparent = image.info.get("transparency")
    if image.format != "PNG" or not image.tile or transparent is None:
        return None
    raw_mode = image.tile[0][3]
    if image.mode == "1":
        return int(UINT8_MAX) if transparent else 0  # (recent Pillow gives 255 already)
    if raw_mode == image.mode:
        return transparent
    bits = LOW_BIT_GREY_RAW_MODES.get(raw_mode)
    return None if bits is None else transparent * (int(UINT8_MAX) // (2 ** bits - 1))


#: EXIF orientations that turn the image a quarter (its width and height swap upright).
QUARTER_TURNS = (5, 6, 7, 8)
#: How each EXIF orientation but 1 (upright as stored) is undone, as ImageOps.exif_transpose does.
UPRIGHT_TRANSPOSES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                      4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                      6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def orientation(image: Image.Image) -> int:
    """An opened image's orientation: its EXIF's or, lacking that, its XMP's (1: upright as
    stored). A damaged EXIF block is read as far as it goes, without Pillow's warnings
    ('Corrupt EXIF data': metadata_warnings_ignored); one that cannot be read at all (no TIFF
    header, cut inside it) turns nothing: the pixels are sound, and used as stored."""
    with metadata_warnings_ignored():
        try:
            return image.getexif().get(ExifTags.Base.Orientation, 1)
        except (SyntaxError, ValueError, TypeError, EOFError, struct.error):  # Pillow's EXIF reader's errors
            return 1


@contextlib.contextmanager
def metadata_warnings_ignored():
    """Pillow's warnings on damaged metadata left unsaid: on an EXIF block ('Corrupt EXIF
    data', 'Truncated File Read', from its TIFF reader, which reads EXIF), read as far as it
    goes, and on a JPEG's multi-picture (MPO) index, the JPEG then read as a plain one. The
    image itself is sound, and stderr is for what went wrong."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")
        warnings.filterwarnings("ignore", message="Image appears to be a malformed MPO file", category=UserWarning,
                                module=r"PIL\.JpegImagePlugin")
        yield


def upright(image: Image.Image) -> Image.Image:
    """A decoded image turned upright by its orientation: exif_transpose's turn without its
    rewrite of the EXIF block, which fails on a damaged one (a number stored as text) that
    is otherwise read well enough."""
    image.load()
    method = UPRIGHT_TRANSPOSES.get(orientation(image))
    return image if method is None else image.transpose(method)


#: Bytes before a PNG's first chunk (its signature).
PNG_SIGNATURE_LENGTH = 8
#: The PNG chunks where an orientation can be: EXIF (eXIf, or ImageMagick's raw profile in
#: text) and XMP (iTXt).
PNG_METADATA_CHUNKS = (b"eXIf", b"tEXt", b"zTXt", b"iTXt")
#: The PNG chunk that opens an animation's next frame (after the first frame's pixels,
#: Pillow reads no further).
PNG_FRAME_CHUNK = b"fcTL"
PNG_PIXEL_CHUNK = b"IDAT"
PNG_END_CHUNK = b"IEND"


def png_orientation(path: str | os.PathLike) -> int:
    """A PNG file's orientation as open_image reads it once the pixels are decoded (its EXIF,
    which may follow them, else its XMP), without decoding them: Pillow's own chunk reader
    reads the metadata chunks, in the order load() does, and steps over the others. A chunk
    it cannot read ends the walk with what came before (decoding says what is wrong)."""
    with open(path, "rb") as file:
        file.seek(PNG_SIGNATURE_LENGTH)
        chunks = PngImagePlugin.PngStream(file)
        past_pixels = False
        try:
            while True:
                kind, position, length = chunks.read()
                if kind == PNG_END_CHUNK or (kind == PNG_FRAME_CHUNK and past_pixels):
                    break
                if kind in PNG_METADATA_CHUNKS:
                    chunks.call(kind, position, length)
                else:
                    file.seek(length, os.SEEK_CUR)
                file.seek(4, os.SEEK_CUR)  # its CRC
                past_pixels = past_pixels or kind == PNG_PIXEL_CHUNK
        except (SyntaxError, ValueError, EOFError, OSError, struct.error):  # cut short or damaged
            pass
    # Read as Pillow reads any image's metadata: a stand-in image carrying it.
    stand_in = Image.new("1", (1, 1))
    stand_in.info = chunks.im_info
    return orientation(stand_in)


def stored_shape(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """The (height, width) of an image file upright (its EXIF orientation applied, as
    open_image applies it), from its header alone: cheap for any size, so a run can check
    its memory, and name the size an image too small would have, before it decodes
    anything. The orientation is read where the header holds it: EXIF or, lacking that, XMP
    (JPEG, WebP; Pillow gives a TIFF's size upright already). A PNG's EXIF can follow its
    pixels: its chunks are walked, the pixels stepped over (png_orientation)."""
    with image_file(path, max_pixels) as image:
        height, width = image.height, image.width
        if image.format == "TIFF":  # upright already
            return height, width
        turn = png_orientation(path) if image.format == "PNG" else orientation(image)
        if turn in QUARTER_TURNS:
            height, width = width, height
        return height, width


def check_short_side(what: str, width: int, height: int) -> None:
    """Raise StyleTransferError for an image too small for VGG (under MIN_SIZE on its short side)."""
    if min(width, height) < MIN_SIZE:
        raise StyleTransferError(f"{what} is {width}x{height} pixels; the network needs at least "
                                 f"{MIN_SIZE} pixels on the short side")


def load_pil(path: str | os.PathLike, max_size: int | None = None,
             max_pixels: int = MAX_IMAGE_PIXELS, keep_short_side: bool = False,
             what: str | None = None) -> Image.Image:
    """Read an image file as an 8-bit RGB PIL image at the size load_image gives."""
    image = open_image(path, max_pixels)
    height, width = loaded_shape((image.height, image.width), max_size, keep_short_side, what or str(path))
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def load_image(path: str | os.PathLike, max_size: int | None = None,
               max_pixels: int = MAX_IMAGE_PIXELS, keep_short_side: bool = False,
               what: str | None = None) -> np.ndarray:
    """Read an image file as an (H, W, 3) float32 array in [0, 1].

    EXIF orientation is applied, any mode becomes RGB, and the long side is
    resized to ``max_size`` when given. An image that would then be under
    MIN_SIZE pixels on its short side is refused (naming it ``what``, by default
    its path), or with ``keep_short_side`` (style images, whose size only sets the
    scale of their strokes) resized only down to MIN_SIZE there.
    """
    return to_array(load_pil(path, max_size, max_pixels, keep_short_side, what))


# ---------------------------------------------------------------------------
# Images from the web: a URL is downloaded once into the Keras cache
# ---------------------------------------------------------------------------


def url_parts(text: str) -> urllib.parse.SplitResult:
    """An address split into scheme, host, path, ...; one that cannot be split
    ('http://[::1', an unclosed IPv6 host) is a one-line error, not a traceback."""
    try:
        return urllib.parse.urlsplit(text)
    except ValueError as error:
        raise StyleTransferError(f"cannot read the address {text}: {error}") from None


def is_url(source: str | os.PathLike) -> bool:
    """True for an http:// or https:// address, False for a file path."""
    return url_parts(str(source)).scheme.lower() in URL_SCHEMES


def url_file_name(url: str) -> str:
    """The file name at the end of a URL's path, safe for any file system ('image' if none).
    Blanks at the URL's ends are not part of it (urllib drops them: trimmed_address)."""
    name = urllib.parse.unquote(Path(url_parts(url.strip()).path).name)
    return re.sub(r"[^\w.-]", "_", name) or "image"


def source_name(source: str | os.PathLike) -> str:
    """The file name an input goes by: 'chelsea.jpg' for .../chelsea.jpg, path or URL (not the
    name of its download in the cache)."""
    return url_file_name(str(source)) if is_url(source) else Path(source).name


def source_stem(source: str | os.PathLike) -> str:
    """The name outputs are given after an input: 'chelsea' for .../chelsea.jpg, path or URL."""
    return Path(source_name(source)).stem


def cached_file_name(url: str) -> str:
    """The file name of a URL in the cache: a short hash of the whole URL (the address urllib
    asks for, without blanks at its ends: trimmed_address), then its file name."""
    digest = hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:URL_HASH_DIGITS]
    return f"{digest}_{url_file_name(url)}"


class AnnouncementsOnly(io.TextIOBase):
    """Standard output for Keras's downloads off a terminal (a log, a pipe): the line naming
    what is downloaded is passed on, the progress bar is not. Keras draws it with
    backspaces and colour codes even there, which fill a log with noise."""

    def __init__(self, stream):
        self.stream = stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text.startswith(DOWNLOAD_ANNOUNCEMENT):  # Keras writes each message in one call
            self.stream.write(text)
            self.stream.flush()
        return len(text)


def keras_download_output():
    """The context in which Keras may download (weights, images): its output as it is on a
    terminal, elsewhere only its 'Downloading data from URL' lines (AnnouncementsOnly)."""
    stream = sys.stdout
    if stream is None:  # no standard output at all (pythonw, or fd 1 closed): Keras's print would fail
        return contextlib.redirect_stdout(io.StringIO())
    if stream.isatty():
        return contextlib.nullcontext()
    return contextlib.redirect_stdout(AnnouncementsOnly(stream))


@contextlib.contextmanager
def socket_timeout(seconds: float):
    """Give the sockets opened inside the block a timeout.

    keras.utils.get_file has no timeout of its own; it uses urllib, whose
    sockets take Python's default timeout. The default is process-wide, so it
    is put back afterwards.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_failure(error: BaseException, timeout: float) -> str:
    """Why a download failed, in a few words.

    get_file turns urllib's HTTP and network errors into a plain Exception
    raised while handling them, so the original error is its __context__.
    """
    if type(error) is Exception and error.__context__ is not None:
        error = error.__context__
    if isinstance(error, urllib.error.HTTPError):  # a redirect loop's reason is three lines: the first
        return f"HTTP {error.code} {error_summary(error.reason)}"
    if isinstance(error, urllib.error.URLError):  # its reason is a network error or a message
        if not isinstance(error.reason, BaseException):
            return error_summary(error.reason)
        error = error.reason
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(error, OSError) and error.strerror:  # a cache folder it cannot write names that folder
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return error_summary(error)


def check_download(path: Path, max_bytes: int, max_pixels: int) -> None:
    """Raise StyleTransferError unless the downloaded file is a readable image within the limits."""
    size = path.stat().st_size
    if size > max_bytes:
        raise StyleTransferError(
            f"the file is {size / 1e6:.1f} MB, above the download limit of {max_bytes / 1e6:g} MB")
    open_image(path, max_pixels)  # decodes it: a web page or a truncated file fails here


def download_image(url: str, *, timeout: float = DOWNLOAD_TIMEOUT, max_bytes: int = MAX_DOWNLOAD_BYTES,
                   max_pixels: int = MAX_IMAGE_PIXELS) -> Path:
    """The local copy of an image URL, downloaded with keras.utils.get_file.

    The file is kept in the Keras cache (``$KERAS_HOME/images``), so a second
    run with the same URL does not download it again. A download that is not
    an image, or is larger than ``max_bytes``, is deleted from the cache so
    that no later run reuses it. get_file cannot stop a download part way,
    so the size is checked on the file it wrote; ``timeout`` bounds a server
    that stops answering (each wait for data, not the whole download, which a
    server sending slowly can draw out). Every failure is a one-line StyleTransferError.
    """
    download_output = keras_download_output()  # outside the try: a failure of its own is not the download's
    try:
        with socket_timeout(timeout), download_output:
            path = Path(keras.utils.get_file(cached_file_name(url), origin=url,
                                             cache_subdir=DOWNLOAD_CACHE_SUBDIR))
    except Exception as error:  # get_file raises urllib's errors, wrapped or not; all mean "no file".
        raise StyleTransferError(f"cannot download {url}: {download_failure(error, timeout)}") from error
    try:
        check_download(path, max_bytes, max_pixels)
    except StyleTransferError as error:
        path.unlink(missing_ok=True)
        raise StyleTransferError(f"{url} gave no usable image: {error}") from error
    return path


def earlier_download(source: str | os.PathLike) -> Path | None:
    """The copy of the URL ``source`` that an earlier run left in the Keras cache, which
    download_image uses without asking the address again; None for a path, or a URL not
    downloaded yet."""
    if not is_url(source):
        return None
    path = keras_download_folder(DOWNLOAD_CACHE_SUBDIR) / cached_file_name(str(source))
    return path if path.is_file() else None


def earlier_download_notes(sources: list) -> list[str]:
    """A note for each URL among ``sources`` that an earlier run downloaded: the image at the
    address may have changed since, and nothing else would say that the copy is used."""
    copies = {source: earlier_download(source) for source in dict.fromkeys(trimmed_address(str(source))
                                                                            for source in sources)}
    return [f"{source} was downloaded before: using that copy, {path} (delete it to download again)"
            for source, path in copies.items() if path is not None]


def check_address(source: str | os.PathLike) -> None:
    """Refuse an address that is not http(s) (ftp://, file://, ...): read as a file path,
    it gave 'no such file: ftp:/...', with one slash gone. An empty name too (an unset shell
    variable, "$STYLES"): read as a path it is the current folder, whose photos a batch took
    for styles. An http(s) address with a space inside, which urllib refuses, gets its fix."""
    text = str(source)
    if isinstance(source, str) and not source.strip():  # Path("") is already "."
        raise StyleTransferError(f"an input's name is empty ({source!r}: an unset shell variable?)")
    scheme = url_parts(text).scheme.lower()
    if "://" in text and scheme not in URL_SCHEMES:
        raise StyleTransferError(f"cannot read {text}: only {' and '.join(URL_SCHEMES)} addresses are supported")
    inner = text.strip()  # urllib drops blanks at the ends itself (a URL list with CRLF line ends)
    if scheme in URL_SCHEMES and re.search(r"\s", inner):  # urllib called a space a control character
        encoded = re.sub(r"\s", lambda blank: urllib.parse.quote(blank.group()), inner)
        raise StyleTransferError(f"cannot read the address {printable_name(inner)}: an address holds no spaces "
                                 f"(nor tabs or line breaks); write it as {encoded}")


def trimmed_address(source):
    """An input as given, but an http(s) address without the blanks at its ends (a URL list
    with CRLF line ends): urllib drops them itself, and the name of its copy in the cache,
    the notes, the trace and the outputs' names go by the address urllib asks for."""
    if isinstance(source, str) and source != source.strip() and is_url(source):
        return source.strip()
    return source


def trim_addresses(args: argparse.Namespace, *names: str) -> None:
    """The image arguments ``names`` of ``args`` (each a source, a list of them, or None)
    with their addresses trimmed (trimmed_address), before anything reads them."""
    for name in names:
        value = getattr(args, name)
        setattr(args, name, [trimmed_address(item) for item in value] if isinstance(value, list)
                else trimmed_address(value))


def local_image(source: str | os.PathLike, *, timeout: float = DOWNLOAD_TIMEOUT,
                max_bytes: int = MAX_DOWNLOAD_BYTES, max_pixels: int = MAX_IMAGE_PIXELS) -> Path:
    """The file to read for an input given as a path or an http(s) URL (downloaded first)."""
    check_address(source)
    if is_url(source):
        return download_image(str(source), timeout=timeout, max_bytes=max_bytes, max_pixels=max_pixels)
    return Path(source)


def load_figure_input(source: str | os.PathLike, size: int | None, max_pixels: int = MAX_IMAGE_PIXELS, *,
                      model: str, weights: str | None, precision: str, layers) -> np.ndarray:
    """load_image of a figure's image as given, a path or an http(s) URL (downloaded first:
    local_image), at a long side of ``size``; one too small for VGG is named as given, not
    as its download. The network's settings are checked first (before a download), and the
    image is refused before it is decoded, from its header (a URL's download is decoded once,
    to check it), where its forward pass through ``model`` to ``layers`` clearly cannot fit in
    memory (check_forward_pass_memory)."""
    check_weights(weights)
    check_layers(model, layers)
    check_choice("precision", precision, PRECISION_CHOICES)
    path = local_image(source, max_pixels=max_pixels)
    shape = loaded_shape(stored_shape(path, max_pixels), size, what=str(source))
    check_forward_pass_memory(shape, model=model, precision=precision, layers=layers)
    return load_image(path, size, max_pixels, what=str(source))


#: Where Linux describes the processor: machines of one name differ (the 2-core machine's
#: float32 matmul ran at 160-180, 209-222 and 400-465 GFLOP/s in different sessions), so
#: every benchmark report and every run's trace names the processor it ran on.
CPU_INFO = Path("/proc/cpuinfo")
#: Seconds a git command may take before the version is given up as unknown.
GIT_TIMEOUT_SECONDS = 10
#: The files whose changes make a different version of the code (git pathspecs, at any depth):
#: the gallery's results/ and images are tracked too, and a run rewrites its result.
CODE_FILES = ("*.py", "requirements.txt")


def processor_name(cpuinfo: Path = CPU_INFO) -> str:
    """The processor, as specific as the system tells: 'AMD EPYC (family 26, model 2)' from
    Linux's ``cpuinfo`` (the family and model tell apart generations sold under one name),
    else what the platform module knows."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        lines = []
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    generation = ", ".join(f"{name} {fields[key]}" for key, name in (("cpu family", "family"), ("model", "model"))
                           if key in fields)
    return fields["model name"] + (f" ({generation})" if generation else "")


def code_version(folder: Path = PROJECT_DIR) -> str | None:
    """The git commit of the checkout these scripts are in, with '+changes' when its tracked
    code (CODE_FILES) differs from it: a run's settings do not name every constant that has changed
    between versions (the Fourier preconditioner's exponent, say), so a trace names the
    code too. None outside a git checkout or without git."""
    def git(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)

    try:
        commit = git("rev-parse", "--verify", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_FILES)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0 or changes.returncode != 0:
        return None
    return commit.stdout.strip() + ("+changes" if changes.stdout.strip() else "")


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The SHA-256 (or another ``algorithm`` of hashlib's) of a file's bytes, in hex: which
    image an input was, whatever its name, for the trace of a run (a file replaced under the
    same name is told apart)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)  # it tells files apart; it guards no secret
    try:
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(DIGEST_CHUNK_BYTES), b""):
                digest.update(chunk)
    except OSError as error:
        raise StyleTransferError(f"cannot read {path}: {error.strerror or error}") from None
    return digest.hexdigest()


def to_array(image: Image.Image) -> np.ndarray:
    """8-bit PIL image -> floats in [0, 1] (the inverse of to_pil)."""
    return np.asarray(image, dtype=np.float32) / UINT8_MAX


#: How far outside [0, 1] an input's values may lie: resampling rounds a 1 to 1.0000001, and
#: less than one 8-bit step does no harm (the optimized image is clipped to [0, 1]).
PIXEL_TOLERANCE = 1 / 255
#: What a file name comes as: given where pixels are wanted, it is refused with a hint.
FILE_NAME_TYPES = (str, bytes, os.PathLike)


def check_pixels(image, what: str, rgb: bool = True) -> None:
    """Raise StyleTransferError unless ``image`` is an (H, W, 3) array (``rgb``; else an (H, W)
    mask) holding floats in [PIXEL_MIN, PIXEL_MAX], the one pixel convention (load_image and
    load_mask give such arrays). Checked because the rest would run without a word on 8-bit
    values (0-255), and come out nearly white."""
    if isinstance(image, FILE_NAME_TYPES):
        raise StyleTransferError(f"{what} is a file name ({os.fsdecode(image)}), not an array: "
                                 "read it with load_image")
    array, shape = np.asarray(image), "(H, W, 3)" if rgb else "(H, W)"
    if array.ndim != (3 if rgb else 2) or (rgb and array.shape[-1] != 3) or array.size == 0:
        raise StyleTransferError(f"{what} must be an {shape} array (got shape {array.shape})")
    if array.dtype == bool:
        raise StyleTransferError(f"{what} must hold floats in [0, 1] (got bool: use .astype(np.float32))")
    if not np.issubdtype(array.dtype, np.floating):
        raise StyleTransferError(f"{what} must hold floats in [0, 1] (got {array.dtype}: divide 8-bit values "
                                 "by 255)")
    if not np.all(np.isfinite(array)):
        raise StyleTransferError(f"{what} must hold floats in [0, 1] (got NaN or infinite values)")
    if not PIXEL_MIN - PIXEL_TOLERANCE <= array.min() <= array.max() <= PIXEL_MAX + PIXEL_TOLERANCE:
        raise StyleTransferError(f"{what} must hold floats in [0, 1] (got values from {array.min():.3g} to "
                                 f"{array.max():.3g})")


def to_pil(image: np.ndarray | tf.Tensor) -> Image.Image:
    """(H, W, 3) floats in [0, 1] -> 8-bit PIL image."""
    array = np.asarray(image, dtype=np.float32)
    return Image.fromarray(np.round(np.clip(array, PIXEL_MIN, PIXEL_MAX) * UINT8_MAX).astype(np.uint8))


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so set it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def interrupt_deferred():
    """Hold a Ctrl-C that arrives inside the block until the block is done.

    A KeyboardInterrupt can strike between any two Python operations, also
    between creating a temporary file and the ``try`` meant to remove it, and
    leave the file behind. Writing a file takes milliseconds, so it is finished
    first. Only the main thread can handle signals; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:  # deliver it now, to whatever handled it before (KeyboardInterrupt, as a rule)
            signal.raise_signal(signal.SIGINT)


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(temporary_path)`` then rename into ``path``.

    A crash or a full disk never leaves a half-written file at ``path``, and a
    Ctrl-C meanwhile takes effect once the file is written (and nothing is left
    behind).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with interrupt_deferred():
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
            os.close(handle)
            try:
                write(temporary)
                os.chmod(temporary, 0o666 & ~current_umask())  # mkstemp makes it private (0600)
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.remove(temporary)
    except OSError as error:
        raise WriteError(f"could not write {path}: {error.strerror or error}") from error
    return path


def save_image(image: np.ndarray | tf.Tensor, path: str | os.PathLike, quality: int = JPEG_QUALITY,
               text: dict | None = None) -> Path:
    """Write an (H, W, 3) RGB float image in [0, 1], or a batch of one, else a StyleTransferError
    (8-bit values would come out white); the format follows the file extension. ``text`` (PNG only) goes
    into the file's metadata, as save_figure's does."""
    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:  # a batch of one, as the models take it
        array = array[0]
    check_pixels(array, f"the image to save as {path}")
    pil = to_pil(array)
    format_ = Image.registered_extensions().get(Path(path).suffix.lower())
    if format_ is None:
        raise StyleTransferError(f"unknown image format for {path}; use .png or .jpg")
    options = {"quality": quality}
    if text and format_ == "PNG":
        options["pnginfo"] = PngImagePlugin.PngInfo()
        for key, value in text.items():
            options["pnginfo"].add_itxt(key, value)  # iTXt: UTF-8, so any file name survives
    return atomic_write(path, lambda tmp: pil.save(tmp, format=format_, **options))


def new_figure(**options):
    """A matplotlib Figure (``options`` as Figure takes them) of its own, not pyplot's: drawn off
    screen (no display or backend needed), freed with its last reference (pyplot keeps every
    figure until it is closed), and matplotlib's backend and settings left as they were (a
    notebook keeps its own). A title that shows a name is drawn with parse_math=False, as
    written: a '$' in a file name is a dollar sign, not the start of TeX maths (whose parser
    refused 'a$_$b.jpg' and lost the run's panel and trace). Imported on first use: most runs
    draw only at the end."""
    from matplotlib.figure import Figure

    return Figure(**options)


#: Fonts never picked to draw a character the text's font lacks: matplotlib's Last Resort
#: draws one sign for a whole script (any CJK ideograph the same), not the character.
PLACEHOLDER_FONTS = ("Last Resort High-Efficiency",)


@functools.lru_cache(maxsize=None)
def font_characters(font_file: str) -> frozenset:
    """The code points a font file has glyphs for (none for one that cannot be read)."""
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(font_file).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


@functools.lru_cache(maxsize=None)
def font_drawing(character: str) -> str | None:
    """The name of an installed font that draws ``character`` (an upright, regular one first),
    or None."""
    from matplotlib import font_manager

    fonts = sorted(font_manager.fontManager.ttflist, key=lambda font: (font.style != "normal", font.weight != 400))
    return next((font.name for font in fonts if font.name not in PLACEHOLDER_FONTS
                 and ord(character) in font_characters(font.fname)), None)


def add_fallback_fonts(figure) -> None:
    """Give each text of a figure that can name a file (its own, such as the suptitle, and
    each axes' title and texts), after its own fonts, installed fonts that draw the
    characters its first font lacks: a file named 日本.jpg is then named in its title, on a
    machine with a Japanese font, not as two boxes (matplotlib falls back only to fonts
    named). Not tick labels: asking for them makes matplotlib build every axes' ticks, the
    hidden ones too (5 s for a contact sheet of 20 x 20)."""
    from matplotlib import font_manager

    for text in [*figure.texts, *(text for axes in figure.axes for text in (axes.title, *axes.texts))]:
        drawn = font_characters(font_manager.findfont(text.get_fontproperties()))
        lacking = {character for character in text.get_text()
                   if character.isprintable() and ord(character) not in drawn}
        families = text.get_fontfamily()
        fallbacks = [name for name in dict.fromkeys(filter(None, map(font_drawing, sorted(lacking))))
                     if name not in families]  # a figure saved twice: named once
        if fallbacks:
            text.set_fontfamily([*families, *fallbacks])


@contextlib.contextmanager
def font_notes_silenced():
    """matplotlib's notes on fonts left unsaid as a figure is drawn: the warning for each
    character no font has (drawn as a box), and the log line for a fallback font without
    the text's weight ('findfont: Failed to find font weight normal for ..., now using
    500'): the figure is fine, and stderr is for what went wrong."""
    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
            yield
    finally:
        font_log.setLevel(level)


def save_figure(figure, path: str | os.PathLike, dpi: int = FIGURE_DPI, text: dict | None = None) -> Path:
    """Save a matplotlib figure atomically. ``text`` (PNG only) goes into the file's
    metadata, e.g. {"Description": the command that made it}: read it with png_text.
    A character the text's font lacks is drawn in an installed font that has it
    (add_fallback_fonts), one that none has as a box (font_notes_silenced)."""
    image_format = Path(path).suffix[1:].lower() or "png"
    metadata = text if image_format == "png" else None
    with font_notes_silenced():
        add_fallback_fonts(figure)
        return atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=dpi, bbox_inches="tight",
                                                              format=image_format, metadata=metadata))


def png_text(path: str | os.PathLike) -> dict:
    """The text metadata of a PNG file (what save_figure's or save_image's ``text`` wrote); {} for a file
    that is missing, not a PNG or not an image."""
    try:
        with Image.open(path) as image:
            return dict(getattr(image, "text", {}))
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------
# Memory: estimated before the work starts (StyleTransfer's runs, the figures' forward pass)
# ---------------------------------------------------------------------------

GIB = 2 ** 30
#: Bytes of one value.
FLOAT32_BYTES = 4
BFLOAT16_BYTES = 2
#: Bytes of one activation value, by --precision.
ACTIVATION_BYTES = {"float32": FLOAT32_BYTES, "mixed": BFLOAT16_BYTES, "bfloat16": BFLOAT16_BYTES}
#: Copies of each conv activation alive during one forward pass (a figure's, or the one that
#: computes a style image's targets): Keras keeps every layer's output until the pass ends,
#: and each layer's output is briefly there twice (before and after its ReLU). Calibrated on
#: styles of 1024 to 3072 px (--style-scale 4, VGG16 and VGG19; benchmarks/benchmark.py
#: --sections memory): the estimate came out at 1.15-1.28 times the peak measured in
#: float32, 1.23-1.68 in mixed precision (whose float32 copies of the style layers are not
#: all alive at once, and whose peak varies more from run to run).
FORWARD_PASS_COPIES = 1.5
#: TensorFlow, the weights and Python (a 128-px run peaked at 0.8 GiB).
BASELINE_BYTES = 1 * GIB


def activation_bytes(shape, *, model: str, precision: str, layers, float32_layers=(), copies: float) -> int:
    """Bytes of ``copies`` of every conv activation of VGG at ``shape`` = (height, width), up
    to the deepest of ``layers``; at reduced precision plus a float32 copy of each of
    ``float32_layers`` (Gram matrices are computed in float32)."""
    height, width = shape
    deepest = max(layer_position(name) for name in layers)  # (block, conv)

    def positions(block: int) -> int:
        scale = 2 ** (block - 1)  # each pooling halves the size
        return -(-height // scale) * -(-width // scale)

    elements = 0
    for block, (convs, channels) in enumerate(zip(VGG_BLOCKS[model], VGG_CHANNELS), start=1):
        if block > deepest[0]:
            break
        count = convs if block < deepest[0] else deepest[1]
        elements += count * channels * positions(block)
    value_bytes = ACTIVATION_BYTES[resolve_precision(precision)]
    total = elements * value_bytes * copies
    if value_bytes < FLOAT32_BYTES:
        blocks = [layer_position(name)[0] for name in float32_layers]
        total += FLOAT32_BYTES * sum(VGG_CHANNELS[block - 1] * positions(block) for block in blocks)
    return int(total)


def forward_pass_memory(shape, *, model: str, precision: str, layers, float32_layers=()) -> int:
    """Bytes one image of ``shape`` = (height, width) needs on its way through VGG to the
    deepest of ``layers`` (activation_bytes): TensorFlow itself, and FORWARD_PASS_COPIES of
    every activation; no gradient."""
    return int(BASELINE_BYTES + activation_bytes(shape, model=model, precision=precision, layers=layers,
                                                 float32_layers=float32_layers, copies=FORWARD_PASS_COPIES))


#: Where Linux says how much memory is free (MemAvailable), which control groups this
#: process is in, and where those groups' files are mounted.
MEMINFO = Path("/proc/meminfo")
PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_MOUNT = Path("/sys/fs/cgroup")
#: How cgroup v2 and v1 name a group's memory limit, its usage, and the part of the usage that
#: is page cache the kernel drops before it kills anything (inactive files; kubelet's measure)
CGROUP_MEMORY_FILES = {"v2": ("memory.max", "memory.current", "inactive_file"),
                       "v1": ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")}
#: v1 says 'no limit' with the largest page-rounded 64-bit count; no machine has 2**62 bytes
CGROUP_NO_LIMIT = 2 ** 62


def meminfo_available(meminfo: Path = MEMINFO) -> int | None:
    """The kernel's MemAvailable: bytes the machine can give a new allocation without swapping."""
    try:
        with open(meminfo) as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cgroup_headroom(folder: Path, version: str) -> int | None:
    """Bytes a control group's memory limit still leaves: the limit less its working set (the
    usage less inactive page cache); None where the group sets no limit or says nothing."""
    limit_name, usage_name, inactive_key = CGROUP_MEMORY_FILES[version]
    try:
        limit_text = (folder / limit_name).read_text().strip()
        if limit_text == "max" or int(limit_text) >= CGROUP_NO_LIMIT:
            return None
        usage = int((folder / usage_name).read_text())
        stat = dict(line.split()[:2] for line in (folder / "memory.stat").read_text().splitlines()
                    if len(line.split()) >= 2)
        inactive = int(stat.get(inactive_key, 0))
    except (OSError, ValueError):
        return None
    return max(int(limit_text) - max(usage - inactive, 0), 0)


def cgroup_available(proc_cgroup: Path = PROC_CGROUP, mount: Path = CGROUP_MOUNT) -> int | None:
    """Bytes the control groups of this process (a container's memory limit, a systemd slice's)
    still allow it: the least headroom of its group and the groups above it, under cgroup v2
    or v1; None where none sets a limit. MemAvailable alone would give a container the whole
    host's memory, and a run the kernel then kills instead of one refused with the fix."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    headrooms = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1], parts[2].strip().lstrip("/")
        if controllers == "":
            version, base = "v2", mount
        elif "memory" in controllers.split(","):
            version, base = "v1", mount / "memory"
        else:
            continue
        folder = base / path
        if not folder.is_dir():
            # a container without a cgroup namespace of its own sees the host's path, with
            # its own group mounted at the root
            folder = base
        while True:
            headrooms.append(cgroup_headroom(folder, version))
            if folder == base:
                break
            folder = folder.parent
    return least_known(headrooms)


def least_known(counts) -> int | None:
    """The least of ``counts`` that is known (not None); None where none is."""
    return min((count for count in counts if count is not None), default=None)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux): the machine's, or less where a
    control group limits this process; None where unknown."""
    return least_known([meminfo_available(), cgroup_available()])


class NotEnoughMemoryError(StyleTransferError):
    """Work that clearly cannot fit in the memory available: a run (StyleTransfer's
    check_memory), a figure (check_forward_pass_memory)."""


def not_enough_memory(what: str, needed: int, available: int, fix: str) -> NotEnoughMemoryError:
    """The error for ``what`` ('this run') needing ``needed`` bytes where ``available`` are,
    with the ``fix``; below BASELINE_BYTES, which no setting would pass, no fix but freeing
    memory."""
    digits = next(d for d in (1, 2, 3) if d == 3 or f"{needed / GIB:.{d}f}" != f"{available / GIB:.{d}f}")
    # ... so that it never says 'needs 1.1 GiB but only 1.1 GiB is available'
    if available < BASELINE_BYTES:
        fix = f"whatever the settings, {what} is estimated at {BASELINE_BYTES / GIB:.0f} GiB or more (TensorFlow " \
              "and the weights): free some memory (close other programs)"
    return NotEnoughMemoryError(f"{what} needs about {needed / GIB:.{digits}f} GiB of memory but only "
                                f"{available / GIB:.{digits}f} GiB is available; {fix}")


def check_forward_pass_memory(shape, *, model: str, precision: str, layers) -> None:
    """Refuse, on a CPU, a figure whose forward pass at ``shape`` = (height, width) through
    VGG to ``layers`` clearly cannot fit (forward_pass_memory; on a GPU the run says so if it
    runs out: out_of_memory_named). Before, StyleModel.py --size 8192 ran for 13 minutes and
    took 18 GB before it was stopped."""
    check_layers(model, layers)  # before they are read
    if not default_device().startswith("/CPU"):
        return
    precision = resolve_precision(precision)
    available = available_memory()
    need = forward_pass_memory(shape, model=model, precision=precision, layers=layers, float32_layers=layers)
    if available is not None and need > available:
        fix = "use a smaller --size" + (" or --precision mixed" if precision == "float32" else "")
        raise not_enough_memory("this figure", need, available, fix)


# ---------------------------------------------------------------------------
# Pictures of features
# ---------------------------------------------------------------------------


def most_active_channels(features: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` channels with the largest mean activation."""
    return np.argsort(features.reshape(-1, features.shape[-1]).mean(axis=0))[::-1][:count]


def most_active_text(count: int) -> str:
    """What a figure's title calls the ``count`` maps most_active_channels chose."""
    return "the channel of largest mean activation" if count == 1 else \
        f"the {count} channels of largest mean activation"


def plot_feature_maps(features: np.ndarray, title: str = "", count: int = FEATURE_MAPS_SHOWN, axes=None):
    """A grid of the most active feature maps (most_active_channels) of one (H, W, C) layer
    output, each scaled to its own range: its title gives its largest value, so that maps
    can be compared (after ReLU the least is 0; a map of max 0 is a channel this image
    never switches on).

    Returns a new figure titled ``title``, or None when ``axes`` is given (it draws into
    them, and the caller titles the figure they belong to).
    """
    channels = most_active_channels(features, count)
    figure = None
    if axes is None:
        columns = int(np.ceil(np.sqrt(len(channels))))
        rows = int(np.ceil(len(channels) / columns))
        # Cells as wide as they are tall would leave wide maps (a landscape photo's, a
        # panorama's) between bands of white: each cell gets the maps' own shape, and room
        # for its two title lines.
        aspect = min(features.shape[0] / features.shape[1], MAX_CELL_ASPECT)  # a tall strip: squeezed
        cell_height = 2 * aspect + FIGURE_TITLE_INCHES
        figure = new_figure(figsize=(2 * columns, cell_height * rows + FIGURE_TITLE_INCHES), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False)
        figure.suptitle(title, parse_math=False)  # a file name, as written (new_figure)
    axes = np.ravel(axes)
    for axis in axes:
        axis.axis("off")
    for axis, channel in zip(axes, channels):
        axis.imshow(features[..., channel], cmap="viridis")
        axis.set_title(f"channel {channel}\nmax {features[..., channel].max():.3g}", fontsize=8)
    return figure


# ---------------------------------------------------------------------------
# Command line plumbing shared by the three scripts
# ---------------------------------------------------------------------------


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show (None, False), as
    a user would type it: a list as its words, a bundled file relative to the project."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        values = action.default if isinstance(action.default, (list, tuple)) else [action.default]
        shown = " ".join(relative_to_project(value) for value in values).replace("%", "%%")
        return f"{action.help} (default: {shown})"


def relative_to_project(value) -> str:
    """A path inside this project relative to it (images/content/chelsea.jpg); anything else as is."""
    if isinstance(value, (str, os.PathLike)) and Path(value).is_relative_to(PROJECT_DIR):
        return str(Path(value).relative_to(PROJECT_DIR))
    return str(value)


def typed_path(path: str | os.PathLike) -> str:
    """``path`` as it can be typed from the current folder: relative to it where it is inside,
    else absolute (a note naming a bundled file to a user who runs the script from elsewhere)."""
    path = Path(path).absolute()
    try:
        here = Path.cwd()
    except OSError:  # the current folder was deleted
        return str(path)
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


#: How many of the closest flags an unknown flag's error names.
UNKNOWN_FLAG_MATCHES = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's conventions: defaults shown in --help, and a
    bad flag reported as one 'error: ...' line (exit status 2) instead of usage + message."""

    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        # No shortened flags: '--scale 2', meant for --style-scale, ran as --scales 2 without a
        # word. An unknown flag is an error naming the flags it is closest to (unknown_flag_hint).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(**kwargs)
        # A value such as '-1,1,1' is a value, not a flag: before Python 3.13 argparse took
        # only '-1' or '-1.5' for a negative number, and '--style-layer-weights -1,1,1,1,1'
        # failed with 'expected one argument' instead of saying what is wrong with the weights.
        # (Python 3.13 made the same change; no flag of ours starts with '-' and a digit.)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def parse_args(self, args=None, namespace=None):
        self.words = list(sys.argv[1:] if args is None else args)  # for dash_value_hint
        # Flags may come between the file names ('a.jpg --iterations 50 b.jpg'): plain parse_args
        # fills the positionals at the first file name, so the second was 'unrecognized'. Not
        # with '--': Python 3.11's intermixed parsing reads a '-x.jpg' after it as a flag.
        if "--" in self.words:
            parsed = super().parse_args(self.words, namespace)
        else:
            parsed = self.parse_intermixed_args(self.words, namespace)
        try:  # once argparse has found nothing wrong: '-o -- x' is its 'expected one argument'
            check_after_double_dash(self.words)
        except StyleTransferError as error:
            self.error(str(error))
        return parsed

    def error(self, message: str):
        if message.startswith("unrecognized arguments") and "--" in getattr(self, "words", []):
            message = self.double_dash_message(message)
        print(f"error: {message}{self.dash_value_hint(message)}{self.unknown_flag_hint(message)} (see --help)",
              file=sys.stderr)
        sys.exit(EXIT_USAGE)

    def double_dash_message(self, message: str) -> str:
        """'unrecognized arguments' with '--' on the command line: argparse gives the file names
        before '--' their places first, so what follows it had none left. An option after it
        is said to be one (check_after_double_dash); else the file names belong after it."""
        try:
            check_after_double_dash(self.words)
        except StyleTransferError as error:
            return str(error)
        return f"{message} (with '--', put every file name after it)"

    def unknown_flag_hint(self, message: str) -> str:
        """For 'unrecognized arguments: ...': the flags closest to each unknown one ('--scale:
        did you mean --scales or --style-scale?'), and how to give a file whose name starts
        with '-' ('-art.jpg': argparse takes it for a flag)."""
        unknown = message.removeprefix("unrecognized arguments: ") if message.startswith("unrecognized") else ""
        names = [option for option in self._option_string_actions if option.startswith("--")]
        hints, words = [], unknown.split()
        for word in words:
            flag = word.split("=", 1)[0]
            close = difflib.get_close_matches(flag, names, n=UNKNOWN_FLAG_MATCHES) if flag.startswith("--") else []
            if close and flag != "--":
                hints.append(f"{flag}: did you mean {' or '.join(close)}?")
            elif word.startswith("-") and word != "--" and os.path.lexists(word):
                hints.append(f"{word} is a file: write ./{word}, as a word that starts with '-' is read as a flag")
        if not hints and words and all(os.path.lexists(word) or is_url(word) for word in words):
            hints.append(f"more file names than {self.prog} takes")  # 'StyleModel.py paintings/*.jpg'
        return f" ({'; '.join(hints)})" if hints else ""

    def dash_value_hint(self, message: str) -> str:
        """For 'expected one argument' where the word after the flag starts with '-': argparse
        took that word for a flag ('-o -.png'); FLAG=VALUE gives it as the value."""
        missing = re.fullmatch(r"argument (\S+): expected one argument", message)
        flags = missing[1].split("/") if missing else []
        words = getattr(self, "words", []) if missing else []
        words = words[:words.index("--") + 1] if "--" in words else words  # after '--' no word is a flag
        for flag, word in zip(words, words[1:]):
            # The flag as typed (never shortened: allow_abbrev); the word, no flag of ours (nor
            # one shortened: '--gi' is a flag mistyped), nor '--'.
            name = word.split("=", 1)[0]
            if flag in flags and word.startswith("-") and word != "--" \
                    and not any(option.startswith(name) for option in self._option_string_actions):
                return f" ({word!r} starts with '-', as a flag does: write {flag}={word})"
        return ""


class JoinedLists(argparse.Action):
    """A flag taking a list that may be given more than once: the lists are joined
    ('--style-layers a --style-layers b' is both). argparse's default keeps only the last
    list, and its 'extend' would keep the default's items as well."""

    def __call__(self, parser, namespace, values, option_string=None):
        earlier = getattr(namespace, self.dest, None)
        given = [] if earlier is None or earlier is self.default else earlier  # the default is replaced
        setattr(namespace, self.dest, [*given, *values])


def list_flag_hint(lists: dict, images: str) -> str:
    """A hint for an error when the ``images`` (positional arguments) seem to be missing:
    argparse gives a flag taking several values every word after it, so when one of
    ``lists`` (flag -> its values) ends in an image file name it probably took them."""
    for flag, values in lists.items():
        if values and Path(values[-1]).suffix.lower() in IMAGE_EXTENSIONS:
            return (f" ({flag} takes every word after it: if {images} came after {flag}, "
                    f"put {images} before it, or end its list with --)")
    return ""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The --model and --weights flags, identical in every script."""
    group = parser.add_argument_group("network")
    group.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(VGG_MODELS),
                       help="VGG backbone: vgg16 or vgg19 (Gatys et al. used VGG19)")
    group.add_argument("--weights", default=DEFAULT_WEIGHTS,
                       help="'imagenet' (Keras cache or download), a local .h5 file, "
                            "or 'none' for random weights")
    group.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULT_PRECISION,
                       help="arithmetic of the VGG convolutions (Gram matrices and losses stay float32): "
                            "mixed computes in bfloat16 from float32 weights, bfloat16 stores the weights "
                            "in it too; auto: mixed on a CPU with fast bfloat16, else float32")


def weights_argument(value: str) -> str | None:
    """The --weights flag as build_vgg takes it ('none' -> None), its two words in any case
    ('ImageNet' is 'imagenet' unless a file has that name)."""
    if value.lower() == "none":
        return None
    if value.lower() == "imagenet" and not Path(value).exists():
        return "imagenet"
    return value


def check_name_lengths(paths: list[Path], advice: str) -> None:
    """Refuse, before any work, a file name too long for its folder's file system, counted
    as the temporary name atomic_write writes it under (TEMPORARY_NAME_EXTRA more): else a
    run did all its work and then could not save it, or stopped with OSError at the first
    look at the name. ``advice`` ends the message (what to change)."""
    for path in paths:
        folder = existing_ancestor(path)  # a folder still to be made: the file system it will be on
        try:
            limit = os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):  # not told (or not POSIX): the common limit
            limit = NAME_MAX_BYTES
        length = len(os.fsencode(path.name))
        if length + TEMPORARY_NAME_EXTRA > limit:
            raise StyleTransferError(f"the file name {path.name} is too long: {length} bytes, where "
                                     f"{limit - TEMPORARY_NAME_EXTRA} fit in {folder} (with the temporary "
                                     f"name it is first written under); {advice}")


def real_path(path: str | os.PathLike) -> Path:
    """``path`` absolute, with its symbolic links followed, as Path.resolve gives it; but a
    loop of links is left in place (Path.resolve raises RuntimeError in Python 3.11), for
    the file operation that meets it to refuse, as an OSError (run_cli)."""
    return Path(os.path.realpath(path))


def check_no_broken_link(path: Path) -> None:
    """Raise StyleTransferError if ``path`` or one of its folders is a symbolic link to
    nothing (a results folder linked to a drive not mounted, say): no folder or file can
    be made in its place, and following it would check somewhere else."""
    for part in (path.absolute(), *path.absolute().parents):
        if part.is_symlink() and not part.exists():
            try:
                os.path.realpath(part, strict=True)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise StyleTransferError(f"{part} is a loop of symbolic links") from None
            raise StyleTransferError(f"{part} is a symbolic link that leads nowhere (to {os.readlink(part)})")


def existing_ancestor(path: Path) -> Path:
    """The nearest of ``path``'s folders, on its way up, that exists: where the folders
    still to be made for it will go."""
    existing = real_path(path.parent)
    while not existing.exists():
        existing = existing.parent
    return existing


def writable_folder(path: Path) -> None:
    """Raise StyleTransferError unless ``path``'s folder exists or can be created, and is
    writable, and neither it nor ``path`` is a broken link (check_no_broken_link).

    Checked before any work starts, so a bad -o never costs a finished run. The
    check is a real one (a temporary file, removed at once) since permission
    bits do not tell the whole story (root, read-only mounts, /proc).
    """
    check_no_broken_link(path)
    folder = real_path(path.parent)
    existing = existing_ancestor(path)
    if not existing.is_dir():
        raise StyleTransferError(f"cannot create the folder {folder}: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        # The folder exists, so 'No such file or directory' means one of the kernel's own
        # (/proc), where no file can be made: said so, not the misleading strerror. (Or the
        # folder was deleted between the two checks, which this then misnames: rare enough.)
        why = "no files can be made there" if error.errno == errno.ENOENT else error.strerror or error
        raise StyleTransferError(f"cannot write to {existing}: {why}") from error


def replaced_result(other: Path, path: Path) -> str:
    """Why ``path`` cannot be written: ``other``, a result of its own, is one of the pictures
    (the panel, the loss curve) a run writing ``path`` writes beside it."""
    return (f"{other} is another result (the trace beside it names it), which a run writing {path} would "
            "replace with a picture of its own")


def names_a_folder(output: str | os.PathLike) -> bool:
    """Whether an output as typed names a folder, whatever is there: '.', '..', '/', 'out.png/',
    'out.png/.' (Path drops a trailing '/' or '/.': a run would write out.png)."""
    return os.path.basename(os.fspath(output)) in ("", os.curdir, os.pardir)


def choose_output(
    default_stem: str,
    output: str | os.PathLike | None,
    inputs: list,
    overwrite: bool = False,
    siblings=lambda path: [path],
    suffixes: tuple = OUTPUT_SUFFIXES,
    flag: str = "-o",
    another=lambda path: None,
) -> Path:
    """Where a run writes its main file, decided before any work is done.

    With ``-o``: that path, refused if it (or one of its ``siblings(path)``)
    exists, unless ``overwrite``. Without: results/<default_stem>.png, numbered
    (_2, _3, ...) so that an earlier result is never replaced, unless ``overwrite``,
    which takes the first name that is not ``another(path)``'s, nor held by a live run
    (live_run_holds: --overwrite replaces a result, not one being written). An output that
    is one of the ``inputs`` is always refused, and so is one whose siblings are those of
    ``another(path)``, another file's (--overwrite replaces a result, not its neighbour's
    files). Messages name the option as ``flag``.
    """
    if output is not None:
        if not str(output).strip():
            raise StyleTransferError(f"{flag} is empty; give a file name such as result{suffixes[0]}")
        check_output_tilde(str(output), flag)
        path = Path(output)
        if names_a_folder(output):
            raise StyleTransferError(f"{output} is a folder; {flag} needs a file name")
        check_name_lengths(siblings(path), f"choose a shorter {flag}")
    else:
        path, number = RESULTS_DIR / f"{default_stem}.png", 1
        check_name_lengths(siblings(path), f"name the output with {flag}")
        # --overwrite replaces a result of this name, not another's whose files are named alike
        # (the gallery's results/chelsea_starry_night.jpg for the sample pair's .png): numbered past.
        while any(p.exists() for p in siblings(path)) and (not overwrite or another(path) is not None
                                                           or live_run_holds(path, overwrite)):
            number += 1
            path = RESULTS_DIR / f"{default_stem}_{number}.png"
            check_name_lengths(siblings(path), f"name the output with {flag}")
    files = siblings(path)  # once: StyleTransfer's opens a GIF there to see whether a run made it
    folders = [p for p in files if p.is_dir()]
    if path in folders:  # first: '-o some_folder' is a folder, not a file with the wrong ending
        raise StyleTransferError(f"{path} is a folder; {flag} needs a file name")
    if folders:
        raise StyleTransferError(f"{folders[0]} is a folder, in the way of a file that {flag} {path} writes "
                                 f"beside it; remove the folder or choose another {flag}")
    if path.suffix.lower() not in suffixes:  # only -o can miss: the default name ends in .png
        raise StyleTransferError(f"output must end in {' or '.join(suffixes)}: {output}")
    written = [real_path(p) for p in files]
    for source in inputs:
        if real_path(source) in written:
            raise StyleTransferError(f"output {path} would replace the input {source}; choose another {flag}")
    other = another(path)
    if other is not None and real_path(other) in written:  # -o k.png would write k_panel.png, a result
        raise StyleTransferError(f"{replaced_result(other, path)}; choose another {flag}")
    if other is not None:
        raise StyleTransferError(f"the files beside {path} (trace, panel, loss curve) are those of another "
                                 f"result, {other}, and a run writing {path} would replace them; choose "
                                 f"another {flag}, or remove {other} first")
    taken = files_in_the_way(files, path)
    held = placeholder_text(path) if live_run_holds(path, overwrite) else ""  # with --overwrite, files would mix
    if held:
        raise StyleTransferError(f"{held}; wait for it to finish, or choose another {flag}")
    if taken and not overwrite:
        beside = "" if taken[0] == path else f" (a run writing {path} replaces it)"
        raise StyleTransferError(f"{taken[0]} exists{beside}; pass --overwrite to replace it")
    writable_folder(path)
    return path


def placeholder_text(path: Path) -> str:
    """'X is being written by another run now' when a live run holds ``path``: its
    placeholder (held_placeholder: '(the empty file it holds)'), or its run lock
    (run_lock_held), for the message that it is taken, which --overwrite would not cure;
    else ''. (A killed run's placeholder is not in the way: stale_placeholder.)"""
    if held_placeholder(path):
        return f"{path} is being written by another run now (the empty file it holds)"
    return f"{path} is being written by another run now" if run_lock_held(path) else ""


#: The placeholders this process holds (claim_output): each open, with the lock that tells
#: a later run that a live one is writing there (held_placeholder).
HELD_PLACEHOLDERS: dict[Path, io.IOBase] = {}


def held_placeholder(path: Path) -> bool:
    """Whether ``path`` is an empty file locked by a live run (claim_output). The system lets
    go of a process's locks when it ends, however it ends (kill -9, the out-of-memory killer),
    so an empty file left by one that was killed is not held. Where there are no such locks
    (fcntl is for Unix), every empty file counts as held, as before there were."""
    try:
        if not path.is_file() or path.stat().st_size:
            return False
        if fcntl is None:
            return True
        with open(path, "rb") as file:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)  # given back when the file closes
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


#: The folder, in the temporary folder, where a run's lock on its output lives for the whole
#: run (lock_output): outside the output's folder, so that nothing is left there, and
#: apart from the placeholder, whose lock goes when the run first writes its image over it.
#: One per user ({user}: the user's id), which only that user can write: no one else can
#: hold, or block, its locks.
RUN_LOCKS_FOLDER = "styletransfer-locks-{user}"
#: Hex digits of the SHA-256 of an output's path that name its lock file.
RUN_LOCK_KEY_LENGTH = 32
#: How many times a lock is tried before it counts as held, and the wait between tries: a
#: live run holds its lock for the run, a run checking it (run_lock_held, held_placeholder)
#: for a moment, which should not refuse a run starting then.
LOCK_TRIES = 5
LOCK_RETRY_SECONDS = 0.01
#: Opens a lock file without following a link put in its place (0 where the system has no such flag).
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def run_locks_folder() -> Path | None:
    """This user's folder of run locks (RUN_LOCKS_FOLDER), made if need be; None where it
    cannot be used: not a folder of this user's own (another's, or a link), or not made."""
    folder = Path(tempfile.gettempdir()) / RUN_LOCKS_FOLDER.format(user=os.getuid())
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        status = folder.lstat()
    except OSError:
        return None
    return folder if stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid() else None


def run_lock_file(path: Path) -> Path | None:
    """The lock file of an output (None: no run_locks_folder), named by a hash of its path
    with the folder's links followed, one name whatever path leads there: not the name's
    own link, which the run replaces with its image (atomic_write)."""
    folder = run_locks_folder()
    if folder is None:
        return None
    key = hashlib.sha256(os.fsencode(real_path(path.parent) / path.name)).hexdigest()[:RUN_LOCK_KEY_LENGTH]
    return folder / f"{key}.lock"


def exclusive_lock(file) -> bool:
    """Take the exclusive lock on an open file (a descriptor or file object), trying again
    shortly (LOCK_TRIES) where another process only checks it: False when it stays held."""
    for attempt in range(LOCK_TRIES):
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < LOCK_TRIES:
                time.sleep(LOCK_RETRY_SECONDS)
    return False


class RunLock:
    """A run's lock on its output (lock_output), held until release() or the process's end,
    however it ends (the system lets go of it; the file is left, and a later lock takes it)."""

    def __init__(self, descriptor: int | None = None):
        self.descriptor = descriptor  # None: no lock could be taken (no fcntl, say)

    def release(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # the lock goes with it
            self.descriptor = None


def lock_output(path: Path) -> RunLock | None:
    """Lock ``path`` for this run: the lock tells other runs that this one writes it, from
    its choice to its end. None when a live run holds it. Where no lock can be taken (no
    fcntl: Windows; no run_locks_folder), a RunLock of none: the placeholder (claim_output)
    still tells a live run until it writes its image."""
    if fcntl is None:
        return RunLock()
    try:
        lock_file = run_lock_file(path)
        if lock_file is None:
            return RunLock()
        descriptor = os.open(lock_file, os.O_RDONLY | os.O_CREAT | NO_FOLLOW, 0o600)
    except OSError:
        return RunLock()
    try:
        if exclusive_lock(descriptor):
            return RunLock(descriptor)
    except OSError:  # a file system without locks
        os.close(descriptor)
        return RunLock()
    os.close(descriptor)
    return None


def run_lock_held(path: Path) -> bool:
    """Whether a live run holds the run lock on ``path`` (lock_output): this process too,
    from another of its files (a second output of one name is a second run's)."""
    if fcntl is None:
        return False
    try:
        lock_file = run_lock_file(path)
        if lock_file is None:
            return False
        lock = os.open(lock_file, os.O_RDONLY | NO_FOLLOW)
    except OSError:  # none: no run wrote there since the machine started, or none that locks
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)  # given back as it closes
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(lock)
    return False


def live_run_holds(path: Path, overwrite: bool) -> bool:
    """Whether a live run holds ``path`` (run_lock_held, or held_placeholder), so that this
    one may not write it: with ``overwrite`` only where a lock says so, as --overwrite takes
    any other empty file (where there are no locks, a killed run's placeholder is one)."""
    return run_lock_held(path) or (held_placeholder(path) and (not overwrite or fcntl is not None))


def stale_placeholder(path: Path) -> bool:
    """Whether ``path`` is an empty file that no live run holds: a killed run's placeholder
    (or an empty file of the user's: nothing to lose), which a run may take over."""
    try:
        return path.is_file() and path.stat().st_size == 0 and not held_placeholder(path)
    except OSError:
        return False


def files_in_the_way(files: list[Path], image: Path) -> list[Path]:
    """Those of a run's ``files`` (writing ``image``) that exist: all but a killed run's empty
    placeholder at ``image``, which claim_output takes over."""
    return [path for path in files if path.exists() and not (path == image and stale_placeholder(path))]


def claim_output(path: Path) -> list[Path]:
    """Create ``path`` as an empty file, and the folders it needs: a placeholder, so
    that a run started meanwhile sees the name taken (the real file is written only
    later), locked while this process holds it (held_placeholder). A stale placeholder
    is taken over as if made here. Returns what it created, the file first, then the
    folders innermost first. Raises FileExistsError if ``path`` exists otherwise."""
    folders = []
    parent = path.parent
    while not parent.exists():
        folders.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        file = open(path, "xb")
    except FileExistsError:
        if not stale_placeholder(path):
            raise
        file = open(path, "rb")
    if fcntl is not None and not exclusive_lock(file):  # another run took the stale placeholder over first
        file.close()
        raise FileExistsError(path)
    HELD_PLACEHOLDERS[path] = file
    return [path, *folders]


def hold_output(path: Path, replacing: bool) -> tuple[RunLock, list[Path]]:
    """Hold ``path`` for this run: lock it (lock_output) and, unless ``replacing`` a result
    that is there, claim it (claim_output). Returns the lock and what the claim created;
    FileExistsError when a live run holds the name, or another run took it meanwhile."""
    lock = lock_output(path)
    if lock is None:
        raise FileExistsError(path)
    try:
        return lock, ([] if replacing else claim_output(path))
    except BaseException:
        lock.release()
        raise


def release_unwritten(created: list[Path]) -> None:
    """Remove what claim_output created if nothing was written there after all:
    the placeholder if still empty, then each folder it made if still empty; its lock is
    given back."""
    for made in created:
        held = HELD_PLACEHOLDERS.pop(made, None)
        if held is not None:
            held.close()
        try:
            if made.is_dir():
                made.rmdir()  # only if empty: OSError otherwise
            elif made.is_file() and made.stat().st_size == 0:
                made.unlink()
        except OSError:
            pass  # written to, or already gone: keep it


@contextlib.contextmanager
def reserved_output(default_stem: str, output: str | os.PathLike | None, inputs: list, overwrite: bool = False,
                    **choose):
    """choose_output(), then hold the name for the length of the block.

    The main file is created empty at once (claim_output) when it does not exist
    yet, so two runs started together never pick the same numbered name, nor
    both write one ``-o``; if the block ends without writing it (an error, a
    Ctrl-C before any image), the placeholder and any folder made for it go again.
    The name is locked for the whole block (lock_output), a result being replaced
    with --overwrite too: the placeholder's lock goes as the image is first written.
    """
    while True:
        path = choose_output(default_stem, output, inputs, overwrite, **choose)
        try:
            lock, created = hold_output(path, replacing=overwrite and path.exists()
                                        and not live_run_holds(path, overwrite))
            break
        except FileExistsError:  # another run took the name since choose_output looked
            if not path.parent.is_dir():  # no: its folder cannot be made (a link to nowhere), nor ever will be
                raise StyleTransferError(f"cannot create the folder {path.parent}") from None
            if output is not None and not overwrite:
                raise StyleTransferError(f"{path} exists; pass --overwrite to replace it") from None
            continue  # the next free number; with --overwrite, choose_output looks at what took it
        except OSError as error:
            raise StyleTransferError(f"cannot write {path}: {error.strerror or error}") from error
    try:
        yield path
    finally:
        release_unwritten(created)
        lock.release()


def add_output_arguments(parser: argparse.ArgumentParser, what: str):
    """The -o and --overwrite flags (``what`` is -o's help); returns their group for more flags."""
    group = parser.add_argument_group("output")
    group.add_argument("-o", "--output", help=what)
    group.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return group


def pixel_count(text: str) -> int:
    """--max-pixels for argparse: a whole number, also in exponent notation ('5e7'), as
    a pixel count is easier to type that way. Decimal, not float, so that a number too
    long for a float's 53 bits is read exactly; above MAX_PIXEL_COUNT it is refused before
    it is made an int ('1e999999999' would take a gigabyte)."""
    try:
        number = decimal.Decimal(text)  # also reads 1_000_000
    except decimal.InvalidOperation:
        number = None
    if number is not None and number.is_finite() and number.copy_abs() > MAX_PIXEL_COUNT:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_PIXEL_COUNT:,} pixels, got {text!r}")
    if number is None or not number.is_finite() or number != number.to_integral_value():
        raise argparse.ArgumentTypeError(f"expected a whole number (such as 50000000 or 5e7), got {text!r}")
    return int(number)


def add_image_arguments(parser: argparse.ArgumentParser, size: int):
    """The --size and --max-pixels flags; returns their group."""
    group = parser.add_argument_group("images")
    group.add_argument("--size", type=int, default=size,
                       help=f"long side (pixels, {MIN_SIZE} to {MAX_SIZE}) images are resized to")
    group.add_argument("--max-pixels", type=pixel_count, default=MAX_IMAGE_PIXELS,
                       help="refuse input images with more pixels than this (decompression bombs)")
    return group


def check_image_arguments(args: argparse.Namespace) -> None:
    """The --size and --max-pixels flags (from add_image_arguments) are usable."""
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise StyleTransferError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {args.size})")
    if args.max_pixels <= 0:
        raise StyleTransferError(f"--max-pixels must be positive (got {args.max_pixels})")


def is_utf8(text: str) -> bool:
    """Whether ``text`` (a word of the command line, a file name) is UTF-8, as Python reads
    it: a name in another encoding (from an old system or archive) could be opened, but not
    printed, put in a picture's title or recorded in its metadata, and that is found out
    only once a run is done."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(text: str) -> str:
    """``text`` as it can be printed on one line: the bytes of a name that is not UTF-8 shown
    as '\ufffd', control characters (a newline in a file name) as Python writes them ('\\n')."""
    try:
        text = os.fsencode(text).decode("utf-8", errors="replace")
    except UnicodeEncodeError:  # a lone surrogate no file name gave (a JSON trace can hold one)
        text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return "".join(repr(char)[1:-1] if unicodedata.category(char) == "Cc" else char for char in text)


def print_note(note: str) -> None:
    """A note for the user, on one line (printable_name: a file name in it may hold a newline)."""
    print(f"note: {printable_name(note)}")


def check_utf8(text: str) -> None:
    """Raise StyleTransferError unless ``text`` is UTF-8 (is_utf8)."""
    if not is_utf8(text):
        raise StyleTransferError(f"{printable_name(text)} is not UTF-8 text (a file name from another system?): "
                                 "rename it with UTF-8 characters")


def check_after_double_dash(arguments: list[str]) -> None:
    """Raise StyleTransferError for a word after '--' that looks like an option and names no
    file: '--' makes every word after it a file name, so 'a.jpg b.jpg -- -o out.png' read
    '-o' as a second style, and said only 'no such file: -o'. (ArgumentParser checks it.)"""
    if "--" not in arguments:
        return
    for word in arguments[arguments.index("--") + 1:]:
        if word.startswith("-") and len(word) > 1 and not os.path.lexists(word):
            raise StyleTransferError(f"{word} comes after '--', so it is read as a file name, and there is "
                                     "no such file; put the options before '--'")


def invocation(script_file: str, argv: list[str] | None) -> tuple[list[str], str]:
    """The arguments to parse, and the command a result records as what made it, in a form
    that can be typed again in the same folder: 'python path/to/StyleTransfer.py a.jpg b.jpg'.
    ``argv`` None: this process's own command line; given (a test, another script): the
    script's file name with those arguments. A word that is not UTF-8 (check_utf8) ends the
    process here, as argparse's own errors do: one line and EXIT_USAGE."""
    script, arguments = (sys.argv[0], sys.argv[1:]) if argv is None else (Path(script_file).name, list(argv))
    try:
        for word in [script, *arguments]:
            check_utf8(word)
    except StyleTransferError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    command = shlex.join(["python", script, *arguments])
    if arguments[-1:] == ["--"]:
        # Nothing follows it, so it means nothing; argparse (Python 3.11) would refuse it
        # after a list flag ('... --style-masks a.png b.png --').
        arguments = arguments[:-1]
    return arguments, command


def output_closed() -> None:
    """The reader of our standard output went away (``python StyleTransfer.py ... | head``):
    from now on what is printed goes to the null device, so that the run goes on and saves
    its work, where the next line printed raised BrokenPipeError and lost it."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.__stdout__.fileno())
    finally:
        os.close(null)


class OutlivesItsReader:
    """sys.stdout while a command runs (run_cli): a write or flush that finds the reader gone
    (BrokenPipeError) sends it and the rest to the null device (output_closed) instead of
    ending the run. Anything else is the stream's own."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            output_closed()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            output_closed()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def terminate_as_interrupt(signum, frame) -> None:
    """SIGTERM or SIGHUP (INTERRUPTING_SIGNALS) handled as a Ctrl-C: raised again as SIGINT,
    so it is held where a Ctrl-C is (interrupt_deferred) and then saves the best image so
    far, instead of ending the process on the spot with a run's output name still held by
    an empty file."""
    signal.raise_signal(signal.SIGINT)


def run_cli(main_function) -> None:
    """Run ``main_function`` and exit with the status it returns.

    User errors become one 'error: ...' line on stderr and exit status 2 (EXIT_USAGE; 1,
    EXIT_FAILED, for a file that could not be written: WriteError, or a path the operating
    system refuses: OSError);
    a Ctrl-C, SIGTERM or SIGHUP outside the optimization (which keeps its best image itself) one
    'interrupted' line and status 130 (EXIT_INTERRUPTED). The signals' handlers are put
    back afterwards, for a program that calls a script's main().
    """
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, *interrupting_signals())}
    # Ctrl-C raises KeyboardInterrupt even where the shell started us with
    # SIGINT ignored (background jobs), so an interrupt always saves the result.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in interrupting_signals():
        signal.signal(number, terminate_as_interrupt)
    stdout = sys.stdout
    # None where the shell started us with standard output closed ('>&-'): every print would
    # fail, so what is printed goes to the null device (which also takes file descriptor 1,
    # where a file opened later would otherwise land and receive what a library prints).
    stream = stdout if stdout is not None else open(os.devnull, "w", encoding="utf-8")
    sys.stdout = OutlivesItsReader(stream)
    try:
        status = main_function()
    except StyleTransferError as error:
        print(f"error: {printable_name(str(error))}", file=sys.stderr)  # one line, whatever file it names
        sys.exit(error.exit_status)
    except OSError as error:  # a path the system refuses outright: a name over 255 bytes, a loop of links
        print(printable_name(f"error: {error.filename}: {error.strerror}" if error.filename and error.strerror
                             else f"error: {error_summary(error)}"), file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        sys.stdout.flush()  # here, not at exit, where a reader gone would be a BrokenPipeError message
        sys.stdout = stdout
        if stream is not stdout:
            stream.close()
        put_back(handlers)
    if status:
        sys.exit(status)


def show_content_features(
    image_path: str | os.PathLike,
    *,
    layer: str = CONTENT_LAYER,
    model: str = DEFAULT_MODEL,
    weights: str | None = DEFAULT_WEIGHTS,
    size: int = FIGURE_SIZE,
    count: int = FEATURE_MAPS_SHOWN,
    max_pixels: int = MAX_IMAGE_PIXELS,
    precision: str = DEFAULT_PRECISION,
):
    """Features of ``layer`` for one image, a file or an http(s) URL: returns (features array, figure)."""
    check_count(count)
    image = load_figure_input(image_path, size, max_pixels, model=model, weights=weights, precision=precision,
                              layers=[layer])
    with seeded(DEFAULT_SEED):  # random weights: the same figure every time
        extractor = build_content_model(layer, model, weights, precision)
    features = np.asarray(extractor(image[None])[layer][0], dtype=np.float32)
    height, width, channels = features.shape
    title = (f"{source_name(image_path)}: {model}{weights_note(weights)} {layer}, {height}x{width} positions "
             f"x {channels} channels;\n{most_active_text(min(count, channels))}")
    return features, plot_feature_maps(features, title, count)


def check_count(count: int, most: int | None = None) -> None:
    """Raise StyleTransferError unless --count (feature maps shown) is at least 1 (and at
    most ``most``)."""
    if count < 1 or (most is not None and count > most):
        limits = "at least 1" if most is None else f"from 1 to {most}"
        raise StyleTransferError(f"--count must be {limits} (got {count})")


def weights_note(weights: str | None) -> str:
    """What a figure's title says of the weights: nothing for ImageNet's, else which."""
    if weights is None:
        return " (random weights)"
    return "" if weights == DEFAULT_WEIGHTS else f" ({Path(weights).name})"


#: What TensorFlow says when a GPU runs out of memory but raises InternalError or UnknownError
#: rather than ResourceExhaustedError: in a copy to the device ("Dst tensor is not initialized"),
#: in cuDNN's or cuBLAS's workspace (CUDNN_STATUS_ALLOC_FAILED).
OUT_OF_MEMORY_WORDS = ("dst tensor is not initialized", "out of memory", "failed to allocate", "alloc_failed")


@contextlib.contextmanager
def out_of_memory_named():
    """Running out of device memory raised as ResourceExhaustedError however TensorFlow words
    it (OUT_OF_MEMORY_WORDS), so that the one ``except`` that turns it into a one-line error
    (or, in batch mode, into running the pairs in smaller batches) catches it."""
    try:
        yield
    except (tf.errors.InternalError, tf.errors.UnknownError) as error:
        if not any(words in str(error).lower() for words in OUT_OF_MEMORY_WORDS):
            raise
        raise tf.errors.ResourceExhaustedError(None, None, str(error)) from error


def typed_name(action: argparse.Action, words: list[str]) -> str:
    """Which name of a flag with aliases (--layers, --style-layers) the command line used:
    the last one in ``words`` (before any '--'), as --flag or --flag=value; else its first."""
    words = words[:words.index("--")] if "--" in words else words
    typed = [word.split("=", 1)[0] for word in words if word.split("=", 1)[0] in action.option_strings]
    return typed[-1] if typed else action.option_strings[0]


def figure_main(argv, *, script: str, description: str, image_help: str, suffix: str, add_arguments,
                draw, check=lambda args: None) -> None:
    """The command line shared by ContentModel.py and StyleModel.py: one image in, one figure out.

    ``add_arguments(parser)`` adds the script's own flags and returns those that take a
    list (the actions parser.add_argument returned), for the hint when one took the image;
    ``draw(args)``
    returns (figure, lines to print) for ``args.image`` (a file, or an http(s) URL that
    the script's show function downloads); ``check(args)`` refuses the script's own flags'
    bad values before any work (its show function checks them too, for callers from Python). The
    figure's PNG metadata holds the command that made it (see invocation).
    """
    argv, command = invocation(script, argv)
    parser = ArgumentParser(prog=Path(script).name, description=description)  # as typed, from Python too
    # nargs="?", required below: so that a list flag that took the image can be named.
    parser.add_argument("image", nargs="?", help=f"{image_help} (a file or an http(s) URL)")
    list_flags = add_arguments(parser)
    add_image_arguments(parser, FIGURE_SIZE)
    add_output_arguments(parser, "PNG figure to write (default: under results/, named after the "
                                 "image, numbered so nothing is replaced; with --overwrite, unnumbered)")
    add_model_arguments(parser)
    # The usage line shows the image as what it is, required (argparse would bracket it).
    parser.usage = parser.format_usage().removeprefix("usage: ").rstrip().replace(" [image]", " image")
    args = parser.parse_args(argv)
    if args.image is None:
        lists = {typed_name(action, parser.words): getattr(args, action.dest) for action in list_flags}
        parser.error("the following arguments are required: image" + list_flag_hint(lists, "the image"))

    def run():
        trim_addresses(args, "image")
        check_image_arguments(args)
        check(args)
        with reserved_output(f"{source_stem(args.image)}{suffix}", args.output, [args.image],
                             args.overwrite, suffixes=(".png",)) as output:
            for note in earlier_download_notes([args.image]):
                print_note(note)
            try:  # a URL is downloaded only now, once the output is known to be writable
                with out_of_memory_named():
                    figure, lines = draw(args)
            except tf.errors.ResourceExhaustedError:  # a large --size on a small GPU, say
                raise StyleTransferError(f"out of memory at --size {args.size}; try a smaller --size") from None
            with interrupt_deferred():  # a Ctrl-C during the write still lets us say where the figure is
                save_figure(figure, output, text={"Description": command})
                print("\n".join([*lines, printable_name(f"figure -> {output}")]))

    run_cli(run)


def main(argv: list[str] | None = None) -> None:
    def add_arguments(parser):
        # --content-layer too: StyleTransfer.py's name for it.
        parser.add_argument("--layer", "--content-layer", default=CONTENT_LAYER, help="VGG layer to show")
        parser.add_argument("--count", type=int, default=FEATURE_MAPS_SHOWN, help="feature maps shown")
        return []  # no flag takes a list

    def draw(args):
        features, figure = show_content_features(
            args.image, layer=args.layer, model=args.model, weights=weights_argument(args.weights),
            size=args.size, count=args.count, max_pixels=args.max_pixels, precision=args.precision)
        lines = [f"{args.model} {args.layer}: features {features.shape}"]
        if args.count > features.shape[-1]:
            lines.append(f"note: {args.layer} has {features.shape[-1]} channels: all are shown")
        return figure, lines

    figure_main(argv, script=Path(__file__).name,
                description="Show what VGG's content layer sees: save a grid of its most active feature maps.",
                image_help="photo to look at", suffix="_content_features", add_arguments=add_arguments,
                draw=draw, check=lambda args: check_count(args.count))


if __name__ == "__main__":
    main()
