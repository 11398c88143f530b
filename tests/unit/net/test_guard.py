"""The address guard: policy, refusal before any connection, pinning, redirects, and download limits.

Real fetches go to loopback test servers only; private, link-local and metadata names are refused through a
stubbed resolver, and `socket.getaddrinfo` is fenced so that no name is ever looked up for real.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.httpserver import serve
from vodflow.errors import StepError
from vodflow.jobs.limits import Limits
from vodflow.net import guard as netguard
from vodflow.net.guard import AddressRefused, GuardedTransport, NetPolicy, guarded_client, refused_kind
from vodflow.steps.ingest import download_http, local_source_path

_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture(autouse=True)
def no_dns(monkeypatch):
    """Any real lookup of a name (not an address literal) fails the test: nothing leaves loopback."""

    def fenced(host, *args, **kwargs):
        try:
            ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
        except ValueError:
            if host not in ("localhost", b"localhost"):
                pytest.fail(f"real DNS lookup of {host!r}")
        return _real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fenced)


LOOPBACK = NetPolicy.from_entries(["127.0.0.1", "localhost", "::1"])  # the test servers' addresses


def stub_dns(monkeypatch, answers: dict[str, list[str]]) -> None:
    """Resolve the names in `answers` from it (address literals and localhost as before)."""
    real = netguard.resolve_host
    monkeypatch.setattr(netguard, "resolve_host", lambda host, port: answers.get(host) or real(host, port))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("168.63.129.16", "metadata"),
        ("169.254.10.1", "link-local"),
        ("100.64.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("::7f00:1", "loopback"),  # IPv4-compatible ::127.0.0.1
        ("::a00:1", "private"),  # IPv4-compatible ::10.0.0.1
        ("::a9fe:a9fe", "metadata"),  # IPv4-compatible ::169.254.169.254
        ("::ffff:0:7f00:1", "loopback"),  # SIIT ::ffff:0:127.0.0.1
        ("::ffff:0:a9fe:a9fe", "metadata"),  # SIIT ::ffff:0:169.254.169.254
        ("64:ff9b:1::a00:1", "nat64-local"),  # local-use NAT64 prefix, never public
        ("64:ff9b:1:0:8:808:800::", "nat64-local"),
        ("fec0::1", "site-local"),
        ("fec0:0:0:1::1", "site-local"),
        ("8.8.8.8", None),
        ("::ffff:8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_kinds(address, kind):
    assert refused_kind(ipaddress.ip_address(address)) == kind


def test_allow_list_entries():
    policy = NetPolicy.from_entries([" Videos.Corp. ", "10.20.0.0/16", "::1", "[fd00::1]", ""])
    assert policy.allowed_hosts == {"videos.corp"}
    assert [str(n) for n in policy.allowed_networks] == ["10.20.0.0/16", "::1/128", "fd00::1/128"]
    ip = ipaddress.ip_address
    assert policy.address_allowed("videos.corp", ip("10.9.9.9"))  # a named host may be internal
    assert not policy.address_allowed("videos.corp", ip("169.254.169.254"))  # never metadata by name
    assert policy.address_allowed("other", ip("10.20.3.4"))
    assert not policy.address_allowed("other", ip("10.21.0.1"))
    assert NetPolicy.from_entries(["169.254.169.254/32"]).address_allowed("x", ip("169.254.169.254"))
    for bad in ["10.0.0.0/33", "host/path", "a..b"]:
        with pytest.raises(ValueError, match="allowed host"):
            NetPolicy.from_entries([bad])


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/", "http:///nohost"]
)
def test_only_http_urls_with_a_host(url):
    with pytest.raises(AddressRefused):
        NetPolicy().check_url(url)


def test_a_name_with_any_internal_address_is_refused_whole(monkeypatch):
    stub_dns(monkeypatch, {"mixed.test": ["93.184.216.34", "10.0.0.3"], "public.test": ["93.184.216.34"]})
    with pytest.raises(AddressRefused, match="mixed.test is a private address"):
        NetPolicy().checked_addresses(httpx.URL("https://mixed.test/"))
    assert NetPolicy().checked_addresses(httpx.URL("https://public.test/")) == ["93.184.216.34"]


def test_refused_before_any_connection(monkeypatch):
    stub_dns(monkeypatch, {"metadata.google.internal": ["169.254.169.254"]})
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda *a: pytest.fail("connected"))
    with guarded_client(NetPolicy()) as client, pytest.raises(AddressRefused, match="metadata address"):
        client.get("http://metadata.google.internal/computeMetadata/v1/")


def test_connects_to_the_address_it_checked(tmp_path, monkeypatch):
    """DNS rebinding: the second answer (internal) is never used, the name is resolved once per request."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    asked: list[str] = []
    monkeypatch.setattr(netguard, "resolve_host", lambda host, port: (asked.append(host), next(answers))[1])
    (tmp_path / "clip.bin").write_bytes(b"x" * 10)
    with serve(tmp_path) as server:
        port = server.base_url.rsplit(":", 1)[1]
        policy = NetPolicy.from_entries(["127.0.0.1"])
        with guarded_client(policy) as client:
            response = client.get(f"http://rebind.test:{port}/clip.bin")
    assert response.status_code == 200 and response.content == b"x" * 10
    assert asked == ["rebind.test"]


