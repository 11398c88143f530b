"""What every command prints: JSON documents on stdout (logs and messages go to stderr)."""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USER_ERROR = 2

EXIT_CODES = """exit codes:
  0  completed (job get/list: found)
  1  the job failed: its document, with error.step and error.code, is still printed on stdout (also
     when Prefect cannot be reached, or SIGTERM / Ctrl-C stopped the run: code prefect_unavailable or
     cancelled); job get: no such job; cleanup: an item failed; up: a part did not start (its log is
     named); status: a part is not running or not answering; up, down, status: the stack's state file
     cannot be trusted (reported and left as it is, nothing signalled)
  2  refused before any run, one line on stderr, nothing on stdout: bad command line, unreadable or
     invalid job spec (naming the field), a local videoUrl that does not exist, an invalid job id, a
     malformed VODFLOW_* setting
  3  status: the local stack is not running
  141  stdout closed early (`| head`): nothing more is printed"""


class UserError(Exception):
    """A mistake of the caller (bad spec, missing file, invalid id): one line on stderr, exit 2."""


def print_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
