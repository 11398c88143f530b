"""Playback of private jobs through signed, expiring links (`"private": true` jobs; docs/security.md).

Routes (none needs the API's own token, except minting one):
- `POST /v1/playback/{jobId}/tokens` (API token): a playback token `{token, expiresAt, playbackUrl}`.
- `GET /v1/playback/{jobId}?token=`: the job's master URLs (`hls`, `dash`) and its other files, all signed.
- `GET /v1/playback/{jobId}/manifest/{path}?token=`: a stored HLS playlist or DASH manifest, rewritten
  (`vodflow.packaging.rewrite`) so that every child playlist, segment, init segment, key URI and license URL
  is a signed, expiring link.
- `GET /v1/media/{jobId}/{exp}/{sig}/{path}`: an object of the job through a signed link: the file itself
  (local storage), or a redirect to a presigned URL (S3).
- `GET /v1/keys/{jobId}/{kid}?token=`: a content key's 16 bytes; `POST /v1/clearkey/{jobId}?token=`: a
  W3C ClearKey license. Both through the injected key lookup (`KeyLookup`).
The token goes in `?token=` or in `Authorization: Bearer`. Without a valid one: 401/403 and nothing else.
"""

from __future__ import annotations

import base64
import logging
import posixpath
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from vodflow.api.errors import error_response
from vodflow.errors import ObjectNotFound, StepError, StorageError
from vodflow.jobs.document import FileMeta, JobDocument
from vodflow.jobs.keys import JOB_ID, PRIVATE_PREFIX, object_key, private_prefix
from vodflow.jobs.playback import (
    PlaybackDenied,
    PlaybackGrant,
    check_ip_prefix,
    check_origin,
    link_expiry,
    link_signature,
    mint_playback_token,
    verify_link,
    verify_playback_token,
)
from vodflow.packaging.cenc import clearkey_request_kids
from vodflow.packaging.rewrite import MAX_PLAYLIST_BYTES, RewriteError, rewrite_hls, rewrite_mpd
from vodflow.settings import ApiSettings
from vodflow.storage.base import Storage
from vodflow.storage.jobstore import load_job

PLAYBACK = "/v1/playback"
MEDIA = "/v1/media"
KEYS = "/v1/keys"
CLEARKEY = "/v1/clearkey"
KID = re.compile(r"^[0-9a-f]{32}$")
MAX_LICENSE_KIDS = 16
NO_STORE = {"Cache-Control": "no-store"}
CORS = {"Access-Control-Allow-Origin": "*"}  # no cookies: the token in the URL is the credential

KeyLookup = Callable[[str, str], bytes | None]
"""`(job id, kid as 32 lower-case hex digits) -> the 16-byte key, or None`: the lead wires
`lambda job_id, kid: read_content_key(storage, settings, job_id, kid)` in `vodflow api`."""


_TOKEN_QUERY = re.compile(r"(?i)((?:^|[?&])(?:token|X-Amz-Signature|X-Amz-Credential)=)[^&\s]*")
_LINK_SIGNATURE = re.compile(rf"({MEDIA}/[^/]+/[0-9]+/)[^/?\s]+")


def redact(target: str) -> str:
    """A request target as it may be logged: playback tokens and link signatures replaced."""
    return _LINK_SIGNATURE.sub(r"\1[redacted]", _TOKEN_QUERY.sub(r"\1[redacted]", target))


class RedactTokens(logging.Filter):
    """Keeps playback tokens and link signatures out of uvicorn's access log (the request target is its
    third argument): they are credentials until they expire."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], redact(record.args[2]), *record.args[3:])
        return True


def install_log_redaction() -> None:
    """Add `RedactTokens` to uvicorn's access logger, once."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


def is_playback_path(method: str, path: str) -> bool:
    """Whether a request is authorised by a playback token or a signed link, not the API's own token (minting
    a playback token does need the API's)."""
    if path.startswith(f"{PLAYBACK}/"):
        return not (method == "POST" and path.endswith("/tokens"))
    return path.startswith((f"{MEDIA}/", f"{KEYS}/", f"{CLEARKEY}/"))


class TokenRequest(BaseModel):
    ttl: int = Field(default=3600, gt=0, le=366 * 86400, description="Seconds the token is valid.")
    origins: list[str] = Field(default_factory=list, max_length=8, description="Page origins allowed.")
    ip: str | None = Field(default=None, max_length=64, description="Client address prefix allowed.")


def denied(exc: PlaybackDenied) -> JSONResponse:
    return JSONResponse({"message": str(exc)}, status_code=exc.status, headers={**NO_STORE, **CORS})


