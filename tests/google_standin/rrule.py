"""Expansion of RFC 5545 recurrence lines (RRULE, EXDATE, RDATE) in an event's own time zone.

Supported: FREQ=DAILY/WEEKLY/MONTHLY/YEARLY with INTERVAL, COUNT, UNTIL, BYDAY (with ordinals
for MONTHLY, and for YEARLY together with BYMONTH), BYMONTHDAY (negative values count from the end
of the month), BYMONTH, BYSETPOS and WKST; EXDATE and RDATE as DATE or DATE-TIME (UTC, TZID= or
floating). Anything else raises ``ValueError`` so a test never silently expands a rule differently
from Google.

Occurrences are computed as naive wall-clock datetimes in the event's zone; the caller attaches the
zone, so a 09:00 Europe/Berlin meeting stays 09:00 local across a DST change. A wall-clock time in a
spring-forward gap resolves with the offset before the gap (``fold=0``), as RFC 5545 prescribes.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_KNOWN_PARTS = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
}
UTC = dt.UTC


@dataclass(frozen=True)
class Rule:
    freq: str
    interval: int = 1
    count: int | None = None
    until_utc: dt.datetime | None = None  # UNTIL=...Z
    until_local: dt.datetime | None = None  # UNTIL=YYYYMMDDTHHMMSS (floating) or a DATE
    by_day: tuple[tuple[int, int], ...] = ()  # (ordinal or 0, weekday)
    by_month_day: tuple[int, ...] = ()
    by_month: tuple[int, ...] = ()
    by_set_pos: tuple[int, ...] = ()
    week_start: int = 0


@dataclass(frozen=True)
class Recurrence:
    rules: tuple[Rule, ...]
    exdates: frozenset[dt.datetime]  # naive wall-clock in the event's zone (00:00 for dates)
    rdates: tuple[dt.datetime, ...]


def _parse_int_list(name: str, value: str, low: int, high: int) -> tuple[int, ...]:
    out: list[int] = []
    for part in value.split(","):
        try:
            number = int(part)
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not a number") from None
        if number == 0 or not low <= abs(number) <= high:
            raise ValueError(f"{name}: {number} is out of range")
        out.append(number)
    return tuple(out)


def _parse_date_time(value: str) -> tuple[dt.datetime, bool, bool]:
    """Return (naive datetime, is_utc, is_date) for a DATE or DATE-TIME value."""
    if len(value) == 8 and value.isdigit():
        return dt.datetime.strptime(value, "%Y%m%d"), False, True
    is_utc = value.endswith("Z")
    text = value[:-1] if is_utc else value
    try:
        parsed = dt.datetime.strptime(text, "%Y%m%dT%H%M%S")
    except ValueError:
        raise ValueError(f"invalid DATE-TIME value {value!r}") from None
    return parsed, is_utc, False


def parse_rrule(text: str) -> Rule:
    body = text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text
    parts: dict[str, str] = {}
    for item in body.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.upper()
        if not sep or not value:
            raise ValueError(f"malformed RRULE part {item!r}")
        if key not in _KNOWN_PARTS:
            raise ValueError(f"unsupported RRULE part {key}")
        if key in parts:
            raise ValueError(f"duplicate RRULE part {key}")
        parts[key] = value.upper()
    freq = parts.get("FREQ")
    if freq not in FREQUENCIES:
        raise ValueError(f"unsupported or missing FREQ in {text!r}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL must not occur in the same RRULE")
    interval = int(parts.get("INTERVAL", "1"))
    if interval < 1:
        raise ValueError("INTERVAL must be positive")
    count = int(parts["COUNT"]) if "COUNT" in parts else None
    if count is not None and count < 1:
        raise ValueError("COUNT must be positive")
    until_utc = until_local = None
    if "UNTIL" in parts:
        until, is_utc, _is_date = _parse_date_time(parts["UNTIL"])
        if is_utc:
            until_utc = until.replace(tzinfo=UTC)
        else:
            until_local = until if not _is_date else until.replace(hour=23, minute=59, second=59)
    by_day: list[tuple[int, int]] = []
    if "BYDAY" in parts:
        for part in parts["BYDAY"].split(","):
            code = part[-2:]
            if code not in WEEKDAYS:
                raise ValueError(f"BYDAY: invalid weekday {part!r}")
            ordinal_text = part[:-2]
            ordinal = int(ordinal_text) if ordinal_text not in ("", "+", "-") else 0
            if ordinal and (freq not in ("MONTHLY", "YEARLY") or abs(ordinal) > 5):
                raise ValueError(f"BYDAY: ordinal {part!r} is not supported with FREQ={freq}")
            by_day.append((ordinal, WEEKDAYS[code]))
    by_month_day = (
        _parse_int_list("BYMONTHDAY", parts["BYMONTHDAY"], 1, 31) if "BYMONTHDAY" in parts else ()
    )
    by_month = _parse_int_list("BYMONTH", parts["BYMONTH"], 1, 12) if "BYMONTH" in parts else ()
    if any(m < 0 for m in by_month):
        raise ValueError("BYMONTH must be positive")
    by_set_pos = (
        _parse_int_list("BYSETPOS", parts["BYSETPOS"], 1, 366) if "BYSETPOS" in parts else ()
    )
    if freq == "YEARLY" and any(o for o, _ in by_day) and not by_month:
        raise ValueError("BYDAY with an ordinal in a YEARLY rule needs BYMONTH here")
    if freq == "WEEKLY" and by_month_day:
        raise ValueError("BYMONTHDAY is not allowed with FREQ=WEEKLY")
    week_start = WEEKDAYS[parts["WKST"]] if "WKST" in parts else 0
    return Rule(
        freq=freq,
        interval=interval,
        count=count,
        until_utc=until_utc,
        until_local=until_local,
        by_day=tuple(by_day),
        by_month_day=by_month_day,
        by_month=by_month,
        by_set_pos=by_set_pos,
        week_start=week_start,
    )


def _parse_date_list(line: str, zone: ZoneInfo | None) -> list[dt.datetime]:
    head, sep, values = line.partition(":")
    if not sep:
        raise ValueError(f"malformed line {line!r}")
    params = head.split(";")[1:]
    source_zone: ZoneInfo | None = None
    for param in params:
        key, _, value = param.partition("=")
        if key.upper() == "TZID":
            source_zone = ZoneInfo(value)
        elif key.upper() == "VALUE" and value.upper() not in ("DATE", "DATE-TIME"):
            raise ValueError(f"unsupported VALUE={value} in {line!r}")
    out: list[dt.datetime] = []
    for value in values.split(","):
        naive, is_utc, is_date = _parse_date_time(value.strip())
        if is_date or zone is None:
            out.append(naive if is_date else naive.replace(hour=0, minute=0, second=0))
            continue
        if is_utc:
            out.append(naive.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None))
        elif source_zone is not None:
            out.append(naive.replace(tzinfo=source_zone).astimezone(zone).replace(tzinfo=None))
        else:
            out.append(naive)
    return out


def parse_recurrence(lines: Sequence[str], zone: ZoneInfo | None) -> Recurrence:
    """``zone`` is the event's zone for timed events, ``None`` for all-day events."""
    rules: list[Rule] = []
    exdates: set[dt.datetime] = set()
    rdates: list[dt.datetime] = []
    for line in lines:
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name == "RRULE":
            rules.append(parse_rrule(line))
        elif name == "EXDATE":
            exdates.update(_parse_date_list(line, zone))
        elif name == "RDATE":
            rdates.extend(_parse_date_list(line, zone))
        else:
            raise ValueError(f"unsupported recurrence line {line!r}")
    if not rules and not rdates:
        raise ValueError("a recurrence needs at least one RRULE or RDATE")
    return Recurrence(tuple(rules), frozenset(exdates), tuple(rdates))


