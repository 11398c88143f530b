"""The warm runner's request: what the client sends and the server accepts, and the bounds it refuses."""

from __future__ import annotations

import json

import pytest

from vodflow.stack.runclient import (
    HEADER,
    MAGIC,
    MAX_ENV_ENTRIES,
    MAX_REQUEST_BYTES,
    BadRequest,
    check_request,
    encode_request,
    payload_length,
)

RUN = "7d50c45f-b39c-4800-abb1-c4a355bd0429"  # fixed: test ids must be the same on every xdist worker

OTHER_RUN = "0b7e5a4e-2c55-4c1f-9d35-5b1d0c4f7a11"


def payload(**fields) -> bytes:
    return json.dumps({"flow_run_id": RUN, "cwd": "/tmp", "env": {"A": "1"}} | fields).encode()


def test_a_request_round_trips_through_header_and_payload():
    data = encode_request(RUN, "/tmp/run", {"PREFECT__FLOW_RUN_ID": RUN, "PATH": "/usr/bin"})
    length = payload_length(data[: HEADER.size])
    assert length == len(data) - HEADER.size
    env = {"PREFECT__FLOW_RUN_ID": RUN, "PATH": "/usr/bin"}
    assert check_request(data[HEADER.size :]) == (RUN, "/tmp/run", env)


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (b"VFR", "truncated"),
        (HEADER.pack(b"HTTP", 10), "not a vodflow runner request"),
        (HEADER.pack(MAGIC, 0), "payload of 0 bytes"),
        (HEADER.pack(MAGIC, MAX_REQUEST_BYTES + 1), f"payload of {MAX_REQUEST_BYTES + 1} bytes"),
    ],
)
def test_a_header_out_of_bounds_is_refused_before_the_payload_is_read(header, said):
    with pytest.raises(BadRequest, match=said):
        payload_length(header)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"\xff{", "request: not JSON"),
        (b"[]", "an object of flow_run_id, cwd and env"),
        (json.dumps({"flow_run_id": RUN, "cwd": "/", "env": {}, "argv": ["sh"]}).encode(), "an object of"),
        (payload(flow_run_id="../../etc"), "flow_run_id: not a UUID"),
        (payload(flow_run_id=7), "flow_run_id: not a UUID"),
        (payload(cwd="relative/dir"), "cwd: an absolute path"),
        (payload(cwd="/tmp\0x"), "cwd: an absolute path"),
        (payload(env=["A=1"]), "env: an object"),
        (payload(env=dict.fromkeys(map(str, range(MAX_ENV_ENTRIES + 1)), "")), f"at most {MAX_ENV_ENTRIES}"),
        (payload(env={"A=B": "1"}), "env: 'A=B' is not a valid variable"),
        (payload(env={"": "1"}), "env: '' is not a valid variable"),
        (payload(env={"A": "1\0LD_PRELOAD=x"}), "env: 'A' is not a valid variable"),
        (payload(env={"A": 1}), "env: 'A' is not a valid variable"),
        (payload(env={"PREFECT__FLOW_RUN_ID": OTHER_RUN}), "differs from flow_run_id"),
        (b" " * (MAX_REQUEST_BYTES + 1), f"more than {MAX_REQUEST_BYTES}"),
    ],
)
def test_a_bad_payload_is_refused_naming_the_field(data, said):
    with pytest.raises(BadRequest, match=said.replace("(", r"\(")):
        check_request(data)


def test_the_client_refuses_to_send_what_the_server_would_refuse():
    with pytest.raises(BadRequest, match="flow_run_id"):
        encode_request("", "/tmp", {})
