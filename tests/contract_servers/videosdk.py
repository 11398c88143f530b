"""A strict VideoSDK encoder-jobs server (`../shared/contracts/videosdk.md`).

Jobs move one status per GET along `queued -> processing -> <final>` (`final` is `completed`, `failed`,
or `stuck` to stay processing; `hold_queued` keeps new jobs queued). A completed job gets `files[]`.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contract_servers import INVALID, ContractServer, json_body

RESOLUTIONS = {"240", "360", "480", "720", "1080", "4k"}
VIDEO_ID = re.compile(r"^[0-9a-f]{24}$")
SHORT_EDGE = {"240": 240, "360": 360, "480": 480, "720": 720, "1080": 1080, "4k": 2160}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class VideoSDKServer(ContractServer):
    service = "videosdk"

    def __init__(
        self, api_key: str = "vsdk-api-key-0001", secret: str = "vsdk-secret-0123456789abcdef0123456789"
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.secret = secret
        self.jobs: dict[str, dict[str, Any]] = {}
        self.final = "completed"
        self.hold_queued = False
        self.created: list[dict[str, Any]] = []  # the bodies of accepted creates, as received

    # Test API.

    def add_job(self, status: str = "queued", *, age_days: float = 0.0) -> str:
        """Seed a job in `status`, created and last updated `age_days` ago."""
        job = self._new_job({"videoUrl": "https://example.invalid/seed.mp4", "presets": []})
        when = _iso(datetime.now(UTC) - timedelta(days=age_days))
        job.update(status=status, createdAt=when, updatedAt=when)
        if status in ("completed", "failed"):
            job["finishedAt"] = when
        self.jobs[job["id"]] = job
        return job["id"]

    # Contract.

    def routes(self) -> list[Route]:
        return [
            Route("/v1/encoder/jobs", self._jobs, methods=["GET", "POST"]),
            Route("/v1/encoder/jobs/{job_id}", self._job, methods=["GET", "DELETE"]),
        ]

    def _check(self, request: Request) -> Response | None:
        headers = request.headers
        if headers.get("content-type", "").split(";")[0] != "application/json":
            return self.violation(400, "Content-Type must be application/json")
        if "application/json" not in headers.get("accept", ""):
            return self.violation(400, "Accept must be application/json")
        token = headers.get("authorization")
        if not token:
            return self.violation(401, "missing Authorization")
        if token.lower().startswith("bearer "):
            return self.violation(401, "Authorization is the bare JWT, without 'Bearer '")
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as exc:
            return self.violation(401, f"invalid token: {type(exc).__name__}")
        if claims.get("apikey") != self.api_key or not isinstance(claims.get("permissions"), list):
            return self.violation(401, "token payload needs the account's apikey and a permissions list")
        return None

    async def _jobs(self, request: Request) -> Response:
        if rejected := self._check(request):
            return rejected
        if request.method == "POST":
            return await self._create(request)
        try:
            page = int(request.query_params.get("page", "1"))
            per_page = int(request.query_params.get("perPage", "20"))
        except ValueError:
            return self.error(400, "page and perPage must be integers")
        if page < 1 or not 1 <= per_page <= 100:
            return self.error(400, "page counts from 1; perPage is 1-100")
        jobs = sorted(self.jobs.values(), key=lambda j: j["createdAt"])
        last = max(1, -(-len(jobs) // per_page))
        data = [self._advance(j, step=False) for j in jobs[(page - 1) * per_page : page * per_page]]
        return JSONResponse(
            {"pageInfo": {"currentPage": page, "perPage": per_page, "lastPage": last}, "data": data}
        )

    async def _create(self, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or body is INVALID:
            return self.error(400, "body must be a JSON object")
        problem = _spec_problem(body)
        if problem:
            return self.error(400, problem)
        self.created.append(body)
        job = self._new_job(body)
        self.jobs[job["id"]] = job
        return JSONResponse(job)

    async def _job(self, request: Request) -> Response:
        if rejected := self._check(request):
            return rejected
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return self.error(404, "Job not found")
        if request.method == "GET":
            return JSONResponse(self._advance(job, step=True))
        if job["status"] != "queued":
            return self.error(400, f"Only a queued job can be deleted; this one is {job['status']}")
        del self.jobs[job["id"]]
        return JSONResponse(job)

    # State.

    def _new_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        now = _iso(datetime.now(UTC))
        job = {key: value for key, value in spec.items() if key != "userData"}
        job.update(
            id=secrets.token_hex(12),
            status="queued",
            presets=[{**p, "id": secrets.token_hex(12)} for p in spec.get("presets", [])],
            thumbnails=[{**t, "id": secrets.token_hex(12)} for t in spec.get("thumbnails", [])],
            userData=spec.get("userData"),
            createdAt=now,
            updatedAt=now,
            files=[],
        )
        return job

    def _advance(self, job: dict[str, Any], *, step: bool) -> dict[str, Any]:
        if step and not (self.hold_queued and job["status"] == "queued"):
            now = _iso(datetime.now(UTC))
            if job["status"] == "queued":
                job.update(status="processing", startedAt=now, updatedAt=now)
            elif job["status"] == "processing" and self.final != "stuck":
                job.update(status=self.final, finishedAt=now, updatedAt=now)
                if self.final == "completed":
                    job["files"] = _files(job, now)
                else:
                    job["error"] = {"step": "encode", "code": "decode_error", "message": "source unreadable"}
        return job


def _spec_problem(body: dict[str, Any]) -> str | None:
    video_url, video_id = body.get("videoUrl"), body.get("videoId")
    if not (video_url or video_id):
        return "videoUrl or videoId is required"
    if video_url is not None and not (
        isinstance(video_url, str) and video_url.lower().startswith(("http://", "https://"))
    ):
        return "videoUrl must be an http(s) URL the service can fetch"
    if video_id is not None and not (isinstance(video_id, str) and VIDEO_ID.match(video_id)):
        return "videoId must be the 24-hex id of a video in the account"
    presets = body.get("presets")
    if not isinstance(presets, list) or not presets:
        return "presets must be a non-empty list"
    for preset in presets:
        if not isinstance(preset, dict) or preset.get("format") not in ("hls", "mp4"):
            return "presets[].format must be hls or mp4"
        resolutions = preset.get("resolutions")
        if not resolutions or any(str(r).lower() not in RESOLUTIONS for r in resolutions):
            return "presets[].resolutions must name known resolutions"
    if "userData" in body and not isinstance(body["userData"], dict):
        return "userData must be an object"
    return None


def _files(job: dict[str, Any], now: str) -> list[dict[str, Any]]:
    files = []
    for preset in job["presets"]:
        for resolution in preset["resolutions"] if preset["format"] == "mp4" else preset["resolutions"][-1:]:
            edge = SHORT_EDGE[str(resolution).lower()]
            size = {"width": edge * 16 // 9 // 2 * 2, "height": edge}
            hls = preset["format"] == "hls"
            path = f"encoded/{job['id']}/{preset['id']}" + ("" if hls else f"/{resolution}.mp4")
            files.append(
                {
                    "meta": {
                        "resolution": size,
                        "format": "hls" if hls else "mov,mp4,m4a,3gp,3g2,mj2",
                        "duration": 12.5,
                    },
                    "jobId": job["id"],
                    "filePath": path,
                    "size": 123456,
                    "type": "x-tar" if hls else "video",
                    "createdAt": now,
                    "updatedAt": now,
                    "fileUrl": f"https://cdn.example.invalid/{path}" + ("/index.m3u8" if hls else ""),
                    "id": secrets.token_hex(12),
                }
            )
    return files
