"""The shared VGG builder: outputs, truncation, freezing, weights, preprocessing."""

from __future__ import annotations

import io
import re
import socket

import keras
import numpy as np
import pytest
import tensorflow as tf

import ContentModel
from ContentModel import StyleTransferError, build_vgg

INPUT_SHAPE = (1, 64, 96, 3)
LAYERS = ["block1_conv1", "block3_conv1", "block5_conv2"]
EXPECTED_SHAPES = {
    "block1_conv1": (1, 64, 96, 64),
    "block3_conv1": (1, 16, 24, 256),
    "block5_conv2": (1, 4, 6, 512),
}


@pytest.fixture(scope="module", params=["vgg16", "vgg19"])
def random_vgg(request):
    """(model name, extractor) with random weights: for shapes and structure."""
    return request.param, build_vgg(request.param, LAYERS, weights=None)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).uniform(size=INPUT_SHAPE).astype(np.float32)


def block_number(layer_name: str) -> int | None:
    if layer_name.startswith("block"):
        return int(layer_name.split("_")[0][len("block"):])
    return None


def test_outputs_are_the_requested_layers_with_the_right_shapes(random_vgg, image):
    _, extractor = random_vgg
    outputs = extractor(image)
    assert set(outputs) == set(LAYERS)
    for name in LAYERS:
        assert tuple(outputs[name].shape) == EXPECTED_SHAPES[name], name
        assert np.all(np.isfinite(np.asarray(outputs[name])))


def test_any_image_size_is_accepted(random_vgg):
    _, extractor = random_vgg
    outputs = extractor(np.zeros((1, 32, 48, 3), np.float32))
    assert tuple(outputs["block1_conv1"].shape) == (1, 32, 48, 64)
    assert tuple(outputs["block5_conv2"].shape) == (1, 2, 3, 512)


def test_model_is_frozen(random_vgg):
    _, extractor = random_vgg
    assert extractor.trainable_weights == []
    assert len(extractor.non_trainable_weights) > 0
    assert all(not layer.trainable for layer in extractor.layers if layer.weights)


def test_conv_layer_names_differ_between_vgg16_and_vgg19():
    assert len(ContentModel.conv_layer_names("vgg16")) == 13
    assert len(ContentModel.conv_layer_names("vgg19")) == 16
    assert "block5_conv4" in ContentModel.conv_layer_names("vgg19")
    assert "block5_conv4" not in ContentModel.conv_layer_names("vgg16")


def test_layer_position_reads_block_and_conv_from_the_name():
    names = ContentModel.conv_layer_names("vgg19")
    positions = [ContentModel.layer_position(name) for name in names]
    assert positions == sorted(positions) and len(set(positions)) == len(names)
    assert positions[-1] == (5, 4) and ContentModel.layer_position("block3_conv2") == (3, 2)


@pytest.mark.parametrize("model", ["vgg16", "vgg19"])
def test_network_is_truncated_after_the_deepest_requested_layer(model):
    extractor = build_vgg(model, ["block1_conv2", "block2_conv1"], weights=None)
    names = [layer.name for layer in extractor.layers]
    assert "block2_conv1" in names and "block1_conv2" in names
    assert "block2_conv2" not in names
    assert not [name for name in names if (block_number(name) or 0) >= 3], names
    outputs = extractor(np.zeros((1, 40, 40, 3), np.float32))
    assert set(outputs) == {"block1_conv2", "block2_conv1"}
    assert tuple(outputs["block2_conv1"].shape) == (1, 20, 20, 128)


def test_outputs_keep_the_requested_order_and_drop_duplicates():
    extractor = build_vgg("vgg16", ["block2_conv1", "block1_conv1", "block2_conv1"], weights=None)
    outputs = extractor(np.zeros((1, 32, 32, 3), np.float32))
    assert sorted(outputs) == ["block1_conv1", "block2_conv1"]
    assert tuple(outputs["block1_conv1"].shape) == (1, 32, 32, 64)
    assert tuple(outputs["block2_conv1"].shape) == (1, 16, 16, 128)


@pytest.mark.parametrize("model", ["vgg16", "vgg19"])
def test_unknown_layer_lists_the_valid_names(model):
    with pytest.raises(StyleTransferError) as info:
        build_vgg(model, ["block1_conv1", "block9_conv9"], weights=None)
    message = str(info.value)
    assert "block9_conv9" in message
    for valid in ContentModel.conv_layer_names(model):
        assert valid in message


