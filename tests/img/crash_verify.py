#!/usr/bin/env python3
"""Check an image's raw contents against a crash_writer log.

  crash_verify.py RAW LOG

Replays the log sector by sector: every sector's last write logged before
an "F" line (a completed flush) of the same run ("S" starts a run) must be there, unless a later, unflushed
write covers it, in which case any of those later patterns (or the flushed
one) is accepted.  Sectors never written must read as zeros.  Prints one
summary line; exit 1 with the first bad sectors listed otherwise.
"""
import sys

raw = open(sys.argv[1], "rb").read()
nsec = len(raw) // 512
durable = bytearray(nsec)          # pattern known flushed (0 = zeros)
pending = []                       # writes since the last flush
maybe = {}                         # sector -> patterns that may have landed
flushed_writes = 0
lost_runs = 0


def uncertain(writes):
    for sec, cnt, pat in writes:
        for s in range(sec, sec + cnt):
            maybe.setdefault(s, set()).add(pat)


for line in open(sys.argv[2]):
    p = line.split()
    if not p:
        continue
    if p[0] == "F":
        for sec, cnt, pat in pending:
            durable[sec:sec + cnt] = bytes([pat]) * cnt
            for s in range(sec, sec + cnt):
                maybe.pop(s, None)
        flushed_writes += len(pending)
        pending = []
    elif p[0] == "S":
        # a new writer run: the killed run's unflushed writes stay uncertain
        uncertain(pending)
        lost_runs += 1 if pending else 0
        pending = []
    elif p[0] == "W" and len(p) == 4:
        pending.append((int(p[1]), int(p[2]), int(p[3])))
    # a torn last line (killed mid-log) is ignored: its write never started

uncertain(pending)

bad = []
for s in range(nsec):
    got = raw[s * 512:(s + 1) * 512]
    want = durable[s]
    if got == bytes([want]) * 512:
        continue
    ok = s in maybe and all(b == want or b in maybe[s] for b in got)
    if not ok:
        bad.append((s, want, sorted(set(got))[:4], sorted(maybe.get(s, ()))))
if bad:
    for s, want, got, m in bad[:5]:
        print("sector %d: want %#x (or unflushed %s), found bytes %s" % (s, want, m, got))
    print("%d bad sectors" % len(bad))
    sys.exit(1)
print("ok: %d flushed writes present, %d unflushed writes tolerated" % (flushed_writes, len(pending)))
