"""API8 Security Misconfiguration, settings: production refuses to start with the development
secret, a short one, or Google tokens without encryption keys of their own; the app never runs
in debug mode. (Weak SECRET_KEY values: tests/infra/test_database_url.py.)"""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from ai_workflow_engine.core.config import describe_settings_error, load_settings
from ai_workflow_engine.main import create_app

STRONG_SECRET = "Zq4v1Hq8bq0kX2pC7yT9mN3rL5sW6dF0gJ8hK1"
GOOGLE = {"google_client_id": "client", "google_client_secret": "google-secret-value"}


def test_production_refuses_google_without_token_encryption_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    with pytest.raises(ValidationError) as caught:
        load_settings(google=GOOGLE)
    line = describe_settings_error(caught.value)
    assert "TOKEN_ENCRYPTION_KEYS" in line
    assert STRONG_SECRET not in line
    assert "google-secret-value" not in line

    key = Fernet.generate_key().decode()
    settings = load_settings(google=GOOGLE, security={"token_encryption_keys": key})
    assert settings.security.token_encryption_keys[0].get_secret_value() == key


def test_production_app_runs_without_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    app = create_app(load_settings())
    assert app.debug is False
    # secrets are SecretStr: never in a repr or a log line of the settings
    assert STRONG_SECRET not in repr(app.state.settings)
