"""Workflow: images from URLs, batch mode over folders, and the contact sheet.

Downloads are tested against a local HTTP server on 127.0.0.1, never the
internet; batch runs use tiny images and two iterations.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import ContentModel
import StyleModel
import StyleTransfer
from ContentModel import StyleTransferError, download_image, load_image, open_image
from StyleTransfer import (CONTACT_SHEET_NAME, contact_sheet_path, expand_inputs, is_finished, output_paths,
                           previous_trace)

#: Long side of the test images, and the flags that make a run take seconds.
SIZE = 64
FAST = ["--size", str(SIZE), "--iterations", "2", "--model", "vgg19", "--save-every", "0"]
#: The slow route answers after this long (or when the server stops); the
#: download gives up after SHORT_TIMEOUT.
SLOW_SECONDS = 30.0
SHORT_TIMEOUT = 0.5


# --- a local web server ------------------------------------------------------------


def png_bytes(path: Path, flip: bool = False, rotate: bool = False) -> bytes:
    image = Image.open(path).convert("RGB")
    image.thumbnail((SIZE, SIZE))
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rotate:
        image = image.transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Handler(BaseHTTPRequestHandler):
    """Serves the server's ``routes`` (path -> body); anything else is a 404."""

    def do_GET(self):
        self.server.requests[self.path] += 1
        if self.path.startswith("/loop/"):  # a redirect to itself
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/slow/"):
            self.server.release.wait(SLOW_SECONDS)
        body = self.server.routes.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # keep the test output quiet


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that gave up (the timeout test) closed its end: expected

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture(scope="module")
def server(sample_images):
    content, style = sample_images
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.requests = Counter()
    httpd.release = threading.Event()
    httpd.routes = {
        "/photos/chelsea.png": png_bytes(content),
        "/other/chelsea.png": png_bytes(content, flip=True),
        "/styles/starry_night.png": png_bytes(style),
        "/notes.jpg": b"<html>this is a web page, not a picture</html>",
        "/slow/chelsea.png": png_bytes(content),
        "/masks/portrait.png": png_bytes(content, rotate=True),
    }
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A download cache of this test's own (get_file takes an absolute cache_subdir as is)."""
    folder = tmp_path / "download-cache"
    monkeypatch.setattr(ContentModel, "DOWNLOAD_CACHE_SUBDIR", str(folder))
    return folder


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*")) if folder.exists() else []


# --- URL inputs ---------------------------------------------------------------------


def test_a_url_is_downloaded_once_then_read_from_the_cache(server, cache):
    url = server.url("/photos/chelsea.png")
    before = server.requests["/photos/chelsea.png"]  # the server is the module's: other tests ask it too
    first = download_image(url)
    second = download_image(url)
    assert first == second and first.parent == cache
    assert first.name.endswith("_chelsea.png")
    assert server.requests["/photos/chelsea.png"] == before + 1
    assert max(load_image(first).shape[:2]) == SIZE


def test_a_download_off_a_terminal_is_one_line_without_a_progress_bar(server, cache, capsys):
    """Keras draws its progress bar with backspaces and colour codes even into a pipe; the
    line that names the download is kept, once (a cached file is not announced)."""
    url = server.url("/other/chelsea.png")
    download_image(url)
    download_image(url)
    assert capsys.readouterr().out == f"Downloading data from {url}\n"


def test_the_weights_download_off_a_terminal_is_one_line_without_a_progress_bar(server, cache, capsys):
    """The ImageNet weights come through keras.applications, which calls get_file: a stand-in
    application that downloads the same way shows what a first run writes into a log."""
    url = server.url("/styles/starry_night.png")

    def application(**settings):
        return keras.utils.get_file("weights.h5", origin=url, cache_subdir=str(cache))

    downloaded = ContentModel._application_with_weights(application, "vgg19", "weights.h5", None)
    assert Path(downloaded).is_file()
    assert capsys.readouterr().out == f"Downloading data from {url}\n"


def test_downloads_work_without_a_standard_output(server, cache, monkeypatch):
    """sys.stdout is None under pythonw, or with file descriptor 1 closed: asking it isatty()
    raised inside the weights' try, and was reported as weights that do not fit."""
    monkeypatch.setattr(sys, "stdout", None)
    assert download_image(server.url("/photos/chelsea.png")).is_file()
    built = ContentModel._application_with_weights(lambda **settings: "the model", "vgg19", "weights.h5", None)
    assert built == "the model"


def test_urls_ending_in_the_same_file_name_do_not_collide(server, cache):
    one = download_image(server.url("/photos/chelsea.png"))
    other = download_image(server.url("/other/chelsea.png"))
    assert one != other
    np.testing.assert_array_equal(load_image(other), load_image(one)[:, ::-1])


@pytest.mark.parametrize("path, reason", [("/missing.png", "HTTP 404"), ("/notes.jpg", "not an image")])
def test_a_bad_url_is_a_one_line_error_and_nothing_is_cached(server, cache, path, reason):
    url = server.url(path)
    with pytest.raises(StyleTransferError) as caught:
        download_image(url)
    message = str(caught.value)
    assert url in message and reason in message and "\n" not in message
    assert cached_files(cache) == []


def test_a_non_image_is_asked_for_again_next_time(server, cache):
    before = server.requests["/notes.jpg"]  # the server is shared by the module's tests
    for _ in range(2):
        with pytest.raises(StyleTransferError, match="not an image"):
            download_image(server.url("/notes.jpg"))
    assert server.requests["/notes.jpg"] - before == 2


def test_a_download_above_the_size_limit_is_refused_and_deleted(server, cache):
    with pytest.raises(StyleTransferError, match="above the download limit"):
        download_image(server.url("/photos/chelsea.png"), max_bytes=100)
    assert cached_files(cache) == []


def test_a_server_that_does_not_answer_times_out(server, cache):
    url = server.url("/slow/chelsea.png")
    with pytest.raises(StyleTransferError, match=f"no answer within {SHORT_TIMEOUT:g} s") as caught:
        download_image(url, timeout=SHORT_TIMEOUT)
    assert url in str(caught.value)
    assert cached_files(cache) == []
    assert socket.getdefaulttimeout() is None  # the process-wide default is put back


def test_a_refused_connection_is_a_one_line_error(cache):
    with socket.socket() as closed:  # a port nobody listens on once this is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/photo.jpg"
    with pytest.raises(StyleTransferError, match="cannot download .*refused") as caught:
        download_image(url)
    assert url in str(caught.value)


def test_a_cache_that_cannot_be_written_is_named(server, cache):
    """A file where the cache folder should be (or a folder without write permission) fails
    before the download; the message names the path, not only 'File exists'."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("not a folder")
    with pytest.raises(StyleTransferError, match=f"cannot download .*File exists: {re.escape(str(cache))}"):
        download_image(server.url("/photos/chelsea.png"))


def test_a_redirect_loop_is_a_one_line_error(server, cache, tmp_path, capsys, sample_images):
    """urllib's message for it runs to three lines; the error keeps the first."""
    url = server.url("/loop/photo.jpg")
    with pytest.raises(SystemExit) as caught:
        StyleTransfer.main([url, str(sample_images[1]), "-o", str(tmp_path / "r.png"), *FAST])
    assert caught.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: cannot download {url}: HTTP 302 ") and "redirect" in error
    assert "\n" not in error and cached_files(cache) == []


def test_url_names():
    assert ContentModel.is_url("https://example.org/a.jpg") and ContentModel.is_url("HTTP://x/y.png")
    assert not ContentModel.is_url("images/content/chelsea.jpg")
    assert not ContentModel.is_url("C:/photos/a.jpg")
    assert ContentModel.source_stem("https://example.org/art/starry%20night.jpg?size=large") == "starry_night"
    assert ContentModel.source_stem("https://example.org/") == "image"
    assert ContentModel.source_stem("photos/chelsea.jpg") == "chelsea"


@pytest.mark.parametrize("address", ["ftp://example.org/x.jpg", "file:///tmp/x.jpg"])
def test_an_address_that_is_not_http_is_refused_as_such(address, tmp_path, capsys):
    """Before, it was read as a path: 'no such file: ftp:/example.org/x.jpg'."""
    with pytest.raises(StyleTransferError, match=f"cannot read {address}: only http and https addresses"):
        ContentModel.local_image(address)
    with pytest.raises(StyleTransferError, match="only http and https"):
        expand_inputs([address])
    assert ContentModel.local_image("C:/photos/a.jpg") == Path("C:/photos/a.jpg")  # a drive letter is no scheme
    with pytest.raises(SystemExit):
        StyleTransfer.main([address, str(tmp_path / "style.jpg"), "-o", str(tmp_path / "r.png"), *FAST])
    assert capsys.readouterr().err == f"error: cannot read {address}: only http and https addresses are supported\n"


@pytest.mark.parametrize("address, shown, encoded", [
    ("https://example.org/my photo.jpg", "https://example.org/my photo.jpg", "https://example.org/my%20photo.jpg"),
    ("https://example.org/a\tb.jpg ", "https://example.org/a\\tb.jpg", "https://example.org/a%09b.jpg"),
], ids=["space", "tab"])
def test_an_address_with_a_space_inside_is_refused_with_its_fix(address, shown, encoded):
    """urllib's own message called the space a control character, after 'Downloading'. Blanks
    at the ends are urllib's to drop (a URL list with CRLF line ends): they are not refused."""
    for read in (ContentModel.local_image, lambda address: expand_inputs([address])):
        with pytest.raises(StyleTransferError) as error:
            read(address)
        assert str(error.value) == (f"cannot read the address {shown}: an address holds no spaces (nor tabs or "
                                    f"line breaks); write it as {encoded}")
    for address in ("https://example.org/a.jpg \r", " https://example.org/a.jpg"):
        ContentModel.check_address(address)


