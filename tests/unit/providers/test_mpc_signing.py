"""The AK/SK signer against the contract's reference vector and the official huaweicloudsdkcore Signer."""

from __future__ import annotations

import copy
import json
import random
from urllib.parse import quote

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from vodflow.providers.mpc_signing import canonical_query, canonical_uri, sign_headers

AK = "AKIDEXAMPLE0000000001"
SK = "SKEXAMPLEsecretKEY0123456789abcdefABCDEF"
PROJECT = "0123456789abcdef0123456789abcdef"
ODD = ["a b", "ü/ß", "~tilde", "plus+sign", "50%", "x&y=z", "quote'\"", "semi;colon", "中文", "..", "", "*"]


def test_reference_vector_from_the_contract():
    headers = sign_headers(
        method="DELETE",
        host="mpc.cn-north-4.myhuaweicloud.com",
        path=f"/v1/{PROJECT}/transcodings/task",
        query_string=canonical_query([("task_id", 100211)]),
        headers={"Content-Type": "application/json", "X-Project-Id": PROJECT},
        body=b"",
        access_key=AK,
        secret_key=SK,
        date="20240102T030405Z",
    )
    assert headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000001, "
        "SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        "Signature=29540442b253fe53f4fe3047e148e19080cbc281298b1566c482a927bae3928d"
    )
    assert headers["X-Sdk-Date"] == "20240102T030405Z"
    assert headers["Host"] == "mpc.cn-north-4.myhuaweicloud.com"


def test_repeated_integer_ids_sort_as_numbers():
    assert canonical_query([("task_id", 10), ("task_id", 9), ("page", 0), ("task_id", 100)]) == (
        "page=0&task_id=9&task_id=10&task_id=100"
    )
    assert canonical_query([("name", "a b~/ü")]) == "name=a%20b~%2F%C3%BC"


def test_canonical_uri_adds_the_trailing_slash_and_reencodes():
    assert canonical_uri("/v1/p/transcodings") == "/v1/p/transcodings/"
    assert canonical_uri("/v1/a%20b/x~y") == "/v1/a%20b/x~y/"


def _random_request(rng: random.Random) -> dict:
    method = rng.choice(["GET", "POST", "DELETE", "PUT"])
    segments = ["v1", PROJECT, "transcodings"] + rng.sample(ODD, rng.randint(0, 2))
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    query: list[tuple[str, object]] = [("task_id", rng.randint(1, 10**7)) for _ in range(rng.randint(0, 10))]
    if rng.random() < 0.5:
        query.append(("status", rng.choice(["SUCCEEDED", "WAITING", "a b", "ü"])))
    if rng.random() < 0.5:
        query += [("page", rng.randint(0, 50)), ("size", rng.randint(1, 100))]
    if rng.random() < 0.3:
        query.append(("flag", rng.random() < 0.5))
    if rng.random() < 0.3:
        query.append((rng.choice(ODD) or "k", rng.choice(ODD)))
    headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT, "User-Agent": "vodflow-test"}
    if rng.random() < 0.3:
        headers["X-Security-Token"] = "tok-" + rng.choice(ODD).encode("utf-8").hex()
    if rng.random() < 0.3:
        headers["X_Not_Signed"] = "underscore"
    body = b""
    if method in ("POST", "PUT") and rng.random() < 0.9:
        obj = {"input": {"bucket": "b", "location": "cn-north-4", "object": rng.choice(ODD) + ".mp4"}}
        obj["trans_template_id"] = [rng.randint(1, 10**6) for _ in range(rng.randint(1, 4))]
        body = json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode()
    date = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}0405Z"
    host = rng.choice(
        ["mpc.cn-north-4.myhuaweicloud.com", "127.0.0.1:8443", "mts.cn-north-1.myhuaweicloud.com"]
    )
    return {
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": body,
        "date": date,
        "host": host,
    }


@pytest.mark.parametrize("seed", range(300))
def test_matches_the_official_signer(seed):
    case = _random_request(random.Random(seed))
    ak, sk = f"AK{seed:018d}", f"SK-{seed}-secret/+=key"

    sdk_request = SdkRequest(
        method=case["method"],
        schema="https",
        host=case["host"],
        resource_path=case["path"],
        query_params=copy.deepcopy(case["query"]),
        header_params={**case["headers"], "X-Sdk-Date": case["date"]},
        body=case["body"],
    )
    Signer(BasicCredentials(ak, sk)).sign(sdk_request)

    query_string = canonical_query(case["query"])
    ours = sign_headers(
        method=case["method"],
        host=case["host"],
        path=case["path"],
        query_string=query_string,
        headers=case["headers"],
        body=case["body"],
        access_key=ak,
        secret_key=sk,
        date=case["date"],
    )
    assert ours["Authorization"] == sdk_request.header_params["Authorization"]
    expected_uri = case["path"] + (f"?{query_string}" if query_string else "")
    assert sdk_request.uri == expected_uri
