"""Workflow: images from URLs.

Downloads are tested against a local HTTP server on 127.0.0.1, never the
internet; runs use tiny images and two iterations.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ContentModel
import StyleTransfer
from ContentModel import StyleTransferError, download_image, load_image, open_image

#: Long side of the test images, and the flags that make a run take seconds.
SIZE = 64
FAST = ["--size", str(SIZE), "--iterations", "2", "--model", "vgg19", "--save-every", "0"]
#: The slow route answers after this long (or when the server stops); the
#: download gives up after SHORT_TIMEOUT.
SLOW_SECONDS = 30.0
SHORT_TIMEOUT = 0.5


# --- a local web server ------------------------------------------------------------


def png_bytes(path: Path, flip: bool = False) -> bytes:
    image = Image.open(path).convert("RGB")
    image.thumbnail((SIZE, SIZE))
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Handler(BaseHTTPRequestHandler):
    """Serves the server's ``routes`` (path -> body); anything else is a 404."""

    def do_GET(self):
        self.server.requests[self.path] += 1
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
    first = download_image(url)
    second = download_image(url)
    assert first == second and first.parent == cache
    assert first.name.endswith("_chelsea.png")
    assert server.requests["/photos/chelsea.png"] == 1
    assert max(load_image(first).shape[:2]) == SIZE


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


def test_url_names():
    assert ContentModel.is_url("https://example.org/a.jpg") and ContentModel.is_url("HTTP://x/y.png")
    assert not ContentModel.is_url("images/content/chelsea.jpg")
    assert not ContentModel.is_url("C:/photos/a.jpg")
    assert ContentModel.source_stem("https://example.org/art/starry%20night.jpg?size=large") == "starry_night"
    assert ContentModel.source_stem("https://example.org/") == "image"
    assert ContentModel.source_stem("photos/chelsea.jpg") == "chelsea"


def test_the_command_line_takes_urls_and_names_outputs_after_them(server, cache, tmp_path, monkeypatch,
                                                                 vgg19_weights):
    monkeypatch.chdir(tmp_path)  # the default output folder results/ is relative
    content, style = server.url("/photos/chelsea.png"), server.url("/styles/starry_night.png")
    StyleTransfer.main([content, style, *FAST])
    result = tmp_path / "results" / "chelsea_starry_night.png"
    assert open_image(result).size[0] == SIZE
    trace = json.loads(result.with_suffix(".json").read_text())
    assert trace["content"] == content and trace["styles"] == [style]


def test_a_bad_url_on_the_command_line_is_one_error_line(server, cache, tmp_path, capsys, sample_images):
    with pytest.raises(SystemExit) as caught:
        StyleTransfer.main([server.url("/missing.png"), str(sample_images[1]), "-o", str(tmp_path / "r.png"),
                            *FAST])
    assert caught.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: cannot download") and "404" in error and "\n" not in error
    assert not (tmp_path / "r.png").exists()
