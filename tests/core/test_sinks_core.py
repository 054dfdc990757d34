"""astroflow.sinks: the outbox stand-in, HTTP to a stub server on 127.0.0.1, retries with back-off,
the recorded failure, and a secret that never reaches a receipt or the outbox."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pydantic import ValidationError

from astroflow.errors import ItemError
from astroflow.sinks import Message, Sink, SinkFailed, send


class _Stub(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((dict(self.headers), body))
        if len(type(self).received) <= type(self).fail_first:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"url": "https://marshal.example/spec/1"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    _Stub.received, _Stub.fail_first = [], 0
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Stub
    server.shutdown()


def _message(tmp_path):
    plot = tmp_path / "verify.png"
    plot.write_bytes(b"\x89PNG fake")
    return Message("marshal", "spec_ZTF18abc", {"object": "ZTF18abc", "quality": 0}, (plot,))


def test_outbox_writes_the_message_and_its_attachments(tmp_path):
    receipt = send(Sink(enabled=True), _message(tmp_path), tmp_path / "run")
    folder = tmp_path / "run" / "outbox" / "marshal"
    body = json.loads((folder / "spec_ZTF18abc.json").read_text())
    assert body["fields"] == {"object": "ZTF18abc", "quality": 0} and body["attachments"] == ["verify.png"]
    assert (folder / "spec_ZTF18abc.verify.png").read_bytes() == b"\x89PNG fake"
    assert receipt["url"] == "outbox" and receipt["attempts"] == 1


def test_http_post_with_key_and_bearer_secret_retried_after_503(tmp_path, stub, monkeypatch):
    server, handler = stub
    handler.fail_first = 2
    monkeypatch.setenv("MARSHAL_TOKEN", "s3cret")
    sink = Sink(enabled=True, url=f"http://127.0.0.1:{server.server_port}/upload", secret_env="MARSHAL_TOKEN",
                backoff_s=0.5)
    waits = []
    receipt = send(sink, _message(tmp_path), tmp_path, sleep=waits.append)
    assert receipt["attempts"] == 3 and waits == [0.5, 1.0]
    headers, body = handler.received[-1]
    assert headers["Idempotency-Key"] == "spec_ZTF18abc" and headers["Authorization"] == "Bearer s3cret"
    assert body["fields"]["object"] == "ZTF18abc" and "verify.png" in body["attachments"]
    assert "marshal.example" in receipt["answer"] and "s3cret" not in json.dumps(receipt)


def test_failure_after_all_tries_is_an_item_error_naming_the_sink(tmp_path, stub):
    server, handler = stub
    handler.fail_first = 99
    sink = Sink(enabled=True, url=f"http://127.0.0.1:{server.server_port}/", attempts=3)
    with pytest.raises(SinkFailed, match=r"sink marshal .*after 3 tries.*503") as err:
        send(sink, _message(tmp_path), tmp_path, sleep=lambda s: None)
    assert isinstance(err.value, ItemError) and len(handler.received) == 3


def test_unreachable_host_fails_without_waiting_in_the_test(tmp_path):
    sink = Sink(enabled=True, url="http://127.0.0.1:9/", attempts=2, timeout_s=2)
    with pytest.raises(SinkFailed, match="ConnectionRefused|URLError"):
        send(sink, _message(tmp_path), tmp_path, sleep=lambda s: None)


def test_configuration_refuses_unknown_schemes_and_disabled_sinks_send_nothing(tmp_path):
    with pytest.raises(ValidationError, match="ftp"):
        Sink(url="ftp://host/")
    with pytest.raises(ValueError, match="disabled"):
        send(Sink(), _message(tmp_path), tmp_path)
    assert not (tmp_path / "outbox").exists()