def _month_days(year: int, month: int, rule: Rule, start_day: int) -> list[int]:
    last = calendar.monthrange(year, month)[1]
    month_days: set[int] | None = None
    if rule.by_month_day:
        month_days = {d if d > 0 else last + 1 + d for d in rule.by_month_day}
        month_days = {d for d in month_days if 1 <= d <= last}
    weekday_days: set[int] | None = None
    if rule.by_day:
        weekday_days = set()
        first_weekday = calendar.monthrange(year, month)[0]
        for ordinal, weekday in rule.by_day:
            first = 1 + (weekday - first_weekday) % 7
            matches = list(range(first, last + 1, 7))
            if ordinal == 0:
                weekday_days.update(matches)
            elif ordinal > 0 and ordinal <= len(matches):
                weekday_days.add(matches[ordinal - 1])
            elif ordinal < 0 and -ordinal <= len(matches):
                weekday_days.add(matches[ordinal])
    if month_days is None and weekday_days is None:
        return [start_day] if start_day <= last else []
    if month_days is None:
        assert weekday_days is not None
        return sorted(weekday_days)
    if weekday_days is None:
        return sorted(month_days)
    return sorted(month_days & weekday_days)


def _select(days: list[dt.date], rule: Rule) -> list[dt.date]:
    if not rule.by_set_pos or not days:
        return days
    chosen = set()
    for pos in rule.by_set_pos:
        if pos > 0 and pos <= len(days):
            chosen.add(days[pos - 1])
        elif pos < 0 and -pos <= len(days):
            chosen.add(days[pos])
    return sorted(chosen)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _candidate_days(rule: Rule, start: dt.date, last_day: dt.date) -> Iterator[dt.date]:
    """Days matching the rule, ascending, from the period containing ``start`` to ``last_day``."""
    if rule.freq == "DAILY":
        day = start
        step = dt.timedelta(days=rule.interval)
        weekdays = {w for _, w in rule.by_day}
        while day <= last_day:
            if (
                (not rule.by_month or day.month in rule.by_month)
                and (not weekdays or day.weekday() in weekdays)
                and (not rule.by_month_day or _matches_month_day(day, rule.by_month_day))
            ):
                yield day
            day += step
    elif rule.freq == "WEEKLY":
        week_days = sorted({w for _, w in rule.by_day} or {start.weekday()})
        week = start - dt.timedelta(days=(start.weekday() - rule.week_start) % 7)
        while week <= last_day:
            days = sorted(week + dt.timedelta(days=(w - rule.week_start) % 7) for w in week_days)
            days = [d for d in days if not rule.by_month or d.month in rule.by_month]
            yield from _select(days, rule)
            week += dt.timedelta(weeks=rule.interval)
    elif rule.freq == "MONTHLY":
        year, month = start.year, start.month
        while dt.date(year, month, 1) <= last_day:
            if not rule.by_month or month in rule.by_month:
                days = [dt.date(year, month, d) for d in _month_days(year, month, rule, start.day)]
                yield from _select(days, rule)
            year, month = _add_months(year, month, rule.interval)
    else:  # YEARLY
        year = start.year
        while dt.date(year, 1, 1) <= last_day:
            days = []
            for month in sorted(rule.by_month or (start.month,)):
                if not rule.by_month and not rule.by_day and not rule.by_month_day:
                    # plain yearly: same month and day (29 Feb only in leap years)
                    if start.day <= calendar.monthrange(year, month)[1]:
                        days.append(dt.date(year, month, start.day))
                    continue
                days.extend(
                    dt.date(year, month, d) for d in _month_days(year, month, rule, start.day)
                )
            yield from _select(days, rule)
            year += rule.interval


