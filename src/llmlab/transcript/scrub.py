"""Scrubbing secrets and personal data, in three layers.

1. Known values (names, paths, anything listed in `transcript.toml`) are replaced
   wherever they appear, case-insensitively, on word boundaries.
2. Patterns: e-mail addresses (also `[at]`/`[dot]`), API keys and tokens of the common
   providers, PEM/PGP blocks of any type, credentials in URLs for any host, Basic auth,
   `NAME = value` assignments for secret-like names, base64 that decodes to a secret,
   split keys, home-directory paths (also URL-encoded and JSON-escaped); see `secrets`.
3. A maintained detector: `detect-secrets` (keyword, entropy and provider plugins).
4. A final re-scan of the rendered output with the same rules and detector: if anything
   still matches, the page is not written (`ScrubLeak`).

Every rule has cheap literal triggers so 100 MB of text costs a few substring searches;
the regex only runs on strings that contain a trigger. The report counts replacements
by rule and never echoes what was replaced.
"""

from __future__ import annotations

import copy
import html
import re
from collections import Counter
from dataclasses import dataclass, field

from ..errors import UserError
from .rules import EmailRule, Rule, _r


_KEYWORDS = ("api_key", "apikey", "api-key", "secret", "token", "password", "passwd")

_PROVIDER_PREFIXES: tuple[Rule, ...] = (
    # A leading \b would stop the regex engine from jumping to the literal prefix (25x
    # slower), so the word boundary is a lookbehind placed after the prefix instead.
    _r("anthropic-key", r"sk-ant-[A-Za-z0-9_\-]{16,}", "[REDACTED:anthropic-key]", "sk-ant-"),
    _r("openai-key", r"sk-(?<![A-Za-z0-9]sk-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
       "[REDACTED:openai-key]", "sk-"),
    _r("github-token", r"(?:gh[pousr]_(?<![A-Za-z0-9]gh[pousr]_)[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
       "[REDACTED:github-token]", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    _r("aws-access-key", r"(?:AKIA|ASIA)(?<![A-Za-z0-9]AKIA)(?<![A-Za-z0-9]ASIA)[0-9A-Z]{16}\b",
       "[REDACTED:aws-access-key]", "AKIA", "ASIA"),
    _r("google-api-key", r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_\-]{35}", "[REDACTED:google-api-key]", "AIza"),
    _r("slack-token", r"xox(?<![A-Za-z0-9]xox)[abposr]-[A-Za-z0-9-]{10,}", "[REDACTED:slack-token]", "xox"),
    _r("stripe-key", r"(?:sk|rk)_(?:live|test)_(?<![A-Za-z0-9]sk_live_)(?<![A-Za-z0-9]rk_live_)"
       r"(?<![A-Za-z0-9]sk_test_)(?<![A-Za-z0-9]rk_test_)[A-Za-z0-9]{16,}", "[REDACTED:stripe-key]",
       "_live_", "_test_"),
    _r("huggingface-token", r"hf_(?<![A-Za-z0-9]hf_)[A-Za-z0-9]{30,}", "[REDACTED:huggingface-token]", "hf_"),
    _r("jwt", r"eyJ(?<![A-Za-z0-9]eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
       "[REDACTED:jwt]", "eyJ"),
    _r("bearer-token", r"(?P<keep>(?:Bearer|bearer|BEARER)\s+)[A-Za-z0-9._~+/=-]{20,}",
       r"\g<keep>[REDACTED:bearer-token]", "earer", "EARER"),
)

_PERSONAL_BASE: tuple[Rule, ...] = (
    EmailRule("email", re.compile(r"@"), "[EMAIL]", ("@",)),

    _r("home-path", r"(?:/home/|/Users/)(?!\[)[^/\s\"'<>`:;,)\]]+", "~", "/home/", "/Users/"),
    _r("windows-home-path", r"\b[A-Za-z]:(?:\\\\|\\|/)Users(?:\\\\|\\|/)(?!\[)[^\\/\s\"'<>`]+", "~",
       ":\\Users", ":/Users", ":\\\\Users"),
)



from . import secrets as _secrets  # noqa: E402

#: Secret-shaped values, for the base64 layer to look for in decoded text.
SECRETS: tuple[Rule, ...] = (_secrets.BLOCKS + _PROVIDER_PREFIXES + _secrets.PROVIDERS
                             + (_secrets.ASSIGNMENT,))
#: Order matters: blocks and provider formats before the generic ones; the detector and
#: the split-key continuation last.
PATTERNS: tuple[Rule, ...] = (SECRETS + (_secrets.Base64SecretRule(lambda: SECRETS),)
                              + _PERSONAL_BASE + _secrets.PERSONAL
                              + (_secrets.DETECT, _secrets.SPLIT))


@dataclass
class Known:
    """Known values from config, each with its replacement label."""
    names: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def rules(self) -> list[Rule]:
        out = []
        # Paths are replaced as substrings (longest first); names and other values on
        # word boundaries, case-insensitively.
        for label, values, bounded in (("known-path", self.paths, False),
                                       ("known-name", self.names, True),
                                       ("known-value", self.other, True)):
            vals = sorted({v for v in values if v and len(v.strip()) >= 2}, key=len, reverse=True)
            if not vals:
                continue
            alt = "|".join(re.escape(v) for v in vals)
            regex = rf"(?<![A-Za-z0-9])(?:{alt})(?![A-Za-z0-9])" if bounded else rf"(?:{alt})"
            repl = {"known-path": "[PATH]", "known-name": "[NAME]", "known-value": "[REDACTED]"}[label]
            if bounded:
                lows = sorted({v.lower() for v in vals}, key=len, reverse=True)
                out.append(Rule(label, re.compile(regex, re.I), repl, tuple(lows), True,
                                re.compile("|".join(re.escape(v) for v in lows))))
            else:
                out.append(Rule(label, re.compile(regex), repl, tuple(vals)))
        return out


_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&#34;", '"'), ("&quot;", '"'), ("&#39;", "'"), ("&#x27;", "'"))


def unescape(s: str) -> str:
    """Undo the entities our renderers write (markupsafe, markdown-it), at C speed.
    Anything else is decoded by the slower general routine."""
    if "&" not in s:
        return s
    for ent, ch in _ENTITIES:
        if ent in s:
            s = s.replace(ent, ch)
    s = s.replace("&amp;", "&")
    return html.unescape(s) if re.search(r"&#?\w+;", s) else s


_TAGS = re.compile(r"<[^>]*>")


class ScrubLeak(UserError):
    pass


class Scrubber:
    """Applies the rules to strings and keeps a count of what it replaced, by rule and field."""

    def __init__(self, known: Known | None = None, enabled: bool = True):
        self.enabled = enabled
        self.rules: list[Rule] = ((known or Known()).rules() + list(PATTERNS)) if enabled else []
        self.counts: Counter[tuple[str, str]] = Counter()  # (rule, field) -> replacements
        self._icase = any(r.icase for r in self.rules)

    def __call__(self, s: str, where: str = "text") -> str:
        if not s or not self.enabled:
            return s
        low = s.lower() if self._icase else ""
        for rule in self.rules:
            if rule.hit(s, low):
                s, n = rule.sub(s, low)
                if n:
                    low = s.lower() if self._icase else ""
                    self.counts[(rule.name, where)] += n
        return s

    def total(self) -> int:
        return sum(self.counts.values())

    def fresh(self) -> Scrubber:
        """The same rules with counts of its own (for text scrubbed a second time)."""
        other = copy.copy(self)
        other.counts = Counter()
        return other

    def report(self) -> dict:
        by_rule: Counter[str] = Counter()
        by_field: dict[str, dict[str, int]] = {}
        for (rule, where), n in self.counts.items():
            by_rule[rule] += n
            by_field.setdefault(rule, {})[where] = by_field.get(rule, {}).get(where, 0) + n
        return {"enabled": self.enabled, "total": sum(by_rule.values()),
                "by_rule": dict(sorted(by_rule.items())),
                "by_field": {k: dict(sorted(v.items())) for k, v in sorted(by_field.items())}}

    def leaks(self, rendered: str) -> list[str]:
        """Rule names that still match in rendered output (HTML entities decoded first)."""
        if not self.enabled:
            return []
        text = unescape(rendered)
        low = text.lower() if self._icase else ""
        words = _TAGS.sub(" ", text)  # for detectors that would read markup as secrets
        out = []
        for rule in self.rules:
            t, lo = (words, words.lower()) if getattr(rule, "markup_blind", False) else (text, low)
            if rule.hit(t, lo) and rule.sub(t, lo)[1]:
                out.append(rule.name)
        return out

    def check(self, rendered: str, what: str) -> None:
        bad = self.leaks(rendered)
        if bad:
            raise ScrubLeak(
                f"Refusing to write {what}: after scrubbing, the output still matches "
                f"{', '.join(sorted(set(bad)))}. Nothing was written. Add the value to "
                "`transcript.toml` ([scrub] names/paths/values), or rerun with --no-scrub "
                "only if the page stays private."
            )
