#!/usr/bin/env python3
"""Writes the manifest known-answer files from the format description
(shared/proto/mistore.proto: Manifest, ManifestChunk; sync-client/manifest.h),
with a hand-written protobuf encoder, not the product's code, and prints the
fragment-tag known answer (sync-client/fragment_tags.h) from an independent
Poly1305 (RFC 8439) and BLAKE2b (hashlib).

    python3 tests/sync-client/testdata/make_manifest_kat.py tests/sync-client/testdata

manifest_v1_kat.bin: format 1 (written before issue 3's tags).
manifest_v2_kat.bin: format 2, one tagged chunk (k = 4, m = 2) and one not.
"""
import hashlib
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3 | 0) + varint(n)


def f_bytes(field, b):
    return varint(field << 3 | 2) + varint(len(b)) + b


def chunk(cid, plain_len, nonce=b"", tags=b""):
    out = f_bytes(1, cid) + f_varint(2, plain_len)
    if nonce:
        out += f_bytes(3, nonce)
    if tags:
        out += f_bytes(4, tags)
    return out


CID1 = bytes(range(32))
CID2 = bytes(range(0x80, 0xA0))
NONCE = bytes(range(0xA0, 0xB8))
TAGS = bytes((i * 7 + 3) & 0xFF for i in range(6 * 16))


def manifest(fmt):
    out = f_varint(1, fmt) + f_bytes(2, b"docs/report.txt") + f_varint(3, 300000)
    out += f_varint(4, 1700000000) + f_varint(5, 0o644)
    if fmt == 2:
        out += f_bytes(6, chunk(CID1, 100000, NONCE, TAGS))
    else:
        out += f_bytes(6, chunk(CID1, 100000))
    out += f_bytes(6, chunk(CID2, 200000))
    out += f_varint(7, 1700000000123)
    if fmt == 2:
        out += f_varint(9, 4) + f_varint(10, 2)
    return out


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        block = msg[i:i + 16] + b"\x01"
        acc = (acc + int.from_bytes(block, "little")) * r % p
    return ((acc + s) % (1 << 128)).to_bytes(16, "little")


def fragment_tag(root, cid, nonce, index, k, m, payload):
    key = hashlib.blake2b(b"MSFT" + cid + nonce + bytes([index, k, m]), digest_size=32,
                          key=root).digest()
    return poly1305(key, payload)


if __name__ == "__main__":
    d = sys.argv[1]
    open(d + "/manifest_v1_kat.bin", "wb").write(manifest(1))
    open(d + "/manifest_v2_kat.bin", "wb").write(manifest(2))
    root = bytes(range(0x40, 0x60))
    payload = bytes((i * 131 + 2) & 0xFF for i in range(1000))
    # RFC 8439, 2.5.2: the Poly1305 test vector (checks this implementation).
    rk = bytes.fromhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    assert poly1305(rk, b"Cryptographic Forum Research Group").hex() == \
        "a8061dc1305136c6c22b8baf0c0127a9"
    print("tag", fragment_tag(root, CID1, NONCE, 5, 4, 2, payload).hex())
