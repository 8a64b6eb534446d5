"""Entity ids: time-ordered UUIDs (version 7, RFC 9562).

Time-ordered ids keep index inserts at the right edge of the B-tree and sort
roughly by creation; 74 random bits make collisions between nodes that
create ids at the same millisecond negligible. Within one process the ids
also sort in the order they were made (RFC 9562, 6.2, method 2): an id made
in the same millisecond as the last one, or after the clock stepped back,
takes the last one's time and its random bits plus a random step. Lists are
ordered by creation time, then id, so entities a node creates within one
millisecond still list in the order they were created.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid

_ALEATORIOS = 74
_cerrojo = threading.Lock()
_ultimo = (0, 0)  # (ms, random bits) of the last id made without an explicit time


def nuevo_id(ms: int | None = None) -> str:
    global _ultimo
    aleatorio = int.from_bytes(os.urandom(10), "big") >> (80 - _ALEATORIOS)
    if ms is None:
        ms = time.time_ns() // 1_000_000
        with _cerrojo:
            ultimo_ms, ultimos = _ultimo
            if ms <= ultimo_ms:
                ms, aleatorio = ultimo_ms, ultimos + 1 + (aleatorio >> 42)  # a step of up to 2**32
                if aleatorio >> _ALEATORIOS:  # the random bits ran out: borrow the next millisecond
                    ms, aleatorio = ms + 1, aleatorio & ((1 << (_ALEATORIOS - 1)) - 1)
            _ultimo = (ms, aleatorio)
    valor = (ms & ((1 << 48) - 1)) << 80
    valor |= 0x7 << 76  # version
    valor |= (aleatorio >> 62) << 64
    valor |= 0b10 << 62  # variant
    valor |= aleatorio & ((1 << 62) - 1)
    return str(uuid.UUID(int=valor))


def id_de_clave(entidad: str, clave: str) -> str:
    """The id of the entity an idempotency key creates: the same on every node.

    A name-based UUID (version 8, RFC 9562, B.2): SHA-256 of the entity kind
    and the key. Two nodes that take the same key without hearing of each
    other create the same id, and the merge keeps one creation of it.
    """
    valor = int.from_bytes(hashlib.sha256(f"{entidad}\x00{clave}".encode()).digest()[:16], "big")
    valor &= ~(0xF << 76)
    valor |= 0x8 << 76  # version
    valor &= ~(0b11 << 62)
    valor |= 0b10 << 62  # variant
    return str(uuid.UUID(int=valor))
