"""Image I/O: load_image / save_image (RGB float32 in [0, 1])."""

from __future__ import annotations

import os
import re
import stat
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import ContentModel
from ContentModel import StyleTransferError, load_image, save_image
from png_chunks import PNG_SIGNATURE, png_chunk, png_file


def random_image(height=40, width=56, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(height, width, 3)).astype(np.float32)


def smooth_image(height=48, width=64) -> np.ndarray:
    """A gradient: JPEG keeps it close to the original."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / (width - 1), y / (height - 1), 0.5 + 0.0 * x], axis=-1).astype(np.float32)


# --- round trips -------------------------------------------------------------------


def test_png_round_trip_is_exact_to_8_bits(tmp_path):
    image = random_image()
    path = save_image(image, tmp_path / "image.png")
    assert path == tmp_path / "image.png" and path.is_file()
    loaded = load_image(path)
    assert loaded.dtype == np.float32
    assert loaded.shape == image.shape
    assert loaded.min() >= 0.0 and loaded.max() <= 1.0
    np.testing.assert_allclose(loaded, image, atol=1.0 / 255.0 / 2 + 1e-6)


def test_png_round_trip_accepts_a_batch_of_one(tmp_path):
    image = random_image()
    loaded = load_image(save_image(image[None], tmp_path / "batch.png"))
    np.testing.assert_allclose(loaded, image, atol=1.0 / 255.0 / 2 + 1e-6)


@pytest.mark.parametrize("image, message", [
    (lambda: (random_image() * 255).astype(np.uint8), "got uint8: divide 8-bit values by 255"),
    (lambda: random_image() * 255, "got values from"),
    (lambda: np.stack([random_image()] * 2), "must be an (H, W, 3) array (got shape (2, "),
    (lambda: np.full((8, 8, 3), np.nan, np.float32), "NaN"),
], ids=["uint8", "0-255-floats", "batch-of-two", "nan"])
def test_save_image_refuses_what_is_not_one_image_in_0_1_and_writes_nothing(tmp_path, image, message):
    """An 8-bit image would come out nearly white, a batch as its first image alone."""
    with pytest.raises(StyleTransferError, match=re.escape(message)):
        save_image(image(), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_load_image_of_an_address_says_to_download_it_first():
    with pytest.raises(StyleTransferError, match=re.escape("https://example.org/x.jpg is an address, not a file: "
                                                           "download it first with local_image")):
        load_image("https://example.org/x.jpg")


def test_a_saved_file_gets_the_permissions_of_any_new_file(tmp_path):
    """Written first to a private temporary file (mkstemp's 0600), then renamed: a result must
    still be readable by others as any new file is, by the umask."""
    previous = os.umask(0o022)
    try:
        path = save_image(random_image(), tmp_path / "shared.png")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_round_trip_is_close(tmp_path, suffix):
    image = smooth_image()
    path = save_image(image, tmp_path / f"image{suffix}")
    with Image.open(path) as written:
        assert written.format == "JPEG"
    loaded = load_image(path)
    assert loaded.shape == image.shape
    assert np.abs(loaded - image).mean() < 0.02
    assert np.abs(loaded - image).max() < 0.15


def test_save_image_unknown_format(tmp_path):
    with pytest.raises(StyleTransferError):
        save_image(random_image(), tmp_path / "image.notaformat")
    assert list(tmp_path.iterdir()) == []


def test_save_image_creates_the_folder_and_leaves_no_temporary_files(tmp_path):
    folder = tmp_path / "new" / "folder"
    for index in range(3):
        save_image(random_image(seed=index), folder / "image.png")
    save_image(random_image(), folder / "other.jpg")
    assert sorted(p.name for p in folder.iterdir()) == ["image.png", "other.jpg"]
    # the last write won
    np.testing.assert_allclose(load_image(folder / "image.png"), random_image(seed=2), atol=0.5 / 255 + 1e-6)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "result.png"
    target.write_bytes(b"old contents")

    def half_write(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"half a fi")
        raise OSError("disk full")

    with pytest.raises(ContentModel.WriteError, match=f"could not write {target}: disk full"):
        ContentModel.atomic_write(target, half_write)
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]


# --- modes -------------------------------------------------------------------------


def test_greyscale_becomes_three_equal_channels(tmp_path):
    grey = (np.arange(40 * 50).reshape(40, 50) % 256).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    loaded = load_image(tmp_path / "grey.png")
    assert loaded.shape == (40, 50, 3)
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 1])
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])
    np.testing.assert_allclose(loaded[..., 0], grey / 255.0, atol=1e-6)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red-ish everywhere
    rgba[..., 3] = 255  # opaque ...
    rgba[:10, :10, 3] = 0  # ... except a fully transparent corner
    rgba[20:, 20:, 3] = 128  # and a half-transparent one
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    loaded = load_image(tmp_path / "rgba.png")
    assert loaded.shape == (40, 40, 3)
    np.testing.assert_allclose(loaded[:10, :10], 1.0)  # transparent -> white
    np.testing.assert_allclose(loaded[15, 15], [200 / 255, 0, 0], atol=1e-6)  # opaque untouched
    half = loaded[30, 30]
    np.testing.assert_allclose(half, [(200 * 128 + 255 * 127) / 255 / 255, 127 / 255, 127 / 255], atol=2 / 255)


def test_greyscale_with_alpha_is_composited_on_white(tmp_path):
    la = np.zeros((36, 36, 2), dtype=np.uint8)
    la[..., 1] = 255
    la[:5, :5, 1] = 0
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    np.testing.assert_allclose(loaded[:5, :5], 1.0)
    np.testing.assert_allclose(loaded[20:, 20:], 0.0)


def test_palette_with_transparency(tmp_path):
    palette_image = Image.new("P", (40, 36), 1)
    palette_image.putpalette([0, 0, 0, 10, 200, 30] + [0, 0, 0] * 254)
    pixels = palette_image.load()
    for x in range(8):
        for y in range(8):
            pixels[x, y] = 0  # index 0 is transparent
    palette_image.info["transparency"] = 0
    palette_image.save(tmp_path / "palette.png", transparency=0)
    with Image.open(tmp_path / "palette.png") as check:
        assert check.mode == "P"
    loaded = load_image(tmp_path / "palette.png")
    assert loaded.shape == (36, 40, 3)
    np.testing.assert_allclose(loaded[:8, :8], 1.0)  # transparent index -> white, not black
    np.testing.assert_allclose(loaded[20, 20], [10 / 255, 200 / 255, 30 / 255], atol=1e-6)


@pytest.mark.parametrize("mode, colour, transparent", [("RGB", (10, 200, 30), (0, 0, 0)), ("L", 90, 0)])
def test_one_colour_marked_transparent_is_composited_on_white(tmp_path, mode, colour, transparent):
    """A PNG's tRNS chunk in an RGB or greyscale image, as PNG optimizers write an RGBA image
    whose alpha is only on or off: it was read as black."""
    image = Image.new(mode, (40, 36), colour)
    image.paste(transparent, (0, 0, 8, 8))
    image.save(tmp_path / "trns.png", transparency=transparent)
    with Image.open(tmp_path / "trns.png") as check:
        assert check.mode == mode and "transparency" in check.info
    loaded = load_image(tmp_path / "trns.png")
    np.testing.assert_allclose(loaded[:8, :8], 1.0)  # transparent -> white, not black
    np.testing.assert_allclose(loaded[20, 20], np.broadcast_to(np.array(colour) / 255, 3), atol=1e-6)


def png_16_bit_rgb(pixels: np.ndarray, transparent: tuple) -> bytes:
    """A 16-bit RGB PNG of (H, W, 3) ``pixels`` with ``transparent`` in its tRNS chunk (Pillow
    cannot write one)."""
    height, width = pixels.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    return png_file(16, 2, width, height, rows, struct.pack(">HHH", *transparent))


def test_a_colour_marked_transparent_in_16_bits_leaves_the_image_opaque(tmp_path):
    """Pillow reads a 16-bit PNG's high bytes but keeps its tRNS colour in 16 bits: taken as 8
    bits, 0x00FF (high byte 0) would be as transparent as 0x0000. Such images stay opaque."""
    pixels = np.zeros((36, 40, 3), np.uint16)
    pixels[:, 20:] = 0x00FF  # near black, opaque; the left half is the transparent colour
    (tmp_path / "deep.png").write_bytes(png_16_bit_rgb(pixels, (0, 0, 0)))
    loaded = load_image(tmp_path / "deep.png")
    np.testing.assert_allclose(loaded, 0.0, atol=1 / 255)  # black, not white anywhere


def png_low_bit_grey(levels: np.ndarray, bits: int, transparent: int) -> bytes:
    """A greyscale PNG of ``bits`` (1, 2 or 4) a pixel, of (H, W) ``levels`` (0 .. 2**bits - 1),
    with the level ``transparent`` in its tRNS chunk (Pillow cannot write one)."""
    height, width = levels.shape
    per_byte = 8 // bits
    padded = np.zeros((height, -(-width // per_byte) * per_byte), np.uint8)
    padded[:, :width] = levels
    shifts = np.arange(per_byte - 1, -1, -1) * bits  # the first pixel in the high bits
    packed = (padded.reshape(height, -1, per_byte) << shifts).sum(axis=2).astype(np.uint8)
    rows = b"".join(b"\0" + row.tobytes() for row in packed)
    return png_file(bits, 0, width, height, rows, struct.pack(">H", transparent))


@pytest.mark.parametrize("bits, transparent, opaque", [(1, 0, 1), (2, 1, 2), (4, 1, 14)])
def test_a_grey_marked_transparent_below_8_bits_is_composited_on_white(tmp_path, bits, transparent, opaque):
    """1-, 2- and 4-bit greyscale PNGs with a tRNS grey: Pillow scales the pixels up to 8
    bits but not the grey (and makes 1-bit ones mode '1'): they stayed opaque."""
    levels = np.full((36, 40), transparent, np.uint8)  # the right half transparent
    levels[:, :20] = opaque
    if bits > 1:
        levels[30:, :20] = 0  # black, next to the transparent grey, stays black
    (tmp_path / "grey.png").write_bytes(png_low_bit_grey(levels, bits, transparent))
    with Image.open(tmp_path / "grey.png") as check:
        assert check.mode == ("1" if bits == 1 else "L") and "transparency" in check.info
    loaded = load_image(tmp_path / "grey.png")
    np.testing.assert_allclose(loaded[:, 20:], 1.0)  # transparent -> white
    np.testing.assert_allclose(loaded[:30, :20], opaque / (2 ** bits - 1), atol=1e-6)
    np.testing.assert_allclose(loaded[30:, :20], 0.0 if bits > 1 else 1.0)


def test_a_grey_marked_transparent_in_16_bits_is_matched_on_all_its_bits(tmp_path):
    """A 16-bit greyscale PNG opens with all 16 bits (mode 'I;16'): its tRNS grey is matched
    exactly, so 0x1234 is transparent and 0x1200, the same in 8 bits, is not."""
    levels = np.full((36, 40), 0x1234, ">u2")
    levels[:, :20] = 0x1200
    rows = b"".join(b"\0" + row.tobytes() for row in levels)
    (tmp_path / "grey16.png").write_bytes(png_file(16, 0, 40, 36, rows, struct.pack(">H", 0x1234)))
    loaded = load_image(tmp_path / "grey16.png")
    np.testing.assert_allclose(loaded[:, 20:], 1.0)  # transparent -> white
    np.testing.assert_allclose(loaded[:, :20], round(0x1200 / 65535 * 255) / 255, atol=1 / 255)


def test_stderr_is_silenced_only_while_a_tiff_is_decoded(tmp_path, capfd, monkeypatch):
    """libtiff prints its own complaints: fd 2 goes to the null device while a TIFF decodes,
    and only then, since any thread's lines (and Python's warnings) go with it."""
    real_to_rgb = ContentModel.to_rgb

    def to_rgb_beside_another_line(image, *args, **kwargs):
        os.write(2, b"a line of another thread\n")
        return real_to_rgb(image, *args, **kwargs)

    monkeypatch.setattr(ContentModel, "to_rgb", to_rgb_beside_another_line)
    for suffix, kept in ((".png", True), (".tif", False), (".jpg", True)):
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / f"image{suffix}")
        capfd.readouterr()
        load_image(tmp_path / f"image{suffix}")
        assert ("a line of another thread" in capfd.readouterr().err) == kept, suffix


def test_a_float_image_with_values_that_are_not_numbers_is_refused(tmp_path):
    """A 32-bit float TIFF holding NaN: it printed NumPy's warning and came out black there."""
    values = np.full((40, 40), 0.5, np.float32)
    values[3, 4] = np.nan
    Image.fromarray(values, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(StyleTransferError, match="nan.tif.*not numbers"):
        load_image(tmp_path / "nan.tif")


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (48, 40), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    image = load_image(tmp_path / "cmyk.jpg")
    assert image.shape == (40, 48, 3)
    np.testing.assert_allclose(image[20, 20], [1, 0, 0], atol=0.05)  # no cyan, full magenta+yellow: red


def test_palette_gif_without_transparency(tmp_path):
    image = Image.fromarray((smooth_image() * 255).astype(np.uint8)).convert("P")
    image.save(tmp_path / "image.gif")
    with Image.open(tmp_path / "image.gif") as written:
        assert written.mode == "P"
        expected = np.asarray(written.convert("RGB"), dtype=np.float32) / 255.0  # the palette colours
    loaded = load_image(tmp_path / "image.gif")
    assert loaded.shape == (48, 64, 3)
    np.testing.assert_allclose(loaded, expected, atol=1e-6)


def test_16_bit_greyscale_png_is_scaled_from_65535(tmp_path):
    values = np.linspace(0, 65535, 40 * 48).reshape(40, 48).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as check:
        assert check.mode.startswith("I")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.shape == (40, 48, 3)
    np.testing.assert_allclose(loaded[..., 0], values / 65535.0, atol=1.0 / 255.0 + 1e-6)
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])
    assert loaded.max() == pytest.approx(1.0)


