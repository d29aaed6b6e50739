"""Write docs/_inventories/python.inv, the Python objects our documentation links to.

    python tools/make_python_inventory.py          # (re)write the inventory
    python tools/make_python_inventory.py --check  # exit 1 when it is out of date

The documentation links names such as ``socket.socket`` or ``TimeoutError``
to the Python documentation through Sphinx's intersphinx. Intersphinx reads
an inventory of the target site, normally fetched from
https://docs.python.org/3/objects.inv, which the machines that build our
documentation cannot reach. This script writes a small inventory of its own
instead, in the format Sphinx documents (version 2: four header lines, then
zlib-compressed lines of ``name domain:type priority uri display-name``).
The links it makes still go to docs.python.org.

To link a new Python object, add it to ENTRIES with the page of the Python
documentation that describes it (its anchor there is its full name), run
this script and commit the inventory. A name missing here shows up as a
"reference target not found" error of ``tox -e docs``.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "docs" / "_inventories" / "python.inv"

HEADER = (
    "# Sphinx inventory version 2\n"
    "# Project: Python\n"
    "# Version: 3\n"
    "# The remainder of this file is compressed using zlib.\n"
)

# (full name, object type, page under https://docs.python.org/3/).
# Object types are Sphinx's: class, exception, function, method, data.
ENTRIES: tuple[tuple[str, str, str], ...] = (
    # Built-in constants, types and functions.
    ("False", "data", "library/constants.html"),
    ("None", "data", "library/constants.html"),
    ("True", "data", "library/constants.html"),
    ("bool", "class", "library/functions.html"),
    ("float", "class", "library/functions.html"),
    ("int", "class", "library/functions.html"),
    ("object", "class", "library/functions.html"),
    ("type", "class", "library/functions.html"),
    ("bytearray", "class", "library/stdtypes.html"),
    ("bytearray.find", "method", "library/stdtypes.html"),
    ("bytes", "class", "library/stdtypes.html"),
    ("dict", "class", "library/stdtypes.html"),
    ("list", "class", "library/stdtypes.html"),
    ("memoryview", "class", "library/stdtypes.html"),
    ("str", "class", "library/stdtypes.html"),
    ("tuple", "class", "library/stdtypes.html"),
    # Built-in exceptions.
    ("AssertionError", "exception", "library/exceptions.html"),
    ("BaseException", "exception", "library/exceptions.html"),
    ("BaseExceptionGroup", "exception", "library/exceptions.html"),
    ("BlockingIOError", "exception", "library/exceptions.html"),
    ("BrokenPipeError", "exception", "library/exceptions.html"),
    ("BufferError", "exception", "library/exceptions.html"),
    ("ConnectionRefusedError", "exception", "library/exceptions.html"),
    ("ConnectionResetError", "exception", "library/exceptions.html"),
    ("EOFError", "exception", "library/exceptions.html"),
    ("Exception", "exception", "library/exceptions.html"),
    ("ExceptionGroup", "exception", "library/exceptions.html"),
    ("FileNotFoundError", "exception", "library/exceptions.html"),
    ("KeyboardInterrupt", "exception", "library/exceptions.html"),
    ("LookupError", "exception", "library/exceptions.html"),
    ("NotImplementedError", "exception", "library/exceptions.html"),
    ("OSError", "exception", "library/exceptions.html"),
    ("OverflowError", "exception", "library/exceptions.html"),
    ("PermissionError", "exception", "library/exceptions.html"),
    ("ResourceWarning", "exception", "library/exceptions.html"),
    ("RuntimeError", "exception", "library/exceptions.html"),
    ("TimeoutError", "exception", "library/exceptions.html"),
    ("TypeError", "exception", "library/exceptions.html"),
    ("ValueError", "exception", "library/exceptions.html"),
    # collections.abc, contextlib, typing.
    ("collections.abc.Buffer", "class", "library/collections.abc.html"),
    ("collections.abc.Callable", "class", "library/collections.abc.html"),
    ("collections.abc.Iterable", "class", "library/collections.abc.html"),
    ("collections.abc.Mapping", "class", "library/collections.abc.html"),
    ("collections.abc.Sequence", "class", "library/collections.abc.html"),
    ("contextlib.contextmanager", "function", "library/contextlib.html"),
    ("typing.Any", "data", "library/typing.html"),
    ("typing.Generic", "class", "library/typing.html"),
    ("typing.IO", "class", "library/typing.html"),
    ("typing.Literal", "data", "library/typing.html"),
    ("typing.NamedTuple", "class", "library/typing.html"),
    ("typing.Protocol", "class", "library/typing.html"),
    # errno, io, math, os, selectors, struct, time.
    ("errno.EBADF", "data", "library/errno.html"),
    ("errno.EMSGSIZE", "data", "library/errno.html"),
    ("errno.ETIMEDOUT", "data", "library/errno.html"),
    ("io.BytesIO", "class", "library/io.html"),
    ("math.inf", "data", "library/math.html"),
    ("os.PathLike", "class", "library/os.html"),
    ("os.fork", "function", "library/os.html"),
    ("os.sendfile", "function", "library/os.html"),
    ("selectors.BaseSelector", "class", "library/selectors.html"),
    ("struct.error", "exception", "library/struct.html"),
    ("time.monotonic", "function", "library/time.html"),
    ("time.time_ns", "function", "library/time.html"),
    # socket.
    ("socket.AF_INET", "data", "library/socket.html"),
    ("socket.AF_INET6", "data", "library/socket.html"),
    ("socket.AF_UNIX", "data", "library/socket.html"),
    ("socket.SOCK_STREAM", "data", "library/socket.html"),
    ("socket.gaierror", "exception", "library/socket.html"),
    ("socket.getaddrinfo", "function", "library/socket.html"),
    ("socket.if_nametoindex", "function", "library/socket.html"),
    ("socket.socket", "class", "library/socket.html"),
    ("socket.socket.getpeername", "method", "library/socket.html"),
    ("socket.socket.getsockname", "method", "library/socket.html"),
    ("socket.socket.getsockopt", "method", "library/socket.html"),
    ("socket.socket.recvfrom", "method", "library/socket.html"),
    ("socket.socket.sendfile", "method", "library/socket.html"),
    ("socket.socket.setsockopt", "method", "library/socket.html"),
    ("socket.socketpair", "function", "library/socket.html"),
    # ssl.
    ("ssl.SSLCertVerificationError", "exception", "library/ssl.html"),
    ("ssl.SSLContext", "class", "library/ssl.html"),
    ("ssl.SSLContext.wrap_bio", "method", "library/ssl.html"),
    ("ssl.SSLEOFError", "exception", "library/ssl.html"),
    ("ssl.SSLError", "exception", "library/ssl.html"),
    ("ssl.SSLSession", "class", "library/ssl.html"),
    ("ssl.SSLSocket", "class", "library/ssl.html"),
    ("ssl.SSLSocket.getpeercert", "method", "library/ssl.html"),
    ("ssl.create_default_context", "function", "library/ssl.html"),
)

OBJECT_TYPES = frozenset({"class", "exception", "function", "method", "data", "attribute", "module"})


def inventory_lines() -> list[str]:
    """The uncompressed body: one line per object, sorted by name."""
    lines: list[str] = []
    for name, object_type, page in sorted(ENTRIES):
        if object_type not in OBJECT_TYPES:
            raise ValueError(f"{name}: unknown object type {object_type!r}")
        # "$" at the end of the URI stands for the name: the anchor of every
        # object in the Python documentation is its full name. Priority 1 is
        # what Sphinx gives objects; "-" means "display the name".
        lines.append(f"{name} py:{object_type} 1 {page}#$ -\n")
    names = [line.split(" ", 1)[0] for line in lines]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"listed more than once: {', '.join(duplicates)}")
    return lines


def render() -> bytes:
    body = "".join(inventory_lines()).encode()
    return HEADER.encode() + zlib.compress(body, 9)


def decode(data: bytes) -> tuple[str, str]:
    """The header and the decompressed body of an inventory file."""
    header_lines = data.split(b"\n", 4)
    if len(header_lines) < 5:
        raise ValueError("not an inventory: fewer than four header lines")
    header = b"\n".join(header_lines[:4]).decode() + "\n"
    return header, zlib.decompress(header_lines[4]).decode()


def is_up_to_date(path: Path = INVENTORY) -> bool:
    # Compare what the file says, not its bytes: another zlib may compress
    # the same lines differently.
    return path.is_file() and decode(path.read_bytes()) == decode(render())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the inventory is up to date")
    parser.add_argument("--output", type=Path, default=INVENTORY, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.check:
        if is_up_to_date(args.output):
            return 0
        print(f"{args.output} is out of date: run python tools/make_python_inventory.py", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(render())
    print(f"wrote {len(ENTRIES)} objects to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