def _matches_month_day(day: dt.date, by_month_day: tuple[int, ...]) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    return any(day.day == (d if d > 0 else last + 1 + d) for d in by_month_day)


def expand(
    recurrence: Recurrence,
    dtstart: dt.datetime,
    *,
    zone: ZoneInfo | None,
    until: dt.datetime,
    limit: int,
) -> list[dt.datetime]:
    """Occurrence starts (naive wall-clock in ``zone``; 00:00 for all-day events) from ``dtstart``
    up to and including ``until`` (naive, same zone), at most ``limit`` of them."""
    found: set[dt.datetime] = set()
    for rule in recurrence.rules:
        produced = 0
        for day in _candidate_days(rule, dtstart.date(), until.date()):
            candidate = dt.datetime.combine(day, dtstart.time())
            if candidate < dtstart:
                continue
            if rule.until_utc is not None:
                if zone is None:
                    if candidate.date() > rule.until_utc.date():
                        break
                elif candidate.replace(tzinfo=zone).astimezone(UTC) > rule.until_utc:
                    break
            if rule.until_local is not None and candidate > rule.until_local:
                break
            produced += 1
            if rule.count is not None and produced > rule.count:
                break
            if candidate > until or produced > limit:
                break
            found.add(candidate)
    found.update(r for r in recurrence.rdates if dtstart <= r <= until)
    found.difference_update(recurrence.exdates)
    return sorted(found)[:limit]