def test_a_32_bit_integer_image_beyond_16_bits_is_scaled_from_its_range(tmp_path):
    """A 32-bit integer TIFF (Pillow's mode 'I') with values above 65535: its range was
    guessed as 0..65535 at most, and it came out white wherever it was brighter than that
    (all of it here). Above 16 bits it is read as spanning 0..2**31 - 1."""
    values = np.linspace(0, 2 ** 31 - 1, 40 * 48).reshape(40, 48).astype(np.int32)
    Image.fromarray(values, mode="I").save(tmp_path / "deep.tif")
    loaded = load_image(tmp_path / "deep.tif")
    np.testing.assert_allclose(loaded[..., 0], values / (2 ** 31 - 1), atol=1.0 / 255.0 + 1e-6)


def test_dark_16_bit_greyscale_png_stays_dark(tmp_path):
    """A 16-bit image whose values all lie below 256 is nearly black (<= 255/65535 = 0.4 %).

    The range of an I;16 image is fixed by its bit depth, not by its brightest pixel.
    """
    values = (np.arange(40 * 48).reshape(40, 48) % 256).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "dark16.png")
    with Image.open(tmp_path / "dark16.png") as check:
        assert check.mode == "I;16"
    loaded = load_image(tmp_path / "dark16.png")
    assert loaded.max() <= 1.0 / 255.0 + 1e-6, (
        f"a 16-bit image with values <= 255 loaded with brightness up to {loaded.max():.3f}")


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 7, 8])
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_the_header_gives_the_shape_load_image_decodes(tmp_path, orientation, suffix):
    """stored_shape and loaded_shape, which let a run check its memory before decoding,
    agree with load_image, keep_short_side and EXIF orientation included (before, a quarter
    turn was not read: an image too small was said to be 64x26 where it is 26x64)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    for width, height in [(64, 40), (300, 33), (40, 40)]:
        path = tmp_path / f"{width}x{height}_{orientation}{suffix}"
        Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(path, exif=exif.tobytes())
        for max_size, keep in [(None, False), (400, False), (48, True), (700, True)]:
            expected = load_image(path, max_size, keep_short_side=keep).shape[:2]
            header = ContentModel.loaded_shape(ContentModel.stored_shape(path), max_size, keep)
            assert header == expected


def exif_block(entries: list[tuple[int, int, int, bytes]], cut: int = 0) -> bytes:
    """A little-endian EXIF block holding ``entries`` (tag, TIFF type, count, value) as they
    are given, typed right or not, less its last ``cut`` bytes: a block Pillow cannot write."""
    body = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
    body += struct.pack("<I", 0)
    return b"Exif\x00\x00" + body[:len(body) - cut]


def test_an_image_with_a_damaged_exif_block_is_turned_upright_without_a_word(tmp_path):
    """A quarter turn in EXIF beside a tag of the wrong type (XResolution as text), or in a
    block cut short: Pillow's exif_transpose raised a TypeError or struct.error rewriting it
    (a traceback), and Pillow warned on stderr as it read it. The image is turned as a sound
    one is, silently."""
    pixels = np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8)
    turn = (0x0112, 3, 1, struct.pack("<H", 6))  # orientation 6, as a SHORT
    text_resolution = (0x011A, 2, 3, b"72\x00")  # XResolution as ASCII, where a RATIONAL belongs
    Image.fromarray(pixels).save(tmp_path / "sound.jpg", exif=exif_block([turn]))
    Image.fromarray(pixels).save(tmp_path / "text.jpg", exif=exif_block([turn, text_resolution]))
    Image.fromarray(pixels).save(tmp_path / "cut.jpg", exif=exif_block([turn, text_resolution], cut=10))
    sound = load_image(tmp_path / "sound.jpg")
    assert sound.shape == (80, 60, 3)
    for name in ("text.jpg", "cut.jpg"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any warning fails the test
            np.testing.assert_array_equal(load_image(tmp_path / name), sound)
            assert ContentModel.stored_shape(tmp_path / name) == (80, 60)


def test_a_jpeg_with_a_damaged_multi_picture_index_is_read_as_a_plain_jpeg_without_a_word(tmp_path):
    """A JPEG whose MPO index (an APP2 'MPF' segment, as stereo cameras write) cannot be
    read: Pillow reads it as a plain JPEG, rightly, and warned on stderr that it had (two
    lines, its own source file's among them). The image is read silently."""
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "plain.jpg", quality=95)
    plain = (tmp_path / "plain.jpg").read_bytes()
    index = b"MPF\x00II*\x00" + struct.pack("<I", 8) + b"\xff" * 6  # a directory that is not one
    segment = b"\xff\xe2" + struct.pack(">H", len(index) + 2) + index
    (tmp_path / "damaged.jpg").write_bytes(plain[:2] + segment + plain[2:])  # after the start-of-image marker
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        np.testing.assert_array_equal(load_image(tmp_path / "damaged.jpg"), load_image(tmp_path / "plain.jpg"))
        assert ContentModel.stored_shape(tmp_path / "damaged.jpg") == (48, 64)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".jpg"])
