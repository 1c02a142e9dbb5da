"""``authstate serve`` as the ``authstate`` command runs it, plus a look from inside.

On SIGUSR1 the process writes one line per connected TCP socket it holds,
``<client port> <TCP_NODELAY>``, and a last line ``gc-frozen <count>`` (objects in the
GC's permanent generation) to the file named by ``NODELAY_PROBE_FILE``. Nothing is added
to the server itself: the probe reads its own descriptors and interpreter state.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from types import FrameType

from authstate.cli import main


def _connected_tcp(fd: int) -> str | None:
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:  # not a socket
        return None
    with sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        try:
            peer = sock.getpeername()
        except OSError:  # the listening socket
            return None
        nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        return f"{peer[1]} {int(bool(nodelay))}"


def _report(signum: int, frame: FrameType | None) -> None:
    lines = [line for name in os.listdir("/proc/self/fd") if (line := _connected_tcp(int(name)))]
    lines.append(f"gc-frozen {gc.get_freeze_count()}")
    path = os.environ["NODELAY_PROBE_FILE"]
    with open(path + ".tmp", "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)  # the test never reads half a report


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _report)
    sys.exit(main())
