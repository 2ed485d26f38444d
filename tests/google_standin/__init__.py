"""A local stand-in for Google's OAuth 2.0 endpoints and Calendar API v3 (see README.md)."""

from tests.google_standin.common import ApiError, Clock, OAuthError, StandinConfig
from tests.google_standin.control import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    UNSET,
    GoogleStandin,
)
from tests.google_standin.faults import Fault, FaultPlan, RecordedRequest
from tests.google_standin.oauth import DEFAULT_SCOPES
from tests.google_standin.server import (
    ConsentRedirect,
    ControlClient,
    RunningStandin,
    StandinProcess,
    pkce_pair,
    run_standin,
    spawn_standin_process,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_EMAIL",
    "DEFAULT_SCOPES",
    "UNSET",
    "ApiError",
    "Clock",
    "ConsentRedirect",
    "ControlClient",
    "Fault",
    "FaultPlan",
    "GoogleStandin",
    "OAuthError",
    "RecordedRequest",
    "RunningStandin",
    "StandinConfig",
    "StandinProcess",
    "pkce_pair",
    "run_standin",
    "spawn_standin_process",
]
