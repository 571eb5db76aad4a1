#!/usr/bin/env python3
"""Wrap a tiny guest (ELF linked with bz.ld) into a minimal bzImage: a boot
sector + setup header (boot protocol 2.15, 64-bit entry, relocatable off,
pref_address 16 MiB) followed by the flat protected-mode image.

  mkbzimage.py GUEST.elf OUT [--truncate] [--cmdline-size N]

--truncate writes a file shorter than the header's syssize says (for the
truncated-bzImage test)."""
import struct, subprocess, sys, os, tempfile

def main():
    args = sys.argv[1:]
    elf, out = args[0], args[1]
    truncate = '--truncate' in args
    cmdline_size = 255
    if '--cmdline-size' in args:
        cmdline_size = int(args[args.index('--cmdline-size') + 1])
    objcopy = os.environ.get('OBJCOPY', 'objcopy')
    with tempfile.TemporaryDirectory() as d:
        flat = os.path.join(d, 'flat.bin')
        subprocess.run([objcopy, '-O', 'binary', '--only-section=.text', '--only-section=.rodata',
                        '--only-section=.data', elf, flat], check=True)
        # The 64-bit entry is at +0x200 of the protected-mode part.
        pm = bytes(0x200) + open(flat, 'rb').read()
    # bss is not in the flat image; init_size covers it generously.
    init_size = (len(pm) + (1 << 20) + 4095) & ~4095
    setup_sects = 4
    hdr = bytearray(512 * (setup_sects + 1))
    syssize = (len(pm) + 15) // 16
    struct.pack_into('<B', hdr, 0x1f1, setup_sects)
    struct.pack_into('<I', hdr, 0x1f4, syssize)
    struct.pack_into('<H', hdr, 0x1fe, 0xaa55)
    struct.pack_into('<BB', hdr, 0x200, 0xeb, 0x66)       # jmp: header ends at 0x268
    hdr[0x202:0x206] = b'HdrS'
    struct.pack_into('<H', hdr, 0x206, 0x020f)            # protocol 2.15
    struct.pack_into('<B', hdr, 0x211, 0x01)              # LOADED_HIGH
    struct.pack_into('<I', hdr, 0x214, 0x1000000)         # code32_start
    struct.pack_into('<I', hdr, 0x22c, 0x37ffffff)        # initrd_addr_max
    struct.pack_into('<I', hdr, 0x230, 0x200000)          # kernel_alignment
    struct.pack_into('<H', hdr, 0x236, 0x0001)            # XLF_KERNEL_64
    struct.pack_into('<I', hdr, 0x238, cmdline_size)
    struct.pack_into('<Q', hdr, 0x258, 0x1000000)         # pref_address
    struct.pack_into('<I', hdr, 0x260, init_size)
    data = bytes(hdr) + pm
    if truncate:
        data = data[:len(hdr) + len(pm) // 2]
    with open(out, 'wb') as f:
        f.write(data)

main()