def test_a_refusing_address_falls_back_to_the_next_checked_one(tmp_path, monkeypatch):
    stub_dns(monkeypatch, {"dual.test": ["::1", "127.0.0.1"]})  # nothing listens on ::1 at that port
    with serve(tmp_path) as server, guarded_client(NetPolicy.from_entries(["dual.test"])) as client:
        port = server.base_url.rsplit(":", 1)[1]
        assert client.get(f"http://dual.test:{port}/missing").status_code == 404


def test_localhost_names_and_ipv6_loopback_when_allowed(tmp_path):
    policy = NetPolicy.from_entries(["localhost", "::1"])
    with serve(tmp_path) as server, guarded_client(policy) as client:
        port = server.base_url.rsplit(":", 1)[1]
        assert client.get(f"http://localhost:{port}/missing").status_code == 404
        assert server.requests[-1]["path"] == "/missing"
    with serve_ipv6() as base, guarded_client(policy) as client:
        response = client.get(f"{base}/ok")
    assert response.status_code == 200 and response.json() == {"host": base.removeprefix("http://")}


def test_loopback_is_refused_by_default(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"x")
    with serve(tmp_path) as server:
        for url in (server.url("/clip.mp4"), server.url("/clip.mp4").replace("127.0.0.1", "localhost")):
            with pytest.raises(StepError) as caught:
                download_http(url, tmp_path / "out", policy=NetPolicy())
            assert caught.value.code == "url_not_allowed" and "loopback address" in caught.value.message
    assert server.requests == []


