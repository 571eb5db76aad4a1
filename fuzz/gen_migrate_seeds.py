#!/usr/bin/env python3
"""Write the seed corpus of fuzz_migrate (fuzz/corpus/migrate/): migration
streams (vmm/migstream.h) around the state files of fuzz/corpus/state/,
with their configuration record, page and zero-page records, a round's
sync, the state
and the end (one with the source's STOP record before the end); also a
stream cut short and one without its state."""
import os
import struct
import zlib

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus', 'migrate')
PAGE = 4096


def rec(rtype, payload):
    # a PAGES record's crc covers its 16-byte page header, not the data
    covered = payload[:16] if rtype == 2 else payload
    return struct.pack('<IIII', rtype, len(payload), zlib.crc32(covered), 0) + payload


def pages(gpa, data):
    return rec(2, struct.pack('<QII', gpa, len(data) // PAGE, 0) + data)


def zero(gpa, count):
    return rec(3, struct.pack('<QII', gpa, count, 0))


def stream(state, extra=b'', with_state=True, stop=False):
    # the state file: 24-byte header, then CONFIG's 24-byte section header
    clen = struct.unpack_from('<Q', state, 24 + 8)[0]
    config = state[48:48 + clen]
    s = b'VIREOMIG' + struct.pack('<II', 4, 0) + rec(1, config)
    s += zero(0, 256) + pages(0x1000, bytes([0x5a]) * PAGE * 2) + rec(6, b'') + extra
    s += pages(0x100000, bytes(range(256)) * (PAGE // 256))
    if with_state:
        s += rec(4, state)
        if stop:
            s += rec(5, struct.pack('<Q', 1765000000123456789))
        s += rec(0, b'')
    return s


os.makedirs(out, exist_ok=True)
src = os.path.join(here, 'corpus', 'state')
for name in sorted(os.listdir(src)):
    st = open(os.path.join(src, name), 'rb').read()
    open(os.path.join(out, name), 'wb').write(stream(st))
    open(os.path.join(out, name + '-rounds'), 'wb').write(
        stream(st, extra=zero(0x1000, 1) + pages(0x2000, bytes([1]) * PAGE)))
    if name == 'savewrite-1-vcpu':
        open(os.path.join(out, 'no-state'), 'wb').write(stream(st, with_state=False))
        open(os.path.join(out, 'cut'), 'wb').write(stream(st)[:5000])
        open(os.path.join(out, 'stop'), 'wb').write(stream(st, stop=True))
