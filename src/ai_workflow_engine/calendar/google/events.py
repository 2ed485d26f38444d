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

Pages are yielded as they arrive, so memory stays flat however large the calendar is. Each page
is handed to the caller's `prepare` (parsing its items, say) and yielded in the form that returns.
Given a `fetch_ahead`, the request for the next page goes out when a page is yielded, and the task
that receives it also prepares it: Google builds the next page, and this process parses it, while
the caller writes the current one. At most two pages are held. (Requesting the page after that
one as well, before preparing the next, was measured too: three parties then compete for the
CPU, and a sync of 10,000 events got slower.) `nextSyncToken` is only read from the last page
(the one without `nextPageToken`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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


# a page in the form its consumer works with
Prepared = TypeVar("Prepared")

FORBIDDEN_WITH_SYNC_TOKEN = frozenset(
    {"timeMin", "timeMax", "updatedMin", "orderBy", "q", "iCalUID"}
)


@dataclass(frozen=True, slots=True)
class EventPage:
    items: Sequence[dict[str, Any]]  # decoded JSON objects
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
    prepare: Callable[[EventPage], Prepared],
    page_size: int,
    sync_token: str | None,
    retry_after: int,
    fetch_ahead: FetchAhead | None = None,
) -> AsyncGenerator[Prepared, None]:
    """The pages of a full run (`sync_token` None) or of an incremental run, in order, each as
    `prepare` made it."""
    path = calendar_events_path(google_calendar_id)
    query = run_query(page_size, sync_token)
    seen_tokens: set[str] = set()

    def read(body: Mapping[str, Any]) -> tuple[Prepared, str | None]:
        """The prepared page, and the token of the page after it (None after the last page)."""
        items = body.get("items", [])
        if not isinstance(items, list) or not all(type(item) is dict for item in items):
            raise GoogleBadGateway(
                "Google sent an events page without a list of items", retry_after
            )
        next_page = _str_or_none(body.get("nextPageToken"))
        if next_page is not None:
            if next_page in seen_tokens:
                raise GoogleBadGateway("Google repeated an events page token", retry_after)
            seen_tokens.add(next_page)
        sync = None if next_page else _str_or_none(body.get("nextSyncToken"))
        page = EventPage(items, _str_or_none(body.get("timeZone")), sync, last=next_page is None)
        return prepare(page), next_page

    async def read_ahead(request: asyncio.Task[Mapping[str, Any]]) -> tuple[Prepared, str | None]:
        return read(await request)

    request: asyncio.Task[Mapping[str, Any]] | None = None
    reader: asyncio.Task[tuple[Prepared, str | None]] | None = None
    try:
        page, next_page = read(await fetch(path, query))
        while next_page is not None:
            params = {**query, "pageToken": next_page}
            if fetch_ahead is not None:
                request = await fetch_ahead(path, params)
                reader = asyncio.create_task(read_ahead(request))
            yield page
            try:
                if reader is None:
                    raise FetchAheadDeclined()
                page, next_page = await reader
            except FetchAheadDeclined:
                page, next_page = read(await fetch(path, params))
            request = reader = None
        yield page
    finally:
        # the run ended early (it failed): the request ahead is not needed
        await _stop(request, reader)


async def _stop(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks that are not done, and wait until they are."""
    started = [task for task in tasks if task is not None]
    for task in started:
        task.cancel()
    if started:
        await asyncio.wait(started)
    for task in started:
        if not task.cancelled():
            task.exception()  # retrieved: the run's own failure is the one reported


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
