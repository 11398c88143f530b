from tests.httpserver import serve
from vodflow.webhook import deliver_webhook, redact_url


def test_posts_the_document(tmp_path):
    with serve(tmp_path) as server:
        report = deliver_webhook(server.url("/hook?token=s3cret"), {"id": "j1", "status": "completed"})
    assert report.delivered and len(report.attempts) == 1
    assert server.requests[0]["json"] == {"id": "j1", "status": "completed"}
    assert "s3cret" not in report.url


def test_retries_5xx_and_429_then_delivers(tmp_path):
    with serve(tmp_path) as server:
        server.plan("/hook", 503, 429)
        report = deliver_webhook(server.url("/hook"), {"id": "j1"}, base_delay=0.01)
    assert report.delivered
    assert [a.status_code for a in report.attempts] == [503, 429, 200]


def test_4xx_is_not_retried_and_never_raises(tmp_path):
    with serve(tmp_path) as server:
        server.plan("/hook", 410)
        report = deliver_webhook(server.url("/hook"), {"id": "j1"}, base_delay=0.01)
    assert not report.delivered
    assert [a.status_code for a in report.attempts] == [410]


def test_receiver_down_is_reported(tmp_path):
    with serve(tmp_path) as server:
        url = server.url("/hook")
    report = deliver_webhook(url, {"id": "j1"}, attempts=2, base_delay=0.01)
    assert not report.delivered
    assert len(report.attempts) == 2 and all(a.error == "ConnectError" for a in report.attempts)


def test_redact_url_drops_credentials_and_query():
    assert redact_url("https://user:pw@hooks.test/p?sig=abc") == "https://hooks.test/p"
