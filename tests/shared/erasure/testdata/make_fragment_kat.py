#!/usr/bin/env python3
"""Writes the fragment-format known-answer files from the format's
description in shared/erasure/fragment.h, independently of the C++ encoder
(fragment_v2_test.cc checks that the encoder and the parser agree with them).

fragment_v1_kat.bin, fragment_v2_kat.bin: fragment index 5 of a k=4, m=2
chunk of 0x1234 bytes, chunk id 00 01 .. 1f, payload byte i = (7 * i) & 0xff
(1168 bytes). Run from this directory; commit the result.
"""
import hashlib
import struct

POLY = 0x82F63B78


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (POLY if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

CHUNK_ID = bytes(range(32))
CHUNK_LEN = 0x1234
PAYLOAD = bytes((7 * i) & 0xFF for i in range(0x490))


def common(version, header_len):
    return (b"MSFR" + struct.pack("<HH", version, header_len) + CHUNK_ID +
            bytes([5, 4, 2, 0]) + bytes(4) +
            struct.pack("<QQ", CHUNK_LEN, len(PAYLOAD)))


def v1():
    h = common(1, 100) + hashlib.blake2b(PAYLOAD, digest_size=32).digest()
    h += hashlib.blake2b(h, digest_size=32).digest()[:4]
    return h + PAYLOAD


def v2():
    h = common(2, 72) + struct.pack("<I", crc32c(PAYLOAD))
    h += struct.pack("<I", crc32c(h))
    return h + PAYLOAD


if __name__ == "__main__":
    for name, blob in (("fragment_v1_kat.bin", v1()), ("fragment_v2_kat.bin", v2())):
        with open(name, "wb") as f:
            f.write(blob)
        print(name, len(blob), "payload crc32c %08x" % crc32c(PAYLOAD),
              "header", blob[:72].hex() if name.endswith("v2_kat.bin") else "")
