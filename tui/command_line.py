"""The `:` command line of the debugger: rr/gdb-like verbs over a ReplayCursor (no textual here).

break kernel REGEX | break api REGEX   stop `continue` at matching kernels / API calls
delete [N]                              delete breakpoint N (all without N)
info breakpoints | info bookmarks       list them
continue | c                            run forward to the next breakpoint hit
reverse-continue | rc                   run backward to the previous hit
next | n, prev | p                      one event forward / back
when                                    current event number and virtual time
goto N | goto TIME | goto NAME          event number, virtual time (1.5ms, 200us, @123456) or bookmark
bookmark NAME                           remember the current event under NAME
search REGEX                            next API call or device op whose name matches
filter [REGEX]                          show only tracks matching REGEX (all without it)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from revati.replay.cursor import ReplayCursor
from revati.tui.format import fmt_ns, parse_time

from revati.errors import RevatiError, RevatiUsageError

COMMANDS_HELP = [line.strip() for line in (__doc__ or "").splitlines()[2:] if line.strip()]


@dataclass(frozen=True)
class CommandResult:
    message: str
    moved: bool = False
    error: bool = False
    filter: str | None = None  # a new track filter ("" clears it)


def run_command(cursor: ReplayCursor, text: str) -> CommandResult:
    """Execute one command line; user errors come back as an error result, never raised."""
    words = text.strip().split(maxsplit=1)
    if not words:
        return CommandResult("")
    verb, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    handler = _VERBS.get(verb)
    if handler is None:
        return CommandResult(f"unknown command {verb!r}; press ? for the list", error=True)
    try:
        return handler(cursor, rest.strip())
    except RevatiError as e:
        return CommandResult(str(e), error=True)


def goto_target(cursor: ReplayCursor, target: str) -> CommandResult:
    """`g` prompt and `goto`: an event number, a virtual time (with unit or @ns) or a bookmark."""
    if not target:
        raise RevatiUsageError("goto needs an event number, a time such as 1.5ms, or a bookmark")
    if target.isdigit():
        ev = cursor.goto(int(target))
        return CommandResult(f"event {ev.seq}: {ev.name}", moved=True)
    if target.startswith("@") or re.fullmatch(r"[\d.]+\s*(ns|us|µs|ms|s)", target):
        try:
            t_ns = parse_time(target.lstrip("@"))
        except ValueError as e:
            raise RevatiUsageError(
                f"bad time {target!r}; write e.g. 1.5ms, 200us or @123456"
            ) from e
        ev = cursor.goto_time(t_ns)
        return CommandResult(f"t = {fmt_ns(t_ns)}: event {ev.seq} {ev.name}", moved=True)
    ev = cursor.goto_bookmark(target)
    return CommandResult(f"bookmark {target}: event {ev.seq}", moved=True)


def _break(cursor: ReplayCursor, rest: str) -> CommandResult:
    parts = rest.split(maxsplit=1)
    if len(parts) != 2:
        raise RevatiUsageError("usage: break kernel REGEX | break api REGEX")
    bp = cursor.add_breakpoint(parts[0].lower(), parts[1])
    return CommandResult(f"breakpoint {bp.describe()}")


def _delete(cursor: ReplayCursor, rest: str) -> CommandResult:
    if rest and not rest.lstrip("#").isdigit():
        raise RevatiUsageError("usage: delete [N]")
    n = cursor.delete_breakpoint(int(rest.lstrip("#")) if rest else None)
    return CommandResult(f"deleted {n} breakpoint{'s' if n != 1 else ''}")


def _continue(cursor: ReplayCursor, forward: bool) -> CommandResult:
    hit = cursor.continue_(forward)
    if hit is None:
        where = "after" if forward else "before"
        return CommandResult(f"no breakpoint hit {where} event {cursor.seq}", error=True)
    ev, bp = hit
    return CommandResult(
        f"{bp.describe()} hit: event {ev.seq} {ev.name} at {fmt_ns(ev.start_ns)}", moved=True
    )


def _step(cursor: ReplayCursor, forward: bool) -> CommandResult:
    ev = cursor.step(forward)
    return CommandResult(f"event {ev.seq}" if ev else "no more events", moved=ev is not None)


def _info(cursor: ReplayCursor, rest: str) -> CommandResult:
    if rest.startswith("b") and rest.startswith("book"):
        marks = ", ".join(f"{k}=#{v}" for k, v in sorted(cursor.bookmarks.items()))
        return CommandResult(f"bookmarks: {marks or 'none'}")
    bps = "; ".join(b.describe() for b in cursor.breakpoints)
    return CommandResult(f"breakpoints: {bps or 'none'}")


def _bookmark(cursor: ReplayCursor, rest: str) -> CommandResult:
    if not rest:
        raise RevatiUsageError("usage: bookmark NAME")
    return CommandResult(f"bookmark {rest} = event {cursor.bookmark(rest)}")


def _search(cursor: ReplayCursor, rest: str) -> CommandResult:
    if not rest:
        raise RevatiUsageError("usage: search REGEX")
    ev = cursor.search(rest)
    if ev is None:
        return CommandResult(
            f"no call or kernel matching /{rest}/ after event {cursor.seq}", error=True
        )
    return CommandResult(f"/{rest}/: event {ev.seq} {ev.name}", moved=True)


def _filter(cursor: ReplayCursor, rest: str) -> CommandResult:
    if rest:
        try:
            re.compile(rest)
        except re.error as e:
            raise RevatiUsageError(f"bad regular expression {rest!r}: {e}") from e
    return CommandResult(f"track filter /{rest}/" if rest else "track filter cleared", filter=rest)


_VERBS: dict[str, Callable[[ReplayCursor, str], CommandResult]] = {
    "break": _break,
    "b": _break,
    "delete": _delete,
    "d": _delete,
    "continue": lambda c, r: _continue(c, True),
    "c": lambda c, r: _continue(c, True),
    "reverse-continue": lambda c, r: _continue(c, False),
    "rc": lambda c, r: _continue(c, False),
    "next": lambda c, r: _step(c, True),
    "n": lambda c, r: _step(c, True),
    "prev": lambda c, r: _step(c, False),
    "p": lambda c, r: _step(c, False),
    "when": lambda c, r: CommandResult(c.when()),
    "goto": goto_target,
    "bookmark": _bookmark,
    "info": _info,
    "search": _search,
    "filter": _filter,
}
