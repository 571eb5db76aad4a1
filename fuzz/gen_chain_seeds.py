#!/usr/bin/env python3
"""Write the seed corpus of fuzz_qcow2_chain into fuzz/corpus/qcow2_chain/:
small valid backing chains (an overlay qcow2 over a qcow2 or raw backing
file named "base", as the target's private directory has it) made with the
project's own vireo-img, each with a few operation programs (the input
format is described at the top of fuzz_qcow2_chain.c).  Re-run after a
change of that format:

    python3 fuzz/gen_chain_seeds.py [path/to/vireo-img]

(default: the first of build/{asan,debug,release,fuzz}/cli/vireo-img)."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(here)
SEP = b'\0VCHAIN\n'
SIZE = 64 * 1024


def find_tool():
    if len(sys.argv) > 1:
        return os.path.abspath(sys.argv[1])
    for flavour in ('asan', 'debug', 'release', 'fuzz'):
        p = os.path.join(top, 'build', flavour, 'cli', 'vireo-img')
        if os.access(p, os.X_OK):
            return p
    sys.exit('gen_chain_seeds.py: no vireo-img built (scripts/build.sh asan)')


TOOL = find_tool()


def vimg(d, *args):
    subprocess.run([TOOL, *args], cwd=d, check=True, stdout=subprocess.DEVNULL)


def raw(d, name, chunks, size=SIZE):
    """A raw file of @size bytes with (offset, length, byte) filled in."""
    b = bytearray(size)
    for off, n, v in chunks:
        for i in range(n):
            b[off + i] = (v + i // 512) & 0xff
    with open(os.path.join(d, name), 'wb') as f:
        f.write(b)


def op(code, sector, nsect, shift=0):
    return struct.pack('<BHB', code | shift << 4, sector, nsect - 1)


# Programs over a 64 KiB disk (128 sectors), 4 bytes per operation.
PROGRAMS = {
    # reads falling through, held against block status; plain close
    'read': (0, [op(4, 0, 128), op(5, 50, 78), op(15, 7, 40, 3),
                 op(4, 20, 100), op(5, 0, 16)]),
    # partial-cluster writes (COW from the backing file), copy-up; commit
    'cow': (1, [op(0, 1, 2), op(1, 9, 1, 5), op(6, 32, 64), op(0, 75, 17, 1),
                op(4, 0, 128), op(7, 0, 1), op(5, 0, 128)]),
    # discard, zeroes, snapshot, compressed write, resize; flatten
    'meta': (2, [op(2, 16, 8), op(3, 40, 3, 2), op(8, 0, 1), op(0, 80, 4),
                 op(12, 96, 1), op(9, 0, 1), op(11, 0, 1), op(13, 0, 8),
                 op(4, 0, 128), op(10, 0, 1)]),
    # rebase -u to the same file with its format, then a read; close
    'rebase': (0, [op(14, 0, 1 | 2 << 0), op(0, 3, 1), op(5, 0, 64)]),
}


def seed(name, overlay, backing, prog, flags):
    body = b''.join(prog)
    data = overlay + SEP + backing + body + bytes([flags, len(body)])
    d = os.path.join(here, 'corpus', 'qcow2_chain')
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def chain(d, name, base_fmt, top_opts, base_opts='cluster_size=4096',
          progs=('read', 'cow', 'meta'), top_size=None, top_data=True,
          probe=False, compressed=False):
    """base (from base.raw) and top.qcow2 over it, then the seeds."""
    for f in ('base', 'top.qcow2', 'src.raw'):
        if os.path.exists(os.path.join(d, f)):
            os.unlink(os.path.join(d, f))
    if base_fmt == 'raw':
        # Shorter than the overlay: reads past its end are zeros.
        with open(os.path.join(d, 'base.raw'), 'rb') as f:
            b = f.read()[:12 * 1024]
        with open(os.path.join(d, 'base'), 'wb') as f:
            f.write(b)
    else:
        vimg(d, 'convert', *(['-c'] if compressed else []), '-f', 'raw',
             '-O', 'qcow2', '-o', base_opts, 'base.raw', 'base')
    fmt = ['-F', base_fmt]
    if top_data:
        # What the overlay holds differs from base.raw in a few places.
        raw(d, 'src.raw', [(0, 1024, 0x11), (4096, 512, 0x22), (20480, 1024, 0x33),
                           (36864, 1024, 0x44)])
        with open(os.path.join(d, 'base.raw'), 'rb') as f:
            b = bytearray(f.read())
        with open(os.path.join(d, 'src.raw'), 'rb') as f:
            s = f.read()
        for off, n in ((0, 1024), (4096, 512), (20480, 1024), (36864, 1024)):
            b[off:off + n] = s[off:off + n]
        with open(os.path.join(d, 'src.raw'), 'wb') as f:
            f.write(b)
        vimg(d, 'convert', '-f', 'raw', '-O', 'qcow2', '-o', top_opts,
             '-B', 'base', *fmt, 'src.raw', 'top.qcow2')
    else:
        vimg(d, 'create', '-q', '-f', 'qcow2', '-o', top_opts, '-b', 'base',
             *fmt, 'top.qcow2', *([str(top_size)] if top_size else []))
    if top_size and top_data:
        vimg(d, 'resize', 'top.qcow2', str(top_size))
    if probe:
        # No backing format recorded: the target probes the file.
        vimg(d, 'rebase', '--probe-backing', '-u', '-b', 'base', 'top.qcow2')
    with open(os.path.join(d, 'top.qcow2'), 'rb') as f:
        overlay = f.read()
    with open(os.path.join(d, 'base'), 'rb') as f:
        backing = f.read()
    for p in progs:
        end, prog = PROGRAMS[p]
        seed('%s-%s' % (name, p), overlay, backing, prog, end)


def main():
    d = tempfile.mkdtemp(prefix='gen-chain-')
    try:
        # The backing data: a few sectors and clusters, the rest zeros.
        raw(d, 'base.raw', [(0, 2048, 0xa0), (9216, 1024, 0xb0),
                            (24576, 512, 0xc0), (49152, 1024, 0xd0)])
        c1k = 'cluster_size=1024'
        chain(d, 'v3-qcow2', 'qcow2', c1k, base_opts=c1k,
              progs=('read', 'cow', 'meta', 'rebase'))
        chain(d, 'v3-raw', 'raw', c1k)
        chain(d, 'v2-qcow2', 'qcow2', c1k + ',compat=0.10', base_opts=c1k)
        # Subclusters need 16 KiB clusters: one seed, an empty overlay.
        chain(d, 'extl2', 'qcow2', 'cluster_size=16384,extended_l2=on', base_opts=c1k,
              top_data=False, progs=('cow',))
        chain(d, 'probe', 'qcow2', c1k, base_opts=c1k, progs=('read', 'cow'),
              probe=True)
        chain(d, 'empty', 'qcow2', c1k, base_opts=c1k, top_data=False)
        chain(d, 'grown', 'raw', c1k, top_size=128 * 1024,
              top_data=False, progs=('read', 'cow'))
        chain(d, 'zbase', 'qcow2', c1k, base_opts=c1k, progs=('read', 'cow'),
              compressed=True)
        chain(d, 'small', 'qcow2', 'cluster_size=512', progs=('read', 'meta'),
              base_opts='cluster_size=512')
    finally:
        shutil.rmtree(d)


main()
