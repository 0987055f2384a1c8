"""Reading the stack's log files: JSON lines only, merged by time, half lines kept back."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cluster.logs import HTTP_CLIENT_LOGGERS, LogReader, log_files, parse, quiet_http_clients


def line(ts: int, message: str, **extra: object) -> str:
    return json.dumps({"timestamp_ns": ts, "message": message, **extra}) + "\n"


def test_parse_keeps_json_objects_and_names_their_source() -> None:
    assert parse('{"message": "m", "timestamp_ns": 5}', "a.log") == {
        "message": "m",
        "timestamp_ns": 5,
        "source": "a.log",
    }
    assert parse('{"message": "no stamp"}', "b")["timestamp_ns"] == 0
    for not_json in ("[2026-11-30 raylet] started", "", "[1, 2]", "{broken", '"text"'):
        assert parse(not_json, "c") is None


def test_reader_merges_files_by_time_and_waits_for_whole_lines(tmp_path: Path) -> None:
    ray_logs, vigil_logs = tmp_path / "session" / "logs", tmp_path / "vigil"
    (ray_logs / "serve").mkdir(parents=True)
    vigil_logs.mkdir()
    (ray_logs / "worker-1.err").write_text(line(30, "committed") + "raylet text line\n")
    (ray_logs / "serve" / "replica.log").write_text(line(10, "upload") + line(40, "later"))
    (vigil_logs / "vigil.log").write_text(line(20, "driver") + '{"timestamp_ns": 50, "mess')
    (ray_logs / "ignored.bin").write_text(line(1, "not a log file"))

    reader = LogReader([ray_logs, vigil_logs])
    first = reader.new_records()
    assert [(r["timestamp_ns"], r["message"], r["source"]) for r in first] == [
        (10, "upload", "serve/replica.log"),
        (20, "driver", "vigil.log"),
        (30, "committed", "worker-1.err"),
        (40, "later", "serve/replica.log"),
    ]
    assert reader.new_records() == []  # nothing new
    with (vigil_logs / "vigil.log").open("a") as f:
        f.write('age": "finished"}\n')  # the half line completed
    assert [r["message"] for r in reader.new_records()] == ["finished"]
    assert len(log_files([ray_logs, vigil_logs, tmp_path / "missing"])) == 3


def _get_once(url: str) -> None:
    with httpx.Client() as client:
        assert client.get(url).status_code == 204


def test_quiet_http_clients_drops_the_per_request_lines_and_keeps_vigils_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The demo and the gateway log one httpx line per upload unless quietened."""

    class NoContent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NoContent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    levels = {name: logging.getLogger(name).level for name in HTTP_CLIENT_LOGGERS}
    try:
        for name in HTTP_CLIENT_LOGGERS:  # as a fresh process has them (another test may not)
            logging.getLogger(name).setLevel(logging.NOTSET)
        with caplog.at_level(logging.INFO):
            _get_once(url)
            assert any(r.name == "httpx" for r in caplog.records)  # loud without it
            caplog.clear()
            quiet_http_clients()
            _get_once(url)
            logging.getLogger("cluster.stack").info("Vigil is up")
        assert [r.name for r in caplog.records] == ["cluster.stack"]
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        server.shutdown()
        server.server_close()
        thread.join()
