"""Secret detection beyond provider prefixes (issue 17): the layers `scrub.PATTERNS` adds.

- PEM/PGP blocks of any type; credentials in URLs for any host; Slack webhooks,
  SendGrid, PyPI and Azure keys; Basic auth headers and `curl -u user:pass`.
- `AssignmentRule`: `NAME = value` / `"Name": "value"` for secret-like names (password,
  secret, *_key, *_token, ...), quoted values with spaces, short values; code that
  merely mentions a name (`token = tokenizer.decode(x)`) is left alone.
- Obfuscated e-mails (`jane [at] example [dot] com`); URL-encoded and JSON-escaped home
  paths; base64 that decodes to a secret; the continuation line of a key split across
  lines.
- `DetectSecretsRule`: Yelp's maintained `detect-secrets` plugins (keyword, entropy and
  its provider detectors), run only on lines with a cheap trigger.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import cache, lru_cache

from .rules import Rule, _r

# ---------------------------------------------------------------- pattern rules

BLOCKS = (
    _r("pem-block", r"-----BEGIN ([A-Z0-9 ]{3,60})-----[\s\S]*?(?:-----END \1-----|\Z)",
       "[REDACTED:key-block]", "-----BEGIN "),
)

PROVIDERS = (
    _r("slack-webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+",
       "[REDACTED:slack-webhook]", "hooks.slack.com"),
    _r("sendgrid-key", r"SG\.(?<![A-Za-z0-9]SG\.)[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
       "[REDACTED:sendgrid-key]", "SG."),
    _r("pypi-token", r"pypi-(?<![A-Za-z0-9]pypi-)AgE[A-Za-z0-9_\-]{20,}", "[REDACTED:pypi-token]",
       "pypi-AgE"),
    _r("azure-key", r"(?P<keep>(?:AccountKey|SharedAccessKey|SharedAccessSignature)\s*=\s*)"
       r"[A-Za-z0-9+/%=&:\-]{16,}", r"\g<keep>[REDACTED:azure-key]", "AccountKey",
       "SharedAccess"),
    _r("basic-auth", r"(?P<keep>authorization[\"']?\s*[:=]\s*[\"']?basic\s+)[A-Za-z0-9+/_\-]+=*",
       r"\g<keep>[REDACTED:basic-auth]", "basic", flags=re.I),
    _r("curl-user", r"(?P<keep>(?:\s-u|--user)[ =][\"']?[^\s:\"']+:)[^\s\"']+",
       r"\g<keep>[REDACTED:password]", " -u ", "--user"),
    # scheme://user:password@host, any host (localhost, an IP); the password may hold
    # anything but spaces and quotes, up to the last @ of the URL.
    _r("url-credentials", r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:@/\"'<>]*:)"
       r"[^\s\"'<>]+@(?=[^\s@\"'<>]+)", r"\g<keep>[REDACTED:password]@", "://"),
)

# What `[A-Za-z0-9._%+-]` matches under re.I: ASCII plus four letters that case-fold into it.
_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-\u0130\u0131\u017f\u212a")


class ObfuscatedEmailRule(Rule):
    """`jane [at] example [dot] com`. The regex starts with a run of address characters,
    so run over a whole text it is tried at every letter (most of the scrubber's time on
    source code, where `format)` holds a trigger); here it is tried only from the start
    of the run before each `[at]`-like anchor, which finds the same matches."""

    _anchor = re.compile(r"[\[({<]\s*at\s*[\])}>]", re.I)

    def sub(self, s: str, low: str) -> tuple[str, int]:
        out, last, n = [], 0, 0
        for a in self._anchor.finditer(s):
            if a.start() < last:
                continue
            i = a.start()
            while i > last and s[i - 1].isspace():
                i -= 1
            j = i
            while j > last and s[j - 1] in _LOCAL:
                j -= 1
            m = self.pattern.match(s, j) if j < i else None
            if m:
                out += [s[last:j], self.replace]
                last, n = m.end(), n + 1
        return ("".join(out) + s[last:], n) if n else (s, 0)


PERSONAL = (
    ObfuscatedEmailRule(
        "obfuscated-email", re.compile(r"[A-Za-z0-9._%+-]+\s*[\[({<]\s*at\s*[\])}>]\s*[A-Za-z0-9-]+"
                                       r"(?:\s*(?:[\[({<]\s*dot\s*[\])}>]|\.)\s*[A-Za-z0-9-]+)+", re.I),
        "[EMAIL]", ("at]", "at)", "at}", "at>"), True),
    _r("encoded-home-path", r"%2F(?:home|Users)%2F(?!\[)[^%/\s\"'<>]+", "~", "%2f", flags=re.I),
    _r("escaped-home-path", r"\\/(?:home|Users)\\/(?!\[)[^\\/\s\"'<>]+", "~", "\\/home\\/",
       "\\/Users\\/"),
    _r("escaped-windows-home", r"\b[A-Za-z]:(?:\\\\\\\\)Users\\\\\\\\[^\\\s\"'<>]+", "~",
       ":\\\\\\\\Users"),
)

# ---------------------------------------------------------------- assignments

# Where a name can end: found with str.find on the lower-cased text (fast), then the rest
# of the name and the operator are matched from the keyword on.
_KEYS = ("pass", "pwd", "secret", "key", "token", "cred")
_AFTER = re.compile(r"(?:word|wd|phrase)?(?:[_-]?(?:access[_-]?)?(?:key|token)(?:[_-]?id)?"
                    r"|[_-]?id|[_-]?base|entials?|s)?[\"']?\s*(?::=|=|:)\s*", re.I)
_COMPOUND = ("apikey", "accesskey", "secretkey", "privatekey", "authtoken", "accesstoken",
             "sessiontoken", "refreshtoken", "password", "passwd", "passphrase", "clientsecret")
_STRONG = ("pass", "pwd", "secret", "private", "cred")
_IDENT = re.compile(r"[A-Za-z0-9_.\-]{0,40}$")
_CODE = re.compile(r"(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*$|os\.|getenv|environ|\$|\{\{|%\(")
_PLACEHOLDER = re.compile(r"^(?:\.{2,}|\*+|x+|<[^>]*>|\[[^\]]*\]|none|null|nil|true|false|"
                          r"undefined|\$\{?\w+\}?|\{\{.*\}\}|%s|\?+|-+)$", re.I)
_BARE = re.compile(r"[^\s\"',;()<>\[\]{}`]+")
_NONLETTER, _DIGIT, _LETTER = re.compile(r"[^a-z]"), re.compile(r"\d"), re.compile(r"[A-Za-z]")


def _candidates(low: str):
    for k in _KEYS:
        i = low.find(k)
        while i >= 0:
            yield i, k
            i = low.find(k, i + 1)


class AssignmentRule(Rule):
    """`NAME = value` for secret-like names; values quoted (spaces allowed) or bare."""

    def sub(self, s: str, low: str) -> tuple[str, int]:
        if len(low) != len(s):
            low = s.lower()
        spans = []
        for i, k in sorted(_candidates(low)):
            m = _AFTER.match(s, i + len(k))
            if not m:
                continue
            ident = _IDENT.search(s, max(0, i - 40), i).group() + s[i:m.end()]
            name = _NONLETTER.sub("", ident.lower())
            if i and s[i - 1].isalpha() and not name.endswith(_COMPOUND) and not any(
                    name.endswith(c + x) for c in _COMPOUND for x in ("id", "s")):
                continue  # bypass=, monkey=, tokens=...
            strong = any(x in name for x in _STRONG)
            span = self._value(s, m.end(), strong)
            if span:
                spans.append(span)
        if not spans:
            return s, 0
        out, last, n = [], 0, 0
        for a, b in spans:
            if a < last:
                continue
            out += [s[last:a], self.replace]
            last, n = b, n + 1
        return "".join(out) + s[last:], n

    @staticmethod
    def _value(s: str, pos: int, strong: bool) -> tuple[int, int] | None:
        if pos < len(s) and s[pos] in "\"'":
            q = s[pos]
            end = s.find(q, pos + 1)
            nl = s.find("\n", pos + 1)
            if end < 0 or (0 <= nl < end):
                return None
            val, vstart = s[pos + 1:end], pos + 1
        else:
            b = _BARE.match(s, pos)
            if not b:
                return None
            val, vstart, end = b.group(), pos, b.end()
            if end < len(s) and s[end] == "(" or _CODE.search(val):
                return None  # code: token = tokenizer.decode(x), key = os.environ[...]
        v = val.strip()
        if not v or _PLACEHOLDER.match(v) or "[REDACTED" in val:
            return None
        if not strong and not (len(v) >= 12 and _DIGIT.search(v) and _LETTER.search(v)):
            return None  # key = 3, token = next_token: not credentials
        if strong and len(v) < 3:
            return None
        return vstart, end


ASSIGNMENT = AssignmentRule("secret-assignment", re.compile("="), "[REDACTED:secret]",
                            _KEYS, True)

# ---------------------------------------------------------------- encoded and split

_B64 = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{16,4096}={0,2}(?![A-Za-z0-9+/=_\-])")


class Base64SecretRule(Rule):
    """A base64 run that decodes to text the other rules call a secret."""

    def __init__(self, inner):
        # only where base64 is in play: a padded run, or the word (echo ... | base64 -d)
        super().__init__("base64-secret", _B64, "[REDACTED:base64-secret]",
                         ("==", "base64", "b64"), True)
        object.__setattr__(self, "_inner", inner)

    def sub(self, s: str, low: str) -> tuple[str, int]:
        out, last, n = [], 0, 0
        for m in _B64.finditer(s):
            raw = m.group()
            if raw.isalpha() or raw.islower() or raw.isupper() or raw.isdigit():
                continue  # words, paths, hex: not base64 of a secret
            try:
                dec = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_"
                                       if ("-" in raw or "_" in raw) else None, validate=True)
                text = dec.decode("utf-8")
            except (binascii.Error, ValueError):
                continue
            if not text.isprintable() and not all(c.isprintable() or c in "\n\r\t" for c in text):
                continue
            if any(rule.sub(text, text.lower())[1] for rule in self._inner()):
                out += [s[last:m.start()], self.replace]
                last, n = m.end(), n + 1
        return ("".join(out) + s[last:], n) if n else (s, 0)


SPLIT = _r("split-secret", r"(?P<keep>\[REDACTED:[a-z0-9-]+\][ \t]*\\?(?:\\n|\r?\n)[ \t]*)"
           r"[A-Za-z0-9_\-+/=]{6,}(?=[\s\"',]|\\n|$)", r"\g<keep>[REDACTED:continued]",
           "[REDACTED:")

# ---------------------------------------------------------------- detect-secrets

# Where a detector can find something: a secret-like keyword with an operator and a value
# that is not a number, a boolean or already redacted; or a long quoted run (entropy).
# Each plugin reads a short window around the trigger, never the whole text (its keyword
# regexes cost about a millisecond per line).
_KEYWORD_GATE = re.compile(
    r"(?:pass|pwd|secret|token|key|auth|cred)[\w\"'-]{0,24}\s*(?:=|:|=>)\s*"
    r"(?!-?\d+[,}\s]|true\b|false\b|null\b|none\b|\[redacted)[\"']?[^\s\"',]{3,}")  # on lower-case
_QUOTED_GATE = re.compile(r"(?<=[\"'])[A-Za-z0-9+/=]{20,}(?=[\"'])")
_HEX = re.compile(r"[0-9a-fA-F]+")
_ENTROPY = ("Base64HighEntropyString", "HexHighEntropyString")
_SKIP_PLUGINS = {"IPPublicDetector", "PrivateKeyDetector", "KeywordDetector", *_ENTROPY}


@cache
def _plugins() -> tuple[tuple, tuple, object]:
    """(entropy plugins, provider plugins, the keyword plugin)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes = list(get_mapping_from_secret_type_to_class().values())
    by_name = {c.__name__: c for c in classes}
    return (tuple(by_name[n]() for n in _ENTROPY if n in by_name),
            tuple(c() for c in classes if c.__name__ not in _SKIP_PLUGINS),
            by_name["KeywordDetector"]())