@pytest.mark.parametrize("script", [StyleTransfer, ContentModel, StyleModel], ids=lambda module: module.__name__)
def test_an_address_that_cannot_be_read_is_a_one_line_error(script, tmp_path, capsys):
    """'http://[::1' (an unclosed IPv6 host) made urllib raise inside the naming of the
    outputs: a traceback and status 1."""
    address = "http://[::1"
    with pytest.raises(SystemExit) as info:
        script.main([address, "-o", str(tmp_path / "r.png"), "--size", str(SIZE), "--weights", "none"])
    assert info.value.code == ContentModel.EXIT_USAGE
    assert capsys.readouterr().err == f"error: cannot read the address {address}: Invalid IPv6 URL\n"
    with pytest.raises(StyleTransferError, match="cannot read the address"):
        expand_inputs([address])
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_takes_urls_and_names_outputs_after_them(server, cache, tmp_path, monkeypatch,
                                                                 vgg19_weights, capsys):
    monkeypatch.chdir(tmp_path)  # the default output folder results/ is relative
    content, style = server.url("/photos/chelsea.png"), server.url("/styles/starry_night.png")
    StyleTransfer.main([content, style, *FAST])
    assert "\x1b" not in capsys.readouterr().out  # no terminal codes (Keras's download bar) in a log
    result = tmp_path / "results" / "chelsea_starry_night.png"
    assert open_image(result).size[0] == SIZE
    trace = json.loads(result.with_suffix(".json").read_text())
    assert trace["content"] == content and trace["styles"] == [style]


def test_a_url_downloaded_before_is_used_again_with_a_note(server, cache, tmp_path, run_main, vgg19_weights,
                                                          sample_images, capsys):
    """The image at an address may change: when an earlier run's download is used instead,
    a note says so and where it is (single runs, batches and the figure scripts alike)."""
    content, style = server.url("/photos/chelsea.png"), server.url("/styles/starry_night.png")
    status, stdout, stderr = run_main([content, str(sample_images[1]), "-o", str(tmp_path / "one.png"), *FAST])
    assert status == 0 and "note:" not in stdout, stdout + stderr
    [copy] = cached_files(cache)

    def note(url, path):
        return f"note: {url} was downloaded before: using that copy, {path} (delete it to download again)"

    status, stdout, stderr = run_main([content, style, "-o", str(tmp_path / "two.png"), *FAST])
    assert status == 0 and [line for line in stdout.splitlines() if line.startswith("note:")] == [
        note(content, copy)], stdout + stderr
    status, stdout, stderr = run_main(["--contents", content, "--styles", style, "-o", str(tmp_path / "batch"),
                                       *FAST])
    [style_copy] = set(cached_files(cache)) - {copy}
    assert status == 0 and [line for line in stdout.splitlines() if line.startswith("note:")] == [
        note(content, copy), note(style, style_copy)], stdout + stderr
    StyleModel.main([style, "--model", "vgg19", "--size", str(SIZE), "-o", str(tmp_path / "figure.png")])
    assert note(style, style_copy) in capsys.readouterr().out


def test_blanks_at_an_address_s_ends_are_dropped_everywhere(server, cache, tmp_path, run_main, vgg19_weights,
                                                            sample_images, capsys):
    """urllib drops them (a URL list with CRLF line ends): so do the cache, the notes, the
    trace and the outputs' names. Before, the address was downloaded again under another
    name, and the note and the trace kept the blanks."""
    content = server.url("/photos/chelsea.png")
    [copy] = [download_image(content)]
    assert ContentModel.local_image(f" {content}\r") == copy  # from Python too
    assert ContentModel.earlier_download(f"{content} ") == copy
    assert ContentModel.source_name(f"\t{content} ") == "chelsea.png"
    assert ContentModel.earlier_download_notes([f" {content}", content]) == [
        f"{content} was downloaded before: using that copy, {copy} (delete it to download again)"]
    status, stdout, stderr = run_main([f" {content}\r", str(sample_images[1]), "-o", str(tmp_path / "one.png"),
                                       *FAST])
    assert status == 0, stdout + stderr
    assert cached_files(cache) == [copy]  # not downloaded again
    assert [line for line in stdout.splitlines() if line.startswith("note:")] == [
        f"note: {content} was downloaded before: using that copy, {copy} (delete it to download again)"]
    assert json.loads((tmp_path / "one.json").read_text())["content"] == content
    status, stdout, stderr = run_main(["--contents", f"{content} ", "--styles", str(sample_images[1]),
                                       "-o", str(tmp_path / "batch"), *FAST])
    assert status == 0 and (tmp_path / "batch" / "chelsea_starry_night.png").is_file(), stdout + stderr
    StyleModel.main([f"{content}\t", "--model", "vgg19", "--size", str(SIZE), "-o", str(tmp_path / "figure.png")])
    assert f"note: {content} was downloaded before" in capsys.readouterr().out
    assert cached_files(cache) == [copy]


def test_a_url_too_small_for_vgg_is_named_as_typed_not_as_its_download(server, cache, tmp_path, run_main,
                                                                       sample_images, capsys):
    """A strip of a photo too thin for VGG at --size fails its pair in a batch, and a single
    run and the figure scripts, with the address it came from (the file it was downloaded to
    is no name the user gave)."""
    buffer = io.BytesIO()
    Image.new("RGB", (300, 10), "white").save(buffer, format="PNG")
    server.routes["/thin/strip.png"] = buffer.getvalue()
    url = server.url("/thin/strip.png")
    status, stdout, stderr = run_main(["--contents", url, "--styles", str(sample_images[1]), "-o",
                                       str(tmp_path / "batch"), *FAST])
    (failure,) = [line for line in stderr.splitlines() if line.startswith("failed: ")]
    assert status == 1 and f": {url} resized to a long side of {SIZE} is" in failure, stderr
    assert str(cache) not in failure
    status, stdout, stderr = run_main([url, str(sample_images[1]), "-o", str(tmp_path / "one.png"), *FAST])
    assert status == 2 and stderr.startswith(f"error: {url} resized to a long side of {SIZE} is"), stderr
    for script in (ContentModel, StyleModel):
        with pytest.raises(SystemExit) as exit_:
            script.main([url, "--model", "vgg19", "--size", str(SIZE), "-o", str(tmp_path / "figure.png")])
        stderr = capsys.readouterr().err
        assert exit_.value.code == 2 and stderr.startswith(f"error: {url} resized to a long side of {SIZE} is"), \
            stderr


def test_an_earlier_download_is_found_where_keras_put_it_when_the_cache_is_read_only(
        server, tmp_path, read_only_keras_home, monkeypatch):
    """get_file keeps its downloads under /tmp/.keras when it cannot write to the Keras cache
    (a shared, read-only one): the note looks for the copy there too, not in the cache."""
    keras_home = read_only_keras_home
    subdir = f"images-{tmp_path.name}"  # this test's own, under both folders
    monkeypatch.setattr(ContentModel, "DOWNLOAD_CACHE_SUBDIR", subdir)
    url = server.url("/photos/chelsea.png")
    (keras_home / subdir).mkdir()  # a copy in the cache folder, which get_file would not use
    (keras_home / subdir / ContentModel.cached_file_name(url)).write_bytes(b"from an earlier, writable day")
    try:
        assert ContentModel.earlier_download(url) is None
        path = download_image(url)
        assert path.parent == Path("/tmp/.keras") / subdir
        assert ContentModel.earlier_download(url) == path
    finally:
        shutil.rmtree(Path("/tmp/.keras") / subdir, ignore_errors=True)
        shutil.rmtree(keras_home / subdir)


def test_a_mask_may_be_a_url_too(server, cache, tmp_path, vgg19_weights, capsys, sample_images):
    """A mask given by address is downloaded as the images are; the note and the trace name it
    as given, the trace's digest is of its download."""
    mask = server.url("/masks/portrait.png")
    output = tmp_path / "r.png"
    StyleTransfer.main([str(sample_images[0]), str(sample_images[1]), "--style-masks", mask, "-o", str(output),
                        *FAST])
    assert f"note: the mask {mask} (43x64) is stretched to the photo's shape (64x43)" in capsys.readouterr().out
    trace = json.loads(output.with_suffix(".json").read_text())
    [download] = [path for path in cached_files(cache) if path.name.endswith("_portrait.png")]
    assert trace["settings"]["style_masks"] == [mask]
    assert trace["sha256"]["style_masks"] == [hashlib.sha256(download.read_bytes()).hexdigest()]


@pytest.mark.parametrize("script, path, suffix", [
    (ContentModel, "/photos/chelsea.png", "_content_features"),
    (StyleModel, "/styles/starry_night.png", "_style_features"),
], ids=["ContentModel", "StyleModel"])
def test_the_figure_scripts_take_a_url_and_name_the_figure_after_it(server, cache, tmp_path, monkeypatch,
                                                                   vgg19_weights, script, path, suffix):
    monkeypatch.chdir(tmp_path)  # the default output folder results/ is relative
    script.main([server.url(path), "--model", "vgg19", "--size", str(SIZE)])
    figure = tmp_path / "results" / f"{Path(path).stem}{suffix}.png"
    with Image.open(figure) as image:
        assert image.format == "PNG" and min(image.size) > SIZE
    assert len(cached_files(cache)) == 1  # read from the download, kept in the cache


@pytest.mark.parametrize("show, path", [
    (ContentModel.show_content_features, "/photos/chelsea.png"),
    (StyleModel.show_style_features, "/styles/starry_night.png"),
], ids=["ContentModel", "StyleModel"])
def test_the_figures_of_a_url_are_titled_with_its_file_name_not_its_download(server, cache, vgg19_weights,
                                                                            show, path):
    _, figure = show(server.url(path), model="vgg19", size=SIZE)
    assert figure.get_suptitle().startswith(f"{Path(path).name}: vgg19 ")
    assert len(cached_files(cache)) == 1 and cached_files(cache)[0].name != Path(path).name  # the download


