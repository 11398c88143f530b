"""`KeyServerProvider`: content keys from a key server over HTTPS (CPIX/SPEKE in spirit, JSON on the wire),
so a DRM vendor's key service, or one of the operator's, holds the keys instead of vodflow's storage.

The protocol, small enough to put in front of any key service (`VODFLOW_KEY_SERVER_URL` is its base):
- `POST <base>/keys` `{"jobId": ..., "labels": [...]}` -> `{"keys": [{"kid": <32 hex>, "key": <base64 of 16
  bytes>}, ...]}`, one per label in order: new keys for a job (the server keeps them);
- `GET <base>/keys/<job id>/<kid>` -> `{"key": <base64>}`, or 404: one key, for the key endpoint;
- `DELETE <base>/keys/<job id>` -> 2xx or 404: the job is gone.
Every request carries `Authorization: Bearer <VODFLOW_KEY_SERVER_TOKEN>` when one is set, goes through the
address guard (`vodflow.net.guard`: a private or loopback server must be allowed in VODFLOW_ALLOWED_HOSTS),
follows no redirect, is bounded in time and answer size, and is tried once: a failure is a StepError
(`encrypt` / `key_server`, transient for 5xx and network faults) that never quotes the token or a key.
`https://` is required unless the server's host is one VODFLOW_ALLOWED_HOSTS names (a sidecar on the host).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Sequence
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from vodflow.errors import StepError
from vodflow.keys.provider import KEY_BYTES, MAX_KEYS_PER_JOB, ContentKey
from vodflow.net.guard import AddressRefused, NetPolicy, guarded_client, normalise_host

MAX_ANSWER_BYTES = 8 << 20
_KID = re.compile(r"^[0-9a-f]{32}$")


def _failed(message: str, *, transient: bool = False) -> StepError:
    return StepError("encrypt", "key_server", f"key server: {message}", transient=transient)


class KeyServerProvider:
    """A `KeyProvider` that asks a key server (see the module's docstring)."""

    def __init__(
        self, base_url: str, policy: NetPolicy, token: SecretStr | None = None, timeout: float = 10.0
    ) -> None:
        url = httpx.URL(base_url.strip().rstrip("/"))
        if url.scheme != "https" and not (url.scheme == "http" and _allowed(url.host or "", policy)):
            raise ValueError("VODFLOW_KEY_SERVER_URL: must be https:// (http:// only to a host allowed in "
                             "VODFLOW_ALLOWED_HOSTS)")  # fmt: skip
        self.base, self.policy, self.timeout = str(url), policy, timeout
        self._token = token

    def __repr__(self) -> str:
        return f"KeyServerProvider({self.base!r}, token=**********)"

    def _request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        """The status and body of one request (the body at most MAX_ANSWER_BYTES)."""
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        try:
            with guarded_client(self.policy, follow_redirects=False, timeout=self.timeout) as client:
                with client.stream(method, f"{self.base}{path}", json=body, headers=headers) as response:
                    data = b""
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > MAX_ANSWER_BYTES:
                            raise _failed(f"answer larger than {MAX_ANSWER_BYTES} bytes")
                    return response.status_code, data
        except AddressRefused as exc:
            raise _failed(str(exc)) from None
        except httpx.HTTPError as exc:
            raise _failed(f"{method} failed ({type(exc).__name__})", transient=True) from None

    def _json(self, answer: tuple[int, bytes], method: str) -> dict:
        status, data = answer
        if status >= 300:
            raise _failed(f"{method} answered {status}", transient=status >= 500 or status == 429)
        try:
            parsed = json.loads(data)
        except ValueError:
            raise _failed(f"{method} answered no JSON") from None
        if not isinstance(parsed, dict):
            raise _failed(f"{method} answered no JSON object")
        return parsed

    def keys_for(self, job_id: str, labels: Sequence[str]) -> list[ContentKey]:
        if not 0 < len(labels) <= MAX_KEYS_PER_JOB:
            raise ValueError(f"between 1 and {MAX_KEYS_PER_JOB} keys a job")
        answer = self._json(self._request("POST", "/keys", {"jobId": job_id, "labels": list(labels)}), "POST")
        entries = answer.get("keys")
        if not isinstance(entries, list) or len(entries) != len(labels):
            raise _failed(f"POST answered {len(entries) if isinstance(entries, list) else 'no'} keys, "
                          f"not {len(labels)}")  # fmt: skip
        keys = []
        for entry, label in zip(entries, labels, strict=True):
            kid = entry.get("kid") if isinstance(entry, dict) else None
            key = _key(entry.get("key") if isinstance(entry, dict) else None)
            if not isinstance(kid, str) or not _KID.match(kid) or key is None:
                raise _failed(
                    "POST answered a malformed key (kid: 32 lower-case hex, key: base64 of 16 bytes)"
                )
            keys.append(ContentKey(bytes.fromhex(kid), key, label))
        if len({k.kid for k in keys}) != len(keys):
            raise _failed("POST answered one key id twice")
        return keys

    def read(self, job_id: str, kid: str) -> bytes | None:
        if not _KID.match(kid):
            return None
        answer = self._request("GET", f"/keys/{quote(job_id, safe='')}/{kid}")
        if answer[0] == 404:
            return None
        key = _key(self._json(answer, "GET").get("key"))
        if key is None:
            raise _failed("GET answered a malformed key")
        return key

    def remove(self, job_id: str) -> None:
        status, _ = self._request("DELETE", f"/keys/{quote(job_id, safe='')}")
        if status >= 300 and status != 404:
            raise _failed(f"DELETE answered {status}", transient=status >= 500)


def _allowed(host: str, policy: NetPolicy) -> bool:
    """Whether VODFLOW_ALLOWED_HOSTS names `host`, or a network its address (a literal) is in."""
    host = normalise_host(host)
    if host in policy.allowed_hosts:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in policy.allowed_networks if ip.version == net.version)


def _key(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return None
    return key if len(key) == KEY_BYTES else None
