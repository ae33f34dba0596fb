"""Configuration from environment variables (see README, "Configuration")."""
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./commerce.db"
    db_pool_size: int = 20
    db_echo: bool = False

    stripe_api_key: str = "sk_test_unset"
    stripe_webhook_secret: str = "whsec_unset"
    stripe_api_base: str | None = None

    # Rate limiting per API key: N requests per window (moving window).
    rate_limit: str = "6000/minute"
    rate_limit_storage_uri: str = "memory://"

    idempotency_ttl_seconds: int = 24 * 3600
    # A "running" idempotency record older than this is treated as abandoned (crashed worker).
    idempotency_lock_timeout_seconds: int = 60

    # Run the outbox worker / expiry sweeps inside the API process (dev convenience).
    inline_worker: bool = False
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 8

    public_base_url: str = "https://api.example.com"


@lru_cache
def get_settings() -> Settings:
    return Settings()