def test_one_layer_name_as_a_string_is_refused_as_such():
    """Not 'unknown layer b, l, o, c, k, ...': build_vgg used to split the string into
    letters (removing repeats) before its check could see a string."""
    with pytest.raises(StyleTransferError, match="a list of names, not one string"):
        build_vgg("vgg19", "block1_conv1", weights=None)


def test_the_feature_map_figures_say_what_they_show(sample_images):
    """Which image, model, weights and layer; each map's channel and largest value (the maps
    are each scaled to their own range); why these channels; and, in StyleModel's figure,
    each Gram matrix's size, largest value and that it is drawn as log(1 + G)."""
    import StyleModel

    features, figure = ContentModel.show_content_features(sample_images[0], layer="block1_conv2", model="vgg16",
                                                          weights=None, size=64, count=3)
    title = figure._suptitle.get_text()
    assert title.startswith(f"{sample_images[0].name}: vgg16 (random weights) block1_conv2, 43x64 positions x 64")
    assert "the 3 channels of largest mean activation" in title
    _, one = ContentModel.show_content_features(sample_images[0], layer="block1_conv2", model="vgg16",
                                                weights=None, size=64, count=1)
    assert one._suptitle.get_text().endswith("\nthe channel of largest mean activation")  # not 'the 1 of'
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    means = features.reshape(-1, features.shape[-1]).mean(axis=0)
    channels = sorted(range(features.shape[-1]), key=lambda c: -means[c])[:3]  # largest mean activation first
    assert titles == [f"channel {c}\nmax {features[..., c].max():.3g}" for c in channels]
    grams, figure = StyleModel.show_style_features(sample_images[1], layers=["block1_conv1"], model="vgg16",
                                                   weights=None, size=64)
    assert "(random weights) style features" in figure._suptitle.get_text()
    gram = np.asarray(grams[0])[0]
    assert figure.axes[0].get_title() == f"block1_conv1\nGram 64x64, max {gram.max():.3g}\nshown as log(1 + G)"


def test_the_figures_of_random_weights_are_the_same_every_time(sample_images):
    """--weights none: the weights are drawn from a fixed seed, so the figure can be made again."""
    first, _ = ContentModel.show_content_features(sample_images[0], layer="block1_conv2", model="vgg16",
                                                  weights=None, size=64)
    np.random.seed(123)  # whatever the state of the generators before
    second, _ = ContentModel.show_content_features(sample_images[0], layer="block1_conv2", model="vgg16",
                                                   weights=None, size=64)
    np.testing.assert_array_equal(first, second)


def test_a_ctrl_c_while_the_network_is_built_stays_a_ctrl_c(monkeypatch):
    """Keras infers a Lambda layer's output shape inside a bare 'except:', which turned a
    Ctrl-C arriving then into NotImplementedError (a traceback, exit 1): build_vgg gives
    the preprocessing layer its shape, so nothing is inferred there."""
    from keras.src.layers.core import lambda_layer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lambda_layer.backend, "compute_output_spec", interrupted)
    extractor = build_vgg("vgg16", ["block1_conv1"], weights=None)
    assert extractor(np.zeros((1, 32, 32, 3), np.float32))["block1_conv1"].shape == (1, 32, 32, 64)


def test_an_empty_layer_name_is_named_as_such():
    with pytest.raises(StyleTransferError, match="^unknown layer '' for vgg19; valid layers: block1_conv1"):
        build_vgg("vgg19", [""], weights=None)


def test_layer_names_joined_by_commas_are_told_to_go_apart():
    """'--style-layers block1_conv1,block2_conv1', as the weights' flags take their numbers."""
    with pytest.raises(StyleTransferError, match="^unknown layer block1_conv1,block2_conv1 for vgg19; separate the "
                                                 "names with spaces, not commas; valid layers: block1_conv1"):
        build_vgg("vgg19", ["block1_conv1,block2_conv1"], weights=None)


def test_a_tall_strips_feature_maps_make_a_figure_of_bounded_height(tmp_path):
    """Cells take the maps' shape, up to MAX_CELL_ASPECT times as tall as wide: a 32 x 4096 px
    strip's made a figure 100,000 px tall."""
    from PIL import Image

    strip = tmp_path / "strip.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 32, 3), dtype=np.uint8)).save(strip)
    _, figure = ContentModel.show_content_features(strip, layer="block1_conv1", model="vgg16", weights=None,
                                                   size=512, count=4)
    width, height = figure.get_size_inches()
    assert height <= 2 * (2 * ContentModel.MAX_CELL_ASPECT + ContentModel.FIGURE_TITLE_INCHES) + 1, height


