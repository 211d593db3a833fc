"""Load and validate qunpulse settings, once, at start.

The file is TOML (see ``config/qunpulse.example.toml``); every key can be overridden by
an environment variable ``QUNPULSE_SECTION__KEY`` (``QUNPULSE_SERVER__PORT=9090``).
Everything else in qunpulse receives the typed :class:`Settings` and never reads the
environment itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_NAME = "qunpulse.toml"
CONFIG_ENV = "QUNPULSE_CONFIG"
ENV_PREFIX = "QUNPULSE_"

PlatformName = Literal["wecom", "dingtalk", "feishu"]


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "0.0.0.0"  # noqa: S104 - a bot server must listen beyond loopback
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None


class StorageSettings(_Section):
    url: str = "sqlite:///qunpulse.db"

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgresql")):
            raise ValueError(
                'expected "sqlite:///FILE" or "postgresql+psycopg://USER@HOST/DB", '
                f"got {redact_url(url)!r}"
            )
        if url.startswith(("postgresql://", "postgres://")):
            # SQLAlchemy would pick psycopg2, which we do not ship.
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url


class _Bot(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")


def _check_encoding_aes_key(value: SecretStr) -> SecretStr:
    length = len(value.get_secret_value())
    if length != 43:
        raise ValueError(
            f"must be 43 characters, got {length} "
            "(copy EncodingAESKey from the platform's admin console)"
        )
    return value


class WecomAibotSettings(_Bot):
    """A WeCom AI bot (智能机器人): receives @-mentions in groups as encrypted JSON."""

    kind: Literal["wecom_aibot"]
    token: SecretStr
    encoding_aes_key: SecretStr

    _aes = field_validator("encoding_aes_key")(_check_encoding_aes_key)


class WecomArchiveSettings(_Section):
    """The WeCom session archive (会话内容存档) of the app's corp, pulled with the C SDK."""

    #: The 会话内容存档 Secret (not the app's secret).
    secret: SecretStr
    #: ``publickey_ver`` → path of the PEM RSA private key of that version.
    private_keys: dict[str, str] = Field(min_length=1)
    #: Path of libWeWorkFinanceSdk_C.so (downloaded from WeCom; not shipped).
    sdk_path: str
    #: Records asked for per GetChatData call (the SDK allows at most 1000).
    batch_limit: int = Field(default=1000, ge=1, le=1000)
    timeout_seconds: int = Field(default=10, ge=1)
    #: Optional HTTP proxy for the SDK, e.g. "http://10.0.0.1:3128", and its password.
    proxy: str | None = None
    proxy_password: SecretStr | None = None
    #: How often `serve` pulls on its own (0: only on msgaudit_notify and `archive pull`).
    pull_every_minutes: int = Field(default=5, ge=0)


class WecomAppSettings(_Bot):
    """A WeCom self-built app: membership events, archive notices, private messages."""

    kind: Literal["wecom_app"]
    corp_id: str
    agent_id: int
    secret: SecretStr
    token: SecretStr
    encoding_aes_key: SecretStr
    archive: WecomArchiveSettings | None = None
    #: Group owners (userids) whose customer-group statistics ``qunpulse wecom-stats pull``
    #: fetches; empty means every owner in the app's visible range (WeCom refuses that
    #: above 1000 people with errcode 81017).
    stat_owners: tuple[str, ...] = ()

    _aes = field_validator("encoding_aes_key")(_check_encoding_aes_key)


class DingtalkRobotSettings(_Bot):
    """A DingTalk enterprise robot: receives @-mentions over HTTP or Stream mode."""

    kind: Literal["dingtalk_robot"]
    app_key: str
    app_secret: SecretStr
    robot_code: str = ""
    mode: Literal["http", "stream"] = "http"


class DingtalkEventsSettings(_Bot):
    """A DingTalk event subscription (membership changes), AES-encrypted callbacks."""

    kind: Literal["dingtalk_events"]
    app_key: str
    token: SecretStr
    aes_key: SecretStr

    _aes = field_validator("aes_key")(_check_encoding_aes_key)


class FeishuSettings(_Bot):
    """A Feishu / Lark app bot: every group message with scope im:message.group_msg."""

    kind: Literal["feishu"]
    app_id: str
    app_secret: SecretStr
    verification_token: SecretStr | None = None
    encrypt_key: SecretStr | None = None


BotSettings = Annotated[
    WecomAibotSettings
    | WecomAppSettings
    | DingtalkRobotSettings
    | DingtalkEventsSettings
    | FeishuSettings,
    Field(discriminator="kind"),
]


