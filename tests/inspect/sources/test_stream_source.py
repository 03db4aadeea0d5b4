"""An MJPEG-over-HTTP stream from a local server, read through OpenCV's FFmpeg backend: frames flow, the
source reports a lost stream, and opening again reconnects once the server is back."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from pcb_inspect.inspect.sources.base import SourceError
from pcb_inspect.inspect.sources.table import open_source
from pcb_inspect.inspect.sources.video import StreamSource

IMAGE = np.full((60, 80, 3), 40, np.uint8)
IMAGE[10:30, 20:60] = 250
JPEG = cv2.imencode(".jpg", IMAGE)[1].tobytes()


class _Handler(BaseHTTPRequestHandler):
    server: _MjpegServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(JPEG), JPEG)
        try:
            while not self.server.stopping:
                if not self.server.stalled:
                    self.wfile.write(part)
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


class _MjpegServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.stopping = False
        self.stalled = False
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.stopping = True  # open streams end: FFmpeg sees the connection close
        self.shutdown()
        self.server_close()


@pytest.fixture()
def server():
    srv = _MjpegServer()
    yield srv
    if not srv.stopping:
        srv.stop()


def test_ffmpeg_backend_reads_the_local_mjpeg_stream(server: _MjpegServer) -> None:
    cap = cv2.VideoCapture(f"http://127.0.0.1:{server.port}/", cv2.CAP_FFMPEG)
    try:
        ok, image = cap.read()
    finally:
        cap.release()
    assert ok and image.shape == (60, 80, 3)


def test_stream_frames_are_gray_and_credentials_stay_hidden(server: _MjpegServer) -> None:
    src = open_source(f"http://op:s3cret@127.0.0.1:{server.port}/video.mjpg", timeout_s=2.0)
    assert isinstance(src, StreamSource) and src.live
    with src:
        frames = [src.read() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2]
    for f in frames:
        assert f.image.shape == (60, 80) and f.image.dtype == np.uint8
        assert f.image[20, 40] > 230 and f.image[50, 5] < 60
        assert f.source == f"http://127.0.0.1:{server.port}/video.mjpg"


def test_lost_stream_raises_then_reconnects_when_the_server_is_back(server: _MjpegServer) -> None:
    port = server.port
    src = open_source(f"http://127.0.0.1:{port}/", timeout_s=1.0)
    src.open()
    assert src.read() is not None
    server.stop()
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{port}/: lost"):
        for _ in range(500):  # frames already buffered may still come
            src.read()
    assert time.monotonic() - t0 < 5
    with pytest.raises(SourceError, match="cannot be opened"):
        src.open()  # nobody listening: the loop backs off and tries again
    back = _MjpegServer(port)
    try:
        src.open()
        frames = [src.read() for _ in range(3)]
        assert all(f.image.shape == (60, 80) for f in frames)
        assert frames[-1].index > frames[0].index
    finally:
        src.close()
        back.stop()


def test_stalled_stream_is_lost_after_the_timeout(server: _MjpegServer) -> None:
    with open_source(f"http://127.0.0.1:{server.port}/", timeout_s=0.5) as src:
        src.read()
        server.stalled = True
        t0 = time.monotonic()
        with pytest.raises(SourceError, match=r"lost \(no frame within 0\.5 s\)"):
            for _ in range(500):
                src.read()
        assert time.monotonic() - t0 < 3