class Playback:
    """What the playback routes share: settings, storage, the key lookup; each request's grant and links."""

    def __init__(self, settings: ApiSettings, storage: Storage, key_lookup: KeyLookup | None) -> None:
        self.settings = settings
        self.storage = storage
        self.key = settings.playback_key()
        self.key_lookup = key_lookup

    def base(self, request: Request) -> str:
        return (self.settings.playback_url or str(request.base_url)).rstrip("/")

    def grant(self, request: Request, job_id: str, token: str | None) -> PlaybackGrant:
        """The request's grant for `job_id` (token from `?token=` or `Authorization`); PlaybackDenied."""
        if not JOB_ID.match(job_id):
            raise PlaybackDenied(403, "the playback token is for another job")
        return verify_playback_token(
            token or request.headers.get("authorization"),
            self.key,
            job_id,
            origin=request.headers.get("origin"),
            client_ip=request.client.host if request.client else None,
            max_ttl=self.settings.playback_max_ttl,
        )

    def private_doc(self, job_id: str, encrypted: bool = False) -> JobDocument:
        """The job's document when it is a completed private job (or, with `encrypted`, a completed job
        with an encrypted ladder, whose keys need a token even where its files are public); PlaybackDenied
        404 otherwise (one answer for "no such job" and "not private": the content is not there)."""
        try:
            doc = load_job(self.storage, job_id)
        except ObjectNotFound:
            raise PlaybackDenied(404, "no private job to play with this id") from None
        gated = doc.private or (encrypted and any(p.encryption for p in doc.presets))
        if not gated or doc.status != "completed":
            raise PlaybackDenied(404, "no private job to play with this id")
        return doc

    def manifest_url(self, base: str, job_id: str, rel: str, token: str) -> str:
        return f"{base}{PLAYBACK}/{job_id}/manifest/{quote(rel)}?token={quote(token, safe='')}"

    def object_url(self, base: str, grant: PlaybackGrant, rel: str) -> str:
        """A signed, expiring link to one object of the job: presigned S3 URL, or the API's signed link."""
        exp = link_expiry(grant.exp, self.settings.playback_link_ttl)
        if self.storage.kind == "s3":
            seconds = max(1, exp - int(time.time()))
            client = self.storage.client  # type: ignore[attr-defined]
            bucket = self.storage.bucket  # type: ignore[attr-defined]
            key = f"{private_prefix(grant.job_id)}{rel}"
            return str(client.presigned_get_object(bucket, key, expires=timedelta(seconds=seconds)))
        return self.signed_link(base, grant, rel, exp)

    def signed_link(self, base: str, grant: PlaybackGrant, scope: str, exp: int | None = None) -> str:
        """The API's own signed link to `scope` (an object, or a folder ending in `/`)."""
        exp = exp if exp is not None else link_expiry(grant.exp, self.settings.playback_link_ttl)
        signature = link_signature(self.key, grant.job_id, scope, exp)
        return f"{base}{MEDIA}/{grant.job_id}/{exp}/{signature}/{quote(scope)}"

    def map_uri(self, base: str, grant: PlaybackGrant, token: str, folder: str, uri: str) -> str:
        """The signed link for a URI a stored playlist in `folder` (relative to the job's private prefix)
        names: a child playlist through the manifest route, a key or license URI through those routes, any
        other object as a signed object link. RewriteError for a URI that leaves the job."""
        parts = urlsplit(uri)
        if parts.scheme or parts.netloc:
            return self.service_url(base, grant, token, parts.path)
        if parts.query or parts.fragment or uri.startswith("/"):
            raise RewriteError("a relative URI with a query, a fragment or a leading '/'")
        rel = posixpath.normpath(posixpath.join(folder, parts.path))
        if rel.startswith(("../", "/")) or rel in ("..", "."):
            raise RewriteError("a URI that leaves the job's folder")
        object_key(f"{private_prefix(grant.job_id)}{rel}")
        if rel.endswith(".m3u8"):
            return self.manifest_url(base, grant.job_id, rel, token)
        return self.object_url(base, grant, rel)

    def service_url(self, base: str, grant: PlaybackGrant, token: str, path: str) -> str:
        """A key URI (`.../v1/keys/<job>/<kid>`) or license URL (`.../v1/clearkey/<job>`) of this job, on this
        API with the token; RewriteError for any other absolute URI."""
        job = grant.job_id
        token_q = f"?token={quote(token, safe='')}"
        if (m := re.fullmatch(rf"(?:.*)?{KEYS}/([^/]+)/([0-9a-fA-F]{{32}})", path)) and m.group(1) == job:
            return f"{base}{KEYS}/{job}/{m.group(2).lower()}{token_q}"
        if (m := re.fullmatch(rf"(?:.*)?{CLEARKEY}/([^/]+)", path)) and m.group(1) == job:
            return f"{base}{CLEARKEY}/{job}{token_q}"
        raise RewriteError("an absolute URI that is not this job's key or license URL")


