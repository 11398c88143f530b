"""The job's Markdown for the Prefect UI: pictures only for web URLs, the ladder table, links, and nothing a
job's values can inject."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from vodflow.jobs.document import JobDocument
from vodflow.jobs.summary import Variant, escape_text, job_markdown, parse_master, web_url

MASTER = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=528000,AVERAGE-BANDWIDTH=464000,RESOLUTION=428x240,CODECS="avc1.640015,mp4a.40.2"
240p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=960000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360
../../secret/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360
https://elsewhere.example/x.m3u8
"""
HOSTILE = (
    'x)](javascript:alert(1)) <script>alert("x")</script>\n# heading | cell ![i](http://evil/) www.evil.com'
)


def entry(file_id: str, kind: str, key: str, url: str, size: int, meta: dict | None = None) -> dict:
    now = "2024-01-01T00:00:00.000Z"
    data = {"id": file_id, "jobId": "j" * 24, "type": kind, "filePath": key, "fileUrl": url, "size": size}
    return {**data, "createdAt": now, "updatedAt": now, **({"meta": meta} if meta else {})}


def document(base: str, **changes: object) -> JobDocument:
    video = {"resolution": {"width": 640, "height": 360}, "format": "mov,mp4", "duration": 3.0}
    hls = {**video, "format": "hls"}
    data = {
        "id": "a" * 24,
        "videoUrl": "https://user:pa55word@src.example/in.mp4?token=s3cret",
        "webhookUrl": "https://hooks.example/h?sig=hooksecret",
        "userData": {"apiKey": "userdatasecret"},
        "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
        "status": "completed",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-01-01T00:00:00.000Z",
        "finishedAt": "2024-01-01T00:00:09.000Z",
        "files": [
            entry("h" * 24, "x-tar", "files/videos/" + "h" * 24, f"{base}/files/videos/{'h' * 24}/index.m3u8",
                  90_000, hls),
            entry("m" * 24, "video", "files/videos/" + "m" * 24 + ".mp4", f"{base}/files/videos/m.mp4",
                  300_000, video),
            entry("i" * 24, "image", "files/images/" + "i" * 24 + ".jpg", f"{base}/files/images/i.jpg",
                  5_000),
        ],
        "skipped": [{"format": "hls", "resolution": "720", "reason": "source is 640x360; 720 would upscale"}],
        **changes,
    }  # fmt: skip
    return JobDocument.model_validate(data)


def variants(base: str) -> dict[str, list[Variant]]:
    folder = f"{base}/files/videos/{'h' * 24}"
    return {
        "h" * 24: [
            Variant(v.uri, v.width, v.height, v.bandwidth, 3.0, f"{folder}/{v.uri}")
            for v in parse_master(MASTER)
        ]
    }