@pytest.mark.parametrize("block", [b"MM\x00*\xd8\x00\x00", b"Exif\x00\x00garbage"], ids=["cut", "no-tiff-header"])
def test_an_image_whose_exif_block_cannot_be_read_at_all_is_used_as_stored(tmp_path, suffix, block):
    """An EXIF block cut inside its TIFF header, or without one: Pillow's reader raised
    struct.error (a traceback) or SyntaxError (the sound pixels refused). It turns nothing."""
    pixels = np.random.default_rng(0).integers(0, 256, (50, 40, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / f"sound{suffix}")
    Image.fromarray(pixels).save(tmp_path / f"damaged{suffix}", exif=block)
    np.testing.assert_array_equal(load_image(tmp_path / f"damaged{suffix}"), load_image(tmp_path / f"sound{suffix}"))
    assert ContentModel.stored_shape(tmp_path / f"damaged{suffix}") == (50, 40)


#: XMP that turns an image as EXIF orientation 6 does (a quarter turn), as a photo editor writes it.
XMP_ORIENTATION_6 = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
                     b'syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
                     b'</rdf:RDF></x:xmpmeta>')


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_the_header_gives_the_shape_of_an_image_turned_by_xmp_alone(tmp_path, suffix):
    """An orientation in XMP, with no EXIF, turns the image load_image decodes (Pillow's
    exif_transpose reads both): the header's shape is turned too (it was not: a mask drawn
    over such a photo was said to be stretched)."""
    path = tmp_path / f"turned{suffix}"
    Image.new("RGB", (60, 40)).save(path, xmp=XMP_ORIENTATION_6)
    assert load_image(path).shape[:2] == (60, 40)
    assert ContentModel.stored_shape(path) == (60, 40)