def playback_routes(
    settings: ApiSettings, storage: Storage, key_lookup: KeyLookup | None = None
) -> tuple[APIRouter, APIRouter]:
    """The token-minting route (behind the API token) and the playback routes (behind playback tokens)."""
    pb = Playback(settings, storage, key_lookup)
    minting = APIRouter(prefix=PLAYBACK, tags=["playback"])
    router = APIRouter(tags=["playback"])

    @minting.post("/{job_id}/tokens", summary="Mint a playback token for a private job")
    def mint(job_id: str, request: Request, body: Annotated[TokenRequest, Body()]) -> JSONResponse:
        """A playback token for `job_id` (`ttl` s, optional `origins` and `ip` prefix)."""
        if not JOB_ID.match(job_id):
            return error_response(400, "invalid job id", field="jobId", reason="not a job id")
        if body.ttl > settings.playback_max_ttl:
            reason = f"at most {settings.playback_max_ttl:g} s"
            return error_response(400, f"ttl: {reason}", field="ttl", reason=reason)
        try:
            origins = [check_origin(o) for o in body.origins]
            ip = check_ip_prefix(body.ip) if body.ip else None
        except ValueError as exc:
            field = "origins" if str(exc).startswith("origin") else "ip"
            return error_response(400, str(exc), field=field, reason=str(exc))
        try:
            pb.private_doc(job_id, encrypted=True)
        except PlaybackDenied as exc:
            return error_response(404, str(exc))
        now = time.time()
        token = mint_playback_token(pb.key, job_id, body.ttl, origins=origins, ip=ip, now=now)
        url = f"{pb.base(request)}{PLAYBACK}/{job_id}?token={token}"
        body_out = {"token": token, "expiresAt": int(now) + body.ttl, "playbackUrl": url}
        return JSONResponse(body_out, headers=NO_STORE)

    @router.get(PLAYBACK + "/{job_id}", summary="The signed master URLs of a private job")
    def playback(
        job_id: str,
        request: Request,
        token: Annotated[str | None, Query(description="The playback token.")] = None,
    ) -> Response:
        try:
            grant = pb.grant(request, job_id, token)
            doc = pb.private_doc(job_id)
        except PlaybackDenied as exc:
            return denied(exc)
        raw = request_token(request, token)
        base = pb.base(request)
        prefix = private_prefix(job_id)
        hls, dash, files = [], [], []
        for entry in doc.files:
            rel = entry.file_path.removeprefix(prefix)
            if not entry.file_path.startswith(prefix):
                continue
            if entry.type == "x-tar":
                hls.append({"id": entry.id, "url": pb.manifest_url(base, job_id, f"{rel}/index.m3u8", raw)})
                if isinstance(entry.meta, FileMeta) and entry.meta.dash_url:
                    dash.append(
                        {"id": entry.id, "url": pb.manifest_url(base, job_id, f"{rel}/manifest.mpd", raw)}
                    )
            elif entry.type != "storyboard":
                files.append({"id": entry.id, "type": entry.type, "url": pb.object_url(base, grant, rel)})
        body = {"jobId": job_id, "expiresAt": grant.exp, "hls": hls, "dash": dash, "files": files}
        return JSONResponse(body, headers={**NO_STORE, **CORS})

    @router.get(PLAYBACK + "/{job_id}/manifest/{path:path}", summary="A rewritten playlist or manifest")
    def manifest(
        job_id: str,
        path: str,
        request: Request,
        token: Annotated[str | None, Query(description="The playback token.")] = None,
    ) -> Response:
        try:
            grant = pb.grant(request, job_id, token)
            pb.private_doc(job_id)
        except PlaybackDenied as exc:
            return denied(exc)
        raw = request_token(request, token)
        if not path.endswith((".m3u8", ".mpd")):
            return denied(PlaybackDenied(404, "not a playlist or manifest"))
        try:
            key = object_key(f"{private_prefix(job_id)}{path}")
            if storage.size(key) > MAX_PLAYLIST_BYTES:
                raise RewriteError("playlist too large")
            data = storage.read_bytes(key)
        except (ObjectNotFound, StorageError):
            return denied(PlaybackDenied(404, "no such playlist"))
        except RewriteError as exc:
            return denied(PlaybackDenied(502, str(exc)))
        base = pb.base(request)
        folder = posixpath.dirname(path)
        try:
            if path.endswith(".m3u8"):
                text = rewrite_hls(data, lambda uri: pb.map_uri(base, grant, raw, folder, uri))
                media_type = "application/vnd.apple.mpegurl"
            else:
                link = pb.signed_link(base, grant, f"{folder}/" if folder else "")
                text = rewrite_mpd(
                    data,
                    link.rstrip("/") + "/",
                    lambda uri: pb.service_url(base, grant, raw, urlsplit(uri).path),
                )
                media_type = "application/dash+xml"
        except (RewriteError, StorageError) as exc:
            return denied(PlaybackDenied(502, f"the stored playlist cannot be served: {exc}"))
        return Response(text, media_type=media_type, headers={**NO_STORE, **CORS})

    @router.get(MEDIA + "/{job_id}/{exp}/{signature}/{path:path}", summary="An object through a signed link")
    def media(job_id: str, exp: str, signature: str, path: str) -> Response:
        try:
            if not JOB_ID.match(job_id) or len(signature) > 64 or not re.fullmatch(r"[0-9]{1,12}", exp):
                raise PlaybackDenied(403, "link signature does not match")
            verify_link(pb.key, job_id, path, int(exp), signature)
            key = object_key(f"{private_prefix(job_id)}{path}")
        except PlaybackDenied as exc:
            return denied(exc)
        except StorageError:
            return denied(PlaybackDenied(404, "no such object"))
        if storage.kind == "s3":
            grant = PlaybackGrant(job_id=job_id, exp=int(exp))
            url = pb.object_url("", grant, path)
            return RedirectResponse(
                url, status_code=302, headers={**CORS, "Cache-Control": "private, no-store"}
            )
        root = storage.root  # type: ignore[attr-defined]
        file = (root / key).resolve()
        if not file.is_relative_to(root / PRIVATE_PREFIX.rstrip("/")) or not file.is_file():
            return denied(PlaybackDenied(404, "no such object"))
        return FileResponse(file, headers={**CORS, "Cache-Control": "private, max-age=60"})

    @router.get(KEYS + "/{job_id}/{kid}", summary="A content key (16 bytes)")
    def content_key(
        job_id: str,
        kid: str,
        request: Request,
        token: Annotated[str | None, Query(description="The playback token.")] = None,
    ) -> Response:
        try:
            pb.grant(request, job_id, token)
        except PlaybackDenied as exc:
            return denied(exc)
        key = lookup(job_id, kid.lower())
        if key is None:
            return denied(PlaybackDenied(404, "no such key"))
        return Response(key, media_type="application/octet-stream", headers={**NO_STORE, **CORS})

    @router.post(CLEARKEY + "/{job_id}", summary="A W3C ClearKey license")
    async def clearkey(
        job_id: str,
        request: Request,
        token: Annotated[str | None, Query(description="The playback token.")] = None,
    ) -> Response:
        try:
            pb.grant(request, job_id, token)
        except PlaybackDenied as exc:
            return denied(exc)
        try:
            kids = license_kids(await request.body())
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400, headers={**NO_STORE, **CORS})
        keys = []
        for kid in kids:
            key = lookup(job_id, kid)
            if key is not None:
                keys.append({"kty": "oct", "kid": b64url(bytes.fromhex(kid)), "k": b64url(key)})
        if not keys:
            return denied(PlaybackDenied(404, "no such key"))
        return JSONResponse({"keys": keys, "type": "temporary"}, headers={**NO_STORE, **CORS})

    def lookup(job_id: str, kid: str) -> bytes | None:
        if not KID.match(kid) or pb.key_lookup is None:
            return None
        try:
            key = pb.key_lookup(job_id, kid)
        except StepError as exc:  # no key secret here, or storage unreachable: no key, and the log says why
            logging.getLogger(__name__).warning("content key of job %s unavailable: %s", job_id, exc.code)
            return None
        return key if isinstance(key, bytes) and len(key) == 16 else None

    return minting, router


def request_token(request: Request, token: str | None) -> str:
    """The playback token as the request gave it: `?token=`, else the `Authorization: Bearer` header's."""
    return token or str(request.headers.get("authorization", "")).removeprefix("Bearer ").strip()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def license_kids(body: bytes) -> list[str]:
    """The key ids (hex) a W3C ClearKey license request asks for (`clearkey_request_kids`), at most
    `MAX_LICENSE_KIDS`; ValueError for anything else."""
    if len(body) > 16384:
        raise ValueError("license request too large")
    kids = clearkey_request_kids(body)
    if len(kids) > MAX_LICENSE_KIDS:
        raise ValueError(f"a license request names 1 to {MAX_LICENSE_KIDS} kids")
    return [kid.hex() for kid in kids]
