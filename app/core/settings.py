"""Configuration from environment variables (see README, "Configuration")."""
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./commerce.db"
    db_pool_size: int = 20
    # seconds a request waits for a pooled connection before it answers 503 (retry)
    db_pool_timeout: float = 5.0
    db_echo: bool = False

    stripe_api_key: str = "sk_test_unset"
    stripe_webhook_secret: str = "whsec_unset"
    stripe_api_base: str | None = None
    stripe_multicapture: bool = False  # ask for multicapture: one capture per shipment of a split order
    stripe_timeout_seconds: float = 20.0
    stripe_max_network_retries: int = 1  # every call carries an idempotency key, so a retry is safe
    # warn (event payment.authorization_expiring) this long before an uncaptured authorization lapses
    authorization_warning_hours: int = 24

    # Rate limiting per API key: N requests per window (moving window).
    rate_limit: str = "6000/minute"
    # auto: process memory for one worker, the database when WEB_CONCURRENCY > 1;
    # or memory://, database, redis://host:6379
    rate_limit_storage_uri: str = "auto"

    # request bodies (413 payload_too_large above these)
    max_body_bytes: int = 4 * 1024 * 1024
    max_import_bytes: int = 200 * 1024 * 1024

    idempotency_ttl_seconds: int = 24 * 3600

    # POST /v1/catalog/import: a file of more rows than this runs as a background job (202 and
    # GET /v1/catalog/imports/{id}); smaller ones are answered inline. Rows per committed chunk
    # of a job; a running job whose last chunk committed longer ago than import_stale_seconds
    # (its process died) is taken over by the worker.
    import_inline_max_rows: int = 5000
    import_chunk_rows: int = 1000
    import_stale_seconds: int = 120

    # Reservations by storefront and marketplace keys (POST /v1/reservations): at most this
    # many units per reservation, held at most this long (422 naming the field above), and at
    # most this many units held by one key at a time (its active holds; 409 reservation_limit).
    reservation_max_quantity_public: int = 10
    reservation_max_ttl_seconds_public: int = 3600
    reservation_max_units_held_public: int = 200

    # Run the outbox worker / expiry sweeps inside the API process (dev convenience).
    inline_worker: bool = False
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 8
    # the listing feed's as_of lies this far behind the walk's start, for writes still committing
    # then (app/channels/listings.py)
    listings_watermark_lag_seconds: float = 60.0
    # webhook receivers on loopback and private networks (10/8, 172.16/12, 192.168/16, fc00::/7):
    # refused unless true (development, tests); link-local / metadata addresses always are
    webhook_allow_private_urls: bool = False
    # events older than this, fully delivered, and delivery-log rows older than this are deleted
    events_retention_days: int = 30

    public_base_url: str = "https://api.example.com"


@lru_cache
def get_settings() -> Settings:
    return Settings()
