"""``--scheduler`` / ``--scheduler-file`` values kcbatch cannot use, and peers
that are not Dask schedulers: one line each, no traceback, no store made.

Addresses and scheduler files are refused when the options are read (exit 2).
What answers at an address is probed before distributed connects: a server
that sends nothing (an HTTP server such as the dashboard on 8787 waits for a
request), closes at once, or announces an absurd first message is refused in
one line (exit 1, a run-time failure like a scheduler that is not running),
within seconds and without allocating what it announces.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from helpers import assert_usage_error, run_cli

pytest.importorskip("distributed", reason="the dask extra (kcbatch[dask]) is not installed")

FLAGS = ["--runs", "2", "--nodes", "100", "--k-num", "4", "--t-transient", "0.5",
         "--t-measure", "0.5", "--seed", "1", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("address, needles", [
    ("inproc://x", ("inproc://", "tcp://HOST:PORT")),
    ("ucx://127.0.0.1:1", ("ucx://", "tcp://HOST:PORT")),
    ("ws://127.0.0.1:1", ("ws://", "tcp://HOST:PORT")),
    ("tls://127.0.0.1:9", ("tls://", "TLS settings")),
    ("tcp://127.0.0.1:99999", ("port 99999", "1 to 65535")),
    ("tcp://a b", ("tcp://host:8786",)),
])
def test_unusable_address_is_refused(address, needles, tmp_path):
    line = assert_usage_error(run_cli(["run", *FLAGS, "--scheduler", address,
                                       "--out", tmp_path / "o"]), *needles)
    assert f"scheduler={address!r}" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, needles", [
    ("{}", ("holds no scheduler address",)),
    ("garbage", ("is not JSON",)),
    ('{"address": 5}', ("holds no scheduler address",)),
    ('{"address": "inproc://x"}', ("'inproc://x'", "inproc://")),
    ("[" * 100000, ("is not JSON",)),
])
def test_unusable_scheduler_file_is_refused(content, needles, tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text(content)
    line = assert_usage_error(run_cli(["run", *FLAGS, "--scheduler-file", path,
                                       "--out", tmp_path / "o"]), str(path), *needles)
    assert "scheduler_file=" in line
    assert not (tmp_path / "o").exists()


def _serve(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on a free local port whose connections ``handle`` serves."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    done = threading.Event()

    def loop():
        while not done.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                handle(conn)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        done.set()
        t.join(5)
        srv.close()


def _silent(conn: socket.socket) -> None:
    """An HTTP server's side: it waits for a request and says nothing first."""
    conn.settimeout(10)
    try:
        conn.recv(1 << 16)
    except OSError:
        pass


def _http_reply(conn: socket.socket) -> None:
    """An HTTP server that answers whatever arrives, as a dashboard does."""
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def _garbage(conn: socket.socket) -> None:
    conn.sendall(struct.pack("Q", 2**62) + os.urandom(56))


def _closes(conn: socket.socket) -> None:
    pass


def _message(payload: bytes) -> bytes:
    """A message as distributed's TCP comm frames it: its size, then the payload."""
    return struct.pack("Q", len(payload)) + payload


def _bad_frame_count(conn: socket.socket) -> None:
    """A plausible size, then a frame count beyond the bytes that follow."""
    conn.sendall(_message(b"\xff" * 64))


def _bad_msgpack(conn: socket.socket) -> None:
    """Well-formed frames (a count, their lengths) holding what msgpack cannot read."""
    frame = b"\xc1" * 16  # 0xc1: the one byte msgpack never uses
    conn.sendall(_message(struct.pack("QQ", 1, len(frame)) + frame))


@pytest.mark.parametrize("handle, needles", [
    # waits out HANDSHAKE_WAIT (5 s): slow
    pytest.param(_silent, ("sent nothing within 5 s", "8787"), marks=pytest.mark.slow,
                 id="silent-http"),
    pytest.param(_http_reply, ("announces", "bytes"), id="http-reply"),
    pytest.param(_garbage, (f"announces {2**62} bytes",), id="garbage-frames"),
    pytest.param(_closes, ("closed the connection without a handshake",), id="closes"),
    # past the 8 bytes probe_scheduler reads: distributed's own reading fails
    pytest.param(_bad_frame_count, ("handshake could not be read", "error"), id="frame-count"),
    pytest.param(_bad_msgpack, ("handshake could not be read",), id="bad-msgpack"),
])
def test_a_peer_that_is_not_a_scheduler_is_one_line(handle, needles, tmp_path):
    for port in _serve(handle):
        t0 = time.monotonic()
        result = run_cli(["run", *FLAGS, "--scheduler", f"tcp://127.0.0.1:{port}",
                          "--out", tmp_path / "o"])
        took = time.monotonic() - t0
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert "Traceback" not in result.output and result.stdout == ""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: the server at tcp://127.0.0.1:"), \
        result.stderr
    assert "is not a Dask scheduler" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    # nothing was stored, and the line does not say otherwise (no resume command)
    assert not (tmp_path / "o" / "kcbatch.sqlite").exists()
    assert took < 30, took
