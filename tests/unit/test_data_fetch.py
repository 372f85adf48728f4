"""Downloads of benchmark files: streamed with a progress bar, checked against the sha256 a server
declares on a redirect (the Hugging Face hub's ``X-Linked-Etag``), on a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading

import pytest

from em_eval import data

BODY = b'{"question_id": "1"}\n' * 1000


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy in the environment must not take local requests
    declared = {"sha256": hashlib.sha256(BODY).hexdigest()}

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == "/resolve/test.jsonl":  # the hub: a redirect that declares the LFS sha256
                self.send_response(302)
                self.send_header("Location", "/storage/test.jsonl")
                self.send_header("X-Linked-Etag", f'"{declared["sha256"]}"')
                self.end_headers()
            else:  # the storage host: the bytes, no sha256
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/resolve/test.jsonl", declared
    httpd.shutdown()


def test_fetch_streams_the_file_and_keeps_the_declared_sha256(server):
    url, declared = server
    out = io.BytesIO()
    assert data.fetch(url, out, "test.jsonl") == (declared["sha256"], declared["sha256"])
    assert out.getvalue() == BODY


def test_a_download_that_differs_from_the_declared_sha256_is_refused(server, tmp_path, monkeypatch):
    url, declared = server
    monkeypatch.setattr(data, "DOWNLOADABLE", ("http://127.0.0.1",))
    data._download(url, tmp_path / "ok" / "test.jsonl", "test.jsonl")
    assert (tmp_path / "ok" / "test.jsonl").read_bytes() == BODY
    declared["sha256"] = "0" * 64
    with pytest.raises(data.DataFileError, match="is corrupt: sha256 [0-9a-f]{64}, the server declares 0{64}"):
        data._download(url, tmp_path / "bad" / "test.jsonl", "test.jsonl")
    assert list((tmp_path / "bad").iterdir()) == []  # nothing half-written is left


def test_a_download_that_differs_from_the_pinned_sha256_is_refused(server, tmp_path, monkeypatch):
    url, declared = server
    monkeypatch.setattr(data, "DOWNLOADABLE", ("http://127.0.0.1",))
    data._download(url, tmp_path / "ok" / "test.jsonl", "test.jsonl", declared["sha256"])
    with pytest.raises(data.DataFileError, match="is corrupt: sha256 [0-9a-f]{64}, em-eval pins 1{64}"):
        data._download(url, tmp_path / "bad" / "test.jsonl", "test.jsonl", "1" * 64)
    assert list((tmp_path / "bad").iterdir()) == []
