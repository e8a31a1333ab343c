"""Run the book's tests with the network unavailable.

Nothing in the book may download data or weights. To make that a tested fact
rather than a promise, the test command blocks every socket connection that
leaves the machine, in the test process (``conftest.py`` calls :func:`install`)
and in every Jupyter kernel it starts (an IPython start-up file, written by
:func:`write_ipython_startup`, into the ``IPYTHONDIR`` the test command sets).
Loopback and Unix sockets stay open: kernels talk to their clients over them.

    python -m tools.nonet ipython _build/ipython   # write the kernel start-up file
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path


class NetworkBlocked(OSError):
    """Raised when code under test tries to reach the network."""


_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]")
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback or host == "0.0.0.0"
    except ValueError:
        return False  # a name that would need DNS


def _check(address) -> None:
    if isinstance(address, tuple) and address and not _is_local(address[0]):
        raise NetworkBlocked(f"network access is blocked while testing the book: tried {address!r}")


def install() -> None:
    """Refuse connections and name lookups that would leave this machine. Idempotent."""
    if getattr(socket, "_book_nonet", False):
        return
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return original_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return original_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host if host is not None else ""):
            raise NetworkBlocked(f"network access is blocked while testing the book: lookup of {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    socket._book_nonet = True


def write_ipython_startup(ipython_dir: Path | str) -> Path:
    """Write ``<ipython_dir>/profile_default/startup/00-book-nonet.py`` calling :func:`install`."""
    startup = Path(ipython_dir) / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    target = startup / "00-book-nonet.py"
    source = Path(__file__).resolve()
    target.write_text(
        "# Written by tools/nonet.py: kernels started by the book's tests cannot reach the network.\n"
        "import runpy as _runpy\n"
        f"_runpy.run_path({str(source)!r})['install']()\n"
    )
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "ipython":
        sys.exit("usage: python -m tools.nonet ipython IPYTHONDIR")
    print(write_ipython_startup(sys.argv[2]))
