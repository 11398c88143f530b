"""Private jobs played through signed, expiring links from the real API app (`vodflow.api.playback`): a
real encode (`"private": true`) into local storage and into a real S3 server (SeaweedFS), then every layer
fetched with a valid token (content) and with none, an expired, a tampered or another job's token (401/403,
nothing of the content): the playback JSON, the master, a media playlist, a segment and the key."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import m3u8
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.fake_runs import FakeRuns
from vodflow.api.app import create_app
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.playback import mint_playback_token
from vodflow.providers.videosdk import mint_token
from vodflow.settings import ApiSettings, load_settings
from vodflow.storage.base import Storage

pytestmark = pytest.mark.usefixtures("prefect_harness")

API_KEY = "vodflow-test-key"
SECRET = "vodflow-test-secret-0123456789abcdef"
KID = "00112233445566778899aabbccddeeff"
CONTENT_KEY = bytes(range(16))
SETTINGS = ApiSettings(api_key=API_KEY, api_secret=SecretStr(SECRET), playback_link_ttl=300)


def fake_keys(job_id: str, kid: str) -> bytes | None:
    """The key store the crypt side provides (`read_content_key`), faked: one key for every job."""
    return CONTENT_KEY if kid == KID else None


def private_job(clip: str) -> dict:
    doc = encode_video(
        {"videoUrl": clip, "presets": [{"format": "hls", "resolutions": ["240", "360"]}], "private": True}
    )
    assert doc["status"] == "completed" and doc["private"] is True
    return doc


def client_for(storage: Storage) -> TestClient:
    app = create_app(SETTINGS, storage, runs=FakeRuns(), key_lookup=fake_keys)
    return TestClient(app, base_url="http://api.test")


def add_key_line(storage: Storage, key: str) -> None:
    """Put an `EXT-X-KEY` (as the crypt side writes it, absolute) into a stored media playlist."""
    text = storage.read_bytes(key).decode()
    line = f'#EXT-X-KEY:METHOD=AES-128,URI="http://worker.internal/v1/keys/{{job}}/{KID}",IV=0x1'
    job = key.split("/")[1]
    storage.upload_bytes(text.replace("#EXTINF", line.format(job=job) + "\n#EXTINF", 1).encode(), key)


def check_private_job(
    storage: Storage, client: TestClient, doc: dict, fetch: Callable[[str], httpx.Response]
) -> dict[str, str]:
    """Play the job as a player does with a valid token; the URLs of each layer (master, media, segment,
    key) for the refusal checks."""
    job = doc["id"]
    ladder = next(f for f in doc["files"] if f["type"] == "x-tar")
    assert ladder["fileUrl"] == f"private:private/{job}/videos/{ladder['id']}/index.m3u8"
    assert ladder["filePath"] == f"private/{job}/videos/{ladder['id']}"
    assert storage.list_keys("files/") == []  # nothing of a private job where the public server looks
    stored = storage.list_keys(f"private/{job}/")
    assert any(k.endswith(".ts") for k in stored)
    media_key = next(k for k in stored if k.endswith("/index.m3u8") and k.count("/") == 5)
    add_key_line(storage, media_key)

    token = mint_playback_token(SETTINGS.playback_key(), job, 600)
    answer = client.get(f"/v1/playback/{job}", params={"token": token})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    master_url = answer.json()["hls"][0]["url"]
    assert master_url.startswith(f"http://api.test/v1/playback/{job}/manifest/") and token in master_url
    master = client.get(master_url)
    assert master.status_code == 200 and master.headers["content-type"].startswith("application/vnd.apple")
    variants = m3u8.loads(master.text).playlists
    assert len(variants) == 2 and all(
        v.uri.startswith("http://api.test/") and token in v.uri for v in variants
    )
    media_url = next(v.uri for v in variants if media_key.split("/")[-2] in v.uri)
    media = client.get(media_url)
    assert media.status_code == 200
    parsed = m3u8.loads(media.text)
    assert parsed.keys[-1].uri == f"http://api.test/v1/keys/{job}/{KID}?token={token}"
    segments = [s.uri for s in parsed.segments]
    assert segments and all(re.match(r"^https?://", s) for s in segments)
    assert not [s for s in segments if "exp" not in s.lower() and "/v1/media/" not in s]  # every one signed
    first = fetch(segments[0])
    assert first.status_code == 200
    name = media.text.split(".ts")[0].rsplit("\n", 1)[-1].rsplit("/", 1)[-1]
    assert first.content == storage.read_bytes(f"{media_key.rsplit('/', 1)[0]}/{name}.ts")
    key = client.get(parsed.keys[-1].uri)
    assert (key.status_code, key.content, key.headers["cache-control"]) == (200, CONTENT_KEY, "no-store")
    kid64 = "ABEiM0RVZneImaq7zN3u_w"
    lic = client.post(
        f"/v1/clearkey/{job}", params={"token": token}, json={"kids": [kid64], "type": "temporary"}
    )
    assert lic.status_code == 200
    assert lic.json()["keys"] == [{"kty": "oct", "kid": kid64, "k": "AAECAwQFBgcICQoLDA0ODw"}]
    return {
        "playback": f"/v1/playback/{job}",
        "master": master_url,
        "media": media_url,
        "segment": segments[0],
        "key": parsed.keys[-1].uri,
    }


def check_refusals(
    client: TestClient, job: str, urls: dict[str, str], fetch: Callable[[str], httpx.Response]
) -> None:
    """Each layer without a valid token: 401/403 and not a byte of the content."""
    key = SETTINGS.playback_key()
    good = mint_playback_token(key, job, 600)
    expired = mint_playback_token(key, job, 60, now=time.time() - 3600)
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["exp"] += 86400  # a longer life, the signature kept
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    bad_tokens = {
        "expired": expired,
        "tampered": f"{head}.{forged_payload}.{sig}",
        "other job": mint_playback_token(key, "another-job", 600),
        "api token": mint_token(API_KEY, SECRET),
        "missing": "",
    }
    for what in ("playback", "master", "media", "key"):
        for name, bad in bad_tokens.items():
            url = urls[what].split("?token=")[0]
            answer = client.get(url, params={"token": bad} if bad else {})
            assert answer.status_code in (401, 403), (what, name, answer.status_code)
            assert (
                b"#EXT" not in answer.content and answer.content != CONTENT_KEY and "url" not in answer.text
            )
    other = client.post(
        f"/v1/clearkey/{job}", params={"token": expired}, json={"kids": ["ABEiM0RVZneImaq7zN3u_w"]}
    )
    assert other.status_code == 401 and "keys" not in other.json()
    segment = urls["segment"]
    tampered = re.sub(
        r"(Signature=|/v1/media/[^/]+/\d+/)([A-Za-z0-9_-]{4})",
        lambda m: m.group(1) + "AAAA",
        segment,
        count=1,
    )
    assert tampered != segment
    refused = fetch(tampered)
    assert refused.status_code in (401, 403) and len(refused.content) < 2000


def test_private_job_on_local_storage_plays_only_through_signed_links(storage, clips) -> None:
    doc = private_job(str(clips["landscape"]))
    client = client_for(storage)
    urls = check_private_job(storage, client, doc, lambda url: client.get(url))
    assert "/v1/media/" in urls["segment"]
    check_refusals(client, doc["id"], urls, lambda url: client.get(url))
    exp = int(urls["segment"].split("/v1/media/")[1].split("/")[1])
    past = urls["segment"].replace(f"/{exp}/", f"/{exp - 100000}/")  # an old link, its signature reused
    assert client.get(past).status_code == 403
    traversal = urls["segment"].rsplit("/", 1)[0] + "/../../../../jobs/" + doc["id"] + ".json"
    assert client.get(traversal).status_code in (403, 404)
    minted = client.post(f"/v1/playback/{doc['id']}/tokens", json={"ttl": 120, "ip": "127.0.0.0/8"})
    assert minted.status_code == 401  # behind the API token
    minted = client.post(
        f"/v1/playback/{doc['id']}/tokens",
        json={"ttl": 120},
        headers={"Authorization": mint_token(API_KEY, SECRET)},
    )
    assert minted.status_code == 200 and client.get(minted.json()["playbackUrl"]).status_code == 200


def test_private_job_on_s3_plays_through_presigned_urls(s3_server, monkeypatch, tmp_path, clips) -> None:
    monkeypatch.setenv("VODFLOW_STORAGE", "s3")
    monkeypatch.setenv("VODFLOW_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("VODFLOW_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("VODFLOW_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setenv("VODFLOW_S3_BUCKET", "vodflow-private-playback")
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    storage = load_settings().storage_config().open()
    doc = private_job(str(clips["landscape"]))
    client = client_for(storage)
    urls = check_private_job(storage, client, doc, httpx.get)
    assert urlsplit(urls["segment"]).netloc == s3_server.endpoint and "X-Amz-Signature=" in urls["segment"]
    unsigned = httpx.get(urls["segment"].split("?")[0])
    assert unsigned.status_code in (401, 403)  # the bucket is not public: only the presigned URL reads it
    check_refusals(client, doc["id"], urls, httpx.get)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_private_cmaf_ladders_mpd_resolves_under_one_signed_link(
    kind, request, monkeypatch, tmp_path, clips
):
    """The DASH manifest of a private CMAF ladder: one signed `BaseURL` for its folder, under which the
    init and media segments its templates name download (local: from the API; S3: a redirect to a
    presigned URL); the link does not reach another folder, and without a token there is no manifest."""
    if kind == "s3":
        s3_server = request.getfixturevalue("s3_server")
        for name, value in (
            ("STORAGE", "s3"),
            ("S3_ENDPOINT", s3_server.endpoint),
            ("S3_ACCESS_KEY", s3_server.access_key),
            ("S3_SECRET_KEY", s3_server.secret_key),
            ("S3_BUCKET", "vodflow-private-dash"),
            ("TMP_DIR", str(tmp_path / "tmp")),
        ):
            monkeypatch.setenv(f"VODFLOW_{name}", value)
        storage = load_settings().storage_config().open()
    else:
        storage = request.getfixturevalue("storage")
    spec = {"videoUrl": str(clips["landscape"]), "presets": [{"format": "cmaf", "resolutions": ["240"]}]}
    doc = encode_video({**spec, "private": True})
    job = doc["id"]
    client = client_for(storage)
    token = mint_playback_token(SETTINGS.playback_key(), job, 600)
    listing = client.get(f"/v1/playback/{job}", params={"token": token}).json()
    (dash,) = listing["dash"]
    assert client.get(dash["url"].split("?")[0]).status_code == 401
    mpd = client.get(dash["url"])
    assert mpd.status_code == 200 and mpd.headers["content-type"].startswith("application/dash+xml")
    (base,) = re.findall(r"<BaseURL>([^<]+)</BaseURL>", mpd.text.split("<Period")[0])
    assert base.startswith(f"http://api.test/v1/media/{job}/") and base.endswith(f"/videos/{dash['id']}/")
    stored = storage.list_keys(f"private/{job}/videos/{dash['id']}/")
    init = next(k for k in stored if k.rsplit("/", 1)[1].startswith("init-"))
    answer = client.get(base + init.rsplit("/", 1)[1], follow_redirects=False)
    if kind == "s3":
        assert answer.status_code == 302 and "X-Amz-Signature=" in answer.headers["location"]
        answer = httpx.get(answer.headers["location"])
    assert answer.status_code == 200 and answer.content == storage.read_bytes(init)
    assert (
        client.get(base.replace(f"/videos/{dash['id']}/", "/videos/other/") + "init-0.m4s").status_code == 403
    )
    assert client.get(base + "../../../jobs/x.json").status_code in (403, 404)
