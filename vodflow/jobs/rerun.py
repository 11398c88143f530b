"""The spec of a rerun of a job (`vodflow job rerun`, `POST .../rerun`) and of outputs added to a completed
one (`--add`, `POST .../renditions`). Pure: the first job's document and the caller's changes in, a spec out.

A rerun is a new job with the first one's spec, the top-level keys of `changes` replacing its own, and
`rerunOf` naming the first; it encodes from the first's kept original when there is one (else from the same
source). An addition is a new job making only the MP4 presets given, from the first's original, with the
first's picture and sound (clip, timeline, watermark, loudness) and none of its other outputs; its files are
appended to the first job's document (`addTo`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vodflow.errors import SpecError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import JobSpec, parse_spec

FIXED_KEYS = ("videoUrl", "videoId", "rerunOf", "addTo")  # what a rerun cannot change: its source and links
ADD_KEYS = ("presets", "webhookUrl", "notify", "userData")  # what an addition may give
DROPPED_ON_ADD = ("thumbnails", "storyboard", "captions", "quality", "preview", "chapters", "keepOriginal")
FINAL = ("completed", "failed")


def changes_object(changes: Any) -> Mapping[str, Any]:
    """`changes` when it is a JSON object (None: no changes); SpecError(body) otherwise."""
    if changes is None:
        return {}
    if not isinstance(changes, Mapping):
        raise SpecError("body", "expected a JSON object of spec keys")
    fields = JobSpec.model_fields
    return {  # `video_url` is `videoUrl`: one name per key, so none slips past the checks below
        (fields[key].alias or key) if isinstance(key, str) and key in fields else key: value
        for key, value in changes.items()
    }


def rerun_spec(first: JobDocument, changes: Any = None) -> JobSpec:
    """The spec of a new job encoding `first` again with `changes`; SpecError naming the field for a key
    that cannot change or a spec that does not validate, or when `first` has not ended."""
    changes = changes_object(changes)
    if first.status not in FINAL:
        raise SpecError("id", f"job {first.id} is {first.status}: rerun it once it has ended")
    for key in changes:
        if key in FIXED_KEYS:
            raise SpecError(key, "a rerun keeps the first job's source; start a new job for another")
    data = first.spec().wire()
    data.pop("addTo", None)
    return parse_spec({**data, **changes, "rerunOf": first.id})


def added_spec(first: JobDocument, changes: Any) -> JobSpec:
    """The spec of a run adding `changes["presets"]` (MP4 only) to the completed job `first`; SpecError
    naming the field otherwise."""
    changes = changes_object(changes)
    if first.status != "completed":
        raise SpecError("id", f"job {first.id} is {first.status}: outputs are added to completed jobs only")
    if "presets" not in changes:
        raise SpecError("presets", "give the MP4 presets to add")
    for key in changes:
        if key not in ADD_KEYS:
            raise SpecError(key, f"not something an addition takes (only {', '.join(ADD_KEYS)})")
    data = first.spec().wire()
    for key in (*DROPPED_ON_ADD, "rerunOf", *ADD_KEYS):
        data.pop(key, None)
    return parse_spec({**data, **changes, "addTo": first.id})
