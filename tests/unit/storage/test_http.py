"""The read-only file server players use: byte ranges, CORS, media types, nothing outside the directory."""

from __future__ import annotations

from starlette.testclient import TestClient

from vodflow.storage.http import create_file_app


def client_for(tmp_path):
    root = tmp_path / "data"
    (root / "files" / "videos" / "v1").mkdir(parents=True)
    (root / "files" / "videos" / "v1" / "index.m3u8").write_text("#EXTM3U\n")
    (root / "files" / "videos" / "v1" / "seg.ts").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "secret.txt").write_text("not published")
    return TestClient(create_file_app(root))


def test_a_byte_range_is_answered_with_206_and_only_those_bytes(tmp_path):
    client = client_for(tmp_path)
    response = client.get("/files/videos/v1/seg.ts", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == bytes(range(10, 20))
    assert response.headers["content-range"] == "bytes 10-19/1024"
    assert response.headers["content-type"] == "video/mp2t"


def test_players_on_other_origins_may_read_playlists(tmp_path):
    client = client_for(tmp_path)
    response = client.get("/files/videos/v1/index.m3u8", headers={"Origin": "http://127.0.0.1:9999"})
    assert response.status_code == 200 and response.text == "#EXTM3U\n"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    preflight = client.options(
        "/files/videos/v1/seg.ts",
        headers={"Origin": "http://x.test", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "range"},
    )  # fmt: skip
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert preflight.status_code == 200 and "range" in allowed


def test_nothing_outside_the_directory_no_listing_no_writes(tmp_path):
    client = client_for(tmp_path)
    assert client.get("/../secret.txt").status_code == 404
    assert client.get("/files/videos/%2e%2e/%2e%2e/%2e%2e/secret.txt").status_code == 404
    assert client.get("/files/videos/v1/").status_code == 404
    assert client.put("/files/videos/v1/seg.ts", content=b"x").status_code == 405
    assert client.delete("/files/videos/v1/seg.ts").status_code == 405
    assert (tmp_path / "data" / "files" / "videos" / "v1" / "seg.ts").stat().st_size == 1024
