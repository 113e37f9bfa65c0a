"""What a studio request may touch: pure checks, each refusal a one-line reason.

- Files are served only from inside a run directory under the runs root. A requested path is
  refused before it is opened if it is absolute, has a `..` part, a backslash, a NUL or a `%`
  (a second layer of URL encoding), and after resolving symlinks it must still lie inside the
  run: a link that points out of the tree is refused like `../`.
- The `Host` header must name the address the studio is bound to (a DNS-rebinding page names
  its own domain), and a state-changing request that carries an `Origin` must come from the
  studio's own page.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from genlab.errors import ConfigError, RunError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Refused(ConfigError):
    """A request for something outside what the studio serves (HTTP 403)."""


class Missing(RunError):
    """No such run, file or checkpoint (HTTP 404)."""


class Busy(RunError):
    """The run is already doing a heavy request, or a training is already running (HTTP 409)."""


def relative_parts(rel: str) -> tuple[str, ...]:
    """'pictures/a.png' -> ('pictures', 'a.png'); Refused for anything that could climb out."""
    if not rel or "\x00" in rel or "\\" in rel or "%" in rel:
        raise Refused(f"path '{rel}' is not a plain relative path")
    path = PurePosixPath(rel)
    if path.is_absolute() or rel.startswith("~"):
        raise Refused(f"path '{rel}' is absolute")
    parts = tuple(p for p in path.parts if p != ".")
    if not parts or ".." in parts:
        raise Refused(f"path '{rel}' leaves its folder")
    return parts


def inside(root: Path, rel: str) -> Path:
    """`root`/`rel` resolved (symlinks followed); Refused unless it lies inside `root`."""
    root = Path(root).resolve()
    target = root.joinpath(*relative_parts(rel)).resolve()
    if target != root and root not in target.parents:
        raise Refused(f"path '{rel}' points outside its folder")
    return target


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values that name the bound address: host:port (and for a loopback
    bind, every loopback name)."""
    names = LOOPBACK_NAMES if host in LOOPBACK_NAMES or host == "::1" else (host,)
    return frozenset(n for name in names for n in (f"{name}:{port}", name))


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    return header is not None and header.lower() in allowed


def origin_allowed(method: str, origin: str | None, allowed: frozenset[str]) -> bool:
    """A state-changing request from another origin is refused (a page elsewhere must not
    start trainings); same-origin pages and clients that send no Origin (curl) may."""
    if method.upper() in SAFE_METHODS or origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() in allowed
