"""Entity ids: time-ordered UUIDs (version 7, RFC 9562).

Time-ordered ids keep index inserts at the right edge of the B-tree and sort
roughly by creation; 74 random bits make collisions between nodes that
create ids at the same millisecond negligible.
"""

from __future__ import annotations

import os
import time
import uuid


def nuevo_id(ms: int | None = None) -> str:
    if ms is None:
        ms = time.time_ns() // 1_000_000
    aleatorio = int.from_bytes(os.urandom(10), "big")
    valor = (ms & ((1 << 48) - 1)) << 80
    valor |= 0x7 << 76  # version
    valor |= ((aleatorio >> 62) & 0xFFF) << 64
    valor |= 0b10 << 62  # variant
    valor |= aleatorio & ((1 << 62) - 1)
    return str(uuid.UUID(int=valor))
