"""Pure request builders, status mapping, result mapping and the shared sender's error handling."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx
import jwt
import pytest

from tests.httpserver import serve
from vodflow.encoders.mpc import files_from_mpc, mpc_targets, parse_object_url, result_from_mpc
from vodflow.encoders.videosdk import files_from_videosdk, videosdk_job_spec
from vodflow.errors import ServiceError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.net.retry import RetrySettings
from vodflow.providers import mpc, videodb, videosdk
from vodflow.providers.cleanup import parse_time
from vodflow.providers.http import ApiRequest, ServiceClient
from vodflow.providers.polling import poll_until

PROJECT = "0123456789abcdef0123456789abcdef"
FAST = RetrySettings(attempts=4, base=0.001, cap=0.01)


def test_videosdk_builders():
    create = videosdk.build_create_job({"videoUrl": "u", "presets": []}, {"k": "v"})
    assert (create.method, create.path, create.body["userData"]) == ("POST", "/v1/encoder/jobs", {"k": "v"})
    assert videosdk.build_get_job("abc/../x").path == "/v1/encoder/jobs/abc%2F..%2Fx"
    listing = videosdk.build_list_jobs(3, 50)
    assert (listing.path, listing.query) == ("/v1/encoder/jobs", (("page", 3), ("perPage", 50)))
    delete = videosdk.build_delete_job("64b0c0ffee0000000000abcd")
    assert (delete.method, delete.object_id) == ("DELETE", "64b0c0ffee0000000000abcd")


def test_videosdk_token_is_a_short_lived_hs256_jwt():
    secret = "s" * 32
    token = videosdk.mint_token(
        "key-1", secret, ttl_seconds=300, permissions=["allow_join"], now=1_700_000_000
    )
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {
        "apikey": "key-1",
        "permissions": ["allow_join"],
        "iat": 1_700_000_000,
        "exp": 1_700_000_300,
    }
    assert "key-1" not in repr(videosdk.TokenSource("key-1", secret))


def test_mpc_builders():
    source = mpc.ObsObject("in", "cn-north-4", "a/b.mp4")
    output = mpc.ObsObject("out", "cn-north-4", "vodflow/job")
    create = mpc.build_create_task(PROJECT, source, output, template_ids=[7, 8], user_data="job")
    assert create.path == f"/v1/{PROJECT}/transcodings"
    assert create.body == {
        "input": {"bucket": "in", "location": "cn-north-4", "object": "a/b.mp4"},
        "output": {"bucket": "out", "location": "cn-north-4", "object": "vodflow/job"},
        "trans_template_id": [7, 8],
        "user_data": "job",
    }
    with pytest.raises(ValueError):
        mpc.build_create_task(PROJECT, source, output)
    query = mpc.build_query_tasks(PROJECT, task_ids=["10", 9], status=None, page=1, size=5)
    assert query.query == (("task_id", 10), ("task_id", 9), ("page", 1), ("size", 5))
    with pytest.raises(ValueError):
        mpc.build_query_tasks(PROJECT, task_ids=list(range(11)))
    cancel = mpc.build_cancel_task(PROJECT, "42")
    record = mpc.build_delete_task_record(PROJECT, 42)
    assert (cancel.method, cancel.path, cancel.query) == (
        "DELETE",
        f"/v1/{PROJECT}/transcodings",
        (("task_id", 42),),
    )
    assert (record.path, record.object_id) == (f"/v1/{PROJECT}/transcodings/task", "42")
    assert mpc.endpoint_for_region("cn-north-1") == "https://mts.cn-north-1.myhuaweicloud.com"
    assert mpc.endpoint_for_region("ap-southeast-1") == "https://mpc.ap-southeast-1.myhuaweicloud.com"


def test_videodb_builders():
    delete = videodb.build_delete_download("dl-1")
    assert (delete.method, delete.path, delete.query, delete.body) == (
        "DELETE",
        "/download",
        (("download_id", "dl-1"),),
        None,
    )
    assert videodb.build_list_downloads(2, 10).query == (("page_index", 2), ("count", 10))
    assert videodb.build_create_download("https://s", "n").body == {"stream_link": "https://s", "name": "n"}


def test_status_mapping():
    assert [videosdk.vodflow_status(s) for s in ("queued", "processing", "completed", "failed")] == [
        "queued",
        "processing",
        "completed",
        "failed",
    ]
    assert [mpc.vodflow_status(s) for s in ("WAITING", "NEED_TO_BE_AUDIT", "TRANSCODING")] == [
        "queued",
        "queued",
        "processing",
    ]
    assert [mpc.vodflow_status(s) for s in ("SUCCEEDED", "FAILED", "CANCELED")] == [
        "completed",
        "failed",
        "failed",
    ]
    assert [videodb.vodflow_status(s) for s in ("in progress", "done", "complete", "error", "failed")] == [
        "processing",
        "completed",
        "completed",
        "failed",
        "failed",
    ]


def _doc() -> JobDocument:
    spec = parse_spec(
        {
            "videoUrl": "https://example.invalid/a.mp4",
            "presets": [
                {"resolutions": ["360", "720"], "format": "mp4"},
                {"resolutions": ["480"], "format": "hls"},
            ],
            "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["360"]}],
        }
    )
    return JobDocument.from_spec(spec, "a" * 24)


def test_videosdk_spec_leaves_out_vodflow_ids():
    spec = videosdk_job_spec(_doc(), "https://cdn.example.invalid/src.mp4")
    assert spec["videoUrl"] == "https://cdn.example.invalid/src.mp4"
    assert spec["presets"] == [
        {"resolutions": ["360", "720"], "format": "mp4"},
        {"resolutions": ["480"], "format": "hls"},
    ]
    assert "id" not in spec["thumbnails"][0]


def test_videosdk_files_keep_their_shape_under_the_vodflow_job_id():
    remote = {
        "id": "r" * 24,
        "files": [
            {
                "meta": {"resolution": {"width": 640, "height": 360}, "format": "mov,mp4", "duration": 3.0},
                "jobId": "r" * 24,
                "filePath": "x/360.mp4",
                "size": 10,
                "type": "video",
                "fileUrl": "https://cdn/x/360.mp4",
                "id": "f" * 24,
                "createdAt": "2024-01-01T00:00:00.000Z",
                "updatedAt": "2024-01-01T00:00:00.000Z",
                "extra": "ignored",
            },
            {"type": "image", "fileUrl": "https://cdn/t.jpg"},
            {"type": "video"},
        ],
    }
    files = files_from_videosdk(remote, "a" * 24)
    assert [f.job_id for f in files] == ["a" * 24, "a" * 24]
    assert files[0].id == "f" * 24 and files[0].meta.resolution.height == 360
    assert files[1].file_path == "t.jpg" and files[1].size == 0


def test_mpc_source_and_output_locations():
    assert parse_object_url("obs://bucket/in/a b.mp4") == ("bucket", "in/a b.mp4")
    assert parse_object_url("s3://bucket/a.mp4") == ("bucket", "a.mp4")
    for bad in ("https://bucket/a.mp4", "obs://bucket/", "/local/a.mp4"):
        with pytest.raises(ValueError):
            parse_object_url(bad)
    source, output = mpc_targets(
        "obs://in/a.mp4", job_id="j1", location="cn-north-4", output_bucket="out", output_prefix="/vod/"
    )
    assert source.wire() == {"bucket": "in", "location": "cn-north-4", "object": "a.mp4"}
    assert output.wire() == {"bucket": "out", "location": "cn-north-4", "object": "vod/j1"}
    with pytest.raises(ValueError):
        mpc_targets("obs://in/a.mp4", job_id="j", location="x", output_bucket=None, output_prefix="p")


def test_mpc_outputs_become_file_entries_with_obs_urls():
    task = {
        "task_id": "100",
        "status": "SUCCEEDED",
        "output": {"bucket": "out", "location": "cn-north-4", "object": "vod/j1"},
        "output_file_name": ["a_1.mp4", "hls/index.m3u8", "shot.jpg"],
        "transcode_detail": {
            "multitask_info": [
                {
                    "output_file": {
                        "size": 10,
                        "duration_ms": 2500,
                        "format": "MP4",
                        "video_info": {"width": 640, "height": 360},
                    }
                },
                {"output_file": {"size": 20, "duration": 3, "video_info": {"width": 854, "height": 480}}},
                {"output_file": {"size": 5}},
            ]
        },
    }
    video, ladder, image = files_from_mpc(task, "j1")
    assert video.type == "video" and video.file_path == "vod/j1/a_1.mp4"
    assert video.file_url == "https://out.obs.cn-north-4.myhuaweicloud.com/vod/j1/a_1.mp4"
    assert (video.size, video.meta.duration, video.meta.resolution.width) == (10, 2.5, 640)
    assert ladder.type == "x-tar" and ladder.file_path == "vod/j1/hls" and ladder.meta.format == "hls"
    assert ladder.file_url.endswith("/vod/j1/hls/index.m3u8")
    assert image.type == "image" and image.meta is None
    failed = result_from_mpc(
        {"task_id": "7", "status": "FAILED", "error_code": "MPC.10206", "description": "bad"}, "j"
    )
    assert (failed.status, failed.error.code, failed.error.message, failed.files) == (
        "failed",
        "MPC.10206",
        "bad",
        [],
    )


def test_poll_until_is_bounded():
    now = [0.0]
    seen = []

    def fetch():
        seen.append(now[0])
        return {"status": "processing"}

    value, done = poll_until(
        fetch,
        lambda v: False,
        interval=2,
        max_wait=5,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert not done and seen == [0, 2, 4, 5]
    assert poll_until(lambda: 1, lambda v: True, interval=1, max_wait=0) == (1, True)


def test_parse_time_accepts_the_services_formats():
    expected = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("20240102030405") == expected
    assert parse_time("2024-01-02T03:04:05Z") == expected
    assert parse_time("2024-01-02T03:04:05.000+00:00") == expected
    assert parse_time(expected.timestamp()) == expected
    assert parse_time(int(expected.timestamp() * 1000)) == expected
    assert parse_time("soon") is None and parse_time(None) is None


class _Echo(ServiceClient):
    service = "echo"


def _client(handler, **kwargs) -> tuple[_Echo, list[float]]:
    sleeps: list[float] = []
    client = _Echo(
        "http://echo.test",
        transport=httpx.MockTransport(handler),
        retry=kwargs.pop("retry", FAST),
        sleep=sleeps.append,
        **kwargs,
    )
    return client, sleeps


def test_sender_retries_transient_faults_then_succeeds():
    answers = iter(
        [httpx.Response(503), httpx.Response(200, content=b"{oops"), httpx.Response(200, json={"ok": 1})]
    )
    client, sleeps = _client(lambda request: next(answers))
    assert client.send(ApiRequest("ping", "GET", "/p", object_id="x")) == {"ok": 1}
    assert len(sleeps) == 2


def test_sender_honours_retry_after():
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(204)])
    client, sleeps = _client(
        lambda request: next(answers), retry=RetrySettings(attempts=3, base=0.001, cap=30)
    )
    assert client.send(ApiRequest("ping", "GET", "/p")) is None
    assert sleeps == [7.0]


def test_sender_never_retries_4xx_and_names_service_call_and_id():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(403, json={"message": "forbidden for key sk-SECRET-123"})

    client, sleeps = _client(handler, secrets=["sk-SECRET-123"])
    with pytest.raises(ServiceError) as info:
        client.send(ApiRequest("delete thing", "DELETE", "/t/1", object_id="1"))
    assert len(calls) == 1 and sleeps == []
    assert str(info.value) == "echo delete thing 1 failed (HTTP 403): forbidden for key ***"
    assert not info.value.transient and info.value.status_code == 403


def test_sender_gives_up_after_the_attempts(caplog):
    client, sleeps = _client(lambda request: httpx.Response(500, text="boom"))
    with caplog.at_level(logging.WARNING, logger="vodflow.providers"):
        with pytest.raises(ServiceError) as info:
            client.send(ApiRequest("ping", "GET", "/p", object_id="o"))
    assert info.value.transient and len(sleeps) == FAST.attempts - 1
    assert "echo ping o failed (HTTP 500): boom" in caplog.text


def test_sender_maps_connection_errors_to_transient_errors():
    def handler(request):
        raise httpx.ConnectError("refused", request=request)

    client, sleeps = _client(handler)
    with pytest.raises(ServiceError, match=r"echo ping failed: connection failed \(ConnectError\)") as info:
        client.send(ApiRequest("ping", "GET", "/p"))
    assert info.value.transient and len(sleeps) == 3


def test_sender_sends_the_exact_json_body():
    seen = []

    def handler(request):
        seen.append(request.content)
        return httpx.Response(200, json={})

    client, _ = _client(handler)
    client.send(ApiRequest("create", "POST", "/c", body={"name": "ü", "n": [1, 2]}))
    assert seen == [
        json.dumps({"name": "ü", "n": [1, 2]}, separators=(",", ":"), ensure_ascii=False).encode()
    ]


def test_errors_survive_pickling():
    import pickle

    from vodflow.flows.cleanup import CleanupFailed

    error = pickle.loads(
        pickle.dumps(ServiceError("mpc", "cancel task", "no", object_id="7", code="MPC.10212"))
    )
    assert (str(error), error.code, error.not_found) == ("mpc cancel task 7 failed: no", "MPC.10212", False)
    outcomes = [{"service": "videodb", "id": "d", "outcome": "failed", "detail": "x"}]
    assert pickle.loads(pickle.dumps(CleanupFailed(outcomes))).outcomes == outcomes


EIGHT_MIB = 8 * 1024 * 1024  # docs/security.md: "provider answers capped at 8 MiB"


@pytest.mark.parametrize("unsized", [False, True], ids=["content-length", "unsized"])
def test_provider_answers_are_capped_at_8_mib(tmp_path, unsized):
    """A loopback service answering exactly 8 MiB of JSON is read; one byte more (or an endless answer with no
    length) is refused at once (not retried, one request)."""
    just_fits = b'"' + b"a" * (EIGHT_MIB - 2) + b'"'
    (tmp_path / "fits").write_bytes(just_fits)
    (tmp_path / "over").write_bytes(just_fits + b" ")  # still valid JSON: only its size is wrong
    with serve(tmp_path) as server:
        if unsized:
            server.behave("/fits", "unsized", body=just_fits)
            server.behave("/over", "endless")
        sleeps: list[float] = []
        with _Echo(server.base_url, retry=FAST, sleep=sleeps.append) as client:
            assert client.send(ApiRequest("list", "GET", "/fits")) == "a" * (EIGHT_MIB - 2)
            with pytest.raises(ServiceError) as info:
                client.send(ApiRequest("list", "GET", "/over"))
    assert str(info.value) == f"echo list failed: answer larger than {EIGHT_MIB} bytes"
    assert not info.value.transient and sleeps == []
    assert [r["path"] for r in server.requests] == ["/fits", "/over"]


def test_control_characters_in_a_service_s_error_are_escaped_in_logs_and_errors(caplog):
    """docs/security.md: "every error message has its control characters escaped": a service whose 5xx message
    carries a newline, an ANSI escape and a Unicode line separator cannot forge a log line, in the retry
    warnings or in the final error."""
    forged = "busy\n2026-01-01 INFO vodflow: job done\x1b[2J\u2028end"
    client, sleeps = _client(lambda request: httpx.Response(503, json={"message": forged}))
    with caplog.at_level(logging.WARNING, logger="vodflow.providers"), pytest.raises(ServiceError) as info:
        client.send(ApiRequest("ping", "GET", "/p", object_id="id\r\n1"))
    escaped = "busy\\n2026-01-01 INFO vodflow: job done\\x1b[2J\\u2028end"
    assert str(info.value) == f"echo ping id\\r\\n1 failed (HTTP 503): {escaped}"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == FAST.attempts and all(escaped in w for w in warnings)
    assert len(sleeps) == FAST.attempts - 1  # transient: retried
    for text in [str(info.value), *warnings]:
        assert not any(c in text for c in "\n\r\x1b\u2028"), text
