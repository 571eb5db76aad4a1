#!/usr/bin/env python3
"""Write the seed corpus of fuzz_img_cli into fuzz/corpus/img_cli/: the
images of fuzz/corpus/qcow2/, overlay+backing pairs of
fuzz/corpus/qcow2_chain/ and the kept crashes of tests/img/fuzz-crashes/,
each with an option byte and a verb selector appended (the input format is
described at the top of fuzz_img_cli.c).  Kept small (under 1 MB).
regress-* are inputs that found bugs, kept by hand (not rewritten here).
Re-run after a change of that format:

    python3 fuzz/gen_img_cli_seeds.py"""
import os

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(here)
out = os.path.join(here, 'corpus', 'img_cli')

QCOW2, JSON = 1, 16


def v(n):
    return n << 5


# selector -> option bytes (bits 0-1 format, 2 --probe-backing, 3 -U,
# 4 JSON, 5-7 the verb's choices; see run_verb).
ALL = {
    0: [QCOW2 | JSON | v(1), QCOW2],
    1: [QCOW2 | JSON, QCOW2],
    2: [QCOW2 | JSON],
    3: [QCOW2 | JSON, 0],
    4: [QCOW2],
    5: [QCOW2, QCOW2 | v(1)],
    6: [QCOW2 | JSON, QCOW2],
    7: [QCOW2, QCOW2 | v(2)],
    8: [QCOW2, QCOW2 | v(1)],
    9: [QCOW2 | v(2)],
    10: [QCOW2 | v(1)],
    11: [QCOW2],
    12: [QCOW2 | JSON],
    13: [QCOW2 | v(1)],
    14: [QCOW2],
    15: [QCOW2 | JSON],
}
FEW = {0: [QCOW2 | JSON], 1: [QCOW2 | JSON], 3: [QCOW2 | JSON], 7: [QCOW2]}
CHAIN = {0: [QCOW2 | JSON | v(1)], 3: [QCOW2 | JSON], 6: [v(4) | QCOW2 | v(2)],
         8: [QCOW2], 10: [QCOW2], 11: [QCOW2]}


def emit(name, data, table):
    for sel, opts in sorted(table.items()):
        for i, opt in enumerate(opts):
            with open(os.path.join(out, '%s-%d-%d' % (name, sel, i)), 'wb') as f:
                f.write(data + bytes([opt, sel]))


def read(*p):
    with open(os.path.join(top, *p), 'rb') as f:
        return f.read()


os.makedirs(out, exist_ok=True)
for n in os.listdir(out):
    if not n.startswith('regress-'):
        os.unlink(os.path.join(out, n))
for n in ('snap', 'data'):
    emit(n, read('fuzz', 'corpus', 'qcow2', n + '.qcow2'), ALL)
for n in ('empty', 'backing', 'zlib', 'zstd', 'lazy', 'v2'):
    emit(n, read('fuzz', 'corpus', 'qcow2', n + '.qcow2'), FEW)
for n in ('v3-qcow2-read', 'v3-raw-read'):
    emit(n, read('fuzz', 'corpus', 'qcow2_chain', n), CHAIN)
for n in sorted(os.listdir(os.path.join(top, 'tests', 'img', 'fuzz-crashes'))):
    if n.endswith('.qcow2'):
        emit('crash-' + n[:-6], read('tests', 'img', 'fuzz-crashes', n),
             {0: [QCOW2 | JSON | v(1)], 1: [QCOW2]})
