"""The value parsers of the settings table, and the error they raise.

A parser takes the stripped text of one value, the key and where the text came from
(`env`, `configmap reef-system/reef-operator-config`, ...), and returns a typed value or
raises `ConfigError` naming all three and what is allowed. Parsers never read files or
the environment except where the value itself names a file (a CA bundle).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from reef_operator.constants import DNS_SUBDOMAIN
from reef_operator.secret import Secret

T = TypeVar("T")
Parse = Callable[[str, str, str], T]
"""(text, key, source) → value; raises ConfigError."""

API_PREFIX = "/api/v1"
DEFAULT_VM_DOMAIN = "vm.vers.sh"

_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN)
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: safe in a header
# The words every switch accepts, in any case: one vocabulary for every boolean setting.
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class ConfigError(ValueError):
    """A configuration value (or source) the operator cannot use.

    The message names the key, where the value came from and what is allowed;
    it never holds a secret's value.
    """

    def __init__(self, message: str, *, key: str = "", source: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.source = source


def bad(key: str, source: str, text: str, problem: str) -> ConfigError:
    return ConfigError(f"{key} from {source}: {text!r} {problem}", key=key, source=source)


def truth(text: str) -> bool | None:
    """True or False for a switch word (true/false, yes/no, on/off, 1/0), None otherwise."""
    word = text.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def boolean(text: str, key: str, source: str) -> bool:
    value = truth(text)
    if value is None:
        raise bad(key, source, text, "is neither true nor false (yes/no, on/off and 1/0 "
                  "also do)")
    return value


def boolean_or_file(text: str, key: str, source: str) -> bool | Path:
    value = truth(text)
    if value is not None:
        return value
    path = Path(text).expanduser()
    if not path.is_file():
        raise bad(key, source, text, "is neither true, false nor the path of an existing "
                  "CA bundle file")
    return path


def any_text(text: str, key: str, source: str) -> str:
    """Any text: names the apiserver or the file system checks when they are used."""
    return text


def api_key(text: str, key: str, source: str) -> Secret | None:
    # The value goes into an Authorization header; a space or newline inside
    # means the Secret holds more than a key (a whole file, two lines).
    if not _TOKEN.match(text):
        raise ConfigError(
            f"{key} from {source}: the value contains spaces, control or non-ASCII "
            "characters; an API key is a single token (value not shown)",
            key=key, source=source)
    return Secret(text)


def base_url(text: str, key: str, source: str) -> str:
    """Host-only base URL; a trailing /api/v1 (as other Vers tools write it) is dropped."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise bad(key, source, text, "is not a URL") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: the text holds a credential.
        raise ConfigError(f"{key} from {source}: the URL carries credentials; put the API "
                          "key in VERS_API_KEY instead (value not shown)",
                          key=key, source=source)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad(key, source, text, "is not an http(s) URL such as https://api.vers.sh")
    if parts.query or parts.fragment:
        raise bad(key, source, text, "must not have a query or fragment")
    path = parts.path.rstrip("/").removesuffix(API_PREFIX).rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def apiserver_url(text: str, key: str, source: str) -> str | None:
    """An https URL of a Kubernetes apiserver; empty: none given."""
    if not text.strip():
        return None
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise bad(key, source, text, "is not a URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password \
            or parts.query or parts.fragment:
        raise bad(key, source, text, "is not an https URL such as https://10.0.0.1:6443 "
                  "(no credentials, query or fragment)")
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


def default_vm_domain(url: str) -> str:
    """vm.<x>.vers.sh for api.<x>.vers.sh (staging pairs this way); vm.vers.sh otherwise.

    Only Vers's own host names are paired, so a simulator or proxy URL never
    invents a VM domain.
    """
    host = (urlsplit(url).hostname or "").lower()
    if host.startswith("api.") and (host == "api.vers.sh" or host.endswith(".vers.sh")):
        return "vm." + host.removeprefix("api.")
    return DEFAULT_VM_DOMAIN


def vm_domain(text: str, key: str, source: str) -> str:
    domain = text.strip(".").lower()
    if not _DNS_NAME.match(domain):
        raise bad(key, source, text, "is not a DNS domain such as vm.vers.sh "
                  "(no scheme, port or path)")
    return domain


def port(text: str, key: str, source: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise bad(key, source, text, "is not a port number (1-65535)")
    return number


def connect_host(text: str, key: str, source: str) -> str:
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if "://" in host or "/" in host or any(c.isspace() for c in host):
        raise bad(key, source, text, "is not a host name or IP address (no scheme or path)")
    if host.count(":") == 1:
        raise bad(key, source, text,
                  "is not a host name or IP address; set the port in VERS_SSH_PORT")
    return host


def profile(text: str, key: str, source: str) -> str:
    if len(text) > 253 or not _DNS_SUBDOMAIN.match(text):
        raise bad(key, source, text, "is not a BootProfile name (lowercase letters, digits, "
                  "'-' and '.', at most 253 characters)")
    return text


def absolute_path(text: str, key: str, source: str) -> Path:
    # Relative paths would depend on the directory the operator was started in.
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise bad(key, source, text, "is not an absolute path (~ is allowed)")
    return path


def rate(text: str, key: str, source: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise bad(key, source, text, "is not a number of calls per second greater than 0")
    return number


def count_of(what: str) -> Parse[int]:
    """A parser for a whole number of `what`, at least 1."""
    def parse(text: str, key: str, source: str) -> int:
        try:
            count = int(text)
        except ValueError:
            count = 0
        if count < 1:
            raise bad(key, source, text, f"is not a whole number of {what} of at least 1")
        return count
    return parse


def namespaces(text: str, key: str, source: str) -> tuple[str, ...]:
    """Comma-separated namespace names; blanks between commas are ignored."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    for name in names:
        if not _DNS_LABEL.match(name):
            raise bad(key, source, name, "is not a namespace name (lowercase letters, digits "
                      "and '-', at most 63 characters)")
    return names


def word(text: str, key: str, source: str) -> str:
    if any(c.isspace() for c in text) or len(text) > 256:
        raise bad(key, source, text, "must be a single word without spaces (at most 256 "
                  "characters)")
    return text


def one_of(*words: str) -> Parse[str]:
    """One of a few words, in any case; returned in lower case."""
    def parse(text: str, key: str, source: str) -> str:
        word = text.strip().lower()
        if word not in words:
            raise bad(key, source, text, f"must be one of {', '.join(words)}")
        return word
    return parse