class GroupSettings(_Section):
    """A group qunpulse posts into, and who runs it."""

    platform: PlatformName
    chat_id: str
    name: str | None = None
    webhook: SecretStr | None = None
    secret: SecretStr | None = None
    operators: tuple[str, ...] = ()
    digest_to: Literal["group", "operators"] = "group"


class OperatorsSettings(_Section):
    """Operators of every group, per platform user id."""

    wecom: tuple[str, ...] = ()
    dingtalk: tuple[str, ...] = ()
    feishu: tuple[str, ...] = ()


JobName = Literal[
    "leaderboard",
    "daily_digest",
    "weekly_digest",
    "alert_scan",
    "retention",
    "roster_sync",
    "wecom_stats",
]
#: Every scheduled job; each has a cron key of its own name in ``[schedule]``.
JOBS: tuple[JobName, ...] = (
    "leaderboard",
    "daily_digest",
    "weekly_digest",
    "alert_scan",
    "retention",
    "roster_sync",
    "wecom_stats",
)


class ScheduleSettings(_Section):
    """Cron expressions, read in the configured time zone."""

    leaderboard: str = "0 21 * * *"
    daily_digest: str = "30 9 * * *"
    weekly_digest: str = "0 10 * * MON"
    alert_scan: str = "*/5 * * * *"
    #: The daily retention job of ``[retention]`` (blanks old text, expires old events).
    retention: str = "30 3 * * *"
    #: Member lists from WeCom (customer groups) and Feishu (``qunpulse roster sync``).
    roster_sync: str = "0 4 * * *"
    #: Yesterday's WeCom customer-group statistics (``qunpulse wecom-stats pull``).
    wecom_stats: str = "30 4 * * *"
    #: A run missed while qunpulse was down is made up on start if at most this old.
    grace_hours: float = Field(default=6.0, ge=0.0)
    #: How long the scheduler lease lasts; another process takes over after it expires.
    lease_seconds: int = Field(default=30, ge=5, le=60)

    @field_validator(*JOBS)
    @classmethod
    def _valid_cron(cls, expression: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(expression)
        except ValueError as error:
            raise ValueError(
                f'not a cron expression ({error}); use five fields such as "0 21 * * *"'
            ) from None
        return expression


class PostsSettings(_Section):
    """Scheduled posts: how long the leaderboard is and how the outbox delivers."""

    leaderboard_top_n: int = Field(default=10, ge=1, le=200)
    #: Per robot webhook (WeCom, DingTalk and Feishu all allow 20 a minute).
    max_per_minute: int = Field(default=20, ge=1, le=20)
    #: Attempts on rate limits and transient errors before a post is marked failed.
    max_attempts: int = Field(default=8, ge=1)


class AlertsSettings(_Section):
    negative_threshold: float = Field(default=0.15, ge=0.0, le=1.0)
    burst_count: int = Field(default=3, ge=1)
    burst_window_minutes: int = Field(default=30, ge=1)
    keywords: tuple[str, ...] = ("投诉", "退款")
    cooldown_minutes: int = Field(default=60, ge=0)
    webhook: SecretStr | None = None


class ActivitySettings(_Section):
    """The activity rule of METRICS.md ``active_members``, and what counts as taking part."""

    min_messages: int = Field(default=1, ge=1)
    min_active_days: int = Field(default=0, ge=0)
    #: A text message containing one of these is a check-in (打卡): ``participants``.
    checkin_keywords: tuple[str, ...] = ("打卡",)
    #: User ids (e.g. staff or customer-service accounts) left out of rank, words, segments.
    exclude_users: tuple[str, ...] = ()


class TargetsSettings(_Section):
    activity_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    retention_d7: float | None = Field(default=None, ge=0.0, le=1.0)
    conversion_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    #: GMV goal per period in yuan (元); also the reference of operator_score's GMV part.
    gmv: float | None = Field(default=None, ge=0.0)


class SentimentSettings(_Section):
    """SnowNLP cut-offs of ``sentiment_split`` and the background scorer's pace."""

    positive: float = Field(default=0.7, ge=0.0, le=1.0)
    negative: float = Field(default=0.3, ge=0.0, le=1.0)
    batch_size: int = Field(default=200, ge=1)
    interval_seconds: float = Field(default=5.0, gt=0.0)
    #: Texts with fewer Chinese characters than this are scored neutral (0.5).
    min_chinese_chars: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> SentimentSettings:
        if self.negative >= self.positive:
            raise ValueError(
                f"sentiment.negative ({self.negative}) must be below sentiment.positive "
                f"({self.positive})"
            )
        return self


class TextSettings(_Section):
    """Word counting: jieba dictionary, stop words, how much text one report reads."""

    stop_words: tuple[str, ...] = ()
    #: A jieba user dictionary (one ``word [freq] [tag]`` a line) for product names.
    user_dict: str | None = None
    #: Where jieba keeps its dictionary cache; default: the system temp directory.
    cache_dir: str | None = None
    top_n: int = Field(default=30, ge=1)
    #: At most this many of the period's newest texts are segmented per report.
    max_texts: int = Field(default=5000, ge=1)


class StickinessSettings(_Section):
    """``stickiness``: weights of active-day ratio, message volume, participation."""

    weight_days: float = Field(default=0.5, ge=0.0)
    weight_volume: float = Field(default=0.3, ge=0.0)
    weight_participation: float = Field(default=0.2, ge=0.0)
    high: float = Field(default=0.6, ge=0.0, le=1.0)
    mid: float = Field(default=0.3, ge=0.0, le=1.0)


class SegmentsSettings(_Section):
    """``segments``: silent after this many days, high-active from this many days a week."""

    silent_days: int = Field(default=14, ge=1)
    high_active_days: int = Field(default=4, ge=1, le=7)
    churn_window_days: int = Field(default=14, ge=1)


class AnomaliesSettings(_Section):
    """``anomalies``: mean + ``sigmas`` σ of the same hour of week over ``weeks`` weeks."""

    weeks: int = Field(default=4, ge=1)
    sigmas: float = Field(default=3.0, gt=0.0)
    min_messages: int = Field(default=10, ge=1)
    min_negative: int = Field(default=3, ge=1)
    min_leaves: int = Field(default=3, ge=1)


class ScoreSettings(_Section):
    """``operator_score`` weights; parts without data are left out and the rest rescaled."""

    weight_activity: float = Field(default=0.3, ge=0.0)
    weight_growth: float = Field(default=0.2, ge=0.0)
    weight_sentiment: float = Field(default=0.2, ge=0.0)
    weight_conversion: float = Field(default=0.2, ge=0.0)
    weight_gmv: float = Field(default=0.1, ge=0.0)


class RetentionSettings(_Section):
    """How long data is kept, in days; 0 keeps it forever (``qunpulse retention run``)."""

    #: Message text is blanked after this; the message row (and every count) stays.
    message_text_days: int = Field(default=180, ge=0)
    #: Join / leave / removal events are deleted after this.
    membership_days: int = Field(default=730, ge=0)
    #: Stored alerts (which quote messages) are deleted after this.
    alerts_days: int = Field(default=90, ge=0)


class WecomPlatformSettings(_Section):
    api_base: str = "https://qyapi.weixin.qq.com"


class DingtalkPlatformSettings(_Section):
    oapi_base: str = "https://oapi.dingtalk.com"
    api_base: str = "https://api.dingtalk.com"
    #: How far a robot callback's ``timestamp`` header may be from now (PLATFORMS.md: 1 h).
    max_clock_skew_seconds: int = Field(default=3600, ge=1)
    #: Stream mode: first reconnect delay after the connection drops; doubles up to the max.
    stream_backoff_initial_seconds: float = Field(default=1.0, gt=0)
    stream_backoff_max_seconds: float = Field(default=60.0, gt=0)


class FeishuPlatformSettings(_Section):
    api_base: str = "https://open.feishu.cn"


class PlatformsSettings(_Section):
    wecom: WecomPlatformSettings = WecomPlatformSettings()
    dingtalk: DingtalkPlatformSettings = DingtalkPlatformSettings()
    feishu: FeishuPlatformSettings = FeishuPlatformSettings()


class DashboardSettings(_Section):
    """The operators' web dashboard (``/dashboard`` in chat sends a sign-in link)."""

    #: Signs sign-in links and session cookies; empty: generated once, kept in the database.
    secret_key: SecretStr | None = None
    #: Admins sign in at ``/dashboard/login`` with this and see every group; empty: off.
    admin_token: SecretStr | None = None
    #: How long a sign-in link works (it works once).
    link_minutes: int = Field(default=10, ge=1, le=1440)
    #: How long a session lasts after sign-in.
    session_hours: int = Field(default=12, ge=1, le=24 * 90)
    #: The period a page shows when none is picked (any ``--period`` of ``qunpulse stats``).
    default_period: str = "7d"


class Settings(_Section):
    """Every setting of qunpulse, validated.

    Build it with :func:`load_settings`, which also finds the file, applies the
    environment overrides and turns validation errors into :class:`ConfigError`
    messages that name the key.
    """

    timezone: str = "Asia/Shanghai"
    locale: Literal["zh_CN", "en"] = "zh_CN"
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    bots: tuple[BotSettings, ...] = ()
    groups: tuple[GroupSettings, ...] = ()
    operators: OperatorsSettings = OperatorsSettings()
    #: Group admins (where the platform says who is one, e.g. DingTalk ``isAdmin``) count
    #: as operators of that group for chat commands.
    operators_include_admins: bool = False
    schedule: ScheduleSettings = ScheduleSettings()
    posts: PostsSettings = PostsSettings()
    alerts: AlertsSettings = AlertsSettings()
    activity: ActivitySettings = ActivitySettings()
    targets: TargetsSettings = TargetsSettings()
    sentiment: SentimentSettings = SentimentSettings()
    text: TextSettings = TextSettings()
    topics: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    stickiness: StickinessSettings = StickinessSettings()
    segments: SegmentsSettings = SegmentsSettings()
    anomalies: AnomaliesSettings = AnomaliesSettings()
    score: ScoreSettings = ScoreSettings()
    retention: RetentionSettings = RetentionSettings()
    platforms: PlatformsSettings = PlatformsSettings()
    dashboard: DashboardSettings = DashboardSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'unknown time zone {name!r} (use an IANA name such as "Asia/Shanghai")'
            ) from None
        return name

    @model_validator(mode="after")
    def _unique_bot_ids(self) -> Settings:
        seen: dict[str, int] = {}
        for index, bot in enumerate(self.bots):
            if bot.id in seen:
                raise ValueError(
                    f"bots[{index}].id: {bot.id!r} is already used by bots[{seen[bot.id]}]; "
                    "each bot needs its own id (it is the callback URL /callback/{id})"
                )
            seen[bot.id] = index
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


