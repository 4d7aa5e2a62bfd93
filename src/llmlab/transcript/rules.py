"""A scrubbing rule: a regex, what replaces a match, and cheap literal triggers that must
occur before the regex runs. `scrub` and `secrets` both build their layers from these."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    replace: str  # may use \g<keep> to keep a prefix (the variable name of an assignment)
    triggers: tuple[str, ...] = ()  # literals, one of which must occur; () = always run
    icase: bool = False  # triggers are lower-case and matched against the lower-cased text
    # Where a match can start, found fast in the lower-cased text (a regex with literal
    # alternatives); `pattern` is then only tried at those places.
    locate: re.Pattern | None = None

    def hit(self, s: str, low: str) -> bool:
        if not self.triggers:
            return True
        return any(map((low if self.icase else s).__contains__, self.triggers))

    def sub(self, s: str, low: str) -> tuple[str, int]:
        if self.locate is None or len(low) != len(s):
            return self.pattern.subn(self.replace, s)
        out, last, n = [], 0, 0
        for cand in self.locate.finditer(low):
            if cand.start() < last:
                continue
            m = self.pattern.match(s, cand.start())
            if m:
                out += [s[last:m.start()], m.expand(self.replace)]
                last, n = m.end(), n + 1
        return ("".join(out) + s[last:], n) if n else (s, 0)


class EmailRule(Rule):
    """E-mail addresses, found from the domain side: `@domain.tld` is a literal-prefix
    search (fast); the local part is then read backwards from the `@`."""

    _domain = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
    _local = re.compile(r"[A-Za-z0-9._%+-]{1,64}$")

    def sub(self, s: str, low: str) -> tuple[str, int]:
        out, last, n = [], 0, 0
        for d in self._domain.finditer(s):
            at = d.start()
            if at < last:
                continue
            m = self._local.search(s, max(last, at - 64), at)
            if m:
                out += [s[last:m.start()], self.replace]
                last, n = d.end(), n + 1
        return ("".join(out) + s[last:], n) if n else (s, 0)


def _r(name, regex, replace, *triggers, flags=0, locate: str | None = None) -> Rule:
    icase = bool(flags & re.I)
    return Rule(name, re.compile(regex, flags), replace,
                tuple(t.lower() for t in triggers) if icase else tuple(triggers), icase,
                re.compile(locate) if locate else None)
