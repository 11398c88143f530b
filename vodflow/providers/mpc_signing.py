"""Huawei Cloud AK/SK request signing ("SDK-HMAC-SHA256"), byte-for-byte as huaweicloudsdkcore's Signer.

Pure functions, no I/O. `sign_headers` returns every header to send, Authorization included; the request
must then go out with exactly `canonical_query(...)` as its query string and the signed header values.
See `../shared/contracts/huawei-mpc.md` for the steps and a reference vector.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DATE_HEADER = "X-Sdk-Date"
CONTENT_SHA256_HEADER = "X-Sdk-Content-Sha256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sdk_date(now: datetime | None = None) -> str:
    """The `X-Sdk-Date` value for `now` (UTC, `YYYYMMDDTHHMMSSZ`)."""
    return (now or datetime.now(UTC)).strftime(DATE_FORMAT)


def encode_component(value: str) -> str:
    """Percent-encode everything but unreserved characters (`A-Z a-z 0-9 - _ . ~`)."""
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Each segment of the (decoded) path re-encoded, with a trailing `/` always added."""
    uri = "/".join(encode_component(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _query_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def canonical_query(params: Iterable[tuple[str, Any]]) -> str:
    """Query pairs sorted by key then value (integers as numbers), each encoded; also the string to send.

    A value may be a list (one pair per item). Values of one key must be all numbers or all strings.
    """
    ordered: list[str] = []
    for key, value in sorted(params):
        if isinstance(value, list):
            ordered.extend(f"{encode_component(key)}={encode_component(str(item))}" for item in sorted(value))
        else:
            ordered.append(f"{encode_component(key)}={encode_component(_query_value(value))}")
    return "&".join(ordered)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Lower-cased names of the headers that are signed: all of them but those with `_` in the name."""
    return sorted({name.lower() for name in headers if "_" not in name})


def canonical_headers(headers: Mapping[str, str], signed: list[str]) -> str:
    values = {name.lower(): str(value).strip() for name, value in headers.items()}
    return "".join(f"{name}:{values[name]}\n" for name in signed)


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    if not body:
        return EMPTY_SHA256
    declared = _header(headers, CONTENT_SHA256_HEADER)
    return declared or hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str, path: str, query_string: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, list[str]]:
    """The canonical request text and the signed header names."""
    signed = signed_header_names(headers)
    text = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            query_string,
            canonical_headers(headers, signed),
            ";".join(signed),
            payload_hash(body, headers),
        ]
    )
    return text, signed


def string_to_sign(canonical: str, date: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{date}\n{digest}"


def signature(secret_key: str, text: str) -> str:
    return hmac.new(secret_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def authorization(access_key: str, signed: list[str], signature_hex: str) -> str:
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={signature_hex}"


def sign_headers(
    *,
    method: str,
    host: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    date: str | None = None,
) -> dict[str, str]:
    """`headers` plus Host, X-Sdk-Date (`date` or now) and Authorization, as they must be sent.

    `path` is the request path as sent (percent-encoded), `query_string` the one from `canonical_query`.
    """
    out = {name: str(value).strip() for name, value in headers.items()}
    content_type = _header(out, "Content-Type")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        out[CONTENT_SHA256_HEADER] = "UNSIGNED-PAYLOAD"
    if _header(out, DATE_HEADER) is None:
        out[DATE_HEADER] = date or sdk_date()
    if _header(out, "Host") is None:
        out["Host"] = host
    canonical, signed = canonical_request(method, path, query_string, out, body)
    text = string_to_sign(canonical, _header(out, DATE_HEADER) or "")
    out["Authorization"] = authorization(access_key, signed, signature(secret_key, text))
    return out


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None