@pytest.mark.parametrize("count, layers", [(1, None), (2, ["block1_conv1"])])
def test_the_style_figures_title_clears_the_layer_titles(sample_images, count, layers):
    """With one or two feature maps per layer the figure was short enough for its two-line
    title to be drawn over the layers' titles."""
    import StyleModel

    _, figure = StyleModel.show_style_features(sample_images[1], layers=layers or StyleModel.STYLE_LAYERS,
                                               model="vgg16", weights=None, size=64, count=count)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # laid out as when saved
    renderer = canvas.get_renderer()
    title = figure._suptitle.get_window_extent(renderer)
    for axis in figure.axes:
        assert title.y0 >= axis.title.get_window_extent(renderer).y1, (title, axis.title.get_text())


def test_pooling_layer_is_not_a_valid_feature_layer():
    with pytest.raises(StyleTransferError):
        build_vgg("vgg16", ["block1_pool"], weights=None)


@pytest.mark.parametrize("model", ["vgg17", "resnet50", ""])
def test_unknown_model(model):
    with pytest.raises(StyleTransferError, match="vgg16"):
        build_vgg(model, ["block1_conv1"], weights=None)


# --- weights -----------------------------------------------------------------------


def test_vgg16_weights_from_a_file(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None)
    path = tmp_path / "my_vgg16.weights.h5"  # Keras 3 save_weights/load_weights want this suffix
    source.save_weights(path)
    expected = {name: source.get_layer(name).get_weights()[0] for name in ("block1_conv1", "block2_conv2")}

    assert ContentModel.check_weights(path) == str(path)  # as Keras takes it: a string
    extractor = build_vgg("vgg16", ["block1_conv1", "block2_conv2"], weights=path)
    for name, kernel in expected.items():
        np.testing.assert_array_equal(extractor.get_layer(name).get_weights()[0], kernel)
    # Random initialisations differ, so equality above really means "loaded".
    other = build_vgg("vgg16", ["block1_conv1"], weights=None)
    assert not np.array_equal(other.get_layer("block1_conv1").get_weights()[0], expected["block1_conv1"])


def test_missing_weights_file(tmp_path):
    with pytest.raises(StyleTransferError, match="not found"):
        build_vgg("vgg16", ["block1_conv1"], weights=str(tmp_path / "nothere.h5"))
    with pytest.raises(StyleTransferError, match=r"is a folder; give a weights file \(ending in .h5 or .hdf5\); "
                                                 "it holds none"):
        build_vgg("vgg16", ["block1_conv1"], weights=str(tmp_path))


def test_a_weights_folder_is_refused_naming_the_weights_files_in_it(tmp_path):
    """A Keras cache such as ~/.keras keeps the files in models/: they are named too."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg19.h5").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    named = re.escape(f"give the weights file in it: {tmp_path / 'models' / 'vgg19.h5'}") + "$"
    with pytest.raises(StyleTransferError, match=named):
        ContentModel.check_weights(tmp_path)
    for name in ("a.h5", "b.hdf5", "c.h5"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(StyleTransferError) as info:
        ContentModel.check_weights(tmp_path)
    assert str(info.value).endswith(f"give one of the weights files in it: {tmp_path / 'a.h5'}, {tmp_path / 'b.hdf5'}, "
                                    f"{tmp_path / 'c.h5'} (and 1 more)")


def test_a_library_message_in_an_error_is_its_first_line_cut_at_a_word():
    """Keras's long 'File format not supported' message ended mid-word ('Orbax ch')."""
    message = "File format not supported: " + " ".join(f"word{i}" for i in range(60)) + "\nsecond line"
    summary = ContentModel.error_summary(ValueError(message))
    assert len(summary) <= ContentModel.ERROR_DETAIL_WIDTH and summary.endswith(" ...")
    assert set(summary.removesuffix(" ...").split()) <= set(message.splitlines()[0].split())
    assert ContentModel.error_summary(OSError()) == "OSError"


def test_vgg19_weights_file_given_to_vgg16_is_refused(vgg19_weights):
    with pytest.raises(StyleTransferError) as info:
        build_vgg("vgg16", ["block1_conv1"], weights=str(vgg19_weights))
    assert "vgg16" in str(info.value)


def test_corrupt_weights_file_is_refused(tmp_path):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(StyleTransferError):
        build_vgg("vgg16", ["block1_conv1"], weights=str(path))


