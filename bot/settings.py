"""Settings from the environment (pydantic-settings), read once and passed in; secrets never printed."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the bot reads from its environment. Only the Slack credentials are required to serve."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode only
    redis_url: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    port: int = 3000
    answer_cache_ttl_s: int = 24 * 3600
    thread_ttl_days: int = 14
    feedback_ttl_days: int = 730  # answers' feedback, kept for calibration until exported and beyond
    dedupe_ttl_s: int = 3600
    rate_limit_per_minute: int = 20
    redis_timeout_s: float = 0.5
    redis_retry_after_s: float = 1.0
    slack_max_retries: int = 3
    slack_timeout_s: float = 30.0  # per Web API call; one that times out is tried once more
    shutdown_grace_s: float = 25.0
    max_answers_in_flight: int = 8  # answers worked on at once per process; acknowledgements never wait for them
    answer_quiet_s: float = 0.05  # answers start once no request has arrived for this long...
    answer_max_defer_s: float = 2.0  # ...or once they have waited this long, whatever keeps arriving
    log_level: str = "INFO"
    # regions (issue 12): refresh prices and offerings from AWS every N hours (0: off; needs AWS credentials)
    catalog_refresh_hours: float = 0.0
    hub_cache_ttl_s: int = 24 * 3600  # a model read from the Hugging Face Hub is kept this long (issue 12)
    hub_timeout_s: float = 5.0  # seconds one Hub request may take

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value else None
