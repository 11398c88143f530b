"""A strict Huawei Cloud MPC transcoding-task server (`../shared/contracts/huawei-mpc.md`).

AK/SK signatures are checked by rebuilding the request for the official `huaweicloudsdkcore` Signer and
comparing its Authorization with the one received; the query string sent must be the canonical one.
Tasks move one status per query along `WAITING -> TRANSCODING -> <final>` (`final`: `SUCCEEDED`,
`FAILED`, or `stuck` to stay transcoding; `hold_waiting` keeps new tasks waiting).
"""

from __future__ import annotations

import itertools
import posixpath
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contract_servers import INVALID, ContractServer, json_body

FINAL = {"SUCCEEDED", "FAILED", "CANCELED"}
COMPACT = "%Y%m%d%H%M%S"
MAX_CLOCK_SKEW = timedelta(minutes=15)


def sdk_authorization(
    method: str,
    host: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    ak: str,
    sk: str,
) -> tuple[str, str]:
    """(Authorization, canonical query) that the official Signer computes for this request."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    numeric = {k for k in {k for k, _ in pairs} if all(v.isdigit() for kk, v in pairs if kk == k)}
    query = [(k, int(v) if k in numeric else v) for k, v in pairs]
    request = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=raw_path,
        query_params=query,
        header_params=dict(headers),
        body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    return request.header_params["Authorization"], Signer.process_canonical_query_string(request)


class MpcServer(ContractServer):
    service = "mpc"

    def __init__(
        self,
        project_id: str = "0123456789abcdef0123456789abcdef",
        ak: str = "AKIDTESTACCESSKEY0001",
        sk: str = "SKtestSECRETkey0123456789abcdefABCDEF",
        iam_token: str = "MIItestIAMtoken-0123456789",
        security_token: str | None = None,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.ak, self.sk, self.iam_token, self.security_token = ak, sk, iam_token, security_token
        self.tasks: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # every task created, also once its record is deleted
        self.final = "SUCCEEDED"
        self.hold_waiting = False
        self._ids = itertools.count(100200)

    def error(self, status: int, message: str, **extra: Any) -> Response:
        code = extra.pop("code", "APIGW.0101" if status >= 401 else "MPC.10202")
        return JSONResponse(
            {"error_code": code, "error_msg": message},
            status_code=status,
            headers={"X-Request-Id": secrets.token_hex(16)},
        )

    # Test API.

    def add_task(
        self, status: str = "WAITING", *, age_days: float = 0.0, templates: list[int] | None = None
    ) -> str:
        """Seed a task in `status`, created (and, if final, ended) `age_days` ago."""
        body = {
            "input": {"bucket": "in", "location": "cn-north-4", "object": "src/seed.mp4"},
            "output": {"bucket": "out", "location": "cn-north-4", "object": "vodflow/seed"},
            "trans_template_id": templates or [7000001],
        }
        task = self._new_task(body)
        when = (datetime.now(UTC) - timedelta(days=age_days)).strftime(COMPACT)
        task.update(status=status, create_time=when, end_time=when if status in FINAL else "")
        if status == "SUCCEEDED":
            self._succeed(task)
        return task["task_id"]

    # Contract.

    def routes(self) -> list[Route]:
        return [
            Route("/v1/{project_id}/transcodings", self._transcodings, methods=["GET", "POST", "DELETE"]),
            Route("/v1/{project_id}/transcodings/task", self._delete_record, methods=["DELETE"]),
        ]

    async def _check(self, request: Request) -> Response | None:
        headers = request.headers
        if request.path_params["project_id"] != self.project_id:
            return self.violation(404, "unknown project", code="APIGW.0101")
        if headers.get("x-project-id") != self.project_id:
            return self.violation(400, "X-Project-Id must be sent and match the path", code="APIGW.0201")
        if not headers.get("content-type", "").startswith("application/json"):
            return self.violation(400, "Content-Type must be application/json", code="APIGW.0201")
        if "x-auth-token" in headers:
            if headers["x-auth-token"] != self.iam_token:
                return self.violation(401, "The token is invalid", code="APIGW.0301")
            return None
        return await self._check_signature(request)

    async def _check_signature(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("SDK-HMAC-SHA256 "):
            return self.violation(401, "missing X-Auth-Token or AK/SK Authorization", code="APIGW.0301")
        fields = dict(part.strip().split("=", 1) for part in auth[len("SDK-HMAC-SHA256 ") :].split(","))
        signed = fields.get("SignedHeaders", "").split(";")
        if fields.get("Access") != self.ak:
            return self.violation(401, "unknown access key", code="APIGW.0301")
        if not {"host", "x-sdk-date"} <= set(signed) or any(name not in request.headers for name in signed):
            return self.violation(401, "host and x-sdk-date must be signed, and every signed header sent")
        if self.security_token and request.headers.get("x-security-token") != self.security_token:
            return self.violation(401, "temporary credentials need their X-Security-Token", code="APIGW.0301")
        try:
            sent_at = datetime.strptime(request.headers["x-sdk-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self.violation(401, "X-Sdk-Date must be YYYYMMDDTHHMMSSZ", code="APIGW.0303")
        if abs(datetime.now(UTC) - sent_at) > MAX_CLOCK_SKEW:
            return self.violation(401, "X-Sdk-Date too far from now", code="APIGW.0303")
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0]
        raw_query = request.scope["query_string"].decode("latin-1")
        expected, canonical = sdk_authorization(
            request.method,
            request.headers["host"],
            raw_path,
            raw_query,
            {name: request.headers[name] for name in signed},
            await request.body(),
            self.ak,
            self.sk,
        )
        if raw_query != canonical:
            return self.violation(401, "query string is not the canonical one", code="APIGW.0301")
        if auth != expected:
            return self.violation(
                401, "Incorrect IAM authentication information: verify aksk signature fail", code="APIGW.0301"
            )
        return None

    async def _transcodings(self, request: Request) -> Response:
        if rejected := await self._check(request):
            return rejected
        if request.method == "POST":
            return await self._create(request)
        if request.method == "GET":
            return self._query(request)
        task, problem = self._task_from_query(request)
        if problem:
            return problem
        if task["status"] != "WAITING":
            return self.error(400, "Operation failed. The task is not waiting.", code="MPC.10212")
        task.update(status="CANCELED", end_time=datetime.now(UTC).strftime(COMPACT))
        return Response(status_code=204)

    async def _delete_record(self, request: Request) -> Response:
        if rejected := await self._check(request):
            return rejected
        task, problem = self._task_from_query(request)
        if problem:
            return problem
        if task["status"] not in FINAL:
            return self.error(400, "Operation failed. The task is not in the final state.", code="MPC.10213")
        del self.tasks[task["task_id"]]
        return Response(status_code=204)

    def _task_from_query(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        ids = request.query_params.getlist("task_id")
        if len(ids) != 1 or not ids[0].isdigit():
            return {}, self.error(400, "task_id must be one integer", code="MPC.10202")
        task = self.tasks.get(ids[0])
        if task is None:
            return {}, self.error(400, "The task does not exist.", code="MPC.10211")
        return task, None

    async def _create(self, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or body is INVALID:
            return self.error(400, "body must be a JSON object")
        for side in ("input", "output"):
            obj = body.get(side)
            if not isinstance(obj, dict) or not all(
                isinstance(obj.get(k), str) and obj[k] for k in ("bucket", "location", "object")
            ):
                return self.error(400, f"{side} needs bucket, location and object")
        templates = body.get("trans_template_id")
        if templates is not None and (
            not isinstance(templates, list) or not templates or not all(type(t) is int for t in templates)
        ):
            return self.error(400, "trans_template_id must be a list of integers")
        if not templates and not body.get("av_parameters"):
            return self.error(400, "trans_template_id or av_parameters is required")
        task = self._new_task(body)
        self.created.append(task)
        return JSONResponse({"task_id": int(task["task_id"])})

    def _query(self, request: Request) -> Response:
        params = request.query_params
        ids = params.getlist("task_id")
        try:
            page, size = int(params.get("page", "0")), int(params.get("size", "10"))
        except ValueError:
            return self.error(400, "page and size must be integers")
        if len(ids) > 10 or not all(i.isdigit() for i in ids) or page < 0 or not 1 <= size <= 100:
            return self.error(400, "at most 10 integer task_id; page from 0; size 1-100")
        tasks = [self.tasks[i] for i in ids if i in self.tasks] if ids else list(self.tasks.values())
        if status := params.get("status"):
            tasks = [t for t in tasks if t["status"] == status]
        if start := params.get("start_time"):
            tasks = [t for t in tasks if t["create_time"] >= start]
        if end := params.get("end_time"):
            tasks = [t for t in tasks if t["create_time"] <= end]
        tasks.sort(key=lambda t: int(t["task_id"]))
        chunk = tasks[page * size : (page + 1) * size]
        if ids:
            chunk = [self._advance(t) for t in chunk]
        return JSONResponse(
            {"task_array": chunk, "is_truncated": int(len(tasks) > (page + 1) * size), "total": len(tasks)}
        )

    # State.

    def _new_task(self, body: dict[str, Any]) -> dict[str, Any]:
        task_id = str(next(self._ids))
        task = {
            "task_id": task_id,
            "status": "WAITING",
            "create_time": datetime.now(UTC).strftime(COMPACT),
            "end_time": "",
            "trans_template_id": body.get("trans_template_id") or [],
            "input": body["input"],
            "output": body["output"],
            "output_file_name": [],
            "user_data": body.get("user_data", ""),
            "error_code": "",
            "description": "",
            "progress": 0,
        }
        self.tasks[task_id] = task
        return task

    def _advance(self, task: dict[str, Any]) -> dict[str, Any]:
        if task["status"] == "WAITING" and not self.hold_waiting:
            task.update(status="TRANSCODING", progress=50)
        elif task["status"] == "TRANSCODING" and self.final != "stuck":
            task.update(status=self.final, progress=100, end_time=datetime.now(UTC).strftime(COMPACT))
            if self.final == "SUCCEEDED":
                self._succeed(task)
            else:
                task.update(error_code="MPC.10206", description="The input file is damaged.")
        return task

    def _succeed(self, task: dict[str, Any]) -> None:
        stem = posixpath.splitext(posixpath.basename(task["input"]["object"]))[0]
        templates = task["trans_template_id"] or [0]
        task["output_file_name"] = [f"{stem}_{t}.mp4" for t in templates]
        task["transcode_detail"] = {
            "multitask_info": [
                {
                    "template_id": t,
                    "output_file": {
                        "duration": 12,
                        "duration_ms": 12480,
                        "format": "MP4",
                        "size": 1000 + i,
                        "video_info": {"width": 1280, "height": 720},
                    },
                }
                for i, t in enumerate(templates)
            ]
        }
