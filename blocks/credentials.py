"""What the credentials blocks share: "the named block, else the environment", written once."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from prefect.blocks.core import Block

from vodflow.providers import MissingCredentials
from vodflow.settings import ServiceEnvironment, load_settings


class EnvironmentCredentials(Block):
    """A credentials block that can also be made from its service's environment variables.

    Subclasses set `_environment` (the variables, a `vodflow.settings.ServiceEnvironment`) and may override
    `_fields_from` to map them onto their fields; `resolve(name)` loads the named block (it wins) or falls
    back to the environment. The HTTP time limit of an environment-made block is `VODFLOW_HTTP_TIMEOUT`.
    """

    _environment: ClassVar[type[ServiceEnvironment]]

    @classmethod
    def _fields_from(cls, environment: ServiceEnvironment) -> dict[str, Any]:
        return environment.model_dump(exclude_none=True)

    @classmethod
    def from_env(cls) -> Self:
        """The block made from the environment; MissingCredentials naming what to set when incomplete."""
        environment = cls._environment()
        if problem := environment.missing():
            raise MissingCredentials(problem)
        return cls(**cls._fields_from(environment), timeout_seconds=load_settings().http_timeout)

    @classmethod
    def resolve(cls, block_name: str | None = None) -> Self:
        """The named block when a name is given (it wins over the environment), else `from_env()`."""
        if block_name:
            return cls.load(block_name, _sync=True)
        return cls.from_env()
