"""The support dashboard's chart: connections per status per day as stacked SVG bars (geometry only)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from connector import summaries
from connector.models import Connection, StatusDay

CHART_COLOURS = {
    Connection.Status.CONNECTED: "#126b2f",
    Connection.Status.NEEDS_ATTENTION: "#b06d00",
    Connection.Status.BROKEN: "#a4161a",
    Connection.Status.IN_SETUP: "#0b57d0",
    Connection.Status.NOT_STARTED: "#8a94a3",
    Connection.Status.DISCONNECTED: "#4a5360",
}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    colour: str
    title: str


def status_chart(*, live_counts: dict[str, int], today, days: int = summaries.CHART_DAYS) -> dict:
    """Stacked bars of connections per status per day (stored StatusDay rows, today from live counts)."""
    first = today - timedelta(days=days - 1)
    per_day: dict = {first + timedelta(days=n): {} for n in range(days)}
    for row in StatusDay.objects.filter(day__gte=first, day__lt=today):
        per_day[row.day][row.status] = row.count
    per_day[today] = dict(live_counts)
    width, height, gap = 600, 160, 2
    bar_width = width / days - gap
    tallest = max((sum(counts.values()) for counts in per_day.values()), default=0) or 1
    bars: list[Bar] = []
    for index, (day, counts) in enumerate(sorted(per_day.items())):
        top = height
        for status in Connection.Status.values:
            count = counts.get(status, 0)
            if not count:
                continue
            bar_height = height * count / tallest
            top -= bar_height
            bars.append(Bar(x=round(index * (bar_width + gap), 2), y=round(top, 2), height=round(bar_height, 2),
                            colour=CHART_COLOURS[status],
                            title=f"{day:%-d %b}: {count} {Connection.Status(status).label.lower()}"))
    legend = [(CHART_COLOURS[value], label) for value, label in Connection.Status.choices]
    return {"bars": bars, "bar_width": round(bar_width, 2), "width": width, "height": height, "legend": legend,
            "tallest": tallest, "first": first, "last": today}
