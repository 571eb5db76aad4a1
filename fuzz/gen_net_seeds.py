#!/usr/bin/env python3
"""Write the seed corpus of fuzz_virtio_net into fuzz/corpus/virtio_net/: a
transmitted frame, a GSO frame, mergeable receive buffers with frames
waiting, receive without MRG_RXBUF, and control commands (rx mode, MAC
table, MQ).  Re-run after a change of the input format described at the top
of fuzz/fuzz_virtio_net.c."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
RAM = 0x10000
N, W = 1, 2


def desc(addr, length, flags=0, nxt=0):
    return struct.pack('<QIHH', addr, length, flags, nxt)


def put(img, off, data):
    if len(img) < off + len(data):
        img.extend(b'\0' * (off + len(data) - len(img)))
    img[off:off + len(data)] = data


def avail(entries, qsize):
    ring = list(entries) + [0] * (qsize - len(entries))
    return struct.pack('<HH%dHH' % qsize, 0, len(entries), *ring, 0)


def queue(img, slot, descs, entries, qsize=8):
    base = 0x2000 * slot
    for i, d in enumerate(descs):
        put(img, base + 16 * i, d)
    put(img, base + 0x800, avail(entries, qsize))


def hdr(flags=0, gso=0, hdr_len=0, gso_size=0, cstart=0, coff=0):
    return struct.pack('<BBHHHHH', flags, gso, hdr_len, gso_size, cstart, coff, 0)


def write(name, head, img, tail=b''):
    d = os.path.join(here, 'corpus', 'virtio_net')
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes(head) + bytes(img).ljust(0x10000, b'\0') + tail)


DATA = 0xc000   # buffers live here (offset in the RAM image)
frame = bytes.fromhex('525400010203' 'ffffffffffff' '0800') + bytes(range(46))

# tx: header and frame in two descriptors
img = bytearray()
put(img, DATA, hdr())
put(img, DATA + 16, frame)
queue(img, 1, [desc(RAM + DATA, 12, N, 1), desc(RAM + DATA + 16, len(frame))], [0])
write('tx_plain', [0, 3, 0, 0], img)

# tx: a TSO4 frame with a partial checksum
img = bytearray()
put(img, DATA, hdr(1, 1, 54, 1448, 34, 16) + frame + bytes(3000))
queue(img, 1, [desc(RAM + DATA, 12 + len(frame) + 3000)], [0])
write('tx_tso4', [0, 3, 0, 0], img)

# rx mergeable: 8 buffers of 2 KiB, 3 frames waiting
img = bytearray()
queue(img, 0, [desc(RAM + DATA + 0x800 * i, 0x800, W) for i in range(8)], list(range(8)))
write('rx_mrg', [0, 3, 3, 20], img, frame * 4)

# rx without mergeable buffers: header + data descriptors
img = bytearray()
queue(img, 0, [desc(RAM + DATA, 12, W | N, 1), desc(RAM + DATA + 16, 0x2000, W)], [0])
write('rx_nomrg', [3, 3, 2, 4], img, frame)

# control: promiscuous on, MAC table, MQ 2 pairs (three pairs offered)
img = bytearray()
cmds = [bytes([0, 0, 1]),
        bytes([1, 0]) + struct.pack('<I', 1) + bytes.fromhex('525400000009') +
        struct.pack('<I', 1) + bytes.fromhex('01005e000001'),
        bytes([4, 0]) + struct.pack('<H', 2)]
descs, entries, off = [], [], DATA
for c in cmds:
    i = len(descs)
    put(img, off, c)
    descs += [desc(RAM + off, len(c), N, i + 1), desc(RAM + off + 0x100, 1, W)]
    entries.append(i)
    off += 0x200
queue(img, 2, descs, entries)
write('ctrl_mq', [16, 3, 1, 1], img, frame)