def test_a_bad_url_on_the_command_line_is_one_error_line(server, cache, tmp_path, capsys, sample_images):
    with pytest.raises(SystemExit) as caught:
        StyleTransfer.main([server.url("/missing.png"), str(sample_images[1]), "-o", str(tmp_path / "r.png"),
                            *FAST])
    assert caught.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: cannot download") and "404" in error and "\n" not in error
    assert not (tmp_path / "r.png").exists()


# --- batch mode ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tmp_path_factory, repo_root):
    """Two contents and two styles, each set in a folder of its own."""
    root = tmp_path_factory.mktemp("batch")
    for kind, names in (("content", ["chelsea.jpg", "coffee.jpg"]),
                        ("styles", ["starry_night.jpg", "great_wave.jpg"])):
        (root / kind).mkdir()
        for name in names:
            shutil.copy(repo_root / "images" / kind / name, root / kind / name)
    return root / "content", root / "styles"


@pytest.fixture(scope="module")
def batch(folders, tmp_path_factory, run_main, vgg19_weights):
    """One batch run over 2 contents x 2 styles: (output folder, exit status, stdout)."""
    output = tmp_path_factory.mktemp("batch-results")
    status, stdout, _ = run_main(["--contents", str(folders[0]), "--styles", str(folders[1]),
                                  "-o", str(output), *FAST])
    return output, status, stdout


PAIRS = ["chelsea_great_wave", "chelsea_starry_night", "coffee_great_wave", "coffee_starry_night"]


def record_contact_sheet(monkeypatch) -> dict:
    """What the next batch run draws on its contact sheet: rows, columns, cells (drawn too)."""
    drawn = {}
    real_plot = StyleTransfer.plot_contact_sheet

    def recording_plot(rows, columns, cells):
        drawn.update(rows=rows, columns=columns, cells=cells)
        return real_plot(rows, columns, cells)

    monkeypatch.setattr(StyleTransfer, "plot_contact_sheet", recording_plot)
    return drawn


def test_batch_writes_every_pair_and_a_contact_sheet(batch):
    output, status, stdout = batch
    assert status == 0
    for name in PAIRS:
        for path in output_paths(output / f"{name}.png").values():
            assert path.suffix == ".gif" or path.is_file(), path
        assert max(open_image(output / f"{name}.png").size) == SIZE
    sheet = open_image(output / CONTACT_SHEET_NAME)
    assert sheet.width > 3 * SIZE and sheet.height > 3 * SIZE  # a 3 x 3 grid (headers included)
    lines = stdout.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("[")] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "4 pairs: 4 done, 0 skipped, 0 failed" in stdout
    assert f"contact sheet: {output / CONTACT_SHEET_NAME}" in stdout


def test_a_rerun_skips_finished_pairs_and_overwrite_redoes_them(batch, folders, monkeypatch, run_main):
    output = batch[0]
    calls = []
    real_stylize = StyleTransfer.stylize_batch

    def counting_stylize(*args, **kwargs):
        calls.append(1)
        return real_stylize(*args, **kwargs)

    monkeypatch.setattr(StyleTransfer, "stylize_batch", counting_stylize)
    decoded = []  # (input, long side) of each input decoded
    real_load_sources = StyleTransfer.load_sources
    monkeypatch.setattr(StyleTransfer, "load_sources", lambda sources, max_size, *args, **kwargs:
                        decoded.extend((source, max_size) for source in sources)
                        or real_load_sources(sources, max_size, *args, **kwargs))
    before = {name: (output / f"{name}.png").stat().st_mtime_ns for name in PAIRS}
    sheet = record_contact_sheet(monkeypatch)
    status, stdout, _ = run_main(["--contents", str(folders[0]), "--styles", str(folders[1]),
                                  "-o", str(output), *FAST])
    assert status == 0 and calls == []
    # Nothing to run, so no input is decoded at its size: only small, for the sheet.
    assert sorted(source for source, _ in decoded) == sorted(map(str, [*folders[0].iterdir(), *folders[1].iterdir()]))
    assert {size for _, size in decoded} == {StyleTransfer.SHEET_THUMBNAIL}
    assert "4 pairs: 0 done, 4 skipped, 0 failed" in stdout
    assert stdout.count("skipped (done before)\n") == 4
    assert {name: (output / f"{name}.png").stat().st_mtime_ns for name in PAIRS} == before
    assert (output / CONTACT_SHEET_NAME).is_file()
    # The sheet still shows every result, read back from the files: rows are contents, columns styles.
    assert [name for name, _ in sheet["rows"]] == ["chelsea", "coffee"]
    assert [name for name, _ in sheet["columns"]] == ["great_wave", "starry_night"]
    for row, content in zip(sheet["cells"], ["chelsea", "coffee"]):
        for cell, style in zip(row, ["great_wave", "starry_night"]):
            np.testing.assert_array_equal(cell, load_image(output / f"{content}_{style}.png"))

    # Other settings: still skipped (nothing is replaced unasked), but the line says what differs.
    status, stdout, _ = run_main(["--contents", str(folders[0]), "--styles", str(folders[1]),
                                  "-o", str(output), *FAST, "--size", str(SIZE // 2), "--style-weight", "1"])
    assert status == 0 and calls == []
    assert stdout.count("skipped (done before, with another --size, --style-weight: --overwrite redoes it)") == 4
    # What 'auto' came to, typed out, changes nothing; another value does.
    trace = json.loads((output / f"{PAIRS[0]}.json").read_text())
    device = "gpu" if trace["device"].startswith("/GPU") else "cpu"
    ran = ["--precision", trace["precision"], "--scales", str(len(trace["level_sizes"])), "--device", device]
    status, stdout, _ = run_main(["--contents", str(folders[0]), "--styles", str(folders[1]),
                                  "-o", str(output), *FAST, *ran])
    assert status == 0 and stdout.count("skipped (done before)\n") == 4, stdout
    other = "float32" if trace["precision"] != "float32" else "bfloat16"
    status, stdout, _ = run_main(["--contents", str(folders[0]), "--styles", str(folders[1]),
                                  "-o", str(output), *FAST, "--precision", other, "--scales", "2"])
    assert stdout.count("skipped (done before, with another --precision, --scales: --overwrite redoes it)") == 4
    # --gif on pairs done without one: no frames were kept, so the line says it takes a new run.
    status, stdout, _ = run_main(["--contents", str(folders[0]), "--styles", str(folders[1]),
                                  "-o", str(output), *FAST, *ran, "--save-every", "1", "--gif"])
    assert status == 0 and calls == []
    assert stdout.count("skipped (done before, with another --save-every: --overwrite redoes it; no GIF: "
                        f"{StyleTransfer.NO_GIF_WITHOUT_A_RUN})") == 4, stdout

    status, stdout, _ = run_main(["--contents", str(folders[0] / "chelsea.jpg"),
                                  "--styles", str(folders[1] / "starry_night.jpg"),
                                  "-o", str(output), "--overwrite", *FAST])
    assert status == 0 and len(calls) == 1
    assert "1 pair: 1 done, 0 skipped, 0 failed" in stdout
    assert (output / "chelsea_starry_night.png").stat().st_mtime_ns != before["chelsea_starry_night"]


@pytest.mark.parametrize("before, now, gif, changed", [
    (["--learning-rate", "0.5"], [], False, []),  # L-BFGS, both: no step size to change
    (["--learning-rate", "0.5", "--optimizer", "adam"], ["--optimizer", "adam"], False, ["--learning-rate"]),
    (["--optimizer", "adam", "--preconditioner", "none"], ["--optimizer", "adam"], False, []),
    (["--preconditioner", "none"], [], False, ["--preconditioner"]),
    (["--save-every", "3"], [], False, []),  # a pair's image is saved once, at its end
    (["--save-every", "3"], [], True, ["--save-every"]),  # but its GIF's frames are others
    (["--learning-rate", "0.5"], ["--optimizer", "adam"], False, ["--learning-rate", "--optimizer"]),
], ids=["lbfgs-learning-rate", "adam-learning-rate", "adam-preconditioner", "lbfgs-preconditioner",
        "save-every", "save-every-gif", "optimizer"])
def test_a_skipped_pair_names_only_the_changed_flags_its_run_uses(before, now, gif, changed):
    """A pair done before is skipped with the flags that differ named ('--overwrite redoes
    it'), but only those the run uses: another --learning-rate for L-BFGS, a --preconditioner
    for Adam or a --save-every without --gif would make the same image, and were named."""
    def settings(arguments):
        return StyleTransfer.settings_from_args(StyleTransfer.build_parser().parse_args(arguments))

    trace = {"settings": json.loads(json.dumps(StyleTransfer.json_safe(settings(before)))), "size": 512}
    assert StyleTransfer.changed_flags(trace, settings(now), 512, gif) == changed


def test_a_pair_whose_files_cannot_be_written_fails_and_the_rest_still_run(folders, tmp_path, run_main,
                                                                           monkeypatch, vgg19_weights):
    output = tmp_path / "out"
    replace = os.replace

    def disk_full_for_chelsea(source, target):
        if Path(target).name.startswith("chelsea_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target)

    monkeypatch.setattr(os, "replace", disk_full_for_chelsea)
    status, stdout, stderr = run_main(["--contents", str(folders[0]), "--styles", str(folders[1] / "great_wave.jpg"),
                                       "-o", str(output), *FAST])
    assert status == StyleTransfer.EXIT_FAILED
    assert "2 pairs: 1 done, 0 skipped, 1 failed" in stdout
    assert f"failed: chelsea + great_wave: could not write {output / 'chelsea_great_wave.json'}: " \
           "No space left on device" in stderr  # the trace, the pair's first file (write_outputs)
    assert "Traceback" not in stdout + stderr
    assert (output / "coffee_great_wave.json").is_file() and (output / CONTACT_SHEET_NAME).is_file()


def test_files_left_by_a_write_that_failed_half_way_are_written_again_by_a_rerun(folders, tmp_path, run_main,
                                                                                  monkeypatch, vgg19_weights):
    """A disk that fills up after a pair's image is written leaves the image and a trace
    marked unfinished, so the rerun writes that pair again instead of refusing to replace
    files it did not write; a contact sheet that cannot be written still leaves the summary."""
    output = tmp_path / "out"
    replace, disk = os.replace, {"full": True}

    def disk_full_for_panels_and_the_sheet(source, target):
        if disk["full"] and (Path(target).name.endswith("_panel.png") or Path(target).name == CONTACT_SHEET_NAME):
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target)

    monkeypatch.setattr(os, "replace", disk_full_for_panels_and_the_sheet)
    arguments = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1] / "great_wave.jpg"),
                 "-o", str(output), *FAST]
    status, stdout, stderr = run_main(arguments)
    assert status == StyleTransfer.EXIT_FAILED, stdout + stderr
    assert "1 pair: 0 done, 0 skipped, 1 failed" in stdout
    assert f"error: no contact sheet: could not write {output / CONTACT_SHEET_NAME}: No space left on device" \
        in stderr
    assert "Traceback" not in stdout + stderr
    trace = output / "chelsea_great_wave.json"
    assert (output / "chelsea_great_wave.png").is_file() and not (output / "chelsea_great_wave_panel.png").exists()
    assert json.loads(trace.read_text())["stopped_early"] == StyleTransfer.FILES_UNFINISHED

    disk["full"] = False
    status, stdout, stderr = run_main(arguments)
    assert status == 0, stdout + stderr
    assert "1 pair: 1 done, 0 skipped, 0 failed" in stdout
    assert json.loads(trace.read_text())["stopped_early"] is None
    assert (output / "chelsea_great_wave_panel.png").is_file() and (output / CONTACT_SHEET_NAME).is_file()


