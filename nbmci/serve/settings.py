"""Serving settings: one frozen dataclass, filled by ``nbmci serve`` options or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nbmci.errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_ANY_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class ServeSettings:
    """How ``nbmci serve`` listens, follows the registry and batches predictions."""

    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[str, ...] = ()  # empty: every model that has a production version
    poll_interval: float = 1.0  # seconds between reads of the production aliases
    trust_pickle: bool = False  # load pickled (untrusted) models too
    token: str | None = field(default=None, repr=False)  # admin routes need it
    max_body: int = 10 << 20  # bytes; larger bodies get 413 before they are buffered
    max_batch: int = 64  # rows per predict call
    max_wait: float = 0.0  # seconds to wait for more rows when a batch is not full
    max_queue: int = 4096  # rows waiting per model before requests get 503
    timeout: float = 30.0  # seconds a request may wait for its prediction (504 after)
    drain: float = 0.0  # seconds readiness is 503 before the listener closes on SIGTERM
    allowed_hosts: tuple[str, ...] = ()  # Host header values; empty: derived from ``host``

    def __post_init__(self) -> None:
        checks = {"poll_interval": self.poll_interval > 0, "max_body": self.max_body > 0,
                  "max_batch": self.max_batch >= 1, "max_wait": self.max_wait >= 0,
                  "max_queue": self.max_queue >= 1, "timeout": self.timeout > 0,
                  "drain": self.drain >= 0, "port": 0 <= self.port <= 65535}
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"Serve setting {key}={getattr(self, key)!r} is out of range.")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("The serve token is too short (fewer than 8 characters).",
                              hint="Use a random token, e.g. `python -c 'import secrets; "
                                   "print(secrets.token_urlsafe())'`.")

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def host_patterns(self) -> frozenset[str] | None:
        """Host header names accepted (DNS-rebinding guard); ``None`` accepts any."""
        if self.allowed_hosts:
            if "*" in self.allowed_hosts:
                return None
            return frozenset(h.lower() for h in self.allowed_hosts)
        if self.host in _ANY_HOSTS:
            return None  # bound to every interface: the operator names hosts explicitly
        return frozenset({*LOOPBACK_HOSTS, self.host.lower()})

    def with_overrides(self, **changes: Any) -> ServeSettings:
        return replace(self, **changes)
