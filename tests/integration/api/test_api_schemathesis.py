"""Schemathesis against the encoder-job API's own OpenAPI document: no request makes it answer 5xx.

In-process through ASGI, with local storage and Prefect faked at the API's boundary (`FakeRuns`); valid and
invalid requests (negative mode) for every operation, a bounded number of examples each.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from tests.fake_runs import FakeRuns
from vodflow.api.app import create_app
from vodflow.api.playback import is_playback_path
from vodflow.providers.videosdk import mint_token
from vodflow.settings import ApiSettings
from vodflow.storage.local import LocalStorage

API_KEY = "schemathesis-key"
SECRET = "schemathesis-secret-0123456789abcdef0123"
MAX_EXAMPLES = 60


# Schemathesis's lazy `from_fixture` loader does not work with pytest 9, so the app is built at import,
# on a temporary directory removed when the module's tests are done.
_DATA = tempfile.TemporaryDirectory(prefix="vodflow-api-schemathesis-")
_CONFIG = ApiSettings(api_key=API_KEY, api_secret=SecretStr(SECRET), cancel_timeout=0.2)
_APP = create_app(_CONFIG, LocalStorage(Path(_DATA.name)), runs=FakeRuns())
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@pytest.fixture(scope="module", autouse=True)
def _remove_data():
    yield
    _DATA.cleanup()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_with_a_valid_token(case):
    case.call_and_validate(
        headers={"Authorization": mint_token(API_KEY, SECRET)}, checks=[not_a_server_error]
    )


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_401_without_a_valid_token(case):
    response = case.call(
        headers={"Authorization": mint_token(API_KEY, "not-the-secret-0123456789abcdef012345")}
    )
    # 405: negative mode tries other methods; playback routes (signed links) refuse a bad link with 403 and
    # answer a CORS preflight (OPTIONS, never with content) with an empty 204
    if is_playback_path("POST", case.formatted_path) and response.status_code == 204:
        assert response.content == b""
        return
    # (404: a generated path no playback route matches, such as an empty segment)
    refused = (
        (401, 403, 404, 405) if is_playback_path(case.method.upper(), case.formatted_path) else (401, 405)
    )
    assert response.status_code in refused, response.text
