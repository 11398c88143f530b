"""The automations declared next to the deployments (`automations:` in prefect.yaml), applied idempotently.

`prefect deploy` ignores the key; `prefect automation create --from-file prefect.yaml` would read it but adds
a copy on every call. `apply_automations` creates each automation once and updates it in place afterwards
(only when it changed: an update restarts what its trigger has counted), matching by name, so it can run
after every `prefect deploy --all` and every `vodflow up`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def declared_automations(path: Path) -> list[dict[str, Any]]:
    """The `automations:` list of a prefect.yaml (empty when it has none); ValueError when malformed."""
    data = yaml.safe_load(path.read_text()) or {}
    automations = data.get("automations") or []
    if not isinstance(automations, list) or not all(
        isinstance(a, dict) and a.get("name") for a in automations
    ):
        raise ValueError(f"{path.name}: `automations` must be a list of automations, each with a name")
    return automations


def apply_automations(path: Path) -> list[tuple[str, str]]:
    """Create or update, by name, every automation `path` declares; (name, `created`|`updated`|`unchanged`).

    Talks to the Prefect API in `PREFECT_API_URL`; a malformed automation raises before anything changes.
    """
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    wanted = [AutomationCore.model_validate(data) for data in declared_automations(path)]
    done = []
    with get_client(sync_client=True) as client:
        for automation in wanted:
            existing = client.read_automations_by_name(automation.name)
            if not existing:
                client.create_automation(automation)
                done.append((automation.name, "created"))
                continue
            # an update makes the server give the trigger a new id, forgetting what the old one counted (the
            # last heartbeat of a run gone silent across a restart: never marked Crashed): only when changed
            if _core(existing[0]) == automation.model_dump(mode="json"):
                done.append((automation.name, "unchanged"))
                continue
            client.update_automation(existing[0].id, automation)
            done.append((automation.name, "updated"))
    return done


def _core(existing: Any) -> dict[str, Any]:
    from prefect.events.schemas.automations import AutomationCore

    fields = set(AutomationCore.model_fields)
    return AutomationCore.model_validate(existing.model_dump(include=fields)).model_dump(mode="json")
