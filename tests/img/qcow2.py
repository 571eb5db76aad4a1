#!/usr/bin/env python3
"""Small qcow2 inspector/patcher for the image tests (written from
QEMU's docs/interop/qcow2.txt).  It edits images made by qemu-img to build
corrupt inputs; it never tries to keep them consistent.

  qcow2.py IMG get FIELD                 print a header field (decimal)
  qcow2.py IMG set FIELD VALUE           set a header field
  qcow2.py IMG l1 IDX [VALUE]            print / set L1 entry IDX
  qcow2.py IMG l2 GUEST_OFF [VALUE]      print / set the L2 entry mapping a
                                         guest offset (must have an L2 table)
  qcow2.py IMG rt IDX [VALUE]            print / set refcount table entry IDX
  qcow2.py IMG refcount HOST_OFF [VALUE] print / set the refcount of the
                                         cluster holding a host offset
  qcow2.py IMG host GUEST_OFF            print the host offset of a guest
                                         offset's data cluster (0 if none)
  qcow2.py IMG poke OFF HEXBYTES         write raw bytes at a file offset
VALUEs accept 0x.. hex.  Flags in L1/L2 entries are kept as given.
"""
import struct
import sys

FIELDS = {
    # name: (offset, struct format)
    "magic": (0, ">I"),
    "version": (4, ">I"),
    "backing_file_offset": (8, ">Q"),
    "backing_file_size": (16, ">I"),
    "cluster_bits": (20, ">I"),
    "size": (24, ">Q"),
    "crypt_method": (32, ">I"),
    "l1_size": (36, ">I"),
    "l1_table_offset": (40, ">Q"),
    "refcount_table_offset": (48, ">Q"),
    "refcount_table_clusters": (56, ">I"),
    "nb_snapshots": (60, ">I"),
    "snapshots_offset": (64, ">Q"),
    "incompatible_features": (72, ">Q"),
    "compatible_features": (80, ">Q"),
    "autoclear_features": (88, ">Q"),
    "refcount_order": (96, ">I"),
    "header_length": (100, ">I"),
    "compression_type": (104, ">B"),
}
OFF_MASK = 0x00FFFFFFFFFFFE00


class Image:
    def __init__(self, path):
        self.f = open(path, "r+b")

    def rd(self, off, fmt):
        self.f.seek(off)
        n = struct.calcsize(fmt)
        b = self.f.read(n)
        if len(b) != n:
            raise SystemExit("qcow2.py: short read at %d" % off)
        return struct.unpack(fmt, b)[0]

    def wr(self, off, fmt, val):
        self.f.seek(off)
        self.f.write(struct.pack(fmt, val))

    def hdr(self, name):
        off, fmt = FIELDS[name]
        return self.rd(off, fmt)

    @property
    def cbits(self):
        return self.hdr("cluster_bits")

    def ext_l2(self):
        return bool(self.hdr("incompatible_features") & (1 << 4))

    def l2_slot(self, guest):
        """File offset of the L2 entry mapping guest offset."""
        cb = self.cbits
        esz = 16 if self.ext_l2() else 8
        l2_entries = (1 << cb) // esz
        cidx = guest >> cb
        l1i, l2i = divmod(cidx, l2_entries)
        l1e = self.rd(self.hdr("l1_table_offset") + 8 * l1i, ">Q")
        l2 = l1e & OFF_MASK
        if not l2:
            raise SystemExit("qcow2.py: no L2 table for guest offset %#x" % guest)
        return l2 + esz * l2i

    def rc_slot(self, host):
        """(file offset, bits) of the refcount entry of the cluster at host."""
        cb = self.cbits
        order = self.hdr("refcount_order")
        bits = 1 << order
        per_block = (1 << cb) * 8 // bits
        cidx = host >> cb
        rti, bi = divmod(cidx, per_block)
        blk = self.rd(self.hdr("refcount_table_offset") + 8 * rti, ">Q") & ~0x1FF
        if not blk:
            raise SystemExit("qcow2.py: no refcount block for host offset %#x" % host)
        return blk, bi, bits

    def get_rc(self, host):
        blk, bi, bits = self.rc_slot(host)
        bit = bi * bits
        if bits >= 8:
            fmt = {8: ">B", 16: ">H", 32: ">I", 64: ">Q"}[bits]
            return self.rd(blk + bit // 8, fmt)
        byte = self.rd(blk + bit // 8, ">B")
        return (byte >> (bit % 8)) & ((1 << bits) - 1)

    def set_rc(self, host, val):
        blk, bi, bits = self.rc_slot(host)
        bit = bi * bits
        if bits >= 8:
            fmt = {8: ">B", 16: ">H", 32: ">I", 64: ">Q"}[bits]
            self.wr(blk + bit // 8, fmt, val)
            return
        byte = self.rd(blk + bit // 8, ">B")
        mask = ((1 << bits) - 1) << (bit % 8)
        byte = (byte & ~mask) | ((val << (bit % 8)) & mask)
        self.wr(blk + bit // 8, ">B", byte)


def num(s):
    return int(s, 0)


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    img = Image(argv[1])
    cmd, args = argv[2], argv[3:]
    if cmd == "get":
        print(img.hdr(args[0]))
    elif cmd == "set":
        off, fmt = FIELDS[args[0]]
        img.wr(off, fmt, num(args[1]))
    elif cmd == "l1":
        slot = img.hdr("l1_table_offset") + 8 * num(args[0])
        if len(args) > 1:
            img.wr(slot, ">Q", num(args[1]))
        else:
            print("%#x" % img.rd(slot, ">Q"))
    elif cmd == "l2":
        slot = img.l2_slot(num(args[0]))
        if len(args) > 1:
            img.wr(slot, ">Q", num(args[1]))
        else:
            print("%#x" % img.rd(slot, ">Q"))
    elif cmd == "rt":
        slot = img.hdr("refcount_table_offset") + 8 * num(args[0])
        if len(args) > 1:
            img.wr(slot, ">Q", num(args[1]))
        else:
            print("%#x" % img.rd(slot, ">Q"))
    elif cmd == "refcount":
        if len(args) > 1:
            img.set_rc(num(args[0]), num(args[1]))
        else:
            print(img.get_rc(num(args[0])))
    elif cmd == "host":
        e = img.rd(img.l2_slot(num(args[0])), ">Q")
        if e & (1 << 62):
            raise SystemExit("qcow2.py: cluster is compressed")
        print("%#x" % (e & OFF_MASK))
    elif cmd == "poke":
        img.f.seek(num(args[0]))
        img.f.write(bytes.fromhex(args[1]))
    else:
        raise SystemExit("qcow2.py: unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
