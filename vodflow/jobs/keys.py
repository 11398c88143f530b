"""Where everything lives in storage: key prefixes, the keys of a job's outputs, and what a valid key is.

Keys are `/`-separated relative names (`files/videos/<id>.mp4`), checked by `validate_key` so that none can
leave its prefix. Pure: the same layout for local and S3 storage. Scratch objects (a run's intermediate files,
such as chunk pieces travelling between machines) live under `tmp/<job id>/`, apart from what is published.
"""

from __future__ import annotations

import re

from vodflow.errors import SpecError, StorageError

INGEST_PREFIX = "ingest/"
PUBLISHED_PREFIX = "files/"  # everything published, and nothing else, is under it (the file server's tree)
VIDEOS_PREFIX = "files/videos/"
IMAGES_PREFIX = "files/images/"
CAPTIONS_PREFIX = "files/captions/"
STORYBOARDS_PREFIX = "files/storyboards/"
PRIVATE_PREFIX = "private/"  # private jobs' outputs (`private/<job id>/videos/...`): never served publicly
JOBS_PREFIX = "jobs/"
ORIGINALS_PREFIX = "originals/"  # kept sources (`keepOriginal`): private, outside the published tree
SCRATCH_PREFIX = "tmp/"
CHUNKS_SCRATCH = "chunks/"
MAX_KEY_BYTES = 1024
MAX_NAME_SEGMENT_BYTES = 255  # most file systems refuse longer names
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def job_key(job_id: str) -> str:
    """`jobs/<job id>.json`: where a job's document is kept."""
    return f"{JOBS_PREFIX}{job_id}.json"


def private_prefix(job_id: str) -> str:
    """`private/<job id>/`: where a private job's outputs are published (served only through signed links)."""
    return f"{PRIVATE_PREFIX}{check_job_id(job_id)}/"


def private_key(job_id: str, key: str) -> str:
    """The private twin of a published key: `files/videos/x.mp4` is `private/<job id>/videos/x.mp4`."""
    if not key.startswith(PUBLISHED_PREFIX):
        raise invalid_key(key, f"is not under {PUBLISHED_PREFIX!r}")
    return validate_key(f"{private_prefix(job_id)}{key.removeprefix(PUBLISHED_PREFIX)}")


def private_url(key: str) -> str:
    """What a private job's document shows as a file's URL: `private:<key>`, a name, not a public URL (its
    content plays only through `/v1/playback/<job id>`)."""
    return f"private:{key}"


def original_prefix(job_id: str) -> str:
    """`originals/<job id>/`: where the job's kept source lives (never under `files/`: not public)."""
    return f"{ORIGINALS_PREFIX}{check_job_id(job_id)}/"


def original_key(job_id: str, suffix: str = "") -> str:
    """`originals/<job id>/source<suffix>`; `suffix` is the source's extension (`.mp4`) or empty."""
    if suffix and not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
        suffix = ""
    return object_key(f"{original_prefix(job_id)}source{suffix}")


def scratch_prefix(job_id: str) -> str:
    """`tmp/<job id>/`: a run's scratch objects, all deleted together when the run ends."""
    return f"{SCRATCH_PREFIX}{check_job_id(job_id)}/"


def chunk_scratch_key(job_id: str, name: str) -> str:
    """`tmp/<job id>/chunks/<name>`: a chunked encode's source, piece or audio track in transit; `name` is one
    file name (StorageError(invalid_key) for anything with a `/` or otherwise unsafe)."""
    if "/" in name:
        raise invalid_key(name, "must be a file name, not a path")
    return object_key(f"{scratch_prefix(job_id)}{CHUNKS_SCRATCH}{name}")


def invalid_key(key: str, reason: str) -> StorageError:
    shown = key if len(key) <= 80 else key[:77] + "..."
    return StorageError(code="invalid_key", message=f"key {shown!r}: {reason}")


def validate_key(key: str) -> str:
    """`key` unchanged when it is a safe relative key (a trailing `/` is allowed, for prefixes).

    StorageError(code="invalid_key") when it is empty, absolute, longer than 1024 bytes, or holds a
    backslash, a control character, or an empty, `.` or `..` segment.
    """
    if not isinstance(key, str) or not key:
        raise invalid_key(str(key), "must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise invalid_key(key, f"longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise invalid_key(key, "must be relative, not start with '/'")
    if "\\" in key:
        raise invalid_key(key, "must not contain a backslash")
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise invalid_key(key, "must not contain control characters")
    segments = key.split("/")
    if key.endswith("/"):
        segments.pop()
    if "" in segments:
        raise invalid_key(key, "must not contain empty segments ('//')")
    for dots in (".", ".."):
        if dots in segments:
            raise invalid_key(key, f"must not contain {dots!r} segments")
    return key


def object_key(key: str) -> str:
    """A validated key that names an object, not a folder."""
    validate_key(key)
    if key.endswith("/"):
        raise invalid_key(key, "names a folder, not an object")
    return key


def list_prefix(prefix: str) -> str:
    """A validated listing prefix; the empty prefix means everything."""
    return validate_key(prefix) if prefix else ""


def deletion_prefix(prefix: str) -> str:
    if not prefix:
        raise invalid_key(prefix, "refusing to delete with an empty prefix (everything)")
    return validate_key(prefix)


def unsafe_key_reason(key: str) -> str | None:
    """Why `key` cannot be an object key or a file name under its prefix, or None when it can."""
    try:
        validate_key(key)
    except StorageError as exc:
        return exc.message.rpartition(": ")[2]
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_SEGMENT_BYTES for part in key.split("/")):
        return f"has a segment longer than {MAX_NAME_SEGMENT_BYTES} bytes"
    return None


def video_id_problem(video_id: str) -> str | None:
    """Why `video_id` cannot name an object under the ingest prefix, or None when it can."""
    if video_id.endswith("/"):
        return "must name an object, not end with '/'"
    return unsafe_key_reason(video_id) or unsafe_key_reason(f"{INGEST_PREFIX}{video_id}")


def check_job_id(job_id: str) -> str:
    """`job_id` unchanged when it can name files and objects; SpecError(job_id) otherwise."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise SpecError("job_id", "expected 1 to 128 letters, digits, '.', '_' or '-', starting alphanumeric")
    return job_id


def run_job_id(run_id: object) -> str:
    """The job id of a run started without one: its flow run id without dashes, first 24 hex digits."""
    return str(run_id).replace("-", "")[:24]


def job_id_from_ref(ref: str) -> str:
    """The job id `ref` names: a flow run id (a UUID with dashes) gives its run's job id (lower-case),
    anything else must be a valid job id itself; SpecError(job_id) otherwise."""
    if RUN_ID.match(ref):
        return run_job_id(ref.lower())
    return check_job_id(ref)
