#!/usr/bin/env python3
"""Write the seed corpus of fuzz_unpack into fuzz/corpus/unpack/: a small
kernel-like stream (ELF64 with vmlinux's layout: a segment that moves down,
a relocation table) raw and compressed as LZ4 legacy (literal-only blocks,
encoded here), gzip and xz, each with the kernel build's 4-byte size
trailer. The first byte of each file is fuzz_unpack's selector. Also a
minimal bzImage carrying the LZ4 one for fuzz_boot (corpus/boot/)."""
import gzip
import lzma
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus", "unpack")
LOAD = 0x200000              # fuzz_unpack: selector & 3 == 2
VBASE = 0xffffffff80000000 + LOAD

# (stream offset, offset from LOAD, size)
SEGS = [(0x1000, 0x0, 0x800), (0x2000, 0x800, 0x100), (0x2400, 0x900, 0x300)]


def stream():
    s = bytearray(0x2800)
    ehdr = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, LOAD + 0x10, 64, 0, 0, 64, 56,
                        len(SEGS), 64, 0, 0)
    s[0:64] = ehdr
    for i, (off, dst, size) in enumerate(SEGS):
        ph = struct.pack("<IIQQQQQQ", 1, 7, off, VBASE + dst, LOAD + dst, size, size, 0x1000)
        s[64 + 56 * i:64 + 56 * (i + 1)] = ph
        for j in range(size):
            s[off + j] = (i * 37 + j * 7) & 0xff
    s[0x1008:0x1010] = struct.pack("<Q", VBASE + 0x123)
    # Read from the end: 32-bit set, 0, inverse 32-bit set (empty), 0,
    # 64-bit set, 0.
    rel = struct.pack("<IIIII", 0, (VBASE + 0x8) & 0xffffffff, 0, 0,
                      (VBASE + 0x20) & 0xffffffff)
    return bytes(s) + rel


def lz4_literals(data):
    """One LZ4 block holding only literals."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    ext, rest = bytearray(), n - 15
    while rest >= 255:
        ext.append(255)
        rest -= 255
    ext.append(rest)
    return bytes([0xF0]) + bytes(ext) + data


def bzimage(payload, init_size=0x10000):
    """A minimal bzImage (boot protocol 2.15, one setup sector) carrying
    payload, linked for LOAD: a seed of fuzz_boot's host-unpack path."""
    setup, pm_off = 1024, 0x100
    f = bytearray(setup + pm_off + len(payload))
    f[0x1f1] = 1
    struct.pack_into("<I", f, 0x1f4, (len(f) - setup + 15) // 16)
    f[0x1fe:0x200] = b"\x55\xaa"
    f[0x201] = 0x66
    f[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", f, 0x206, 0x20f)
    struct.pack_into("<I", f, 0x22c, 0x7fffffff)
    struct.pack_into("<I", f, 0x230, 0x200000)
    f[0x234] = 1
    f[0x236] = 1
    struct.pack_into("<I", f, 0x238, 2047)
    struct.pack_into("<II", f, 0x248, pm_off, len(payload))
    struct.pack_into("<Q", f, 0x258, LOAD)
    struct.pack_into("<I", f, 0x260, init_size)
    f[setup + pm_off:] = payload
    return bytes(f)


def main():
    os.makedirs(out, exist_ok=True)
    s = stream()
    trailer = struct.pack("<I", len(s))
    blk = lz4_literals(s)
    seeds = {
        "raw-stream": bytes([0x02 | 0x20]) + s,
        "raw-stream-nokaslr": bytes([0x02]) + s,
        "lz4": bytes([0x02]) + struct.pack("<II", 0x184C2102, len(blk)) + blk + trailer,
        "gzip": bytes([0x03]) + gzip.compress(s, mtime=0),
        "xz": bytes([0x02]) + lzma.compress(s, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32) + trailer,
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    boot = os.path.join(here, "corpus", "boot")
    os.makedirs(boot, exist_ok=True)
    with open(os.path.join(boot, "bzimage-lz4-stream"), "wb") as f:
        f.write(bzimage(seeds["lz4"][1:]))


if __name__ == "__main__":
    main()
