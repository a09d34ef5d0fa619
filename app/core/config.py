"""Settings: one pydantic-settings model, read from the environment (and `.env`) once."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"change-me", "changeme", "secret", "your-super-secret-jwt-token"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = None
    database_admin_url: str | None = None
    # The API's login role, created by `db init` (LOGIN NOINHERIT, owns nothing, member of anon,
    # authenticated and service_role): Supabase lets no project set `authenticator`'s password.
    motomind_api_role: str = Field(default="motomind_api", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    motomind_api_password: SecretStr | None = None
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    db_statement_cache_size: int = Field(default=100, ge=0)
    # Per-transaction limits, set with the request's claims (role settings don't survive SET ROLE).
    db_statement_timeout_ms: int = Field(default=5000, ge=1)
    db_lock_timeout_ms: int = Field(default=2000, ge=1)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)

    # The in-app scheduler (partitions ahead, feed refresh) when pg_cron does not run them.
    maintenance_scheduler: bool = True
    maintenance_interval_s: float = Field(default=300.0, gt=0)

    supabase_url: str | None = None
    supabase_jwt_secret: SecretStr | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None

    motomind_data_dir: Path = Path(".motomind")
    motomind_env: Literal["dev", "production"] = "dev"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] | None = None
    cors_allow_origins: str = ""
    # API worker processes for `motomind serve` (the name uvicorn and gunicorn read).
    web_concurrency: int = Field(default=1, ge=1, le=64)

    @field_validator("supabase_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def expected_issuer(self) -> str | None:
        if self.jwt_issuer:
            return self.jwt_issuer
        return f"{self.supabase_url}/auth/v1" if self.supabase_url else None

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allow_origins.split(",") if o.strip()]

    def check_secrets(self) -> None:
        """Refuse a well-known placeholder HS256 secret outside dev."""
        secret = self.supabase_jwt_secret
        if (
            self.motomind_env == "production"
            and secret is not None
            and (secret.get_secret_value() in PLACEHOLDER_SECRETS or len(secret) < 32)
        ):
            raise ValueError("SUPABASE_JWT_SECRET is a placeholder or shorter than 32 characters")


@lru_cache
def get_settings() -> Settings:
    return Settings()
