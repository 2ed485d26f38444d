"""events.list for one calendar, one page at a time.

Every run, full or incremental, asks Google for `singleEvents=true` and `showDeleted=true`:

- `singleEvents=true` makes Google expand recurring series into their instances. Google applies
  the series' exceptions itself (an instance moved to another time comes back at its new time
  under its own stable id, a cancelled instance comes back as a cancellation), evaluates the
  recurrence rule in the series' own time zone (so DST is right), and bounds the expansion of
  endless series to a horizon it keeps moving. Expanding RRULEs here would mean re-implementing
  all of that, and an incremental run would have to re-expand whole series on any change.
- `showDeleted=true` makes deletions visible as cancelled items, which an incremental run needs
  and which a full run may see too.
- Google requires the query of an incremental run to be the query of the full run that issued its
  sync token, so both flags are identical on both kinds of run, and every page of a run repeats
  the run's query with only `pageToken` added. `timeMin`, `timeMax`, `updatedMin`, `orderBy`,
  `q` and `iCalUID` are never sent: they are not allowed with a `syncToken`, and the full run must
  not narrow the set that later increments describe.

Pages are yielded as they arrive, so memory stays flat however large the calendar is. Given a
`fetch_ahead`, the request for the next page goes out when a page is yielded, so that Google
prepares it while the caller writes the current one: at most two pages are held.
`nextSyncToken` is only read from the last page (the one without `nextPageToken`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ai_workflow_engine.calendar.errors import GoogleBadGateway
from ai_workflow_engine.calendar.google.client import calendar_events_path

# (path, query parameters) -> the decoded JSON body of a successful answer
FetchJson = Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, Any]]]
# (path, query parameters) -> a task fetching that answer. Called in the caller's flow, it does
# there whatever must not run concurrently with the caller (obtaining a token through the
# caller's session); the task then only talks to Google, and fails with `FetchAheadDeclined`
# when it would need more of that (a token refresh).
FetchAhead = Callable[[str, Mapping[str, str]], Awaitable["asyncio.Task[Mapping[str, Any]]"]]


class FetchAheadDeclined(Exception):
    """A fetch ahead stopped short of something only the caller's flow may do: the page is then
    fetched the usual way."""


FORBIDDEN_WITH_SYNC_TOKEN = frozenset(
    {"timeMin", "timeMax", "updatedMin", "orderBy", "q", "iCalUID"}
)


@dataclass(frozen=True, slots=True)
class EventPage:
    items: Sequence[Mapping[str, Any]]
    # the calendar's zone as events.list reports it; reads wall times that carry no zone
    time_zone: str | None
    # set on the last page only: the token the next incremental run starts from
    next_sync_token: str | None
    last: bool


def run_query(page_size: int, sync_token: str | None) -> dict[str, str]:
    """The query every page of one run repeats (plus `pageToken` after the first page)."""
    query = {"singleEvents": "true", "showDeleted": "true", "maxResults": str(page_size)}
    if sync_token is not None:
        query["syncToken"] = sync_token
    return query


async def list_event_pages(
    fetch: FetchJson,
    google_calendar_id: str,
    *,
    page_size: int,
    sync_token: str | None,
    retry_after: int,
    fetch_ahead: FetchAhead | None = None,
) -> AsyncGenerator[EventPage, None]:
    """The pages of a full run (`sync_token` None) or of an incremental run, in order."""
    path = calendar_events_path(google_calendar_id)
    query = run_query(page_size, sync_token)
    params: Mapping[str, str] = query
    seen_tokens: set[str] = set()
    ahead: asyncio.Task[Mapping[str, Any]] | None = None
    try:
        while True:
            body = await _answer(fetch, path, params, ahead)
            ahead = None
            items = body.get("items", [])
            if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
                raise GoogleBadGateway(
                    "Google sent an events page without a list of items", retry_after
                )
            next_page = body.get("nextPageToken")
            if isinstance(next_page, str) and next_page:
                if next_page in seen_tokens:
                    raise GoogleBadGateway("Google repeated an events page token", retry_after)
                seen_tokens.add(next_page)
                params = {**query, "pageToken": next_page}
                if fetch_ahead is not None:
                    ahead = await fetch_ahead(path, params)
                yield EventPage(items, _str_or_none(body.get("timeZone")), None, last=False)
                continue
            yield EventPage(
                items,
                _str_or_none(body.get("timeZone")),
                _str_or_none(body.get("nextSyncToken")),
                last=True,
            )
            return
    finally:
        if ahead is not None:
            # the run ended early (it failed): the request ahead is not needed
            ahead.cancel()
            await asyncio.wait([ahead])
            if not ahead.cancelled():
                ahead.exception()  # retrieved: the run's own failure is the one reported


async def _answer(
    fetch: FetchJson,
    path: str,
    params: Mapping[str, str],
    ahead: asyncio.Task[Mapping[str, Any]] | None,
) -> Mapping[str, Any]:
    """The answer fetched ahead, or fetched now when there is none or it was declined."""
    if ahead is not None:
        try:
            return await ahead
        except FetchAheadDeclined:
            pass
    return await fetch(path, params)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