_FLAGS = ((re.I, "i"), (re.M, "m"), (re.S, "s"), (re.X, "x"))


@cache
def _provider_gate() -> tuple[re.Pattern | None, tuple]:
    """One regex that matches wherever any provider plugin's own regexes could (their union,
    each with its own flags), and the plugins it cannot stand in for (those with their own
    `analyze_string`). A window the union misses cannot give those plugins a finding, so
    they are skipped there: one search instead of twenty calls."""
    from detect_secrets.plugins.base import RegexBasedDetector

    parts, always = [], []
    for p in _plugins()[1]:
        regexes = getattr(p, "denylist", None)
        if (not isinstance(p, RegexBasedDetector) or type(p).analyze_string is not RegexBasedDetector.analyze_string
                or not regexes or any(re.search(r"\\[1-9]|\(\?P=", r.pattern) for r in regexes)):
            always.append(p)
            continue
        for r in regexes:
            flags = "".join(c for f, c in _FLAGS if r.flags & f)
            parts.append(f"(?{flags}:{r.pattern})" if flags else f"(?:{r.pattern})")
    try:
        return (re.compile("|".join(parts)) if parts else None), tuple(always)
    except re.error:  # a plugin's regex that does not combine: run them all, always
        return None, ()


def _windows(s: str, gate: re.Pattern, scan: str | None = None) -> list[str]:
    out, last = [], -1
    for m in gate.finditer(s if scan is None else scan):
        if m.start() < last:
            continue
        a = max(s.rfind("\n", 0, m.start()) + 1, m.start() - 24)
        b = s.find("\n", m.end())
        b = min(len(s) if b < 0 else b, m.end() + 80)
        out.append(s[a:b])
        last = b
    return out


