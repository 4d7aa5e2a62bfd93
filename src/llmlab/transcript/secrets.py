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
from functools import cache

from .scrub import Rule, _r  # scrub imports this module after defining both

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

PERSONAL = (
    _r("obfuscated-email", r"[A-Za-z0-9._%+-]+\s*[\[({<]\s*at\s*[\])}>]\s*[A-Za-z0-9-]+"
       r"(?:\s*(?:[\[({<]\s*dot\s*[\])}>]|\.)\s*[A-Za-z0-9-]+)+", "[EMAIL]", "at]", "at)",
       "at}", "at>", flags=re.I),
    _r("encoded-home-path", r"%2F(?:home|Users)%2F(?!\[)[^%/\s\"'<>]+", "~", "%2f", flags=re.I),
    _r("escaped-home-path", r"\\/(?:home|Users)\\/(?!\[)[^\\/\s\"'<>]+", "~", "\\/home\\/",
       "\\/Users\\/"),
    _r("escaped-windows-home", r"\b[A-Za-z]:(?:\\\\\\\\)Users\\\\\\\\[^\\\s\"'<>]+", "~",
       ":\\\\\\\\Users"),
)

# ---------------------------------------------------------------- assignments

_NAME = re.compile(
    r"(?P<name>(?:password|passwd|passphrase|pwd|pass|secret|api[_-]?key|apikey|"
    r"access[_-]?key|private[_-]?key|client[_-]?secret|session[_-]?token|auth[_-]?token|"
    r"access[_-]?token|refresh[_-]?token|token|credentials?|key)"
    r"(?:[_-]?(?:access[_-]?)?(?:key|token)(?:[_-]?id)?|[_-]?base)?)"
    r"[\"']?\s*(?::=|=|:)\s*", re.I)
_STRONG = ("pass", "pwd", "secret", "private", "credential", "client")
_CODE = re.compile(r"(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*$|os\.|getenv|environ|\$|\{\{|%\(")
_PLACEHOLDER = re.compile(r"^(?:\.{2,}|\*+|x+|<[^>]*>|\[[^\]]*\]|none|null|nil|true|false|"
                          r"undefined|\$\{?\w+\}?|\{\{.*\}\}|%s|\?+|-+)$", re.I)
_BARE = re.compile(r"[^\s\"',;()<>\[\]{}`]+")


class AssignmentRule(Rule):
    """`NAME = value` for secret-like names; values quoted (spaces allowed) or bare."""

    def sub(self, s: str, low: str) -> tuple[str, int]:
        out, last, n = [], 0, 0
        for m in _NAME.finditer(s):
            if m.start() < last:
                continue
            name = m.group("name").lower()
            before = s[m.start() - 1] if m.start() else " "
            strong = any(k in name for k in _STRONG)
            if before.isalpha() and name.startswith(("pass", "pwd", "key", "token")):
                continue  # bypass=, monkey=, tokens=...
            pos = m.end()
            if pos < len(s) and s[pos] in "\"'":
                q = s[pos]
                end = s.find(q, pos + 1)
                nl = s.find("\n", pos + 1)
                if end < 0 or (0 <= nl < end):
                    continue
                val, vstart = s[pos + 1:end], pos + 1
            else:
                b = _BARE.match(s, pos)
                if not b:
                    continue
                val, vstart, end = b.group(), pos, b.end()
                if end < len(s) and s[end] == "(" or _CODE.search(val):
                    continue  # code: token = tokenizer.decode(x), key = os.environ[...]
            if not val.strip() or _PLACEHOLDER.match(val.strip()) or "[REDACTED" in val:
                continue
            if not strong and not (len(val) >= 12 and re.search(r"\d", val)
                                   and re.search(r"[A-Za-z]", val)):
                continue  # key = 3, token = next_token: not credentials
            if strong and len(val) < 3:
                continue
            out += [s[last:vstart], self.replace]
            last, n = end, n + 1
        return ("".join(out) + s[last:], n) if n else (s, 0)


ASSIGNMENT = AssignmentRule("secret-assignment", re.compile("="), "[REDACTED:secret]",
                            ("=", ":"))

# ---------------------------------------------------------------- encoded and split

_B64 = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{16,4096}={0,2}(?![A-Za-z0-9+/=_\-])")


class Base64SecretRule(Rule):
    """A base64 run that decodes to text the other rules call a secret."""

    def __init__(self, inner):
        super().__init__("base64-secret", _B64, "[REDACTED:base64-secret]", ())
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

_GATE = re.compile(r"pass|pwd|secret|token|key|auth|cred|[\"'][A-Za-z0-9+/=_\-]{20,}[\"']", re.I)
_SKIP_PLUGINS = {"IPPublicDetector", "PrivateKeyDetector"}  # IPs are not secrets; PEM is ours


@cache
def _plugins() -> tuple:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    return tuple(cls() for cls in get_mapping_from_secret_type_to_class().values()
                 if cls.__name__ not in _SKIP_PLUGINS)


class DetectSecretsRule(Rule):
    """Every plugin of `detect-secrets` (keyword, Base64/hex entropy, providers) on each
    line with a trigger; what they report is replaced wherever it occurs."""

    markup_blind = True  # the final re-scan gives it the page's text, not its tags

    def sub(self, s: str, low: str) -> tuple[str, int]:
        found: set[str] = set()
        for line in s.splitlines():
            if not _GATE.search(line) or len(line) > 20_000:
                continue
            for p in _plugins():
                try:
                    hits = p.analyze_line(filename="transcript.txt", line=line, line_number=1)
                except Exception:  # a plugin's own bug must not stop a build
                    continue
                for h in hits:
                    v = h.secret_value
                    if v and len(v) >= 4 and "REDACTED" not in v and "[EMAIL]" not in v:
                        found.add(v)
        n = 0
        for v in sorted(found, key=len, reverse=True):
            c = s.count(v)
            if c:
                s, n = s.replace(v, self.replace), n + c
        return s, n


DETECT = DetectSecretsRule("detect-secrets", re.compile("x"), "[REDACTED:secret]", ())
