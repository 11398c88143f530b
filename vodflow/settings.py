"""Every `VODFLOW_*` setting in one model, read from the environment in one place and passed down as values.

Entry points (the flows, the CLI, the API and the receiver) call `load_settings()` once and hand what each
part needs to it: `limits()`, `net_policy()`, `webhook_config()`, `storage_config()`... Nothing below them
reads the environment. Empty variables count as unset; booleans accept true/false, 1/0, yes/no, on/off. The
remote services' credentials blocks fall back on their own variables (`VideoSDKEnvironment`...), also here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from vodflow.errors import ConfigError
from vodflow.jobs.limits import Limits
from vodflow.media.capacity import default_chunk_threshold, default_ffmpeg_slots, host_cores
from vodflow.media.captions import CaptionLimits
from vodflow.net.guard import NetPolicy
from vodflow.net.retry import RetrySettings
from vodflow.net.webhook import WebhookConfig, check_secret
from vodflow.packaging.hls import FIRST_SEGMENT_SECONDS
from vodflow.storage.config import StorageConfig

if TYPE_CHECKING:  # imported when used: it loads Prefect, which settings and the CLI's checks do not need
    from vodflow.orchestration.concurrency import Slots

MIN_API_SECRET_LENGTH = 32
MIN_RECEIVER_TOKEN_LENGTH = MIN_API_SECRET_LENGTH  # the receiver's shared token: as hard to guess
MIN_STALL_SECONDS = 1.0  # stall detection cannot be turned off (0 would); a large value makes it lenient
DEFAULT_DEPLOYMENT = "vodflow-encode/encode"


def _names(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


class ApiSettings(BaseModel):
    """What the API needs: the key and secret tokens are checked against, and where jobs run and live."""

    api_key: str = Field(min_length=1, description="Expected `apikey` claim of every token.")
    api_secret: SecretStr = Field(description="HS256 secret that signs the tokens.")
    deployment: str = Field(default=DEFAULT_DEPLOYMENT, description="Pipeline deployment, `flow/deployment`.")
    storage_block: str | None = Field(
        default=None, description="`vodflow-storage` block for API and runs (default: VODFLOW_STORAGE*)."
    )
    cancel_timeout: float = Field(default=30.0, gt=0, description="Seconds a delete waits for a run to stop.")
    allow_local_sources: bool = Field(
        default=False, description="Accept `file://` and path `videoUrl`s (read from the workers' disks)."
    )
    max_body_bytes: int = Field(default=1 << 20, gt=0, description="Largest request body accepted, bytes.")
    max_token_ttl: float = Field(
        default=86400.0, gt=0, description="Refuse tokens whose `exp` is further ahead than this, seconds."
    )
    playback_secret: SecretStr | None = Field(
        default=None,
        description="HS256 secret of playback tokens and signed links (private jobs); default: one derived "
        "from the API secret (HMAC-SHA256 with a fixed label), so API tokens and playback tokens never mix.",
    )
    playback_max_ttl: float = Field(
        default=86400.0, gt=0, description="Refuse playback tokens whose `exp` is further ahead, seconds."
    )
    playback_link_ttl: float = Field(
        default=600.0,
        gt=0,
        le=7 * 86400,
        description="Longest life of a signed segment link (presigned S3 URL or signed file URL), seconds; "
        "never past the playback token's own `exp`.",
    )
    playback_url: str | None = Field(
        default=None,
        description="Public base URL of the API in rewritten playlists (default: the request's own).",
    )

    def check_secret_strength(self) -> None:
        """ValueError (never quoting the secret) when the token secret is too short to resist guessing."""
        if len(self.api_secret.get_secret_value()) < MIN_API_SECRET_LENGTH:
            raise ValueError(f"the API secret must be at least {MIN_API_SECRET_LENGTH} characters long")
        if self.playback_secret and len(self.playback_secret.get_secret_value()) < MIN_API_SECRET_LENGTH:
            raise ValueError(f"the playback secret must be at least {MIN_API_SECRET_LENGTH} characters long")

    def playback_key(self) -> bytes:
        """The key of playback tokens and signed links: the playback secret, or one derived from the API
        secret (never the API secret itself)."""
        if self.playback_secret is not None:
            return self.playback_secret.get_secret_value().encode()
        secret = self.api_secret.get_secret_value().encode()
        return hmac.new(secret, b"vodflow playback links v1", hashlib.sha256).digest()


class Settings(BaseSettings):
    """vodflow's settings; each field is the environment variable `VODFLOW_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="VODFLOW_", env_ignore_empty=True, extra="ignore")

    # Storage (a named `vodflow-storage` block wins over these)
    storage: Literal["local", "s3"] = "local"
    storage_block: str | None = None
    data_dir: Path = Path("./data")
    data_url: str | None = Field(
        default=None, description="Base URL that serves VODFLOW_DATA_DIR over HTTP (set by `vodflow up`)."
    )
    player_url: str | None = Field(
        default=None,
        description="Base URL of a server with the watch page (`<url>/watch/<job id>`: the API's, or the file"
        " server's); default VODFLOW_DATA_URL with local storage (`vodflow up`'s file server serves it).",
    )
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_bucket: str = "vodflow"
    s3_secure: bool = False
    s3_region: str | None = None
    s3_public_url: str | None = None

    # Runs
    tmp_dir: Path | None = Field(
        default=None, description="Where runs keep temp directories; default system's."
    )
    x264_preset: str = "veryfast"
    x265_preset: str = Field(default="faster", description="libx265 preset of HEVC rungs (cmaf presets).")
    svtav1_preset: int = Field(
        default=10,
        ge=0,
        le=13,
        description="SVT-AV1 preset of AV1 rungs (cmaf presets): 0 slowest, 13 fastest.",
    )
    keep_original: bool = Field(
        default=False, description="Keep every job's source (its spec's `keepOriginal` when left out)."
    )
    publish_while_encoding: bool = Field(
        default=True, description="Publish HLS ladders as they encode (EVENT playlists, then VOD)."
    )
    task_retries: int = Field(default=3, ge=0)
    task_retry_delay: float = Field(default=2.0, ge=0)
    ffmpeg_slots: int | None = Field(
        default=None, ge=0, description="ffmpeg processes per host at once; default one per 4 cores."
    )
    concurrency_limits: bool = True
    prefect_lost_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a CLI run on a Prefect server goes on while the server does not answer, before "
        "it stops with `prefect_unavailable`.",
    )
    stop_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a stopping CLI run on a Prefect server may take to clean up before it ends with "
        "its document anyway (a second SIGINT or SIGTERM ends it at once).",
    )
    remote_poll_seconds: float = Field(default=5.0, gt=0)
    remote_max_wait_seconds: float = Field(default=3600.0, gt=0)
    chunk_threshold_seconds: float | None = Field(default=None, ge=0)
    chunk_seconds: float = Field(default=30.0, gt=0)
    first_segment_seconds: int = Field(
        default=FIRST_SEGMENT_SECONDS,
        ge=0,
        le=FIRST_SEGMENT_SECONDS,
        multiple_of=FIRST_SEGMENT_SECONDS,
        description="The first 6 s of every MPEG-TS ladder's rungs in segments this long, so a job plays"
        " sooner (the keyframe interval, 2; 0: 6 s segments from the start).",
    )
    dask_address: str | None = None
    quality_ffmpeg: str | None = Field(
        default=None,
        description="The ffmpeg that measures `quality: true` jobs (VMAF where it has libvmaf); default the"
        " `imageio-ffmpeg` wheel's when installed with libvmaf, else `ffmpeg`.",
    )
    chunk_transfer: Literal["shared-dir", "storage"] | None = Field(
        default=None,
        description="How chunk steps reach the source and return pieces: the run's temp directory on a shared"
        " filesystem, or the job's storage; default `storage` with a Dask cluster and S3, else `shared-dir`.",
    )

    # Limits on what input may cost
    max_source_bytes: int = Field(default=Limits.max_source_bytes, ge=0)
    max_source_seconds: float = Field(default=Limits.max_source_seconds, ge=0)
    max_source_dimension: int = Field(default=Limits.max_dimension, ge=0)
    max_redirects: int = Field(default=Limits.max_redirects, ge=0)
    download_timeout: float = Field(default=Limits.download_timeout, ge=0)
    http_timeout: float = Field(default=Limits.http_timeout, gt=0)
    min_source_bitrate: float = Field(default=Limits.min_source_bitrate, ge=0)
    max_pixels_per_byte: float = Field(default=Limits.max_pixels_per_byte, ge=0)
    max_encode_seconds: float = Field(default=Limits.max_encode_seconds, gt=0)
    encode_stall_seconds: float = Field(
        default=Limits.stall_seconds,
        ge=MIN_STALL_SECONDS,
        description="An ffmpeg run whose output time has not moved, nor its files changed, for this long is "
        "stopped (`stalled`).",
    )
    max_encoders: int = Field(
        default=Limits.max_encoders, ge=1, description="Audio and video encoders one ffmpeg process may run."
    )
    max_thumbnails: int = Field(
        default=Limits.max_thumbnails, ge=0, description="Thumbnail images one job may make (0: none)."
    )
    max_job_pixels: float = Field(
        default=Limits.max_job_pixels,
        gt=0,
        description="Pixels one job may encode: width x height x frame rate x duration, summed over its "
        "video renditions.",
    )
    max_caption_segment_cues: int = Field(
        default=CaptionLimits.segment_cues, ge=1, description="Cues one WebVTT subtitle segment may show."
    )
    max_caption_segment_bytes: int = Field(
        default=CaptionLimits.segment_bytes, ge=1, description="Bytes one WebVTT subtitle segment may hold."
    )
    max_caption_job_bytes: int = Field(
        default=CaptionLimits.job_bytes,
        ge=1,
        description="Bytes all the WebVTT subtitle segments of a job (all languages and ladders) may hold.",
    )

    # What may be fetched, and from where
    allowed_hosts: str = ""
    allow_local_files: bool = True
    allowed_buckets: str = ""
    http_retry_attempts: int = Field(default=RetrySettings.attempts, ge=1)
    http_retry_base: float = Field(default=RetrySettings.base, ge=0)
    http_retry_cap: float = Field(default=RetrySettings.cap, ge=0)

    # Webhooks (a `vodflow-webhook-settings` block named here wins)
    webhook_block: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout: float = Field(default=WebhookConfig.timeout, gt=0)
    webhook_window: float = Field(default=WebhookConfig.window, ge=0)
    webhook_attempts: int = Field(default=WebhookConfig.max_attempts, ge=1)
    webhook_retry_delay: float = Field(default=WebhookConfig.base_delay, ge=0)

    # The encoder-job API (a `vodflow-api` block may hold these instead)
    api_key: str | None = None
    api_secret: SecretStr | None = None
    api_deployment: str = DEFAULT_DEPLOYMENT
    api_cancel_timeout: float = Field(default=30.0, gt=0)
    api_allow_local_files: bool = False
    api_max_body_bytes: int = Field(default=1 << 20, gt=0)
    api_max_token_ttl: float = Field(default=86400.0, gt=0)
    playback_secret: SecretStr | None = None
    playback_max_ttl: float = Field(default=86400.0, gt=0)
    playback_link_ttl: float = Field(default=600.0, gt=0, le=7 * 86400)
    playback_url: str | None = None

    # Encrypted ladders (`vodflow.keys`): the key-encryption secret, where players fetch keys (a
    # `vodflow-keys` block named here wins)
    key_block: str | None = None
    key_secret: SecretStr | None = Field(
        default=None, description="Seals content keys at rest (32+ characters); encryption needs it."
    )
    key_server_url: str | None = Field(
        default=None,
        description="A key server that makes and keeps the keys instead (`keys/server.py`).",
    )
    key_server_token: SecretStr | None = None
    playback_base_url: str | None = Field(
        default=None,
        description="Base URL of the API serving keys and playback (`<url>/v1/keys/...`); default "
        "VODFLOW_PLAYER_URL.",
    )

    packager: str | None = Field(
        default=None,
        description="Shaka Packager, which makes `cenc` ladders: a path, or a command on PATH; default the "
        "checkout's node_modules/shaka-packager binary (`make browser`), else `packager` on PATH.",
    )

    # The upload receiver
    receiver_token: SecretStr | None = None
    receiver_ingest_bucket: str | None = None

    # Deployments: the checkout flow runs start in (prefect.yaml's pull step)
    project_dir: Path | None = None

    # The local stack (`vodflow up`)
    state_dir: Path | None = Field(
        default=None,
        description="pids, ports, logs and SQLite of the stack (default: the checkout's .vodflow where one "
        "exists, else $XDG_STATE_HOME/vodflow, ~/.local/state/vodflow)",
    )
    database_url: SecretStr | None = Field(
        default=None, description="Prefect server database for `vodflow up` (default: SQLite in state_dir)"
    )

    def limits(self) -> Limits:
        return Limits(
            max_source_bytes=self.max_source_bytes,
            max_source_seconds=self.max_source_seconds,
            max_dimension=self.max_source_dimension,
            max_redirects=self.max_redirects,
            download_timeout=self.download_timeout,
            http_timeout=self.http_timeout,
            min_source_bitrate=self.min_source_bitrate,
            max_pixels_per_byte=self.max_pixels_per_byte,
            max_encode_seconds=self.max_encode_seconds,
            stall_seconds=self.encode_stall_seconds,
            max_encoders=self.max_encoders,
            max_thumbnails=self.max_thumbnails,
            max_job_pixels=self.max_job_pixels,
        )

    def caption_limits(self) -> CaptionLimits:
        return CaptionLimits(
            segment_cues=self.max_caption_segment_cues,
            segment_bytes=self.max_caption_segment_bytes,
            job_bytes=self.max_caption_job_bytes,
        )

    def net_policy(self) -> NetPolicy:
        """The address policy of `VODFLOW_ALLOWED_HOSTS`; ConfigError naming a bad entry."""
        try:
            return NetPolicy.from_entries(_names(self.allowed_hosts))
        except ValueError as exc:
            raise ConfigError(f"VODFLOW_ALLOWED_HOSTS: {exc}") from None

    def bucket_allow_list(self) -> frozenset[str]:
        return frozenset(_names(self.allowed_buckets))

    def retry(self) -> RetrySettings:
        return RetrySettings(self.http_retry_attempts, self.http_retry_base, self.http_retry_cap)

    def webhook_config(self) -> WebhookConfig:
        """Webhook delivery settings from the environment; ConfigError for a malformed secret."""
        secret = self.webhook_secret.get_secret_value().strip() if self.webhook_secret else None
        try:
            secret = check_secret(secret) if secret else None
        except ValueError as exc:
            raise ConfigError(f"VODFLOW_WEBHOOK_SECRET: {exc}") from None
        return WebhookConfig(
            secret=secret,
            timeout=self.webhook_timeout,
            window=self.webhook_window,
            max_attempts=self.webhook_attempts,
            base_delay=self.webhook_retry_delay,
            policy=self.net_policy(),
        )

    def storage_config(self) -> StorageConfig:
        return StorageConfig(
            kind=self.storage,
            data_dir=self.data_dir,
            endpoint=self.s3_endpoint,
            access_key=self.s3_access_key,
            secret_key=self.s3_secret_key,
            bucket=self.s3_bucket,
            secure=self.s3_secure,
            region=self.s3_region,
            public_base_url=self.s3_public_url if self.storage == "s3" else self.data_url,
            source="VODFLOW_STORAGE=s3",
            names=("VODFLOW_S3_ENDPOINT", "VODFLOW_S3_ACCESS_KEY", "VODFLOW_S3_SECRET_KEY"),
        )

    def key_base_url(self) -> str:
        """Where players fetch content keys: VODFLOW_PLAYBACK_BASE_URL, else VODFLOW_PLAYER_URL; ConfigError
        naming the setting when neither is an http(s) URL (a key URI never points at published storage)."""
        base = (self.playback_base_url or self.player_url or "").strip()
        if not base.lower().startswith(("http://", "https://")):
            raise ConfigError("VODFLOW_PLAYBACK_BASE_URL: encrypted presets need the API's http(s) base URL")
        return base

    def packager_path(self) -> str:
        """Shaka Packager's executable (VODFLOW_PACKAGER, else the checkout's npm copy, else `packager` on
        PATH); ConfigError naming the setting when none is an executable file."""
        if self.packager:
            found = shutil.which(self.packager)
            if found is None:
                raise ConfigError(
                    f"VODFLOW_PACKAGER: {self.packager[:200]!r} is not an executable (cenc needs it)"
                )
            return found
        arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
            platform.machine(), platform.machine()
        )
        bundled = (
            Path(__file__).resolve().parents[1] / f"node_modules/shaka-packager/bin/packager-linux-{arch}"
        )
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
        found = shutil.which("packager")
        if found is None:
            raise ConfigError(
                "VODFLOW_PACKAGER is not set and no Shaka Packager was found (node_modules/shaka-packager, "
                "`packager` on PATH): cenc encryption needs it"
            )
        return found

    def watch_base_url(self, storage: StorageConfig) -> str | None:
        """Where jobs of `storage` are watched (`<it>/watch/<job id>`): VODFLOW_PLAYER_URL, else local
        storage's public URL (a file server, which serves the page), else None (S3's serves no page)."""
        if self.player_url:
            return self.player_url
        return storage.public_base_url if storage.kind == "local" else None

    def api_settings(self) -> ApiSettings:
        """The encoder-job API's settings from `VODFLOW_API_*`; ConfigError naming what is missing."""
        missing = [f"VODFLOW_API_{n.upper()}" for n in ("key", "secret") if not getattr(self, f"api_{n}")]
        if missing:
            raise ConfigError(f"set {' and '.join(missing)}, or name a vodflow-api block")
        return ApiSettings(
            api_key=self.api_key,
            api_secret=self.api_secret,
            deployment=self.api_deployment,
            storage_block=self.storage_block,
            cancel_timeout=self.api_cancel_timeout,
            allow_local_sources=self.api_allow_local_files,
            max_body_bytes=self.api_max_body_bytes,
            max_token_ttl=self.api_max_token_ttl,
            playback_secret=self.playback_secret,
            playback_max_ttl=self.playback_max_ttl,
            playback_link_ttl=self.playback_link_ttl,
            playback_url=self.playback_url,
        )

    def ffmpeg_slot_count(self) -> int:
        """`VODFLOW_FFMPEG_SLOTS`, or one slot per four of the host's cores (`vodflow.media.capacity`)."""
        if self.ffmpeg_slots is not None:
            return self.ffmpeg_slots
        return default_ffmpeg_slots(host_cores())

    def slots(self) -> Slots:
        """The concurrency limits runs take part in (`VODFLOW_FFMPEG_SLOTS`, `VODFLOW_CONCURRENCY_LIMITS`)."""
        from vodflow.orchestration.concurrency import Slots

        return Slots(self.ffmpeg_slot_count(), self.concurrency_limits)

    def chunk_threshold(self) -> float:
        """Sources longer than this are encoded in chunks (0: never). Default 120 s with a Dask cluster or
        on a host of 8 cores or more (two ffmpeg slots), 0 on a smaller host alone, where one ffmpeg already
        keeps every core busy (`vodflow.media.capacity`)."""
        if self.chunk_threshold_seconds is not None:
            return self.chunk_threshold_seconds
        return default_chunk_threshold(host_cores(), cluster=bool(self.dask_address))

    def chunk_transfer_mode(self, storage_kind: str) -> Literal["shared-dir", "storage"]:
        """How chunks travel for a job on `storage_kind` storage: `VODFLOW_CHUNK_TRANSFER`, else `storage`
        when chunks run on a Dask cluster and the storage is S3 (workers elsewhere share nothing else),
        else `shared-dir` (threads on this host; or local storage, itself a directory)."""
        if self.chunk_transfer is not None:
            return self.chunk_transfer
        return "storage" if self.dask_address and storage_kind == "s3" else "shared-dir"