def test_a_bad_image_or_url_fails_its_pairs_and_the_rest_still_run(folders, server, cache, tmp_path, run_main,
                                                                   monkeypatch, vgg19_weights):
    contents = tmp_path / "contents"
    contents.mkdir()
    shutil.copy(folders[0] / "chelsea.jpg", contents)
    (contents / "broken.jpg").write_text("not a picture")
    Image.new("RGB", (2000, 60), "red").save(contents / "wide.png")  # readable, too narrow at --size 64
    missing = server.url("/missing.png")
    output = tmp_path / "out"
    sheet = record_contact_sheet(monkeypatch)
    status, stdout, stderr = run_main(["--contents", str(contents),
                                       "--styles", str(folders[1] / "starry_night.jpg"), missing,
                                       "-o", str(output), *FAST])
    assert status == StyleTransfer.EXIT_FAILED
    assert "6 pairs: 1 done, 0 skipped, 5 failed" in stdout
    # One line per pair in the order of the pairs, whether it failed before any work or ran.
    lines = [line for line in stdout.splitlines() if line.startswith("[")]
    assert [line.split()[0] for line in lines] == [f"[{n}/6]" for n in range(1, 7)], stdout
    assert lines[2].startswith("[3/6] chelsea + starry_night ... done in ")
    assert "wide + starry_night ... failed: " in stdout and "use a --size of at least" in stdout
    assert "broken + starry_night ... failed: cannot read" in stdout
    assert "failed: chelsea + missing: cannot download" in stderr and "404" in stderr
    assert "Traceback" not in stdout + stderr
    assert (output / "chelsea_starry_night.png").is_file()
    assert not (output / "broken_starry_night.png").exists()
    assert (output / CONTACT_SHEET_NAME).is_file()
    # On the sheet: the unreadable inputs say so (not the image too narrow at this size, which
    # is shown), failed pairs say 'failed', the result is there.
    assert [(name, image) for name, image in sheet["rows"] if isinstance(image, str)] == [("broken", "unreadable")]
    assert [name for name, image in sheet["rows"] if not isinstance(image, str)] == ["chelsea", "wide"]
    assert [(name, image) for name, image in sheet["columns"] if isinstance(image, str)] == [("missing", "unreadable")]
    cells = {(row_name, column_name): cell for (row_name, _), row in zip(sheet["rows"], sheet["cells"])
             for (column_name, _), cell in zip(sheet["columns"], row)}
    assert cells[("broken", "starry_night")] == cells[("broken", "missing")] == cells[("chelsea", "missing")] \
        == "failed"
    np.testing.assert_allclose(cells[("chelsea", "starry_night")],
                               load_image(output / "chelsea_starry_night.png"), atol=1 / 255)


def test_an_image_found_truncated_only_when_decoded_fails_its_pairs_and_the_rest_still_run(
        folders, tmp_path, run_main, monkeypatch, vgg19_weights):
    """A truncated file's header reads fine, so its pairs pass the checks made before any
    work; decoding it then fails them, with the reason, and the other pairs still run."""
    contents = tmp_path / "contents"
    contents.mkdir()
    shutil.copy(folders[0] / "chelsea.jpg", contents)
    whole = (folders[0] / "coffee.jpg").read_bytes()
    (contents / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    assert ContentModel.stored_shape(contents / "cut.jpg")  # the header is whole
    sheet = record_contact_sheet(monkeypatch)
    status, stdout, stderr = run_main(["--contents", str(contents), "--styles", str(folders[1] / "great_wave.jpg"),
                                       "-o", str(tmp_path / "out"), *FAST])
    assert status == StyleTransfer.EXIT_FAILED, stdout + stderr
    assert "2 pairs: 1 done, 0 skipped, 1 failed" in stdout
    assert re.search(r"failed: cut \+ great_wave: cannot read .*cut\.jpg", stderr), stderr
    assert "Traceback" not in stdout + stderr
    assert (tmp_path / "out" / "chelsea_great_wave.png").is_file()
    assert not (tmp_path / "out" / "cut_great_wave.png").exists()
    assert [(name, image) for name, image in sheet["rows"] if isinstance(image, str)] == [("cut", "unreadable")]


def test_ctrl_c_in_a_batch_exits_130_and_a_rerun_redoes_only_what_was_not_finished(
        folders, tmp_path, monkeypatch, run_main, vgg19_weights):
    """Ctrl-C during the second pair: its best image so far is saved (marked interrupted in
    its trace), the later pairs are not started, and the next run of the same command skips
    the first pair and runs the other three."""
    output = tmp_path / "out"
    arguments = ["--contents", str(folders[0]), "--styles", str(folders[1]), "-o", str(output), *FAST]
    calls = []
    real_stylize = StyleTransfer.stylize_batch

    def interrupted_second(contents, style, callback=None, **settings):
        calls.append(1)

        def pressing_ctrl_c(progress):  # as if Ctrl-C came during the optimization
            raise KeyboardInterrupt

        return real_stylize(contents, style, **settings, callback=pressing_ctrl_c if len(calls) == 2 else callback)

    monkeypatch.setattr(StyleTransfer, "stylize_batch", interrupted_second)
    status, stdout, _ = run_main(arguments)
    assert status == StyleTransfer.EXIT_INTERRUPTED == 130
    assert len(calls) == 2
    assert "4 pairs: 1 done, 0 skipped, 0 failed, 1 interrupted, 2 not run" in stdout
    assert json.loads((output / "chelsea_starry_night.json").read_text())["stopped_early"] == "interrupted"
    assert (output / "chelsea_starry_night.png").is_file()  # the best image so far is kept
    assert not (output / "coffee_great_wave.png").exists()
    assert (output / CONTACT_SHEET_NAME).is_file()

    monkeypatch.setattr(StyleTransfer, "stylize_batch", real_stylize)
    status, stdout, _ = run_main(arguments)
    assert status == 0
    assert "4 pairs: 3 done, 1 skipped, 0 failed" in stdout
    assert "chelsea + great_wave ... skipped" in stdout
    assert json.loads((output / "chelsea_starry_night.json").read_text())["stopped_early"] is None


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_pair_whose_trace_is_another_results_fails_and_leaves_it(overwrite, folders, tmp_path, run_main,
                                                                   vgg19_weights):
    """A single run's chelsea_starry_night.jpg in the batch folder: its trace, panel and loss
    curve are named as the pair's .png would name them. Before, the batch ran the pair and
    replaced them (a single run's -o is refused there, even with --overwrite)."""
    output = tmp_path / "out"
    content, style = folders[0] / "chelsea.jpg", folders[1] / "starry_night.jpg"
    jpg = output / "chelsea_starry_night.jpg"
    assert run_main([str(content), str(style), "-o", str(jpg), *FAST])[0] == 0
    trace = (output / "chelsea_starry_night.json").read_bytes()
    status, stdout, _ = run_main(["--contents", str(content), "--styles", str(style), "-o", str(output), *FAST,
                                  *overwrite])
    assert status == StyleTransfer.EXIT_FAILED
    assert (f"chelsea + starry_night ... failed: the files beside {output / 'chelsea_starry_night.png'} (trace, "
            f"panel, loss curve) are those of another result, {jpg}: move it with them, or write the batch to "
            "another -o folder") in stdout
    assert (output / "chelsea_starry_night.json").read_bytes() == trace
    assert not (output / "chelsea_starry_night.png").exists()


def test_ctrl_c_before_a_pairs_first_iteration_writes_none_of_its_files(folders, tmp_path, monkeypatch, run_main,
                                                                          vgg19_weights):
    """Before, the pair's start image was written as its result, with an empty loss chart,
    and shown on the contact sheet as if it were one."""
    def ctrl_c_at_once(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(StyleTransfer, "lbfgs_optimize", ctrl_c_at_once)
    sheet = record_contact_sheet(monkeypatch)
    output = tmp_path / "out"
    status, stdout, _ = run_main(["--contents", str(folders[0] / "chelsea.jpg"),
                                  "--styles", str(folders[1] / "starry_night.jpg"), "-o", str(output), *FAST])
    assert status == StyleTransfer.EXIT_INTERRUPTED
    assert "chelsea + starry_night ... interrupted before the first iteration: nothing written" in stdout
    assert sorted(path.name for path in output.iterdir()) == [CONTACT_SHEET_NAME]
    assert sheet["cells"] == [[StyleTransfer.INTERRUPTED]]


def test_ctrl_c_while_a_pairs_files_are_written_finishes_them_and_a_rerun_skips_the_pair(
        folders, tmp_path, run_main, vgg19_weights, ctrl_c_during_first_savefig):
    """A real SIGINT while the first pair's panel is written: its image, panel, loss curve
    and trace are all written (a result without its trace would look to the rerun like a
    file it must not replace), the batch stops there with status 130, and the rerun of
    the same command skips that pair and runs the other."""
    output = tmp_path / "out"
    arguments = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1]), "-o", str(output),
                 *FAST]
    status, stdout, _ = run_main(arguments)
    assert status == StyleTransfer.EXIT_INTERRUPTED, stdout
    assert "2 pairs: 1 done, 0 skipped, 0 failed, 1 not run" in stdout
    # Its time as a finished pair's, not the 0.0 s of one whose time was never set.
    seconds = re.search(r"chelsea \+ great_wave \.\.\. done in ([0-9.]+) s", stdout)
    assert seconds and float(seconds.group(1)) > 0, stdout
    first = output_paths(output / "chelsea_great_wave.png")
    assert all(first[kind].is_file() for kind in ("image", "panel", "losses", "trace"))
    assert not (output / "chelsea_starry_night.png").exists()

    status, stdout, _ = run_main(arguments)  # the fixture sends only one SIGINT
    assert status == 0, stdout
    assert "2 pairs: 1 done, 1 skipped, 0 failed" in stdout


