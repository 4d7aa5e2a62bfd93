"""Scrubbing secrets and personal data, in three layers.

1. Known values (names, paths, anything listed in `transcript.toml`) are replaced
   wherever they appear, case-insensitively, on word boundaries.
2. Patterns: e-mail addresses, API keys and tokens of the common providers, private
   keys, bearer tokens, `secret = ...` assignments, home-directory paths.
3. A final re-scan of the rendered output with the same rules: if anything still
   matches, the page is not written (`ScrubLeak`).

Every rule has cheap literal triggers so 100 MB of text costs a few substring searches;
the regex only runs on strings that contain a trigger. The report counts replacements
by rule and never echoes what was replaced.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field

from ..errors import UserError


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    replace: str  # may use \g<keep> to keep a prefix (the variable name of an assignment)
    triggers: tuple[str, ...] = ()  # case-sensitive literals; () = always run

    def hit(self, s: str) -> bool:
        return not self.triggers or any(t in s for t in self.triggers)


def _r(name, regex, replace, *triggers, flags=0) -> Rule:
    return Rule(name, re.compile(regex, flags), replace, tuple(triggers))


_KEYWORDS = ("api_key", "apikey", "api-key", "secret", "token", "password", "passwd", "API_KEY",
             "APIKEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "Secret", "Token", "Password",
             "ApiKey", "apiKey")

#: Order matters: specific provider formats before the generic ones.
PATTERNS: tuple[Rule, ...] = (
    _r("private-key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
       "[REDACTED:private-key]", "PRIVATE KEY-----"),
    _r("anthropic-key", r"sk-ant-[A-Za-z0-9_\-]{16,}", "[REDACTED:anthropic-key]", "sk-ant-"),
    _r("openai-key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", "[REDACTED:openai-key]", "sk-"),
    _r("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
       "[REDACTED:github-token]", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    _r("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[REDACTED:aws-access-key]", "AKIA", "ASIA"),
    _r("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}", "[REDACTED:google-api-key]", "AIza"),
    _r("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "[REDACTED:slack-token]", "xox"),
    _r("stripe-key", r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}", "[REDACTED:stripe-key]", "_live_", "_test_"),
    _r("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}", "[REDACTED:huggingface-token]", "hf_"),
    _r("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "[REDACTED:jwt]", "eyJ"),
    _r("bearer-token", r"(?P<keep>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{20,}", r"\g<keep>[REDACTED:bearer-token]",
       "earer"),
    # NAME_TOKEN = "value": keep the name, redact a value that looks like a credential
    # (12+ chars, no spaces, has a digit); `token = tokenizer.decode(x)` is left alone.
    _r("secret-assignment",
       r"(?P<keep>\b[A-Za-z0-9_.-]*(?:api[_-]?key|secret|token|password|passwd)s?[\"']?\s*[:=]\s*[\"']?)"
       r"(?=[A-Za-z0-9_\-./+=]*\d)[A-Za-z0-9_\-./+=]{12,}(?![A-Za-z0-9_\-./+=(])",
       r"\g<keep>[REDACTED:secret]", *_KEYWORDS, flags=re.I),
    _r("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", "[EMAIL]", "@"),
    _r("home-path", r"(?:/home/|/Users/)(?!\[)[^/\s\"'<>`:;,)\]]+", "~", "/home/", "/Users/"),
    _r("windows-home-path", r"\b[A-Za-z]:(?:\\\\|\\|/)Users(?:\\\\|\\|/)(?!\[)[^\\/\s\"'<>`]+", "~",
       ":\\Users", ":/Users", ":\\\\Users"),
)


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
            triggers = tuple({t for v in vals for t in _case_variants(v)})
            out.append(Rule(label, re.compile(regex, re.I), repl, triggers))
        return out


def _case_variants(v: str) -> tuple[str, ...]:
    # Triggers are case-sensitive; a value in an odd mixed case is still caught by the
    # final re-scan, which runs these rules without triggers (see Scrubber.leaks).
    return (v, v.lower(), v.upper(), v.title(), v.capitalize())


class ScrubLeak(UserError):
    pass


class Scrubber:
    """Applies the rules to strings and keeps a count of what it replaced, by rule and field."""

    def __init__(self, known: Known | None = None, enabled: bool = True):
        self.enabled = enabled
        self.rules: list[Rule] = ((known or Known()).rules() + list(PATTERNS)) if enabled else []
        self.counts: Counter[tuple[str, str]] = Counter()  # (rule, field) -> replacements

    def __call__(self, s: str, where: str = "text") -> str:
        if not s or not self.enabled:
            return s
        for rule in self.rules:
            if rule.hit(s):
                s, n = rule.pattern.subn(rule.replace, s)
                if n:
                    self.counts[(rule.name, where)] += n
        return s

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
        """Rule names that still match in rendered output (HTML entities decoded first).

        Known-value rules run without their triggers here, so case variants are caught."""
        if not self.enabled:
            return []
        text = html.unescape(rendered) if "&" in rendered else rendered
        found = []
        for rule in self.rules:
            always = rule.name.startswith("known-")
            if (always or rule.hit(text)) and rule.pattern.search(text):
                found.append(rule.name)
        return found

    def check(self, rendered: str, what: str) -> None:
        bad = self.leaks(rendered)
        if bad:
            raise ScrubLeak(
                f"Refusing to write {what}: after scrubbing, the output still matches "
                f"{', '.join(sorted(set(bad)))}. Nothing was written. Add the value to "
                "`transcript.toml` ([scrub] names/paths/values), or rerun with --no-scrub "
                "only if the page stays private."
            )
