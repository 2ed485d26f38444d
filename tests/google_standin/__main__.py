"""``python -m tests.google_standin --port 8765 --events 10000``

Serves the stand-in in this process with one OAuth client, one user and a primary calendar holding
``--events`` generated events. Prints one JSON line (base_url, the four URLs, client and user) to
stdout once it accepts connections; runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import uvicorn

from tests.google_standin.app import create_app
from tests.google_standin.common import StandinConfig
from tests.google_standin.control import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    GoogleStandin,
)
from tests.google_standin.server import _bind, _uvicorn_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.google_standin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--events", type=int, default=0, help="generated events in the primary")
    parser.add_argument(
        "--all-day-every", type=int, default=0, help="make every N-th generated event all-day"
    )
    parser.add_argument("--email", default=DEFAULT_EMAIL)
    parser.add_argument("--time-zone", default="UTC", help="the user's and primary's zone")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="registered redirect URI (repeatable; none: accept any)",
    )
    parser.add_argument(
        "--token-lifetime", type=float, default=3599.0, help="access token lifetime in seconds"
    )
    parser.add_argument("--rotate-refresh-tokens", action="store_true")
    parser.add_argument("--no-require-pkce", action="store_true")
    parser.add_argument("--max-page-size", type=int, default=None)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    config = StandinConfig(
        access_token_lifetime=args.token_lifetime,
        rotate_refresh_tokens=args.rotate_refresh_tokens,
        require_pkce=not args.no_require_pkce,
        max_page_size=args.max_page_size,
    )
    standin = GoogleStandin(config, seed=False)
    standin.add_client(args.client_id, args.client_secret, args.redirect_uri)
    standin.add_user(args.email, time_zone=args.time_zone)
    started = time.perf_counter()
    if args.events:
        standin.generate_events(args.email, args.events, all_day_every=args.all_day_every)
    seeded = time.perf_counter() - started

    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    base_url = f"http://{host}:{port}"
    server = uvicorn.Server(_uvicorn_config(create_app(standin), args.log_level, loop="auto"))

    info = {
        "base_url": base_url,
        "auth_uri": base_url + "/o/oauth2/v2/auth",
        "token_uri": base_url + "/token",
        "revoke_uri": base_url + "/revoke",
        "calendar_api_base": base_url + "/calendar/v3",
        "control_url": base_url + "/_control",
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "email": args.email,
        "calendar_id": args.email,
        "events": args.events,
        "seed_seconds": round(seeded, 3),
        "pid": os.getpid(),
    }

    def announce() -> None:
        # readiness is announced only once the listener accepts connections
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.01)
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()

    threading.Thread(target=announce, name="announce", daemon=True).start()
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