def test_ctrl_c_at_the_contact_sheet_still_prints_the_summary(folders, tmp_path, run_main, monkeypatch,
                                                              vgg19_weights):
    """Every pair has its outcome by then: the summary says what became of each (before,
    only 'interrupted' was printed), and the batch exits 130. A real SIGINT as the sheet is
    drawn waits until it is written, and the summary names it; one as its inputs are read
    leaves it out, and says so."""
    real_plot = StyleTransfer.plot_contact_sheet

    def plot_meeting_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real_plot(*args, **kwargs)

    monkeypatch.setattr(StyleTransfer, "plot_contact_sheet", plot_meeting_ctrl_c)
    output = tmp_path / "out"
    arguments = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1] / "great_wave.jpg"),
                 "-o", str(output), *FAST]
    previous = signal.getsignal(signal.SIGINT)
    try:
        status, stdout, stderr = run_main(arguments)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert status == StyleTransfer.EXIT_INTERRUPTED, stdout + stderr
    assert "1 pair: 1 done, 0 skipped, 0 failed" in stdout
    assert f"contact sheet: {output / CONTACT_SHEET_NAME}" in stdout and "no contact sheet" not in stderr
    assert ContentModel.png_text(output / CONTACT_SHEET_NAME)["Title"] == StyleTransfer.CONTACT_SHEET_TITLE

    (output / CONTACT_SHEET_NAME).unlink()

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(StyleTransfer, "sheet_headers", ctrl_c)
    status, stdout, stderr = run_main(arguments)
    assert status == StyleTransfer.EXIT_INTERRUPTED
    assert "1 pair: 0 done, 1 skipped, 0 failed" in stdout
    assert f"error: no contact sheet: {StyleTransfer.SHEET_INTERRUPTED}" in stderr
    assert not (output / CONTACT_SHEET_NAME).exists()


def test_a_batch_takes_over_the_empty_placeholder_of_a_killed_run(folders, tmp_path, run_main, vgg19_weights):
    """A batch killed (kill -9, the out-of-memory killer) leaves the empty file that held the
    pair's name. Its rerun failed the pair ('exists and is empty ...; delete it'), and
    --overwrite would have redone every pair: no live run holds it, so the pair runs."""
    output = tmp_path / "out"
    output.mkdir()
    (output / "chelsea_great_wave.png").write_bytes(b"")  # no process holds its lock
    arguments = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1] / "great_wave.jpg"),
                 "-o", str(output), *FAST]
    status, stdout, stderr = run_main(arguments)
    assert status == 0 and "1 pair: 1 done" in stdout, stdout + stderr
    assert (output / "chelsea_great_wave.png").stat().st_size > 0


def test_a_batch_never_replaces_files_it_did_not_write(folders, tmp_path, run_main, vgg19_weights):
    """Files in the output folder that are not from an interrupted run of their pair (the
    user's own, or the trace of a .jpg result beside the .png a batch writes) fail that
    pair, untouched; another batch's contact sheet is kept and this one's numbered."""
    output = tmp_path / "out"
    output.mkdir()
    mine = {"chelsea_great_wave.png": b"mine", "chelsea_starry_night.json": b'{"a": 1}'}
    for name, data in mine.items():
        (output / name).write_bytes(data)
    chelsea, styles = folders[0] / "chelsea.jpg", folders[1]
    status, stdout, stderr = run_main(["--contents", str(chelsea), "--styles", str(styles), "-o", str(output),
                                       *FAST])
    assert status == StyleTransfer.EXIT_FAILED
    assert "2 pairs: 0 done, 0 skipped, 2 failed" in stdout
    assert f"failed: chelsea + great_wave: {output / 'chelsea_great_wave.png'} exists; pass --overwrite" in stderr
    assert {name: (output / name).read_bytes() for name in mine} == mine

    coffee = folders[0] / "coffee.jpg"
    status, stdout, _ = run_main(["--contents", str(coffee), "--styles", str(styles), "-o", str(output), *FAST])
    assert status == 0 and "2 pairs: 2 done, 0 skipped, 0 failed" in stdout
    first_sheet = (output / CONTACT_SHEET_NAME).read_bytes()  # the first batch's: it showed chelsea
    assert f"contact sheet: {output / 'contact_sheet_2.png'}" in stdout
    status, stdout, _ = run_main(["--contents", str(coffee), "--styles", str(styles), "-o", str(output), *FAST])
    assert status == 0 and f"contact sheet: {output / 'contact_sheet_2.png'}" in stdout  # its own, redrawn
    assert (output / CONTACT_SHEET_NAME).read_bytes() == first_sheet
    assert not (output / "contact_sheet_3.png").exists()

    status, stdout, _ = run_main(["--contents", str(chelsea), "--styles", str(styles), "-o", str(output),
                                  "--overwrite", *FAST])
    assert status == 0 and "2 pairs: 2 done, 0 skipped, 0 failed" in stdout
    assert f"contact sheet: {output / CONTACT_SHEET_NAME}" in stdout


def files_sheet_inputs(contents: list[str], styles: list[str]) -> str:
    """A batch's sheet_inputs when its inputs were named one file at a time."""
    return StyleTransfer.sheet_inputs(contents, styles, named=(contents, styles))


def test_a_contact_sheet_belongs_to_the_files_of_its_batch_not_to_their_names(tmp_path, monkeypatch):
    """A rerun of a batch, its paths typed another way, redraws its sheet; a batch of other
    files typed with the same names (from another folder) gets a sheet of its own."""
    first, other, output = tmp_path / "first", tmp_path / "other", tmp_path / "out"
    for folder in (first, other):
        (folder / "a").mkdir(parents=True)
    output.mkdir()
    monkeypatch.chdir(first)
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", files_sheet_inputs([str(first / "a" / "cat.jpg")], ["a/wave.jpg"]))
    Image.new("RGB", (8, 8)).save(output / CONTACT_SHEET_NAME, pnginfo=info)
    assert contact_sheet_path(output, files_sheet_inputs(["a/cat.jpg"], [str(first / "a" / "wave.jpg")]), False) \
        == output / CONTACT_SHEET_NAME
    monkeypatch.chdir(other)
    assert contact_sheet_path(output, files_sheet_inputs(["a/cat.jpg"], ["a/wave.jpg"]), False) \
        == output / "contact_sheet_2.png"
    assert contact_sheet_path(output, files_sheet_inputs(["a/cat.jpg"], ["a/wave.jpg"]), True) \
        == output / CONTACT_SHEET_NAME


def test_a_rerun_of_the_same_folders_redraws_their_sheet_after_images_are_added_or_removed(tmp_path, monkeypatch):
    """The sheet of a batch of folders stays that batch's after a photo is added to a folder
    (or taken out): the rerun redraws contact_sheet.png rather than leave it stale beside a
    new contact_sheet_2.png. A sheet written before sheets named their folders is matched on
    its inputs alone."""
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "out"
    output.mkdir()
    folders = (["photos"], ["paintings"])
    earlier = StyleTransfer.sheet_inputs(["photos/cat.jpg"], ["paintings/wave.jpg"], named=folders)
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", earlier)
    Image.new("RGB", (8, 8)).save(output / CONTACT_SHEET_NAME, pnginfo=info)
    for contents in (["photos/cat.jpg", "photos/dog.jpg"], []):
        now = StyleTransfer.sheet_inputs(contents, ["paintings/wave.jpg"], named=folders)
        assert contact_sheet_path(output, now, False) == output / CONTACT_SHEET_NAME
    other = StyleTransfer.sheet_inputs(["photos/dog.jpg"], ["paintings/wave.jpg"], named=(["photos/dog.jpg"],
                                                                                         ["paintings"]))
    assert contact_sheet_path(output, other, False) == output / "contact_sheet_2.png"

    before_folders = json.loads(earlier)
    del before_folders["named"]
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", json.dumps(before_folders))
    Image.new("RGB", (8, 8)).save(output / CONTACT_SHEET_NAME, pnginfo=info)
    same = StyleTransfer.sheet_inputs(["photos/cat.jpg"], ["paintings/wave.jpg"], named=(["photos/cat.jpg"],
                                                                                        ["paintings/wave.jpg"]))
    assert contact_sheet_path(output, same, False) == output / CONTACT_SHEET_NAME
    assert contact_sheet_path(output, now, False) == output / "contact_sheet_2.png"


