"""The language-server side of nexttoken: protocol, document store, settings, CLI entry points.

It owns the protocol only; completion itself lives in `completion/` and is called with plain
values, so everything it does can also run without a server (tests, `nexttoken complete`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nexttoken")
except PackageNotFoundError:  # running from a checkout that was never pip-installed
    __version__ = "0+unknown"