def find_config_file(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> Path | None:
    """Return the config file: ``-c FILE``, else ``./qunpulse.toml``, else ``$QUNPULSE_CONFIG``.

    Raises:
        ConfigError: ``-c`` or ``QUNPULSE_CONFIG`` names a file that does not exist.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"-c {path}: no such file")
        return path
    local = Path(DEFAULT_CONFIG_NAME)
    if local.is_file():
        return local
    from_env = env.get(CONFIG_ENV)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={path}: no such file")
        return path
    return None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Find, read and validate the configuration.

    Args:
        path: the file given with ``-c``; ``None`` searches the default places.
        env: the environment to read overrides from (defaults to ``os.environ``).

    Raises:
        ConfigError: the file cannot be read or a value is invalid; the message names
            the key, e.g. ``server.port: expected an integer, got "abc"``.
    """
    environ = os.environ if env is None else env
    file = find_config_file(path, environ)
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    _apply_overrides(data, environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file)) from None


def _apply_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Merge ``QUNPULSE_SECTION__KEY=value`` variables into the file's data, in place.

    A value that looks like a JSON list or object (``["投诉","退款"]``) is parsed as
    JSON; anything else stays a string for the model to convert.
    """
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        value: Any = raw
        if raw[:1] in "[{":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(raw)
        section = data
        for part in path[:-1]:
            child = section.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a section")
            section = child
        section[path[-1]] = value


_TYPE_WORDS = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "missing": "is required",
    "extra_forbidden": "is not a known key (compare with config/qunpulse.example.toml)",
    "literal_error": None,
    "union_tag_invalid": None,
}


def _describe(exc: ValidationError, file: Path | None) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        key = _key_path(error["loc"])
        kind = error["type"]
        words = _TYPE_WORDS.get(kind)
        if words and kind not in ("missing", "extra_forbidden"):
            text = f"{words}, got {_show(error.get('input'), key)}"
        elif words:
            text = words
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"config error: {key}: {text}" if key else f"config error: {text}")
    if file is not None:
        lines.append(f"(in {file}; environment variables QUNPULSE_SECTION__KEY override it)")
    return "\n".join(lines)


_SECRET_HINTS = ("secret", "token", "key", "webhook", "password")


def _show(value: object, key: str) -> str:
    if any(hint in key.rsplit(".", 1)[-1] for hint in _SECRET_HINTS):
        return "a value that is not shown (it is a secret)"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _key_path(loc: tuple[int | str, ...]) -> str:
    tags = {"wecom_aibot", "wecom_app", "dingtalk_robot", "dingtalk_events", "feishu"}
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        elif part in tags and index > 0 and isinstance(loc[index - 1], int):
            continue  # the discriminator's branch name, not a key the user wrote
        else:
            parts.append(part)
    return ".".join(parts)


def redact_url(url: str) -> str:
    """Return a database or webhook URL with its password and query secrets hidden."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