class DetectSecretsRule(Rule):
    """The plugins of `detect-secrets` (keyword, Base64/hex entropy over its limits, and
    its provider detectors) on short windows around triggers; what they report is
    replaced wherever it occurs."""

    markup_blind = True  # the final re-scan gives it the page's text, not its tags

    def sub(self, s: str, low: str) -> tuple[str, int]:
        entropy, providers, keyword = _plugins()
        found: set[str] = set()
        if len(low) != len(s):
            low = s.lower()
        gate, always = _provider_gate()
        for w in _windows(s, _KEYWORD_GATE, low):  # the keyword and provider plugins
            found.update(_run(keyword, w))
            for p in providers if gate is None or gate.search(w) else always:
                found.update(_run(p, w))
        for m in _QUOTED_GATE.finditer(s):  # a quoted run: the entropy plugins' own test
            v = m.group()
            if _high_entropy(v, _HEX.fullmatch(v) is not None):
                found.add(v)
        found = {v for v in found if len(v) >= 4 and "REDACTED" not in v and "[EMAIL]" not in v}
        n = 0
        for v in sorted(found, key=len, reverse=True):
            c = s.count(v)
            if c:
                s, n = s.replace(v, self.replace), n + c
        return s, n


@lru_cache(maxsize=65536)
def _high_entropy(value: str, hexadecimal: bool) -> bool:
    """detect-secrets' Shannon entropy over its plugin's limit (hex: 3.0, base64: 4.5)."""
    b64, hexp = _plugins()[0]
    p = hexp if hexadecimal else b64
    return p.calculate_shannon_entropy(value) > p.entropy_limit


def _run(plugin, text: str) -> list[str]:
    try:
        return list(plugin.analyze_string(text))
    except Exception:  # a plugin's own bug must not stop a build
        return []


DETECT = DetectSecretsRule("detect-secrets", re.compile("x"), "[REDACTED:secret]", ())