def test_only_a_run_that_ended_normally_counts_as_finished(tmp_path):
    paths = output_paths(tmp_path / "a_b.png")
    assert not is_finished(paths, previous_trace(paths))
    paths["image"].write_bytes(b"")
    for stopped_early, finished in ((None, True), ("interrupted", False), ("the loss became nan", False)):
        paths["trace"].write_text(json.dumps({"stopped_early": stopped_early}))
        assert is_finished(paths, previous_trace(paths)) is finished
    paths["trace"].write_text("{ half a trace")
    assert not is_finished(paths, previous_trace(paths))


def test_a_skipped_pair_whose_panel_or_loss_curve_was_deleted_gets_them_drawn_again(folders, tmp_path, run_main,
                                                                                     monkeypatch, vgg19_weights):
    """A rerun skips a finished pair (no new optimization) and draws again the pictures
    deleted since: the panel from the result and the inputs, the loss curve from the trace,
    as the run drew them, each with the command that made the result, also when the rerun has
    other sizes. What keeps a picture from being drawn is said once for all it keeps (a
    trace without its command); an input that cannot be read now (a file spoilt) costs only
    the panel."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(folders[0] / "chelsea.jpg", "photo.jpg")
    command = ["--contents", "photo.jpg", "--styles", str(folders[1] / "great_wave.jpg"), "-o", "out", *FAST]
    assert run_main(command)[0] == 0
    paths = output_paths(Path("out", "photo_great_wave.png"))
    drawn = {name: np.asarray(open_image(paths[name]), dtype=float) for name in ("panel", "losses")}
    made_by = ContentModel.png_text(paths["panel"])["Description"]
    monkeypatch.setattr(StyleTransfer, "stylize_batch", lambda *args, **kwargs: pytest.fail("optimized again"))
    for deleted, said in ((["panel"], "panel"), (["losses"], "loss curve"),
                          (["panel", "losses"], "panel and loss curve")):
        for name in deleted:
            paths[name].unlink()
        status, stdout, stderr = run_main(command)
        assert status == 0 and "1 pair: 0 done, 1 skipped, 0 failed" in stdout, stdout + stderr
        assert f"skipped (done before; its {said} drawn again)\n" in stdout, stdout
        for name in deleted:
            again = np.asarray(open_image(paths[name]), dtype=float)
            assert again.shape == drawn[name].shape
            assert np.abs(again - drawn[name]).mean() < 0.5, name  # the result read back is 8-bit
            assert ContentModel.png_text(paths[name])["Description"] == made_by
    assert run_main(command)[1].count("skipped (done before)\n") == 1  # nothing missing: nothing drawn
    paths["panel"].unlink()  # a rerun with other sizes draws the run's panel: its images at the trace's sizes
    status, stdout, stderr = run_main([*command, "--size", str(SIZE // 2), "--style-scale", "1.7"])
    assert "skipped (done before, with another --size, --style-scale: --overwrite redoes it; its panel drawn again)" \
        in stdout, stdout + stderr
    assert np.abs(np.asarray(open_image(paths["panel"]), dtype=float) - drawn["panel"]).mean() < 0.5

    trace = paths["trace"].read_text()  # a trace without its command: one reason, said once, for both
    paths["trace"].write_text(json.dumps({key: value for key, value in json.loads(trace).items() if key != "command"}))
    for name in ("panel", "losses"):
        paths[name].unlink()
    status, stdout, stderr = run_main(command)
    assert status == 0 and "skipped (done before; its panel and loss curve not drawn again: its trace lacks what " \
        "it needs)\n" in stdout, stdout + stderr
    spoilt = json.loads(trace)  # a loss row without its style term costs the loss curve only
    del spoilt["history"][-1]["style"]
    paths["trace"].write_text(json.dumps(spoilt))
    status, stdout, stderr = run_main(command)
    assert "its panel drawn again; its loss curve not drawn again: its trace lacks what it needs)\n" in stdout, stdout
    paths["trace"].write_text(trace)
    paths["panel"].unlink()

    Path("photo.jpg").write_bytes(b"no longer a JPEG")  # (a missing path stops the batch before any pair)
    status, stdout, stderr = run_main(command)
    assert status == 0 and "1 pair: 0 done, 1 skipped, 0 failed" in stdout, stdout + stderr
    assert re.search(r"skipped \(done before; its loss curve drawn again; its panel not drawn again: .*photo\.jpg",
                     stdout), stdout
    assert paths["losses"].is_file() and not paths["panel"].exists()

    shutil.copy(folders[0] / "chelsea.jpg", "photo.jpg")  # an error in the drawing is not put down to the trace
    monkeypatch.setattr(StyleTransfer, "plot_panel", lambda *args: None + 1)
    with pytest.raises(TypeError):
        run_main(command)


def test_a_trace_edited_by_hand_does_not_stop_the_batch(folders, tmp_path, run_main, monkeypatch, vgg19_weights):
    """A finished pair's trace whose inputs or digests are no longer lists: the rerun ended
    in a TypeError. Without its digests the pair is judged by the names; without its styles
    it is not known to be this pair's, and its files are not replaced."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(folders[0] / "chelsea.jpg", "photo.jpg")
    command = ["--contents", "photo.jpg", "--styles", str(folders[1] / "great_wave.jpg"), "-o", "out", *FAST]
    assert run_main(command)[0] == 0
    path = output_paths(Path("out", "photo_great_wave.png"))["trace"]
    trace = json.loads(path.read_text())
    path.write_text(json.dumps({**trace, "sha256": {"content": None, "styles": None}}))
    status, stdout, stderr = run_main(command)
    assert status == 0 and "1 pair: 0 done, 1 skipped, 0 failed" in stdout, stdout + stderr
    path.write_text(json.dumps({**trace, "styles": None}))
    status, stdout, stderr = run_main(command)
    assert status == StyleTransfer.EXIT_FAILED and "1 pair: 0 done, 0 skipped, 1 failed" in stdout, stdout + stderr
    assert "pass --overwrite to replace it" in stdout


@pytest.mark.parametrize("level_sizes", [[[0, 512]], [[512]], [None], ["512x341"], {"a": 1}])
def test_a_trace_edited_by_hand_is_read_as_far_as_it_can_be(level_sizes):
    """Level sizes that are not (height, width) pairs, a working folder that is not a
    string: ZeroDivisionError, ValueError, TypeError or KeyError from the batch's rerun."""
    trace = {"content": "a.jpg", "styles": ["b.jpg"], "working_directory": None, "level_sizes": level_sizes}
    assert StyleTransfer.ran_as(trace, "scales", {"scales": "auto", "iterations": 200}) is False
    assert StyleTransfer.made_from(trace, ["a.jpg", "b.jpg"])
    assert not StyleTransfer.made_from(trace, ["a.jpg", "c.jpg"])


def test_a_finished_pair_made_from_another_image_of_the_same_name_is_not_skipped(folders, tmp_path, run_main,
                                                                                 monkeypatch, vgg19_weights):
    """Two cameras' IMG_0001 into one results folder: the second is not the first's pair
    done before. It fails, naming what the files were made from; its own rerun skips."""
    monkeypatch.chdir(tmp_path)
    for folder, name in (("2023", "chelsea.jpg"), ("2024", "coffee.jpg")):
        Path(folder).mkdir()
        shutil.copy(folders[0] / name, Path(folder) / "IMG_0001.jpg")
    style = str(folders[1] / "great_wave.jpg")
    first = run_main(["--contents", "2023", "--styles", style, "-o", "out", *FAST])
    assert first[0] == 0 and "1 done" in first[1]
    written = {path.name: path.read_bytes() for path in Path("out").iterdir()}
    status, stdout, stderr = run_main(["--contents", "2024", "--styles", style, "-o", "out", *FAST])
    assert status == StyleTransfer.EXIT_FAILED and "1 failed" in stdout
    assert f"failed: IMG_0001 + great_wave: out/IMG_0001_great_wave.png exists, made from " \
           f"2023/IMG_0001.jpg + {style}; pass --overwrite to replace it" in stderr
    assert {name: Path("out", name).read_bytes() for name in written if name != CONTACT_SHEET_NAME} == \
        {name: data for name, data in written.items() if name != CONTACT_SHEET_NAME}
    again = run_main(["--contents", "2023/IMG_0001.jpg", "--styles", style, "-o", "out", *FAST])
    assert again[0] == 0 and "skipped (done before)" in again[1]