def png_with_metadata(width: int, height: int, before: bytes = b"", after: bytes = b"", end: bool = True) -> bytes:
    """An RGB PNG of black pixels with the chunks ``before`` ahead of its pixels and ``after``
    behind them (where Pillow cannot put them), and, unless not ``end``, its closing IEND."""
    rows = (b"\x00" + bytes(3 * width)) * height  # each row: filter byte 0, then its pixels
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    closing = png_chunk(b"IEND", b"") if end else b""
    return PNG_SIGNATURE + header + before + png_chunk(b"IDAT", zlib.compress(rows)) + after + closing


def exif_orientation_block(turn: int) -> bytes:
    """An EXIF block (no 'Exif' prefix, as a PNG's eXIf chunk holds it) of one orientation."""
    exif = Image.Exif()
    exif[0x0112] = turn
    return exif.tobytes()[len(b"Exif\x00\x00"):]


@pytest.mark.parametrize("before, after, shape", [
    (b"", png_chunk(b"eXIf", exif_orientation_block(6)), (60, 40)),
    (png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + XMP_ORIENTATION_6), b"", (60, 40)),
    (png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + XMP_ORIENTATION_6),
     png_chunk(b"eXIf", exif_orientation_block(1)), (40, 60)),
    (png_chunk(b"eXIf", exif_orientation_block(1)), png_chunk(b"eXIf", exif_orientation_block(8)), (60, 40)),
], ids=["exif-after-the-pixels", "xmp", "exif-after-the-pixels-over-xmp", "the-last-exif"])
def test_a_png_header_gives_the_shape_its_metadata_anywhere_turns_it_to(tmp_path, monkeypatch, before, after, shape):
    """A PNG's orientation can be in an eXIf chunk behind its pixels, which Pillow reads only
    as it decodes them, or in XMP: stored_shape gave such a PNG's shape unturned (64x26 for a
    photo load_image turns to 26x64). Its chunks are read, still without decoding; EXIF
    wins over XMP, and the last EXIF over an earlier one, as in load_image."""
    path = tmp_path / "turned.png"
    path.write_bytes(png_with_metadata(60, 40, before, after))
    assert load_image(path).shape[:2] == shape
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    assert ContentModel.stored_shape(path) == shape


