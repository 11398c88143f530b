"""The job artifact fits a 1280 px page: no table row holds more text than the ~708 px the Prefect UI gives an
artifact there (a whole URL, which no browser breaks, and 24-character file ids made the Files and Ladder
tables wider, cut off by a hidden scroll bar), and pictures are plain Markdown images, which the UI shows at
most as wide as the page. The browser test (`test_browser_outputs.py`) measures it in Chromium."""

from __future__ import annotations

import re
from html import unescape

from tests.unit.jobs.test_summary import document, html, variants
from vodflow.jobs.summary import job_markdown

# Characters of visible text a table row may hold: about 7.5 px each at the UI's 14 px font, with the cells'
# padding, in the 708 px a 1280 px window leaves the artifact beside Prefect's navigation.
ROW_CHARACTERS = 80


def visible_rows(page: str) -> list[str]:
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def test_every_table_row_fits_the_page_and_still_links_its_file():
    base = "https://media.example.com/vod/outputs"
    page = html(job_markdown(document(base), variants(base)))
    rows = visible_rows(page)
    assert rows and all(len(row) <= ROW_CHARACTERS for row in rows), max(rows, key=len)
    assert f'href="{base}/files/videos/{"h" * 24}/240p/index.m3u8"' in page
    assert re.findall(r'<img src="([^"]+)"', page) == [f"{base}/files/images/i.jpg"]


def test_local_outputs_name_their_folder_once_not_on_every_row():
    page = html(job_markdown(document("file:///home/someone/projects/vodflow/data")))
    rows = visible_rows(page)
    assert all(len(row) <= ROW_CHARACTERS for row in rows), max(rows, key=len)
    assert "the files are under file:///home/someone/projects/vodflow/data/" in unescape(page)
