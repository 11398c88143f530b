"""The MPC client, its AK/SK signing and the final-state rule against the local MPC contract server."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import httpx
import pytest

from tests.contract_servers.mpc import MpcServer
from tests.remote import encode_remotely
from vodflow.encoders.mpc import encode_with_mpc
from vodflow.errors import ServiceError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.net.retry import RetrySettings
from vodflow.providers import mpc
from vodflow.providers.cleanup import delete_mpc_task_record
from vodflow.providers.mpc import MpcAuth, MpcClient, ObsObject
from vodflow.providers.mpc_signing import sign_headers

FAST = RetrySettings(attempts=4, base=0.01, cap=0.05)
SOURCE = ObsObject("in-bucket", "cn-north-4", "uploads/My clip (1) ü~+.mp4")
OUTPUT = ObsObject("out-bucket", "cn-north-4", "vodflow/job-1")


@pytest.fixture
def server():
    with MpcServer() as running:
        yield running
    assert running.violations == [] or running.expect_violations


def _client(server: MpcServer, **auth: str) -> MpcClient:
    credentials = MpcAuth(**auth) if auth else MpcAuth(access_key=server.ak, secret_key=server.sk)
    return MpcClient(server.base_url, server.project_id, credentials, timeout=0.5, retry=FAST)


@pytest.fixture
def client(server):
    with _client(server) as c:
        yield c


def test_signed_create_query_cancel_delete(server, client):
    task_id = client.create_task(SOURCE, OUTPUT, template_ids=[7000529, 7000530], user_data="job-1")
    created = server.tasks[task_id]
    assert created["input"]["object"] == SOURCE.object and created["trans_template_id"] == [7000529, 7000530]
    server.hold_waiting = True
    assert client.get_task(task_id)["status"] == "WAITING"
    client.cancel_task(task_id)
    assert client.get_task(task_id)["status"] == "CANCELED"
    client.delete_task_record(task_id)
    assert client.get_task(task_id) is None
    authorization = server.requests[0]["headers"]["authorization"]
    assert "SignedHeaders=content-type;host;x-project-id;x-sdk-date" in authorization


def test_repeated_ids_and_paging(server, client):
    ids = [server.add_task("SUCCEEDED") for _ in range(23)]
    found = client.get_tasks(ids + ["9", "10", "999999"])
    assert set(found) == set(ids)
    queries = [r["query"] for r in server.calls("GET")]
    assert len(queries) == 3 and queries[2] == (
        "page=0&size=10&task_id=9&task_id=10&task_id=100220&task_id=100221&task_id=100222&task_id=999999"
    )
    assert len(client.list_tasks(status="SUCCEEDED", size=5)) == 23


def test_iam_token_and_temporary_credentials():
    with MpcServer(security_token="sts-token-abc") as server:
        with _client(server, iam_token=server.iam_token) as by_token:
            task_id = by_token.create_task(SOURCE, OUTPUT, template_ids=[1])
        with _client(
            server, access_key=server.ak, secret_key=server.sk, security_token="sts-token-abc"
        ) as sts:
            assert sts.get_task(task_id)["task_id"] == task_id
        assert "x-security-token" in server.requests[-1]["headers"]["authorization"]
        assert server.violations == []


def test_bad_signatures_are_rejected_once_and_leak_nothing(server, caplog):
    server.expect_violations = True
    caplog.set_level(logging.DEBUG)
    wrong_sk = "WRONG-secret-key-0123456789"
    with _client(server, access_key=server.ak, secret_key=wrong_sk) as bad:
        with pytest.raises(ServiceError) as info:
            bad.get_task(100200)
    assert info.value.status_code == 401 and info.value.code == "APIGW.0301" and not info.value.transient
    assert len(server.requests) == 1 and "verify aksk signature fail" in server.violations[0]
    for text in (str(info.value), caplog.text):
        assert wrong_sk not in text and server.ak not in text


def test_the_server_checks_headers_and_canonical_queries(server, client):
    server.expect_violations = True
    task_id = server.add_task("SUCCEEDED")
    with httpx.Client(base_url=server.base_url) as raw:
        base = f"/v1/{server.project_id}/transcodings"
        headers = {"Content-Type": "application/json", "X-Auth-Token": server.iam_token}
        assert raw.get(base, headers=headers).status_code == 400  # no X-Project-Id
        assert raw.get(base, headers={**headers, "X-Project_Id": server.project_id}).status_code == 400
        assert raw.post(f"{base}/task", headers=headers).status_code == 405
        # correctly signed, but over a query string in the order it was written, not the canonical one
        path, query = f"/v1/{server.project_id}/transcodings", "task_id=10&task_id=9"
        signed = sign_headers(
            method="GET", host=urlparse(server.base_url).netloc, path=path, query_string=query,
            headers={"Content-Type": "application/json", "X-Project-Id": server.project_id}, body=b"",
            access_key=server.ak, secret_key=server.sk,
        )  # fmt: skip
        assert raw.get(f"{path}?{query}", headers=signed).status_code == 401
    assert any("canonical" in v for v in server.violations)
    assert client.get_task(task_id)["status"] == "SUCCEEDED"


@pytest.mark.parametrize("kind", ["429", "500", "503", "timeout", "malformed"])
def test_transient_faults_are_retried(server, client, kind):
    task_id = server.add_task("SUCCEEDED")
    server.inject(kind, count=2, retry_after=0, delay=1.0)
    assert client.get_task(task_id)["task_id"] == task_id


def test_4xx_is_not_retried(server, client):
    with pytest.raises(ServiceError) as info:
        client.cancel_task(server.add_task("SUCCEEDED"))
    assert info.value.code == mpc.NOT_WAITING and len(server.calls("DELETE")) == 1


def test_final_state_rule(server, client):
    succeeded = server.add_task("SUCCEEDED")
    with pytest.raises(ServiceError) as refused:
        client.delete_task_record(server.add_task("TRANSCODING"))
    assert refused.value.code == mpc.NOT_FINAL

    assert delete_mpc_task_record(client, succeeded)["outcome"] == "deleted"
    assert delete_mpc_task_record(client, succeeded)["outcome"] == "already_gone"

    server.hold_waiting = True
    waiting = server.add_task("WAITING")
    outcome = delete_mpc_task_record(client, waiting, wait_running=1, poll_interval=0.01)
    assert (
        outcome["outcome"] == "deleted" and "cancelled" in outcome["detail"] and waiting not in server.tasks
    )

    server.final = "stuck"
    running = server.add_task("TRANSCODING")
    left = delete_mpc_task_record(client, running, wait_running=0.1, poll_interval=0.02)
    assert left["outcome"] == "left_running" and server.tasks[running]["status"] == "TRANSCODING"

    server.final = "FAILED"
    finishing = server.add_task("TRANSCODING")
    assert (
        delete_mpc_task_record(client, finishing, wait_running=1, poll_interval=0.01)["outcome"] == "deleted"
    )
    assert delete_mpc_task_record(client, "not-a-number")["outcome"] == "failed"
    assert (
        len(server.calls("DELETE", f"/v1/{server.project_id}/transcodings/task")) == 4
    )  # none for a record already gone


def _doc() -> JobDocument:
    spec = parse_spec(
        {"videoUrl": "s3://in-bucket/a.mp4", "presets": [{"resolutions": ["720"], "format": "mp4"}]}
    )
    return JobDocument.from_spec(spec, "c" * 24)


def test_remote_encode_maps_outputs_to_obs(server, client):
    result = encode_with_mpc(
        client, _doc(), source=SOURCE, output=OUTPUT, template_ids=[11, 12], poll_interval=0.01, max_wait=5
    )
    assert result.status == "completed" and len(result.files) == 2
    first = result.files[0]
    assert first.file_url.startswith("https://out-bucket.obs.cn-north-4.myhuaweicloud.com/vodflow/job-1/")
    assert (first.size, first.meta.resolution.height, first.meta.duration) == (1000, 720, 12.48)


def test_remote_encode_failure_and_timeout(server, client):
    server.final = "FAILED"
    failed = encode_with_mpc(
        client, _doc(), source=SOURCE, output=OUTPUT, template_ids=[1], poll_interval=0.01, max_wait=5
    )
    assert (failed.status, failed.error.code) == ("failed", "MPC.10206")
    server.hold_waiting = True
    late = encode_with_mpc(
        client, _doc(), source=SOURCE, output=OUTPUT, template_ids=[1], poll_interval=0.02, max_wait=0.1
    )
    assert late.error.code == "remote_timeout" and server.tasks[late.remote_id]["status"] == "CANCELED"


def test_encode_remotely_from_the_environment(server, monkeypatch):
    for name, value in {
        "HUAWEICLOUD_SDK_AK": server.ak,
        "HUAWEICLOUD_SDK_SK": server.sk,
        "MPC_PROJECT_ID": server.project_id,
        "MPC_ENDPOINT": server.base_url,
        "MPC_REGION": "cn-north-4",
        "MPC_OUTPUT_BUCKET": "out",
        "MPC_TEMPLATE_IDS": "7000529",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MPC_AUTH_TOKEN", raising=False)
    doc = _doc().model_copy(update={"video_url": "s3://in-bucket/a.mp4"})
    result = encode_remotely("mpc", doc)
    assert result.status == "completed"
    [task] = server.created
    assert task["task_id"] not in server.tasks  # the record is deleted once the task is final
    assert task["input"] == {"bucket": "in-bucket", "location": "cn-north-4", "object": "a.mp4"}
    assert task["output"]["object"] == f"vodflow/{'c' * 24}" and task["user_data"] == "c" * 24