def test_a_png_cut_behind_its_pixels_gives_a_shape_from_its_header(tmp_path):
    """A PNG cut short behind its pixels: at a chunk's end (no IEND), its shape turned by
    what it holds, as load_image decodes it; inside its eXIf chunk, the header gives the shape
    as stored, without an error (decoding is where a cut file is refused)."""
    whole = png_with_metadata(60, 40, after=png_chunk(b"eXIf", exif_orientation_block(6)), end=False)
    (tmp_path / "no-end.png").write_bytes(whole)
    (tmp_path / "cut.png").write_bytes(whole[:-10])
    assert ContentModel.stored_shape(tmp_path / "no-end.png") == load_image(tmp_path / "no-end.png").shape[:2] \
        == (60, 40)
    assert ContentModel.stored_shape(tmp_path / "cut.png") == (40, 60)
    with pytest.raises(StyleTransferError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_the_header_is_read_without_decoding(tmp_path, monkeypatch):
    """The shape comes from the header, the pixels not decoded: a JPEG's orientation is
    read from its header, a PNG's from its chunks (png_orientation)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn
    Image.new("RGB", (300, 200)).save(tmp_path / "photo.png")
    Image.new("RGB", (300, 200)).save(tmp_path / "photo.jpg")
    Image.new("RGB", (300, 200)).save(tmp_path / "turned.jpg", exif=exif.tobytes())
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    assert ContentModel.stored_shape(tmp_path / "photo.png") == ContentModel.stored_shape(tmp_path / "photo.jpg") \
        == (200, 300)
    assert ContentModel.stored_shape(tmp_path / "turned.jpg") == (300, 200)


@pytest.mark.parametrize("shape, max_size, keep", [((20, 300), None, False), ((300, 20), 400, False),
                                                   ((40, 1000), 64, False)])
def test_an_image_too_small_for_vgg_is_refused_from_its_shape(shape, max_size, keep):
    with pytest.raises(StyleTransferError, match="the short side must be at least 32|needs at least 32"):
        ContentModel.loaded_shape(shape, max_size, keep, what="tiny.png")


def test_an_image_too_narrow_at_its_size_is_told_the_size_that_would_do():
    """It said 'use a larger --size', which named no size, and also at the largest there is."""
    with pytest.raises(StyleTransferError, match="must be at least 32: use a --size of at least 1575$"):
        ContentModel.loaded_shape((20, 1000), 128, what="strip.png")
    assert ContentModel.loaded_shape((20, 1000), 1575, what="strip.png") == (32, 1575)  # 31.5 rounds to 32
    with pytest.raises(StyleTransferError, match=r"which no --size \(at most 8192\) gives: crop it$"):
        ContentModel.loaded_shape((2, 1000), 8192, what="thread.png")


@pytest.mark.parametrize("shape", [(300, 451), (60, 2000), (20, 1000), (32, 33), (1000, 31), (99, 100)])
def test_the_size_advised_for_a_narrow_image_is_the_smallest_that_works(shape):
    """A 451x300 photo was told 'at least 49', and 48 works (48x32): the advice is exact."""
    needed = ContentModel.smallest_long_side(shape)
    assert min(ContentModel.loaded_shape(shape, needed)) >= 32
    if needed > max(shape) or needed > 32:
        with pytest.raises(StyleTransferError, match=f"use a --size of at least {needed}$"):
            ContentModel.loaded_shape(shape, needed - 1)


def test_an_image_small_on_disk_is_judged_at_the_size_it_is_loaded_at():
    """A 45x30 photo at --size 128 is 128x85, which VGG takes: it was refused, 'the network
    needs at least 32 pixels on the short side', though the network would never see 30."""
    assert ContentModel.loaded_shape((30, 45), 128, what="small.png") == (85, 128)
    assert ContentModel.loaded_shape((20, 300), 700, True, what="strip.png") == (47, 700)  # a style


def test_the_header_is_checked_like_the_image(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    Image.new("RGB", (200, 100)).save(tmp_path / "big.png")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "moved.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")  # said to be 'no such file' before
    damaged = bytearray((tmp_path / "big.png").read_bytes())
    damaged[20] ^= 0xFF  # in the header chunk, whose CRC no longer matches: Pillow names no format
    (tmp_path / "damaged.png").write_bytes(damaged)  # said to be 'not an image' before
    for name, message in [("missing.png", "no such file"), ("empty.png", "is empty"),
                          ("text.png", "not an image in a format Pillow knows"),
                          ("dangling.png", "is a symbolic link that leads nowhere \\(to .*moved.png\\)"),
                          ("loop.png", "loop.png is a loop of symbolic links"),
                          ("damaged.png", "as an image \\(damaged or truncated\\?\\): it begins as a PNG file does")]:
        with pytest.raises(StyleTransferError, match=message):
            ContentModel.stored_shape(tmp_path / name)
    with pytest.raises(StyleTransferError, match="above the limit of 10,000"):
        ContentModel.stored_shape(tmp_path / "big.png", max_pixels=10_000)


def test_exif_orientation_is_applied(tmp_path):
    # A wide image (64 x 40) with a red left half, stored with Orientation = 6
    # ("rotate 90 degrees clockwise to display"): it must load tall (64 rows x 40 columns).
    pixels = np.zeros((40, 64, 3), dtype=np.uint8)
    pixels[:, :32] = (255, 0, 0)
    pixels[:, 32:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    with Image.open(tmp_path / "rotated.jpg") as check:
        assert check.size == (64, 40)
        assert check.getexif().get(0x0112) == 6

    loaded = load_image(tmp_path / "rotated.jpg")
    assert loaded.shape == (64, 40, 3)
    # Rotated clockwise, the left (red) half ends up on top.
    assert loaded[:28, :, 0].mean() > 0.8 and loaded[:28, :, 2].mean() < 0.2
    assert loaded[36:, :, 2].mean() > 0.8 and loaded[36:, :, 0].mean() < 0.2


def test_first_frame_of_an_animated_gif(tmp_path):
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    loaded = load_image(tmp_path / "anim.gif")
    assert loaded[..., 0].mean() > 0.9 and loaded[..., 2].mean() < 0.1


# --- resizing ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(200, 120), (120, 200)])
@pytest.mark.parametrize("max_size", [64, 96, 300])
def test_long_side_is_resized_to_max_size(tmp_path, size, max_size):
    Image.new("RGB", size, (10, 20, 30)).save(tmp_path / "image.png")
    loaded = load_image(tmp_path / "image.png", max_size)
    height, width = loaded.shape[:2]
    assert max(height, width) == max_size
    assert width / height == pytest.approx(size[0] / size[1], rel=0.03)
    assert (width > height) == (size[0] > size[1])
    np.testing.assert_allclose(loaded[height // 2, width // 2], [10 / 255, 20 / 255, 30 / 255], atol=1 / 255)


def test_no_max_size_keeps_the_size(tmp_path):
    Image.new("RGB", (77, 45)).save(tmp_path / "image.png")
    assert load_image(tmp_path / "image.png").shape == (45, 77, 3)
    assert load_image(tmp_path / "image.png", None).shape == (45, 77, 3)


# --- errors ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(StyleTransferError, match="nothere.jpg"):
        load_image(tmp_path / "nothere.jpg")


def test_directory(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(StyleTransferError):
        load_image(tmp_path / "folder.jpg")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(StyleTransferError, match="notes.jpg"):
        load_image(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX feature")
def test_a_pipe_or_a_device_is_not_taken_for_an_empty_file(tmp_path):
    """A FIFO, /dev/stdin or /dev/zero have a size of 0: they were 'empty (0 bytes)'."""
    os.mkfifo(tmp_path / "pipe.jpg")
    for path in (tmp_path / "pipe.jpg", "/dev/zero"):
        with pytest.raises(StyleTransferError, match="is not a file .a pipe or a device.*save the image to a file"):
            load_image(path)
    with pytest.raises(StyleTransferError, match="/dev/zero is not a file"):
        ContentModel.check_weights("/dev/zero")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(StyleTransferError):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    save_image(random_image(120, 160), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(StyleTransferError):
        load_image(path)


@pytest.mark.parametrize("size", [(20, 20), (200, 31), (31, 64)])
def test_image_below_the_minimum_size(tmp_path, size):
    Image.new("RGB", size).save(tmp_path / "small.png")
    assert min(size) < ContentModel.MIN_SIZE
    with pytest.raises(StyleTransferError):
        load_image(tmp_path / "small.png")


def test_resize_that_makes_the_short_side_too_small(tmp_path):
    Image.new("RGB", (400, 100)).save(tmp_path / "panorama.png")
    assert load_image(tmp_path / "panorama.png", 256).shape == (64, 256, 3)
    with pytest.raises(StyleTransferError):
        load_image(tmp_path / "panorama.png", 64)  # would be 64 x 16
    # a style image (keep_short_side) stops shrinking at the minimum short side instead
    assert load_image(tmp_path / "panorama.png", 64, keep_short_side=True).shape == (32, 126, 3)  # 31.5: 32
    assert load_image(tmp_path / "panorama.png", 256, keep_short_side=True).shape == (64, 256, 3)


def test_minimum_size_is_accepted(tmp_path):
    Image.new("RGB", (ContentModel.MIN_SIZE, ContentModel.MIN_SIZE)).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png").shape == (ContentModel.MIN_SIZE, ContentModel.MIN_SIZE, 3)

