"""Playback tokens and signed links of private jobs: pure, no I/O (the routes are `vodflow.api.playback`).

A playback token is an HS256 JWT with `aud` `vodflow-playback`, `sub` the job id, `iat` and `exp`, and
optionally `origins` (the page origins allowed to play, checked against the request's `Origin`) and `ip` (an
address prefix, `10.0.0.0/8`, the client must be in). Its audience keeps it apart from the API's own tokens.

A signed link (local storage) carries `exp` and an HMAC-SHA256 over the job id, a scope and `exp`: the scope
is one object (`videos/<id>/720p/seg-00001.ts`) or a folder ending in `/` (`videos/<id>/`, what a DASH
manifest's `BaseURL` needs: its segment templates cannot be signed one by one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

AUDIENCE = "vodflow-playback"
LEEWAY_SECONDS = 5.0
MAX_ORIGINS = 8
MAX_ORIGIN_CHARS = 200


class PlaybackDenied(Exception):
    """A playback request that may not have the content: `status` 401 (no valid token) or 403 (a valid token
    that does not allow this job, origin or address). The message never echoes the token."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PlaybackGrant:
    """What a verified token allows: one job until `exp` (epoch seconds)."""

    job_id: str
    exp: int
    origins: tuple[str, ...] = ()
    ip: str | None = None


def check_origin(origin: str) -> str:
    """`origin` as `scheme://host[:port]` (lower-case); ValueError when it is anything else."""
    value = origin.strip().lower().rstrip("/")
    scheme, sep, host = value.partition("://")
    if scheme not in ("http", "https") or not sep or not host or len(value) > MAX_ORIGIN_CHARS:
        raise ValueError(f"origin {origin[:60]!r}: expected http(s)://host[:port]")
    if any(c in host for c in "/?#@ \\") or any(ord(c) < 33 for c in host):
        raise ValueError(f"origin {origin[:60]!r}: expected http(s)://host[:port], nothing after it")
    return value


def check_ip_prefix(prefix: str) -> str:
    """`prefix` as a network (`10.0.0.0/8`, an address alone is its /32 or /128); ValueError otherwise."""
    try:
        return str(ipaddress.ip_network(prefix.strip(), strict=False))
    except ValueError:
        raise ValueError(
            f"ip prefix {prefix[:60]!r}: expected an address or a network such as 10.0.0.0/8"
        ) from None


def mint_playback_token(
    key: bytes,
    job_id: str,
    ttl_seconds: float,
    *,
    origins: Sequence[str] = (),
    ip: str | None = None,
    now: float | None = None,
) -> str:
    """A playback token for `job_id` valid `ttl_seconds` (ValueError for a bad ttl, origin or prefix)."""
    if not 0 < ttl_seconds <= 366 * 86400:
        raise ValueError("ttl must be more than 0 and at most a year, in seconds")
    if len(origins) > MAX_ORIGINS:
        raise ValueError(f"at most {MAX_ORIGINS} origins")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"aud": AUDIENCE, "sub": job_id, "iat": issued, "exp": issued + int(ttl_seconds)}
    if origins:
        claims["origins"] = [check_origin(o) for o in origins]
    if ip:
        claims["ip"] = check_ip_prefix(ip)
    return jwt.encode(claims, key, algorithm="HS256")


def verify_playback_token(
    token: str | None,
    key: bytes,
    job_id: str,
    *,
    origin: str | None = None,
    client_ip: str | None = None,
    max_ttl: float | None = None,
    now: float | None = None,
) -> PlaybackGrant:
    """The grant of `token` for a request on `job_id` from `origin` and `client_ip`; PlaybackDenied 401 when
    the token is missing, malformed, tampered, expired or not a playback token, 403 when it names another job
    or the request's origin or address is not among those it allows."""
    token = (token or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise PlaybackDenied(401, "a playback token is required (?token= or Authorization)")
    if len(token) > 4096:
        raise PlaybackDenied(401, "malformed playback token")
    options = {"require": ["exp", "sub", "aud"], "verify_exp": now is None}
    try:
        claims = jwt.decode(
            token, key, algorithms=["HS256"], audience=AUDIENCE, options=options, leeway=LEEWAY_SECONDS
        )
    except jwt.ExpiredSignatureError:
        raise PlaybackDenied(401, "playback token expired") from None
    except jwt.InvalidSignatureError:
        raise PlaybackDenied(401, "playback token signature does not match") from None
    except jwt.InvalidAudienceError:
        raise PlaybackDenied(401, "not a playback token") from None
    except jwt.PyJWTError:
        raise PlaybackDenied(401, "malformed playback token") from None
    current = time.time() if now is None else now
    try:
        exp = int(claims["exp"])
    except (TypeError, ValueError):
        raise PlaybackDenied(401, "malformed playback token") from None
    if now is not None and exp + LEEWAY_SECONDS < current:
        raise PlaybackDenied(401, "playback token expired")
    if max_ttl is not None and exp - current > max_ttl + LEEWAY_SECONDS:
        raise PlaybackDenied(401, f"playback token lives too long: exp may be at most {max_ttl:g} s ahead")
    if not isinstance(claims["sub"], str) or not hmac.compare_digest(claims["sub"].encode(), job_id.encode()):
        raise PlaybackDenied(403, "the playback token is for another job")
    origins = claims.get("origins") or []
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise PlaybackDenied(401, "malformed playback token")
    if origins and origin is not None and origin.strip().lower().rstrip("/") not in origins:
        raise PlaybackDenied(403, "this origin may not play the job")
    ip = claims.get("ip")
    if ip is not None and not _in_prefix(client_ip, ip):
        raise PlaybackDenied(403, "this address may not play the job")
    return PlaybackGrant(job_id=job_id, exp=exp, origins=tuple(origins), ip=ip)


def _in_prefix(client_ip: str | None, prefix: object) -> bool:
    if not isinstance(prefix, str) or not client_ip:
        return False
    try:
        return ipaddress.ip_address(client_ip.strip()) in ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False


def link_expiry(grant_exp: int, link_ttl: float, now: float | None = None) -> int:
    """When a signed link made now expires: `link_ttl` from now, never after the token's `exp`."""
    current = int(time.time() if now is None else now)
    return max(current + 1, min(grant_exp, current + int(link_ttl)))


def link_signature(key: bytes, job_id: str, scope: str, exp: int) -> str:
    """The signature of a link to `scope` (an object path under the job's private prefix, or a folder ending
    in `/`) valid until `exp`: HMAC-SHA256, base64url without padding."""
    message = f"vodflow-link\n{job_id}\n{scope}\n{exp}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_scopes(path: str) -> list[str]:
    """The scopes a link to `path` may be signed for: the path itself and each folder above it."""
    parts = path.split("/")
    return [path] + ["/".join(parts[:i]) + "/" for i in range(len(parts) - 1, 0, -1)]


def verify_link(
    key: bytes, job_id: str, path: str, exp: int, signature: str, now: float | None = None
) -> None:
    """Nothing when `signature` signs `path` (or a folder above it) of `job_id` until `exp`, not yet past;
    PlaybackDenied 403 otherwise."""
    if exp < (time.time() if now is None else now):
        raise PlaybackDenied(403, "link expired")
    for scope in link_scopes(path):
        if hmac.compare_digest(link_signature(key, job_id, scope, exp), signature):
            return
    raise PlaybackDenied(403, "link signature does not match")