def test_every_redirect_is_checked(tmp_path, monkeypatch):
    stub_dns(monkeypatch, {"intranet.test": ["10.1.1.1"]})
    with serve(tmp_path) as server:
        server.plan("/hop", 302, headers={"Location": "http://intranet.test/secret.mp4"})
        server.plan("/meta", 301, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        server.plan("/ftp", 302, headers={"Location": "ftp://127.0.0.1/x"})
        for path, reason in [("/hop", "intranet.test is a private"), ("/meta", "is a metadata address"),
                             ("/ftp", "scheme 'ftp' is not allowed")]:  # fmt: skip
            with pytest.raises(StepError) as caught:
                download_http(server.url(path), tmp_path / "out", policy=LOOPBACK)
            assert caught.value.code == "url_not_allowed" and reason in caught.value.message
            assert not caught.value.transient
    assert [r["path"] for r in server.requests] == ["/hop", "/meta", "/ftp"]


def test_redirect_count_is_limited(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"data")
    with serve(tmp_path) as server:
        download_http(
            server.url("/redirect" * 5 + "/clip.mp4"), tmp_path / "ok", limits=Limits(), policy=LOOPBACK
        )
        with pytest.raises(StepError) as caught:
            download_http(
                server.url("/redirect" * 6 + "/clip.mp4"), tmp_path / "out", limits=Limits(), policy=LOOPBACK
            )
    assert caught.value.code == "too_many_redirects"
    assert (tmp_path / "ok").read_bytes() == b"data"


def test_declared_size_over_the_limit_is_refused(tmp_path):
    (tmp_path / "big.mp4").write_bytes(b"x" * 5000)
    with serve(tmp_path) as server:
        with pytest.raises(StepError) as caught:
            download_http(
                server.url("/big.mp4"),
                tmp_path / "out",
                limits=Limits(max_source_bytes=1000),
                policy=LOOPBACK,
            )
    assert caught.value.code == "source_too_large" and not caught.value.transient
    assert "1.0 kB" in caught.value.message


def test_streamed_size_and_download_time_are_limited(tmp_path):
    with serve_trickle(chunks=20, every=0.1) as base:
        with pytest.raises(StepError) as too_big:
            download_http(f"{base}/x", tmp_path / "a", limits=Limits(max_source_bytes=2500), policy=LOOPBACK)
        started = time.monotonic()
        with pytest.raises(StepError) as too_slow:
            download_http(f"{base}/x", tmp_path / "b", limits=Limits(download_timeout=0.5), policy=LOOPBACK)
    assert too_big.value.code == "source_too_large"
    assert too_slow.value.code == "download_timeout" and "within 0.5 s" in too_slow.value.message
    assert time.monotonic() - started < 1.5


def test_a_stalled_server_times_out_and_is_transient(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"x")
    with serve(tmp_path) as server:
        server.stall("/clip.mp4", 1.5)
        with pytest.raises(StepError) as caught:
            download_http(
                server.url("/clip.mp4"), tmp_path / "out", limits=Limits(http_timeout=0.3), policy=LOOPBACK
            )
    assert caught.value.code == "source_timeout" and caught.value.transient
    assert "headers took over 0.3 s" in caught.value.message


def test_trickled_headers_end_at_the_header_deadline(tmp_path):
    """One header byte every 0.1 s keeps every read short: only a wall-clock deadline ends it."""
    with serve(tmp_path) as server:
        server.behave("/slow.mp4", "trickle_headers", interval=0.1)
        started = time.monotonic()
        with pytest.raises(StepError) as caught:
            download_http(
                server.url("/slow.mp4"), tmp_path / "out", limits=Limits(http_timeout=1.0), policy=LOOPBACK
            )
    assert caught.value.code == "source_timeout" and caught.value.transient
    assert "headers took over 1 s" in caught.value.message
    assert time.monotonic() - started < 5  # the server would trickle for ever


def test_a_trickled_body_ends_at_the_download_deadline(tmp_path):
    with serve(tmp_path) as server:
        server.behave("/slow.mp4", "trickle_body", interval=0.1)
        limits = Limits(http_timeout=1.0, download_timeout=1.5)
        with pytest.raises(StepError) as caught:
            download_http(server.url("/slow.mp4"), tmp_path / "out", limits=limits, policy=LOOPBACK)
    assert caught.value.code == "download_timeout" and not caught.value.transient
    assert 5 <= (tmp_path / "out").stat().st_size <= 30  # bytes kept arriving, each read well in time


def test_a_gzip_bomb_is_stored_as_sent_never_inflated(tmp_path):
    with serve(tmp_path) as server:
        server.behave("/bomb.mp4", "gzip_bomb", size=50_000_000)
        download_http(
            server.url("/bomb.mp4"),
            tmp_path / "out",
            limits=Limits(max_source_bytes=1_000_000),
            policy=LOOPBACK,
        )
    assert server.requests[0]["headers"]["accept-encoding"] == "identity"
    assert (tmp_path / "out").stat().st_size < 100_000  # the compressed bytes; 50 MB were never made
    assert (tmp_path / "out").read_bytes()[:2] == b"\x1f\x8b"


def test_local_files_can_be_switched_off(tmp_path):
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x")
    assert local_source_path(str(source)) == source
    with pytest.raises(StepError) as caught:
        local_source_path(str(source), allowed=False)
    assert caught.value.code == "url_not_allowed" and str(tmp_path) not in caught.value.message


def test_guarded_transport_keeps_the_host_header_and_sni(monkeypatch):
    seen: list[httpx.Request] = []

    def record(self, request):
        seen.append(request)
        return httpx.Response(204)

    stub_dns(monkeypatch, {"cdn.example.test": ["93.184.216.34"]})
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", record)
    with httpx.Client(transport=GuardedTransport(NetPolicy())) as client:
        client.get("https://cdn.example.test/v.mp4?sig=1")
    assert str(seen[0].url) == "https://93.184.216.34/v.mp4?sig=1"
    assert seen[0].headers["host"] == "cdn.example.test"
    assert seen[0].extensions["sni_hostname"] == "cdn.example.test"


# Small servers this module needs beyond tests.httpserver.


@contextmanager
def serve_ipv6() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = f'{{"host": "{self.headers["Host"]}"}}'.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    with Server(("::1", 0), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://[::1]:{server.server_address[1]}"
        finally:
            server.shutdown()


@contextmanager
def serve_trickle(chunks: int, every: float, size: int = 1000) -> Iterator[str]:
    """Answers with a chunked body (no Content-Length): `chunks` chunks of `size` bytes, one per `every` s."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(chunks):
                    self.wfile.write(b"%x\r\n%s\r\n" % (size, b"v" * size))
                    self.wfile.flush()
                    time.sleep(every)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


# Promises of docs/security.md ("Address guard") that need their own test.

# Teredo (2001:0::/32) carries the client's IPv4 address inverted in its last 32 bits; the server here is
# public (65.54.227.120), so only the unwrapped client can make the address refused.
TEREDO_LOOPBACK = "2001:0:4136:e378:8000:ffff:80ff:fffe"  # client 127.0.0.1
TEREDO_METADATA = "2001:0:4136:e378:8000:ffff:5601:5601"  # client 169.254.169.254
TEREDO_PRIVATE = "2001:0:4136:e378:8000:ffff:f5ff:fffe"  # client 10.0.0.1


@pytest.mark.parametrize(
    ("name", "address", "kind"),
    [
        ("teredo-loopback.test", TEREDO_LOOPBACK, "loopback"),
        ("teredo-metadata.test", TEREDO_METADATA, "metadata"),
        ("teredo-private.test", TEREDO_PRIVATE, "private"),
        ("ecs-credentials.test", "169.254.170.2", "metadata"),  # AWS ECS task metadata
        ("alibaba-metadata.test", "100.100.100.200", "metadata"),  # Alibaba Cloud metadata
    ],
)
def test_teredo_and_cloud_metadata_names_are_refused_before_any_connection(monkeypatch, name, address, kind):
    """A name resolving to a Teredo-wrapped internal address or to the ECS/Alibaba metadata endpoints is
    refused by kind, naming the host and never the address, and nothing connects (the resolver is stubbed)."""
    stub_dns(monkeypatch, {name: [address]})
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda *a: pytest.fail("connected"))
    with guarded_client(NetPolicy()) as client, pytest.raises(AddressRefused) as caught:
        client.get(f"http://{name}/latest/meta-data/")
    assert caught.value.reason == f"host {name} is a {kind} address; allow it in VODFLOW_ALLOWED_HOSTS"
    assert address not in str(caught.value)


@pytest.mark.parametrize("address", ["169.254.170.2", "100.100.100.200"])
def test_metadata_addresses_stay_refused_when_their_name_is_allowed(monkeypatch, address):
    """Allowing a host name opens internal addresses for it, but never a metadata endpoint."""
    stub_dns(monkeypatch, {"meta.corp": [address], "intranet.corp": ["10.0.0.7"]})
    policy = NetPolicy.from_entries(["meta.corp", "intranet.corp"])
    assert policy.checked_addresses(httpx.URL("http://intranet.corp/")) == ["10.0.0.7"]
    with pytest.raises(AddressRefused, match="meta.corp is a metadata address"):
        policy.checked_addresses(httpx.URL("http://meta.corp/"))


def test_a_teredo_address_of_a_public_client_is_public():
    """The unwrapping reads the client address: Teredo of 8.8.8.8 is not refused (so refusals above are not
    Teredo's prefix being refused wholesale)."""
    assert refused_kind(ipaddress.ip_address("2001:0:4136:e378:8000:ffff:f7f7:f7f7")) is None


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"])
def test_proxy_variables_are_ignored_by_the_guarded_client(tmp_path, monkeypatch, variable):
    """With a proxy variable pointing at a loopback "proxy", the guarded client still connects to the target
    itself: the target records the request, the proxy is never contacted."""
    (tmp_path / "clip.mp4").write_bytes(b"target")
    with serve(tmp_path / "proxy") as proxy, serve(tmp_path) as target:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
        monkeypatch.setenv(variable, proxy.base_url)
        with guarded_client(LOOPBACK) as client:
            response = client.get(target.url("/clip.mp4"))
        assert response.status_code == 200 and response.content == b"target"
        assert [r["path"] for r in target.requests] == ["/clip.mp4"]
        assert proxy.requests == []