def html(markdown: str) -> str:
    """Rendered as CommonMark with tables and raw HTML passed through (what an unsafe renderer would do)."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def test_master_playlist_variants_keep_relative_uris_only():
    assert [(v.name, v.width, v.height, v.bandwidth) for v in parse_master(MASTER)] == [
        ("240p", 428, 240, 528000),
        ("360p", 640, 360, 960000),
    ]


def test_http_outputs_show_pictures_ladder_and_every_link():
    base = "http://127.0.0.1:8090"
    markdown = job_markdown(document(base), variants(base))
    page = html(markdown)
    assert re.findall(r'<img src="([^"]+)"', page) == [f"{base}/files/images/i.jpg"]
    links = set(re.findall(r'<a href="([^"]+)"', page))
    folder = f"{base}/files/videos/{'h' * 24}"
    assert {
        f"{folder}/index.m3u8",
        f"{folder}/240p/index.m3u8",
        f"{folder}/360p/index.m3u8",
        f"{base}/files/videos/m.mp4",
        f"{base}/files/images/i.jpg",
    } == links
    assert "| 428x240 | 528 kbit/s (peak) | 3.00 s |" in markdown
    assert "| 640x360 | 800 kbit/s (average) | 3.00 s | 300,000 |" in markdown  # 300 kB over 3 s
    assert "<table>" in page and "720 would upscale" in page
    labels = re.findall(r"\[([^\]]*)\]\(", markdown)
    assert labels and not any("\\" in label for label in labels), "the Prefect UI shows labels unescaped"


def test_the_animated_preview_shows_with_the_thumbnails():
    base = "http://127.0.0.1:8090"
    meta = {"width": 320, "height": 180, "frames": 30, "fps": 10, "duration": 3.0, "bytes": 9000}
    preview = entry("p" * 24, "preview", "files/images/p.gif", f"{base}/files/images/p.gif", 9000, meta)
    plain = document(base).wire()
    doc = JobDocument.model_validate({**plain, "files": [*plain["files"], preview]})
    page = html(job_markdown(doc, variants(base)))
    assert re.findall(r'<img src="([^"]+)"', page) == [
        f"{base}/files/images/i.jpg",
        f"{base}/files/images/p.gif",
    ]


def test_file_urls_are_listed_as_text_without_pictures():
    page = html(job_markdown(document("file:///srv/data")))
    assert "<img" not in page and "<a " not in page
    assert "file:///srv/data/files/images/i.jpg" in page


def test_secrets_of_the_spec_never_appear():
    markdown = job_markdown(document("http://user:hunter2@cdn.example"))
    for secret in ("pa55word", "s3cret", "hooksecret", "userdatasecret", "hunter2", "src.example", "hooks."):
        assert secret not in markdown
    assert "(http://cdn.example/files/images/i.jpg)" in markdown


@pytest.mark.parametrize("where", ["error", "url", "path"])
def test_values_from_a_job_cannot_inject_markdown_or_html(where):
    base = "http://127.0.0.1:8090"
    doc = document(base)
    if where == "error":
        doc = doc.moved_to("failed", error={"step": "ingest", "code": "x<b>", "message": HOSTILE})
    elif where == "url":
        files = [f.model_copy(update={"file_url": f"{base}/{HOSTILE}"}) for f in doc.files]
        doc = doc.model_copy(update={"files": files})
    else:
        files = [f.model_copy(update={"file_path": HOSTILE, "id": HOSTILE}) for f in doc.files]
        doc = doc.model_copy(update={"files": files})
    markdown = job_markdown(doc)
    page = html(markdown)
    assert "<script" not in page and "<b>" not in page
    assert all(src.startswith(f"{base}/") for src in re.findall(r'<img src="([^"]+)"', page))
    assert all(href.startswith(f"{base}/") for href in re.findall(r'<a href="([^"]+)"', page))
    assert "http://evil" not in re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "<h1>" in page and page.count("<h1>") == 1, "no heading of a job's making"
    assert page.count("<table>") == 2 and "<tr>" in page
    if where == "error":
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page, "shown as text"


def test_escape_and_url_rules():
    assert escape_text("a|b\nc") == "a\\|b c"
    assert web_url("javascript:alert(1)") is None and web_url("file:///x") is None
    assert web_url("http://h:1/a b)(<>\"'%41?q=1#f") == "http://h:1/a%20b%29%28%3C%3E%22%27%2541"
    assert web_url("HTTPS://u:p@[::1]:9/x") == "https://[::1]:9/x"


def test_a_job_that_played_while_encoding_says_when():
    from vodflow.jobs.document import JobDocument
    from vodflow.jobs.spec import parse_spec
    from vodflow.jobs.summary import job_markdown

    spec = parse_spec(
        {"videoUrl": "https://example.com/a.mp4", "presets": [{"format": "hls", "resolutions": ["240"]}]}
    )
    doc = JobDocument.from_spec(spec, "a" * 24).model_copy(
        update={"started_at": "2026-12-01T10:00:00.000Z", "playable_at": "2026-12-01T10:00:12.500Z"}
    )
    assert "Playable 12.5 s after it started, while encoding." in job_markdown(doc)
    assert "Playable" not in job_markdown(doc.model_copy(update={"playable_at": None}))


def test_a_measured_job_shows_each_renditions_quality_and_what_it_cost():
    base = "http://files.example"
    doc = document(base)
    scores = {"ssim": 0.9927, "psnr": 42.26, "vmaf": 96.42}
    rungs = [
        {"name": "240p", "codec": "h264", "resolution": {"width": 426, "height": 240}, "quality": scores}
    ]
    data = doc.model_dump(by_alias=True)
    data["qualitySeconds"] = 2.77
    data["files"][0]["meta"]["rungs"] = rungs
    data["files"][1]["meta"]["quality"] = {**scores, "vmaf": None}
    measured = JobDocument.model_validate(data)
    text = job_markdown(measured)
    assert f"| {'h' * 24} | 240p | 0.9927 | 42.26 dB | 96.42 |" in text
    assert f"| {'m' * 24} | 360p | 0.9927 | 42.26 dB | — |" in text, "no VMAF measured: a dash, not a number"
    assert "Measured in 2.8 s." in text
    assert "## Quality" not in job_markdown(doc), "a job that measured nothing has no such section"


def test_a_measured_job_with_captions_and_a_storyboard_has_its_quality_section():
    """Captions and storyboards carry no rendition meta: the quality section skips them (it raised
    AttributeError on `CaptionMeta.rungs` and failed a job that had published everything)."""
    base = "http://files.example"
    doc = document(base)
    scores = {"ssim": 0.98, "psnr": 40.0, "vmaf": None}
    data = doc.model_dump(by_alias=True)
    data["qualitySeconds"] = 1.0
    data["files"][1]["meta"]["quality"] = scores
    caption = entry("c" * 24, "caption", "files/captions/c.vtt", f"{base}/files/captions/c.vtt", 120,
                    {"language": "en", "label": "English"})  # fmt: skip
    board = entry("s" * 24, "storyboard", "files/images/s.vtt", f"{base}/files/images/s.vtt", 300)
    data["files"] += [caption, board]
    text = job_markdown(JobDocument.model_validate(data))
    assert f"| {'m' * 24} | 360p | 0.9800 | 40.00 dB | — |" in text
    assert "c" * 24 not in text.split("## Quality")[1].split("## Files")[0]


def test_the_artifact_links_the_watch_page_when_one_serves_the_job():
    base = "http://127.0.0.1:8090"
    watch = f"{base}/watch/{'a' * 24}"

    page = html(job_markdown(document(base), variants(base), watch))

    assert page.count(f'<a href="{watch}">Watch</a>') == 1
    assert "/watch/" not in job_markdown(document(base), variants(base)), "no page known: no link"
    assert "/watch/" not in job_markdown(document(base, files=[]), None, watch), "nothing to watch"
    assert "<a " not in html(job_markdown(document("file:///srv"), None, "file:///srv/watch/x"))


def test_a_loudness_job_shows_each_audio_renditions_figures_against_the_target():
    base = "http://files.example"
    doc = document(base)
    data = doc.model_dump(by_alias=True)
    data["loudness"] = {"target": -23, "truePeak": -2}
    data["files"][0]["meta"]["loudness"] = [
        {"name": "240p", "integrated": -23.04, "truePeak": -5.31},
        {"name": "audio", "integrated": -22.96, "truePeak": -5.2},
    ]
    data["files"][1]["meta"]["loudness"] = [{"name": "audio", "integrated": -70.0, "truePeak": -99.0}]
    text = job_markdown(JobDocument.model_validate(data))
    section = text.split("## Loudness")[1].split("## Files")[0]
    assert "Target -23 LUFS, true peak under -2 dBTP." in section
    assert f"| {'h' * 24} | 240p | -23.0 LUFS | -5.3 dBTP |" in section
    assert f"| {'h' * 24} | audio | -23.0 LUFS | -5.2 dBTP |" in section
    assert f"| {'m' * 24} | audio | -70.0 LUFS | -99.0 dBTP |" in section
    assert "## Loudness" not in job_markdown(doc), "a job without the key has no such section"