def test_a_photo_replaced_under_its_old_name_is_not_the_pair_done_before(folders, tmp_path, run_main,
                                                                        monkeypatch, vgg19_weights):
    """The trace records each input's SHA-256: a rerun after photo.jpg was replaced by
    another picture does not skip the pair (the contact sheet showed the new photo beside
    the old photo's result), and refuses to replace the old result unasked. A plain rerun
    draws the same contact sheet as the first run (its headers are read from the files at
    the sheet's size either way)."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(folders[0] / "chelsea.jpg", "photo.jpg")
    style = str(folders[1] / "great_wave.jpg")
    command = ["--contents", "photo.jpg", "--styles", style, "-o", "out", *FAST]
    assert run_main(command)[0] == 0
    trace = json.loads(Path("out", "photo_great_wave.json").read_text())
    assert trace["sha256"] == {"content": ContentModel.file_digest("photo.jpg"),
                               "styles": [ContentModel.file_digest(style)], "style_masks": None}
    first_sheet = np.asarray(open_image(Path("out", CONTACT_SHEET_NAME)))
    again = run_main(command)
    assert again[0] == 0 and "skipped (done before)" in again[1]
    np.testing.assert_array_equal(np.asarray(open_image(Path("out", CONTACT_SHEET_NAME))), first_sheet)
    result = Path("out", "photo_great_wave.png").read_bytes()
    shutil.copy(folders[0] / "coffee.jpg", "photo.jpg")
    status, stdout, stderr = run_main(command)
    assert status == StyleTransfer.EXIT_FAILED and "1 failed" in stdout
    assert "failed: photo + great_wave: out/photo_great_wave.png exists, made from other files of the same " \
           "names; pass --overwrite to replace it" in stderr
    assert Path("out", "photo_great_wave.png").read_bytes() == result


def test_a_pair_whose_result_was_deleted_is_redone(folders, tmp_path, run_main, monkeypatch, vgg19_weights):
    """Its other files are from a run of the same pair that ended normally (the trace says
    so): they are its own to replace, so the pair runs again (it failed, with 'its panel
    exists', and only --overwrite, which redoes every pair, would run it)."""
    monkeypatch.chdir(tmp_path)
    command = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1] / "great_wave.jpg"),
               "-o", "out", *FAST]
    assert run_main(command)[0] == 0
    Path("out", "chelsea_great_wave.png").unlink()
    status, stdout, stderr = run_main(command)
    assert status == 0 and "1 pair: 1 done, 0 skipped, 0 failed" in stdout, stderr
    assert Path("out", "chelsea_great_wave.png").is_file()


def test_a_pair_whose_result_cannot_be_read_is_redone(folders, tmp_path, run_main, monkeypatch, vgg19_weights):
    """A result cut short (a copy that failed, say) beside a trace of a run that ended
    normally: the files are the pair's own, so it is redone, and said so (it was skipped as
    done, and its contact sheet cell read 'skipped'). Its trace cut short fails the pair."""
    monkeypatch.chdir(tmp_path)
    command = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1] / "great_wave.jpg"),
               "-o", "out", *FAST]
    assert run_main(command)[0] == 0
    result = Path("out", "chelsea_great_wave.png")
    result.write_bytes(result.read_bytes()[:200])
    status, stdout, stderr = run_main(command)
    assert status == 0 and "1 pair: 1 done, 0 skipped, 0 failed" in stdout, stdout + stderr
    assert "done in " in stdout and f"s; {StyleTransfer.REDONE_UNREADABLE}\n" in stdout
    assert load_image(result).shape[:2] == (43, 64)
    status, stdout, _ = run_main(command)
    assert status == 0 and "1 pair: 0 done, 1 skipped, 0 failed" in stdout

    # Its result deleted, and another batch redoing it now (the empty file it holds): that
    # one's to finish, not a second run of the pair.
    result.unlink()
    held = ContentModel.claim_output(result)
    try:
        status, _, stderr = run_main(command)
    finally:
        ContentModel.release_unwritten(held)
    assert status == StyleTransfer.EXIT_FAILED
    assert (f"failed: chelsea + great_wave: {result} is being written by another run now (the empty file it "
            "holds); rerun the batch once that run is done") in stderr
    assert run_main(command)[0] == 0  # redone, once that run is gone

    # A trace that cannot be read: the files are no known run's, so they stay, and the
    # message says why (it said only 'exists').
    Path("out", "chelsea_great_wave.json").write_text("{ half a trace")
    status, _, stderr = run_main(command)
    assert status == StyleTransfer.EXIT_FAILED
    assert ("failed: chelsea + great_wave: out/chelsea_great_wave.png exists, and the trace beside it, "
            "chelsea_great_wave.json, cannot be read as a run's; pass --overwrite to replace it") in stderr


def batches_together(run_main, monkeypatch, first: list, second: list) -> tuple:
    """Run the batch ``first``, and ``second`` while the first's pair is being optimized:
    (status, stdout, stderr) of each."""
    results = []
    real_stylize = StyleTransfer.stylize_batch

    def while_the_first_runs(*args, **kwargs):
        if not results:
            results.append(run_main(second))
        return real_stylize(*args, **kwargs)

    monkeypatch.setattr(StyleTransfer, "stylize_batch", while_the_first_runs)
    return run_main(first), results[0]


def test_a_second_batch_into_the_same_folder_meanwhile_leaves_the_first_ones_pairs_alone(folders, tmp_path, run_main,
                                                                                       monkeypatch, vgg19_weights):
    """A batch holds its pairs' names while it runs, as a single run holds its own: a second
    batch started meanwhile (here: while the first one's pair is being optimized) fails that
    pair. Before, both ran it, both said 'done', and the later one's files replaced the other's."""
    monkeypatch.chdir(tmp_path)
    command = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1] / "great_wave.jpg"),
               "-o", "out", *FAST]
    (status, stdout, _), (second_status, second_stdout, stderr) = batches_together(
        run_main, monkeypatch, command, [*command, "--iterations", "3"])
    assert status == 0 and "1 pair: 1 done, 0 skipped, 0 failed" in stdout
    status, stdout = second_status, second_stdout
    assert status == StyleTransfer.EXIT_FAILED and "1 pair: 0 done, 0 skipped, 1 failed" in stdout
    # The first batch's placeholder: said to be one (a run writing it now).
    assert ("failed: chelsea + great_wave: out/chelsea_great_wave.png is being written by another run now (the "
            "empty file it holds); rerun the batch once that run is done") in stderr
    assert json.loads(Path("out", "chelsea_great_wave.json").read_text())["settings"]["iterations"] == 2


def test_two_batches_redoing_one_pair_with_overwrite_do_not_both_write_it(folders, tmp_path, run_main, monkeypatch,
                                                                           vgg19_weights):
    """A batch redoing a finished pair with --overwrite held nothing (no placeholder: the
    result is there), so a second such batch meanwhile ran it too, and both said 'done'. The
    pair's run lock holds it: the second fails it, saying why."""
    monkeypatch.chdir(tmp_path)
    command = ["--contents", str(folders[0] / "chelsea.jpg"), "--styles", str(folders[1] / "great_wave.jpg"),
               "-o", "out", "--overwrite", *FAST]
    assert run_main(command)[0] == 0  # the result to redo
    (status, stdout, _), (second_status, second_stdout, stderr) = batches_together(run_main, monkeypatch, command,
                                                                                   command)
    assert status == 0 and "1 pair: 1 done, 0 skipped, 0 failed" in stdout
    status, stdout = second_status, second_stdout
    assert status == StyleTransfer.EXIT_FAILED and "1 pair: 0 done, 0 skipped, 1 failed" in stdout
    assert ("failed: chelsea + great_wave: out/chelsea_great_wave.png is being written by another run now; "
            "rerun the batch once that run is done") in stderr


def test_a_batch_holds_only_the_names_of_the_pairs_it_is_running(folders, tmp_path, run_main, monkeypatch,
                                                                 vgg19_weights):
    """Killed outright (SIGKILL, the OOM killer), a batch leaves the empty files that hold
    its names: held for every pair from the start, they blocked the rerun of every pair not
    yet run ('exists; pass --overwrite'). Only the running group's are held."""
    monkeypatch.chdir(tmp_path)
    held = []
    real_stylize = StyleTransfer.stylize_batch

    def look(*args, **kwargs):
        held.append({path.name: path.stat().st_size for path in Path("out").iterdir()})
        return real_stylize(*args, **kwargs)

    monkeypatch.setattr(StyleTransfer, "stylize_batch", look)
    status, stdout, _ = run_main(["--contents", str(folders[0] / "chelsea.jpg"), "--styles",
                                  str(folders[1] / "great_wave.jpg"), str(folders[1] / "starry_night.jpg"),
                                  "-o", "out", *FAST])
    assert status == 0 and "2 pairs: 2 done" in stdout
    assert len(held) == 2 and list(held[0].values()) == [0]  # the first pair's name alone, held by an empty file
    assert len([name for name, size in held[1].items() if size == 0]) == 1


def test_a_finished_pair_whose_input_cannot_be_read_now_is_still_skipped(tmp_path):
    """A URL offline (or a file the digest cannot read): the pair is judged by its inputs'
    names, as before traces held their SHA-256, and skipped, not failed."""
    output = tmp_path / "cat_art.png"
    StyleTransfer.save_image(np.zeros((32, 32, 3)), output)  # a result that can be read (else it is redone)
    trace = {"content": "https://example.org/cat.jpg", "styles": ["art.jpg"], "stopped_early": None,
             "working_directory": str(tmp_path), "sha256": {"content": "c" * 64, "styles": ["a" * 64]}}
    output.with_suffix(".json").write_text(json.dumps(trace))
    offline = StyleTransferError("cannot download https://example.org/cat.jpg: connection refused")
    pair = StyleTransfer.Pair("https://example.org/cat.jpg", "art.jpg", output, digests=[offline, "a" * 64])
    StyleTransfer.prepare_pair(pair, offline, (32, 32), False, {}, "/CPU:0")
    assert pair.status == StyleTransfer.SKIPPED


