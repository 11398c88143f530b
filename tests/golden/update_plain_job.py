"""Regenerate `tests/golden/plain_job.json` after an intended change of a plain job's output:
`.venv/bin/python tests/golden/update_plain_job.py`, then say why in the commit. The golden test itself only
ever reads the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.unit.media.test_plain_job_golden import GOLDEN, plain_job_commands  # noqa: E402

if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(plain_job_commands(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
