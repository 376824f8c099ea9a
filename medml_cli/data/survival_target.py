"""Reading a time-to-event outcome from a table: follow-up time and event indicator.

Users' files code the event 0/1, 1/2, ``dead``/``alive``, ``TRUE``/``FALSE``...: the config
names the value that means the event happened (``data.event_value``) and every other value
is censored. The outcome becomes a two-column frame (``time``, ``event`` as 0.0/1.0), which
the survival problem type turns into what scikit-survival fits on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medml_cli.errors import DataError

#: Units a follow-up time may be given in (used in reports and plot labels).
TIME_UNITS = ("days", "weeks", "months", "years")


def _as_text(value: object) -> str:
    """A cell or config value as comparable text: 1, 1.0 and "1" are the same; case and
    surrounding spaces do not matter."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return f"{number:g}" if np.isfinite(number) else str(number)
    text = str(value).strip()
    try:
        return f"{float(text):g}"
    except ValueError:
        return text.casefold()


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


def survival_outcome(frame: pd.DataFrame, *, time: str, event: str, event_value: object,
                     source: str) -> pd.DataFrame:
    """The checked outcome of ``frame``: columns ``time`` (> 0) and ``event`` (1.0 where the
    event column equals ``event_value``, 0.0 = censored), on the frame's index."""
    times = pd.to_numeric(frame[time], errors="coerce")
    bad_text = times.isna() & frame[time].notna()
    if bad_text.any():
        row = _first_row(bad_text.to_numpy())
        raise DataError(
            f"the time column '{time}' holds text that is not a number (data row {row}: "
            f"{frame[time].iloc[row - 1]!r}).",
            "give every follow-up time as a number (in the data's unit), or check that "
            "`data.time` names the duration column.", source=source)
    missing = times.isna().to_numpy() | frame[event].isna().to_numpy()
    if missing.any():
        which = time if times.isna().any() else event
        raise DataError(
            f"the outcome is missing in {int(missing.sum())} row(s): '{which}' is empty "
            f"(first at data row {_first_row(missing)}).",
            "fill in the follow-up time and event status of those patients, remove the rows, "
            "or set `data.drop_missing_target: true`.", source=source)
    values = times.to_numpy(dtype=float)
    not_positive = ~(values > 0) | ~np.isfinite(values)
    if not_positive.any():
        row = _first_row(not_positive)
        raise DataError(
            f"the time column '{time}' holds {int(not_positive.sum())} time(s) that are not "
            f"positive (data row {row}: {values[row - 1]:g}); survival times must be > 0.",
            "a time of 0 usually means the event or censoring on the day of entry: add a "
            "small amount (e.g. 0.5 day) or remove those rows; negative times are errors in "
            "the dates.", source=source)
    cells = frame[event].map(_as_text)
    wanted = _as_text(event_value)
    seen = list(dict.fromkeys(cells))
    if wanted not in seen and len(seen) == 1:
        raise DataError(
            f"no patient had the event: the event column '{event}' is {seen[0]!r} in every "
            f"row, and `data.event_value` is {event_value!r}.",
            "survival metrics need events: check `data.event` and `data.event_value` (the "
            "value meaning the event happened).", source=source)
    if wanted not in seen:
        raise DataError(
            f"`data.event_value` {event_value!r} never occurs in the event column '{event}' "
            f"(it holds {', '.join(map(repr, seen[:10]))}).",
            "set `data.event_value` to the value that means the event happened (e.g. 1, 2 "
            "or dead); every other value counts as censored.", source=source)
    happened = (cells == wanted).to_numpy()
    if happened.all():
        raise DataError(
            f"every patient had the event ('{event}' is {event_value!r} in all "
            f"{len(happened)} rows): nobody is censored, so this is not censored survival "
            "data, or the event value is wrong.",
            "check `data.event_value` (the value meaning the event happened; the others are "
            "censored), or use a regression task on the time.", source=source)
    return pd.DataFrame({"time": values, "event": happened.astype(float)}, index=frame.index)


def outcome_lines(outcome: pd.DataFrame, *, time: str, event: str, event_value: object,
                  unit: str | None) -> list[str]:
    """The report's bullets on a survival outcome: columns, events, censoring, follow-up."""
    events = int(outcome["event"].sum())
    n = len(outcome)
    suffix = f" {unit}" if unit else ""
    t = outcome["time"].to_numpy()
    return [
        f"Outcome: time to event; time `{time}`{f' ({unit})' if unit else ''}, event `{event}` "
        f"= {event_value!r} (every other value censored)",
        f"Rows: {n}, events {events}, censored {n - events} ({(n - events) / n:.0%})",
        f"Follow-up: observed times {t.min():g} to {t.max():g}{suffix}, median "
        f"{np.median(t):g}{suffix}",
    ]