def test_a_trace_is_made_from_the_same_inputs_written_the_same_or_leading_to_the_same_file(tmp_path):
    trace = {"content": "photos/cat.jpg", "styles": ["https://example.org/art.jpg"],
             "working_directory": str(tmp_path)}
    made_from = StyleTransfer.made_from
    assert made_from(trace, ["photos/cat.jpg", "https://example.org/art.jpg"])  # as written (a clone elsewhere)
    assert made_from(trace, [str(tmp_path / "photos" / "cat.jpg"), "https://example.org/art.jpg"])  # same file
    assert not made_from(trace, ["photos/dog.jpg", "https://example.org/art.jpg"])
    assert not made_from(trace, ["photos/cat.jpg", "https://example.org/other.jpg"])
    assert not made_from(trace, ["photos/cat.jpg"])
    assert not made_from({"stopped_early": None}, ["photos/cat.jpg", "https://example.org/art.jpg"])
    # With the files' SHA-256 (input_digests): the same names with other bytes are other inputs;
    # a trace from before traces held them goes by the names alone.
    sources = ["photos/cat.jpg", "https://example.org/art.jpg"]
    recorded = {**trace, "sha256": {"content": "c" * 64, "styles": ["a" * 64], "style_masks": None}}
    assert made_from(recorded, sources, ["c" * 64, "a" * 64])
    assert not made_from(recorded, sources, ["d" * 64, "a" * 64])
    assert not made_from(recorded, sources, [StyleTransferError("cannot read photos/cat.jpg"), "a" * 64])
    assert made_from(trace, sources, ["d" * 64, "a" * 64])


def test_the_batch_line_gives_the_level_sizes_each_image_gets():
    """A 64 x 51 px photo's first level is 40 px long, where its short side is 32 px (before,
    the batch line said 32 / 64 px for it); images with other level sizes are listed too."""
    text = StyleTransfer.batch_levels_text
    assert text([2, 2], "auto", [(51, 64), (51, 64)]) == "2 + 2 iterations at 40 / 64 px"  # 31.9 rounded
    assert text([2, 2], "auto", [(51, 64), (64, 64)]) == \
        "2 + 2 iterations at 40 / 64 px or 2 + 2 iterations at 32 / 64 px"
    assert text(200, "auto", [(341, 512), (512, 512)]) == "200 iterations"


def test_folders_expand_to_their_images_sorted(tmp_path):
    for name in ("b.png", "A.JPG", "c.webp", "d.jfif", "notes.txt"):  # .jfif: a JPEG as browsers save some
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.jpg").mkdir()  # a folder, even one named like an image, is not an input
    url = "https://example.org/x.jpg"
    found = expand_inputs([str(tmp_path), str(tmp_path / "b.png"), url])
    assert found == [str(tmp_path / name) for name in ("A.JPG", "b.png", "c.webp", "d.jfif")] + [url]
    with pytest.raises(StyleTransferError, match="no such file or folder"):
        expand_inputs([str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleTransferError, match="no images"):
        expand_inputs([str(tmp_path / "empty")])


def test_what_a_folder_holds_besides_images_is_named_in_a_note(tmp_path):
    """A .heic photo or a subfolder of more photos left out without a word looked like a
    batch that forgot them."""
    (tmp_path / "photo.jpg").write_bytes(b"")
    for name in ("raw", "old"):
        (tmp_path / name).mkdir()
    for name in ("a.heic", "b.txt", "c.txt", "d.txt", "._photo.jpg"):  # a hidden file is not named
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / os.fsdecode(b"caf\xe9.png")).write_bytes(b"")
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "photo.jpg")]
    assert StyleTransfer.batch_inputs([str(tmp_path), str(tmp_path / "photo.jpg"), str(tmp_path)])[1] == [
        f"left out of the folder {tmp_path}: 1 name that is not UTF-8 (rename it): caf\ufffd.png; "
        "2 subfolders (folders are not searched): old, raw; 1 broken link: gone.png; "
        "1 entry that is not a file: pipe.png; 4 files not named as images: a.heic, b.txt, c.txt and 1 more"]
    (tmp_path / "photo.jpg").unlink()
    with pytest.raises(StyleTransferError, match=r"no images \(.*\) in the folder .*; it holds 1 name that is not "):
        expand_inputs([str(tmp_path)])


def test_a_quoted_pattern_or_tilde_is_explained_and_a_folder_of_hidden_images_says_so(tmp_path):
    """The shell expands a pattern or a '~' only when they are not quoted: the error was a
    bare 'no such file or folder'. A folder of hidden images only said 'no images'."""
    with pytest.raises(StyleTransferError, match=r"no such file or folder: .*\*\.jpg \(a pattern is expanded by the "
                                                 r"shell, not in quotes: give it unquoted\)$"):
        expand_inputs([str(tmp_path / "*.jpg")])
    with pytest.raises(StyleTransferError, match="'~' is expanded by the shell, not in quotes or after '=': write "):
        expand_inputs(["~/no-such-folder-here/x.jpg"])
    with pytest.raises(StyleTransferError, match=r"\(the name is '.*photo\.jpg ': it has a space at an end\)$"):
        expand_inputs([str(tmp_path / "photo.jpg ")])  # 'no such file: photo.jpg ' showed no sign of it
    (tmp_path / ".cat.jpg").write_bytes(b"")
    with pytest.raises(StyleTransferError, match=r"; hidden files such as \.cat\.jpg are left out \(name one on its "
                                                 r"own to use it\)$"):
        expand_inputs([str(tmp_path)])


def test_an_output_under_a_tilde_folder_that_is_not_there_is_refused(tmp_path, monkeypatch):
    """'--output=~/art.png': no shell expands a '~' after '=', and a folder './~' was made."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StyleTransferError, match=r"^-o ~/art\.png: there is no folder ~ \('~' is expanded by the "
                                                 r"shell, not in quotes or after '=': write /.*/art\.png\)$"):
        ContentModel.choose_output("a_b", "~/art.png", [])
    with pytest.raises(StyleTransferError, match=r"^-o ~/batch: there is no folder ~ \('~' is expanded by the shell"):
        StyleTransfer.batch_folder("~/batch")
    (tmp_path / "results").write_text("")  # no -o given: none to blame
    with pytest.raises(StyleTransferError, match="^results is a file, where batch mode writes into a folder of "
                                                 "that name; give the batch a folder with -o$"):
        StyleTransfer.batch_folder(None)
    assert [path.name for path in tmp_path.iterdir()] == ["results"]


def test_a_folders_hidden_files_are_left_out_unless_named(tmp_path):
    """macOS writes '._photo.jpg' (metadata, not an image) beside each photo on a shared
    drive: as an input it failed its pairs, and a hidden photo gave hidden results."""
    for name in ("photo.jpg", "._photo.jpg", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "photo.jpg")]
    assert expand_inputs([str(tmp_path / ".hidden.png")]) == [str(tmp_path / ".hidden.png")]
    (tmp_path / "photo.jpg").unlink()
    with pytest.raises(StyleTransferError, match="no images"):
        expand_inputs([str(tmp_path)])


def test_pairs_named_alike_from_urls_are_not_told_to_rename_them(tmp_path):
    """A URL's name is its address's: it cannot be renamed, only saved as a file of another name."""
    contents = ["https://a.example.org/cat.jpg", "https://b.example.org/cat.jpg"]
    with pytest.raises(StyleTransferError) as caught:
        StyleTransfer.plan_pairs(contents, [str(tmp_path / "wave.jpg")], tmp_path / "out")
    assert str(caught.value).endswith(f"would both write {tmp_path / 'out' / 'cat_wave.png'}; download "
                                      f"{contents[0]} or {contents[1]} under another name and pass that file instead")
    assert StyleTransfer.renaming(["a.jpg", "https://example.org/a.jpg"]) == "rename a.jpg"


@pytest.mark.parametrize("arguments, message", [
    (["--contents", "{content}"], "needs both --contents and --styles"),
    (["{chelsea}", "--contents", "{content}", "--styles", "{styles}"], "not both"),
    (["{sample}", "--contents", "{content}", "--styles", "{styles}"], "not both"),  # even the default
    (["--contents", "{content}", "--styles", "{styles}", "-o", "{tmp}/sheet.png"], "-o is a folder"),
    (["--contents", "{content}", "--styles", "{styles}", "-o", "{content}"], "holds the input"),
    (["--contents", "{content}", "{tmp}/chelsea.png", "--styles", "{styles}", "-o", "{tmp}/out"],
     "/chelsea.jpg + {styles}/great_wave.jpg and {tmp}/chelsea.png + {styles}/great_wave.jpg would both write "
     "{tmp}/out/chelsea_great_wave.png; rename {content}/chelsea.jpg or {tmp}/chelsea.png"),
    # not only the images: a style named like another pair's panel, a pair named like the contact sheet
    (["--contents", "{chelsea}", "--styles", "{tmp}/wave.jpg", "{tmp}/wave_panel.jpg", "-o", "{tmp}/out"],
     "{tmp}/wave.jpg and {chelsea} + {tmp}/wave_panel.jpg would both write {tmp}/out/chelsea_wave_panel.png; "
     "rename {tmp}/wave.jpg or {tmp}/wave_panel.jpg"),
    (["--contents", "{tmp}/contact.jpg", "--styles", "{tmp}/sheet_2.jpg", "-o", "{tmp}/out"],
     "would write {tmp}/out/contact_sheet_2.png, the name of the batch's contact sheet"),
    (["--contents", "{content}", "--styles", "{styles}", "--style-masks", "{chelsea}"], "single run"),
])
def test_batch_arguments_are_checked_before_any_work(folders, tmp_path, capsys, arguments, message):
    for name in ("chelsea.png", "wave.jpg", "wave_panel.jpg", "contact.jpg", "sheet_2.jpg"):
        shutil.copy(folders[0] / "chelsea.jpg", tmp_path / name)
    names = {"content": folders[0], "styles": folders[1], "chelsea": folders[0] / "chelsea.jpg",
             "tmp": tmp_path, "sample": StyleTransfer.SAMPLE_CONTENT}
    with pytest.raises(SystemExit) as caught:
        StyleTransfer.main([argument.format(**names) for argument in arguments] + FAST)
    assert caught.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message.format(**names) in error and "\n" not in error
    assert not (tmp_path / "out").exists()
