"""Time zones as people name them: "PST", "Europe/Berlin", "UTC+2", "Berlin", "NYC".

:func:`resolve_timezone` turns what someone said into a zone the scheduler can use: an IANA
name (abbreviations and cities become one) or a fixed offset ``UTC+02:00``. Cities come from
the time zone database itself (``Europe/Berlin`` names Berlin) and, for large cities that have
no zone of their own there (San Francisco, Munich, Bangalore), from :data:`CITY_ZONES`.
"""

from __future__ import annotations

import functools
import re
import zoneinfo

__all__ = ["CITY_ZONES", "resolve_timezone"]

_TZ_ABBREVIATIONS = {
    "utc": "UTC",
    "gmt": "GMT",
    "z": "UTC",
    "cet": "CET",
    "cest": "CET",
    "central european": "CET",
    "eet": "EET",
    "eest": "EET",
    "wet": "WET",
    "west": "WET",
    "bst": "Europe/London",
    "ist": "Asia/Kolkata",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "pt": "America/Los_Angeles",
    "pacific": "America/Los_Angeles",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "mt": "America/Denver",
    "mountain": "America/Denver",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "ct": "America/Chicago",
    "central": "America/Chicago",
    "est": "America/New_York",
    "edt": "America/New_York",
    "et": "America/New_York",
    "eastern": "America/New_York",
    "jst": "Asia/Tokyo",
    "kst": "Asia/Seoul",
    "sgt": "Asia/Singapore",
    "hkt": "Asia/Hong_Kong",
    "aest": "Australia/Sydney",
    "aedt": "Australia/Sydney",
    "nzst": "Pacific/Auckland",
    "nzdt": "Pacific/Auckland",
    "brt": "America/Sao_Paulo",
}
#: Large cities without a zone of their own in the database, and short names for some.
CITY_ZONES = {
    "nyc": "America/New_York",
    "new york city": "America/New_York",
    "boston": "America/New_York",
    "washington": "America/New_York",
    "dc": "America/New_York",
    "atlanta": "America/New_York",
    "miami": "America/New_York",
    "philadelphia": "America/New_York",
    "pittsburgh": "America/New_York",
    "raleigh": "America/New_York",
    "austin": "America/Chicago",
    "dallas": "America/Chicago",
    "houston": "America/Chicago",
    "minneapolis": "America/Chicago",
    "nashville": "America/Chicago",
    "san francisco": "America/Los_Angeles",
    "sf": "America/Los_Angeles",
    "the bay area": "America/Los_Angeles",
    "bay area": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "portland": "America/Los_Angeles",
    "san diego": "America/Los_Angeles",
    "la": "America/Los_Angeles",
    "salt lake city": "America/Denver",
    "montreal": "America/Toronto",
    "ottawa": "America/Toronto",
    "manchester": "Europe/London",
    "edinburgh": "Europe/London",
    "munich": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "cologne": "Europe/Berlin",
    "barcelona": "Europe/Madrid",
    "milan": "Europe/Rome",
    "geneva": "Europe/Zurich",
    "lyon": "Europe/Paris",
    "rotterdam": "Europe/Amsterdam",
    "krakow": "Europe/Warsaw",
    "porto": "Europe/Lisbon",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "hyderabad": "Asia/Kolkata",
    "pune": "Asia/Kolkata",
    "chennai": "Asia/Kolkata",
    "beijing": "Asia/Shanghai",
    "shenzhen": "Asia/Shanghai",
    "osaka": "Asia/Tokyo",
    "tel aviv": "Asia/Jerusalem",
    "abu dhabi": "Asia/Dubai",
    "cape town": "Africa/Johannesburg",
    "rio": "America/Sao_Paulo",
    "rio de janeiro": "America/Sao_Paulo",
}

_OFFSET = re.compile(r"^(utc|gmt)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$")


@functools.cache
def _zones() -> tuple[dict[str, str], dict[str, str]]:
    """IANA zone names by lowercase name, and by lowercase city (``new york``)."""
    try:
        names = zoneinfo.available_timezones()
    except Exception:  # no tz database: only abbreviations and offsets resolve
        names = set()
    by_name = {n.lower(): n for n in names}
    by_city: dict[str, str] = {}
    for name in sorted(names):
        region, _, city = name.rpartition("/")
        if region and region.split("/")[0] in (
            "Africa",
            "America",
            "Asia",
            "Atlantic",
            "Australia",
            "Europe",
            "Indian",
            "Pacific",
        ):
            by_city.setdefault(city.replace("_", " ").lower(), name)
    return by_name, by_city


def resolve_timezone(text: str, *, cities: bool = True) -> str | None:
    """The zone ``text`` names (``"PST"``, ``"Europe/Berlin"``, ``"UTC+2"``, ``"Berlin"``), or
    None. Abbreviations and cities become IANA names; offsets read ``UTC+02:00``."""
    t = text.strip().strip(".!,;").strip()
    t = re.sub(r"^(the)\s+", "", t, flags=re.I)
    t = re.sub(r"\s+(time\s?zone|time|tz)$", "", t, flags=re.I).strip()
    low = t.lower()
    if not low or len(low) > 40:
        return None
    if low in _TZ_ABBREVIATIONS:
        return _TZ_ABBREVIATIONS[low]
    m = _OFFSET.match(low)
    if m:
        hours, minutes = int(m.group(3)), int(m.group(4) or 0)
        if hours > 14 or minutes >= 60:
            return None
        return f"UTC{m.group(2)}{hours:02d}:{minutes:02d}"
    by_name, by_city = _zones()
    if cities and "/" not in low and low in by_city:
        return by_city[low]  # "Singapore" is Asia/Singapore, not the old link "Singapore"
    if low in by_name:
        return by_name[low]
    if cities:
        return by_city.get(low) or CITY_ZONES.get(low)
    return None