@pytest.fixture
def offline(monkeypatch):
    """No network, whatever machine the tests run on: every connection attempt fails."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test suite")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_vgg16_imagenet_offline_explains_how_to_get_weights(offline, keras_home):
    assert not (keras_home / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").exists()
    with pytest.raises(StyleTransferError) as info:
        build_vgg("vgg16", ["block1_conv1"], weights="imagenet")
    message = str(info.value)
    assert "--weights" in message
    assert "KERAS_HOME" in message
    # VGG19's file is in the cache (conftest.py): that model runs offline.
    assert message.endswith(f"; {keras_home / 'models'} has the vgg19 weights: --model vgg19 uses them")


def test_a_cut_short_weights_file_is_not_offered_as_another_model_to_use(offline, tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"\x89HDF" * 100)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert ContentModel.cached_models() == []
    with pytest.raises(StyleTransferError) as info:
        build_vgg("vgg16", ["block1_conv1"], weights="imagenet")
    assert "--model vgg19" not in str(info.value)


def test_vgg19_imagenet_comes_from_the_keras_cache(vgg19_weights, offline):
    from_cache = build_vgg("vgg19", ["block1_conv1", "block5_conv4"], weights="imagenet")
    from_file = build_vgg("vgg19", ["block1_conv1", "block5_conv4"], weights=vgg19_weights)  # a Path will do
    for name in ("block1_conv1", "block5_conv4"):
        np.testing.assert_array_equal(from_cache.get_layer(name).get_weights()[0],
                                      from_file.get_layer(name).get_weights()[0])


def test_vgg19_imagenet_comes_from_a_keras_cache_it_cannot_write_to(vgg19_weights, offline, read_only_keras_home,
                                                                   monkeypatch):
    """A shared, read-only cache (a cluster's, a container's): Keras looks for its files only
    under /tmp/.keras then, and offline the weights that are there were refused."""
    keras_home = read_only_keras_home
    from_cache = build_vgg("vgg19", ["block1_conv1"], weights="imagenet")
    np.testing.assert_array_equal(from_cache.get_layer("block1_conv1").get_weights()[0],
                                  build_vgg("vgg19", ["block1_conv1"], weights=vgg19_weights)
                                  .get_layer("block1_conv1").get_weights()[0])
    looked = "Keras cannot write to .*, so it looked under /tmp/.keras instead"
    with pytest.raises(StyleTransferError, match=looked):
        build_vgg("vgg16", ["block1_conv1"], weights="imagenet")  # not there: the message says where Keras looked
    cut_short = keras_home / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cut_short.write_bytes(b"the start of a download" * 100)
    try:  # a file there that is not usable is left to Keras too, not loaded as if the user had named it
        with pytest.raises(StyleTransferError, match=looked):
            build_vgg("vgg16", ["block1_conv1"], weights="imagenet")
    finally:
        cut_short.unlink()
    # A file of the right layers whose md5 is not Keras's (weights trained further, say) is
    # not loaded either: here the real file, with Keras's md5 for it taken to be another.
    monkeypatch.setitem(ContentModel.IMAGENET_WEIGHTS_MD5, vgg19_weights.name, "0" * 32)
    with pytest.raises(StyleTransferError, match=looked):
        build_vgg("vgg19", ["block1_conv1"], weights="imagenet")


def test_preprocessing_is_inside_the_model(vgg19_weights):
    """build_vgg(image in [0, 1]) == Keras VGG19(preprocess_input(image * 255))."""
    layers = ["block1_conv1", "block3_conv1", "block4_conv2"]
    extractor = build_vgg("vgg19", layers, weights=str(vgg19_weights))
    base = keras.applications.VGG19(include_top=False, weights=str(vgg19_weights),
                                    input_shape=(None, None, 3))
    reference = keras.Model(base.input, {name: base.get_layer(name).output for name in layers})

    rng = np.random.default_rng(5)
    image = rng.uniform(size=(1, 48, 64, 3)).astype(np.float32)
    ours = extractor(image.copy())
    theirs = reference(keras.applications.vgg19.preprocess_input(image.copy() * 255.0))
    for name in layers:
        ours_np, theirs_np = np.asarray(ours[name]), np.asarray(theirs[name])
        scale = float(np.abs(theirs_np).max())
        assert scale > 0
        np.testing.assert_allclose(ours_np, theirs_np, rtol=1e-3, atol=1e-4 * scale, err_msg=name)

    # And the preprocessing matters: feeding the raw [0, 255] pixels gives other features.
    raw = np.asarray(reference(image.copy() * 255.0)["block1_conv1"])
    assert not np.allclose(np.asarray(ours["block1_conv1"]), raw, rtol=1e-2, atol=1e-2)


def test_content_and_style_builders_use_the_shared_backbone():
    import StyleModel

    content = ContentModel.build_content_model("block4_conv2", model="vgg16", weights=None)
    assert tuple(content(np.zeros((1, 32, 32, 3), np.float32))["block4_conv2"].shape) == (1, 4, 4, 512)
    style = StyleModel.build_style_model(model="vgg16", weights=None)
    outputs = style(np.zeros((1, 32, 32, 3), np.float32))
    assert set(outputs) == set(StyleModel.STYLE_LAYERS)


# --- reduced precision -------------------------------------------------------------


def test_mixed_precision_features_are_bfloat16_and_close_to_float32(vgg19_weights):
    image = np.random.default_rng(3).uniform(0, 1, (1, 48, 64, 3)).astype(np.float32)
    exact = ContentModel.build_vgg("vgg19", ["block1_conv1", "block3_conv1"], "imagenet", "float32")(image)
    mixed = ContentModel.build_vgg("vgg19", ["block1_conv1", "block3_conv1"], "imagenet", "mixed")(image)
    for name in ("block1_conv1", "block3_conv1"):
        assert mixed[name].dtype == tf.bfloat16
        reference = exact[name].numpy()
        error = np.abs(np.asarray(mixed[name], np.float32) - reference).mean()
        assert error < 0.02 * np.abs(reference).mean()  # bfloat16 keeps ~3 significant digits


def test_bfloat16_keeps_the_weights_in_bfloat16_and_mixed_in_float32():
    """'mixed' computes in bfloat16 from float32 weights (Keras' mixed_bfloat16 policy);
    'bfloat16' stores the weights in bfloat16 too. Preprocessing stays float32 in both."""
    image = np.zeros((1, 32, 32, 3), np.float32)
    for precision, weight_type in (("float32", "float32"), ("mixed", "float32"), ("bfloat16", "bfloat16")):
        extractor = build_vgg("vgg16", ["block1_conv1"], weights=None, precision=precision)
        conv = extractor.get_layer("block1_conv1")
        assert conv.kernel.dtype == weight_type, precision
        assert extractor(image)["block1_conv1"].dtype == ("float32" if precision == "float32" else "bfloat16")
        assert extractor.get_layer("vgg_preprocess").dtype_policy.compute_dtype == "float32"


def test_auto_precision_on_a_gpu_is_float32_even_where_the_cpu_has_fast_bfloat16(monkeypatch):
    # float32 already runs on a GPU's tensor cores (TF32), and mixed measured slower on an H100.
    monkeypatch.setattr(ContentModel, "open", lambda path, *args, **kwargs: io.StringIO(
        "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n"), raising=False)
    assert ContentModel.resolve_precision("auto", "/CPU:0") == "mixed"
    assert ContentModel.resolve_precision("auto", "/GPU:0") == "float32"
    assert ContentModel.resolve_precision("mixed", "/GPU:0") == "mixed"


@pytest.mark.parametrize("flags, fast", [
    ("fpu sse2 avx2 avx512f avx512_bf16 avx512vl", True),  # this machine's kind (AVX-512 BF16)
    ("fpu sse2 avx2 amx_bf16 amx_tile", True),
    ("fpu sse2 avx2 avx512f avx512vl", False),  # AVX-512 without its BF16 extension
])
def test_auto_precision_is_mixed_only_where_the_cpu_has_bfloat16_instructions(monkeypatch, flags, fast):
    cpuinfo = f"processor\t: 0\nflags\t\t: {flags}\nbugs\t\t: none\n"
    opened = []

    def fake_open(path, *args, **kwargs):
        opened.append(path)
        return io.StringIO(cpuinfo)

    monkeypatch.setattr(ContentModel, "open", fake_open, raising=False)
    assert ContentModel.cpu_has_fast_bfloat16() is fast
    assert ContentModel.resolve_precision("auto", "/CPU:0") == ("mixed" if fast else "float32")
    assert opened == ["/proc/cpuinfo"] * 2


def test_auto_precision_is_float32_where_the_cpu_flags_cannot_be_read(monkeypatch):
    def no_cpuinfo(path, *args, **kwargs):
        raise FileNotFoundError(path)  # not Linux

    monkeypatch.setattr(ContentModel, "open", no_cpuinfo, raising=False)
    assert ContentModel.resolve_precision("auto", "/CPU:0") == "float32"


def test_resolve_precision():
    assert ContentModel.resolve_precision("float32") == "float32"
    assert ContentModel.resolve_precision("mixed") == "mixed"
    with pytest.raises(ContentModel.StyleTransferError, match="precision"):
        ContentModel.resolve_precision("float8")
