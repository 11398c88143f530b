"""`KeyServerProvider` against a key server on loopback: keys made, read and forgotten over HTTP with a
bearer token, through the address guard; bad or failing answers are clear errors quoting no secret."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from vodflow.errors import ConfigError, StepError
from vodflow.keys.provider import key_provider, read_content_key
from vodflow.keys.server import KeyServerProvider
from vodflow.net.guard import NetPolicy
from vodflow.settings import Settings
from vodflow.storage.local import LocalStorage

TOKEN = "t0k" * 12
LOOPBACK = NetPolicy.from_entries(["127.0.0.1"])


class KeyServer:
    """Keeps keys by job; `answer` overrides what POST answers (status, body) to test bad servers."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, bytes]] = {}
        self.auth: list[str | None] = []
        self.answer: tuple[int, bytes] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                outer.auth.append(self.headers.get("Authorization"))
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.answer is not None:
                    return self._send(*outer.answer)
                made = {secrets.token_hex(16): secrets.token_bytes(16) for _ in request["labels"]}
                outer.keys[request["jobId"]] = made
                body = [{"kid": k, "key": base64.b64encode(v).decode()} for k, v in made.items()]
                self._send(200, json.dumps({"keys": body}).encode())

            def do_GET(self) -> None:  # noqa: N802
                outer.auth.append(self.headers.get("Authorization"))
                _, _, job, kid = self.path.split("/")
                key = outer.keys.get(job, {}).get(kid)
                if key is None:
                    return self._send(404)
                self._send(200, json.dumps({"key": base64.b64encode(key).decode()}).encode())

            def do_DELETE(self) -> None:  # noqa: N802
                outer.auth.append(self.headers.get("Authorization"))
                self._send(204 if outer.keys.pop(self.path.split("/")[-1], None) else 404)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[KeyServer]:
    running = KeyServer()
    yield running
    running.server.shutdown()


def test_keys_are_made_read_and_forgotten_by_the_server(server, tmp_path):
    provider = KeyServerProvider(server.url, LOOPBACK, SecretStr(TOKEN))
    keys = provider.keys_for("job-1", ["a/0", "a/1"])
    assert {k.kid_hex: k.key for k in keys} == server.keys["job-1"] and [k.label for k in keys] == [
        "a/0",
        "a/1",
    ]
    assert provider.read("job-1", keys[1].kid_hex) == keys[1].key
    assert provider.read("job-1", "00" * 16) is None and provider.read("job-1", "nothex") is None
    provider.remove("job-1")
    provider.remove("job-1")  # gone already is fine
    assert provider.read("job-1", keys[0].kid_hex) is None
    assert set(server.auth) == {f"Bearer {TOKEN}"} and TOKEN not in repr(provider)
    settings = Settings(
        key_server_url=server.url, key_server_token=SecretStr(TOKEN), allowed_hosts="127.0.0.1"
    )
    via_settings = key_provider(LocalStorage(tmp_path), settings)  # no VODFLOW_KEY_SECRET needed
    (key,) = via_settings.keys_for("job-2", ["b/0"])
    assert read_content_key(LocalStorage(tmp_path), settings, "job-2", key.kid_hex) == key.key
    assert not any(tmp_path.rglob("*.json"))  # nothing kept in storage


def test_a_loopback_server_must_be_allowed_and_plain_http_only_to_allowed_hosts(server):
    with pytest.raises(ValueError, match="https"):
        KeyServerProvider(server.url, NetPolicy())
    provider = KeyServerProvider("https" + server.url[4:], NetPolicy())  # loopback, not allowed
    with pytest.raises(StepError) as caught:
        provider.keys_for("job-1", ["a/0"])
    assert caught.value.code == "key_server" and "VODFLOW_ALLOWED_HOSTS" in caught.value.message
    assert server.auth == []  # nothing reached it
    with pytest.raises(ConfigError, match="VODFLOW_KEY_SERVER_URL"):
        key_provider(LocalStorage.__new__(LocalStorage), Settings(key_server_url="http://keys.example"))


@pytest.mark.parametrize(
    ("answer", "message", "transient"),
    [
        ((500, b""), "POST answered 500", True),
        ((401, b""), "POST answered 401", False),
        ((200, b"not json"), "no JSON", False),
        ((200, b'{"keys": []}'), "answered 0 keys, not 1", False),
        ((200, b'{"keys": [{"kid": "XYZ", "key": "AAAAAAAAAAAAAAAAAAAAAA=="}]}'), "malformed key", False),
        ((200, b'{"keys": [{"kid": "' + b"a" * 32 + b'", "key": "AAAA"}]}'), "malformed key", False),
        ((200, b"x" * (9 << 20)), "larger than", False),
    ],
)
def test_bad_answers_are_clear_errors_quoting_no_secret(server, answer, message, transient):
    server.answer = answer
    provider = KeyServerProvider(server.url, LOOPBACK, SecretStr(TOKEN))
    with pytest.raises(StepError) as caught:
        provider.keys_for("job-1", ["a/0"])
    assert caught.value.code == "key_server" and message in caught.value.message
    assert caught.value.transient is transient and TOKEN not in str(caught.value)
