#!/usr/bin/env python3
"""Write the seed corpora of fuzz_virtq and fuzz_virtio_blk (valid rings and
requests, plus a few classic mistakes) into fuzz/corpus/.  Re-run after a
change of the input formats described at the top of the two targets."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
RAM = 0x10000


def desc(addr, length, flags=0, nxt=0):
    return struct.pack('<QIHH', addr, length, flags, nxt)


def put(img, off, data):
    if len(img) < off + len(data):
        img.extend(b'\0' * (off + len(data) - len(img)))
    img[off:off + len(data)] = data


def avail(entries, flags=0, used_event=0, qsize=8, idx=None):
    ring = list(entries) + [0] * (qsize - len(entries))
    return struct.pack('<HH%dHH' % qsize, flags,
                       len(entries) if idx is None else idx, *ring, used_event)


def write(corpus, name, data):
    d = os.path.join(here, 'corpus', corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes(data))


N, W, I = 1, 2, 4

# ---- fuzz_virtq: [log2 qsize][flags][desc off][avail off][used off] image
def vq(name, log2, flags, descs, entries, extra=(), idx=None):
    qsize = 1 << log2
    img = bytearray()
    for i, d in enumerate(descs):
        put(img, 16 * i, d)
    put(img, 0x400, avail(entries, qsize=qsize, idx=idx))
    put(img, 0x800, b'\0' * (6 + 8 * qsize))
    for off, data in extra:
        put(img, off, data)
    hdr = struct.pack('<BBHHH', log2, flags, 0, 0x400, 0x800)
    write('virtq', name, hdr + img)

vq('simple', 3, 0, [desc(RAM + 0x1000, 16, N, 1), desc(RAM + 0x1100, 32, W)], [0])
vq('two_chains_event_idx', 3, 2,
   [desc(RAM + 0x1000, 16), desc(RAM + 0x1100, 8, W | N, 2), desc(RAM + 0x1200, 8, W)],
   [0, 1])
vq('indirect', 3, 1, [desc(RAM + 0x2000, 48, I)], [0],
   extra=[(0x2000, desc(RAM + 0x1000, 16, N, 1) + desc(RAM + 0x1100, 512, W | N, 2)
           + desc(RAM + 0x1400, 1, W))])
vq('straddle', 3, 0, [desc(RAM + 0x7ff0, 32)], [0])
vq('loop', 3, 0, [desc(RAM + 0x1000, 8, N, 1), desc(RAM + 0x1000, 8, N, 0)], [0])
vq('avail_jump', 3, 0, [desc(RAM + 0x1000, 8)], [0], idx=200)
vq('wrap_addr', 3, 0, [desc(0xfffffffffffff000, 0x2000)], [0])

# ---- fuzz_virtio_blk: [flags][log2 qsize] image (desc +0, avail +0x800,
# used +0x1000)
def blk(name, flags, log2, reqs):
    """reqs: list of (type, sector, data bytes or length, data_in)."""
    qsize = 1 << log2
    img = bytearray(0x1000 + 6 + 8 * qsize)
    data_at = 0x2000
    heads = []
    di = 0
    for typ, sector, data, data_in in reqs:
        heads.append(di)
        hdr_at = data_at
        put(img, hdr_at, struct.pack('<IIQ', typ, 0, sector))
        data_at += 16
        chain = [(hdr_at, 16, 0)]
        if data:
            n = data if isinstance(data, int) else len(data)
            if not isinstance(data, int):
                put(img, data_at, data)
            chain.append((data_at, n, W if data_in else 0))
            data_at += (n + 15) & ~15
        chain.append((data_at, 1, W))
        data_at += 16
        for k, (a, n, fl) in enumerate(chain):
            last = k == len(chain) - 1
            put(img, 16 * (di + k),
                desc(RAM + a, n, fl | (0 if last else N), 0 if last else di + k + 1))
        di += len(chain)
    put(img, 0x800, avail(heads, qsize=qsize))
    write('virtio_blk', name, bytes([flags, log2]) + img)

blk('read', 0, 3, [(0, 2, 1024, True)])
blk('write_read', 0, 3, [(1, 4, b'\xab' * 512, False), (0, 4, 512, True)])
blk('flush_getid', 0, 3, [(4, 0, None, False), (8, 0, 20, True)])
blk('write_zeroes', 0, 3, [(13, 0, struct.pack('<QII', 3, 2, 1), False)])
blk('discard', 0, 3, [(11, 0, struct.pack('<QII', 0, 8, 0), False)])
blk('readonly_write', 1, 3, [(1, 0, b'\x01' * 512, False)])
blk('out_of_range', 0, 3, [(0, 127, 1024, True), (99, 0, None, False)])

# ---- fuzz_virtio_pci: records [kind][addr le32][len][data le32]; kind
# 0x0a/0x0b read/write in the BAR window (blk BAR 4 at its start), 0x30
# writes 4 bytes of guest RAM.
def rec(kind, addr, length, value):
    return struct.pack('<BIBI', kind, addr, length, value & 0xffffffff)


def bar_w(off, length, value):
    return rec(0x0b, off, length, value)


def ram(addr, data):
    data = data + b'\0' * (-len(data) % 4)
    return b''.join(rec(0x30, addr + i, 4, struct.unpack('<I', data[i:i + 4])[0])
                    for i in range(0, len(data), 4))


def blk_init(event_idx=False):
    p = bar_w(0x14, 1, 0) + bar_w(0x14, 1, 1) + bar_w(0x14, 1, 3)
    p += bar_w(0x08, 4, 1) + bar_w(0x0c, 4, 1)
    p += bar_w(0x08, 4, 0) + bar_w(0x0c, 4, (1 << 29) if event_idx else 0)
    p += bar_w(0x14, 1, 0xb) + rec(0x0a, 0x14, 1, 0)
    p += bar_w(0x16, 2, 0) + bar_w(0x18, 2, 8)
    p += bar_w(0x20, 4, 0x1000) + bar_w(0x24, 4, 0)
    p += bar_w(0x28, 4, 0x2000) + bar_w(0x2c, 4, 0)
    p += bar_w(0x30, 4, 0x3000) + bar_w(0x34, 4, 0)
    p += bar_w(0x1c, 2, 1) + bar_w(0x14, 1, 0xf)
    return p


def blk_read_req():
    p = ram(0x1000, desc(0x4000, 16, N, 1) + desc(0x5000, 512, W | N, 2) + desc(0x6000, 1, W))
    p += ram(0x4000, struct.pack('<IIQ', 0, 0, 3))
    p += ram(0x2000, struct.pack('<HHH', 0, 1, 0))
    return p + bar_w(0x3000, 2, 0)

write('virtio_pci', 'blk_read', blk_init() + blk_read_req())
write('virtio_pci', 'blk_read_event_idx', blk_init(True) + blk_read_req()
      + rec(0x0a, 0x1000, 1, 0))
write('virtio_pci', 'config_reads', b''.join(rec(0x0a, o, 4, 0) for o in range(0, 0x40, 4))
      + b''.join(rec(0x0a, 0x2000 + o, 4, 0) for o in range(0, 0x40, 4))
      + rec(0x0a, 0x1000, 1, 0) + rec(0x0a, 0x5000, 8, 0))
write('virtio_pci', 'msix_table', blk_init() + bar_w(0x4000, 4, 0xfee00000)
      + bar_w(0x4008, 4, 0x41) + bar_w(0x400c, 4, 0) + bar_w(0x1a, 2, 0)
      + bar_w(0x10, 2, 1)
      # MSI-X enable in config space (ECAM, slot 1; the MSI-X capability
      # follows the five virtio ones at 0x98)
      + rec(0x07, (1 << 15) | 0x9a, 2, 0x8000) + blk_read_req())
