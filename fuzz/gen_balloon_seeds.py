#!/usr/bin/env python3
"""Write the seed corpus of fuzz_virtio_balloon (fuzz/corpus/virtio_balloon/):
inflate/deflate arrays with good and bogus page frames, a statistics buffer,
reported free ranges.  Layout as in fuzz_virtio_balloon.c."""
import os
import struct

RAM_GPA = 0x10000
RAM = 0x10000
DATA = 0x6000          # buffers from here (below the balloonable half)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'virtio_balloon')


def seed(name, flags, log2, queues):
    """queues: {q: [(bytes_or_gpa_len, writable)]} one chain per entry."""
    img = bytearray(RAM)
    data = DATA
    for q, bufs in queues.items():
        base = q * 0x2000
        for i, (buf, writable) in enumerate(bufs):
            if isinstance(buf, tuple):
                gpa, ln = buf
            else:
                img[data:data + len(buf)] = buf
                gpa, ln = RAM_GPA + data, len(buf)
                data += (len(buf) + 15) & ~15
            struct.pack_into('<QIHH', img, base + 16 * i, gpa, ln, 2 if writable else 0, 0)
            struct.pack_into('<H', img, base + 0x800 + 4 + 2 * i, i)
        struct.pack_into('<HH', img, base + 0x800, 0, len(bufs))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), 'wb') as f:
        # The target zero-fills what the input leaves out: drop the tail.
        f.write(bytes([flags, log2]) + bytes(img).rstrip(b'\0'))


pfns = struct.pack('<8I', 0x18, 0x19, 0x1a, 0x1f, 0x0, 0x10, 0xfffff, 0xffffffff)
stats = b''.join(struct.pack('<HQ', t, v) for t, v in [(5, 1 << 30), (4, 1 << 29), (6, 3 << 28)])
seed('inflate', 0, 3, {0: [(pfns, False)]})
seed('deflate', 0, 3, {1: [(pfns, False)], 0: [(pfns[:12], False)]})
seed('stats', 0, 3, {2: [(stats, False)]})
seed('report', 1, 3, {3: [((RAM_GPA + 0x8000, 0x2000), True), ((RAM_GPA, 0x1000), True),
                          ((RAM_GPA + 0x9100, 0x3000), True)]})
seed('report_nostats', 1 | 8, 3, {2: [((RAM_GPA + 0xa000, 0x1000), True)]})
seed('reset', 1 | 16, 3, {0: [(pfns, False)], 2: [(stats, False)],
                          3: [((RAM_GPA + 0xc000, 0x4000), True)]})
