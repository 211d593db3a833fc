"""Settings: loaded and validated once at start, then passed around as a typed object."""

from config.settings import ConfigError, Settings, load_settings, redact_url

__all__ = ["ConfigError", "Settings", "load_settings", "redact_url"]
