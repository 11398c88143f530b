"""VideoSDK's own "create encoding job" example, the body every API and remote test starts from."""

from __future__ import annotations

from typing import Any

SEED_VIDEO_ID = "6053115ebba24b4d700c8c49"


def seed_body(webhook_url: str | None = None) -> dict[str, Any]:
    """A fresh copy of the example body; `webhook_url` replaces the example's webhook (None: no webhook)."""
    body: dict[str, Any] = {
        "videoId": SEED_VIDEO_ID,
        "presets": [
            {"resolutions": ["240", "360", "480"], "format": "hls"},
            {"resolutions": ["360"], "format": "mp4"},
        ],
        "thumbnails": [
            {
                "timestamp": "00:00:03",
                "resolutions": ["360"],
                "formats": ["jpg", "webp"],
                "filters": ["none", "blur"],
            }
        ],
    }
    if webhook_url:
        body["webhookUrl"] = webhook_url
    return body