class ServiceEnvironment(BaseSettings):
    """The environment fallback of a remote service's credentials block (its own variable names)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True)

    def missing(self) -> str | None:
        """What is missing for the service to be usable, naming the variables; None when nothing is."""
        return None

    @classmethod
    def variables(cls) -> list[str]:
        """The environment variables this model reads."""
        prefix = str(cls.model_config.get("env_prefix") or "")
        return [str(f.validation_alias or f"{prefix}{name}").upper() for name, f in cls.model_fields.items()]


class VideoSDKEnvironment(ServiceEnvironment):
    """`VIDEOSDK_API_KEY` and `VIDEOSDK_SECRET` (or `VIDEOSDK_TOKEN`), `VIDEOSDK_BASE_URL`."""

    model_config = SettingsConfigDict(env_prefix="VIDEOSDK_", env_ignore_empty=True, extra="ignore")
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    token: SecretStr | None = None
    base_url: str | None = None

    def missing(self) -> str | None:
        if (self.api_key and self.secret) or self.token:
            return None
        return "set VIDEOSDK_API_KEY and VIDEOSDK_SECRET, or VIDEOSDK_TOKEN, or name a block"


class MpcEnvironment(ServiceEnvironment):
    """`HUAWEICLOUD_SDK_AK`/`_SK`/`_SECURITY_TOKEN` or `MPC_AUTH_TOKEN`, and the `MPC_*` settings."""

    ak: SecretStr | None = Field(default=None, validation_alias="HUAWEICLOUD_SDK_AK")
    sk: SecretStr | None = Field(default=None, validation_alias="HUAWEICLOUD_SDK_SK")
    security_token: SecretStr | None = Field(default=None, validation_alias="HUAWEICLOUD_SDK_SECURITY_TOKEN")
    auth_token: SecretStr | None = Field(default=None, validation_alias="MPC_AUTH_TOKEN")
    project_id: str | None = Field(default=None, validation_alias="MPC_PROJECT_ID")
    region: str | None = Field(default=None, validation_alias="MPC_REGION")
    endpoint: str | None = Field(default=None, validation_alias="MPC_ENDPOINT")
    output_bucket: str | None = Field(default=None, validation_alias="MPC_OUTPUT_BUCKET")
    output_prefix: str | None = Field(default=None, validation_alias="MPC_OUTPUT_PREFIX")
    obs_location: str | None = Field(default=None, validation_alias="MPC_OBS_LOCATION")
    template_ids: str | None = Field(default=None, validation_alias="MPC_TEMPLATE_IDS")

    def missing(self) -> str | None:
        if ((self.ak and self.sk) or self.auth_token) and self.project_id:
            return None
        return (
            "set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (or MPC_AUTH_TOKEN) and MPC_PROJECT_ID,"
            " or name a block"
        )

    def trans_template_ids(self) -> list[int]:
        return [int(t) for t in _names((self.template_ids or "").replace(" ", ""))]


class VideoDBEnvironment(ServiceEnvironment):
    """`VIDEODB_API_KEY`, `VIDEODB_BASE_URL`."""

    model_config = SettingsConfigDict(env_prefix="VIDEODB_", env_ignore_empty=True, extra="ignore")
    api_key: SecretStr | None = None
    base_url: str | None = None

    def missing(self) -> str | None:
        return None if self.api_key else "set VIDEODB_API_KEY, or name a block"


def load_settings() -> Settings:
    """The settings from the environment; ConfigError naming the variable and the reason when one is bad."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else ""
        name = f"VODFLOW_{field.upper()}" if field else "VODFLOW_*"
        secret = "SecretStr" in str(Settings.model_fields[field].annotation) if field else True
        shown = "" if secret else f"={first.get('input')!r}"  # a secret's value is never quoted
        raise ConfigError(f"{name}{shown}: {first['msg']}") from None
