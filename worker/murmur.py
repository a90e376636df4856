"""MurmurHash2 (32-bit, x86), the hash JupyterLab's debugger names cell files with.

JupyterLab computes ``tmpFilePrefix + murmur2(code, hashSeed) + tmpFileSuffix`` for a
cell and expects the kernel to have compiled that cell under exactly that name, so the
two hashes must agree bit for bit (on the UTF-8 bytes of the code).
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: str | bytes, seed: int) -> int:
    """The unsigned 32-bit MurmurHash2 of ``data`` (text is hashed as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    length = len(data)
    h = (seed ^ length) & _MASK
    body = length - length % 4
    for (k,) in struct.iter_unpack("<I", data[:body]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = data[body:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)
