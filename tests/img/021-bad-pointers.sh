#!/usr/bin/env bash
# Bad input, table entries: L1/L2/refcount-table entries pointing past the
# end of the file, into metadata, or unaligned, and a compressed cluster
# descriptor past the end of the file.
#  - `vireo-img check` reports a problem (exit non-zero) naming it;
#  - reading (convert) through an entry that points past the end of the file
#    or is unaligned fails with an error naming the problem; reading through
#    an entry that points into metadata may succeed (the bytes are there) but
#    must not crash;
#  - a write through a bad entry is refused and changes nothing (the header
#    "corrupt" bit excepted): no write lands on metadata or far past the end.
# Stricter than QEMU in places: qemu-img reads zeros past the end of the file
# and writes through such entries, growing the file to the bogus offset.
. "$(dirname "$0")/common.sh"

IMG=img.qcow2
mk() {
	rm -f $IMG
	"$QEMU_IMG" create -q -f qcow2 -o cluster_size=65536 $IMG 4M &&
	"$QEMU_IO" -f qcow2 -c "write -P 0xab 0 128k" $IMG >/dev/null
}
# Layout of that image (64 KiB clusters): header 0, refcount table 0x10000,
# refcount block 0x20000, L1 0x30000, L2 0x40000, data 0x50000.
EOF_RE='end of (the )?(file|image)|eof|beyond|past|outside|exceed|truncat'
META_RE='overlap|metadata|refcount|reference|l1|l2|header'

check_refuses() {   # name regex
	refuse "$1" "$2" check -f qcow2 $IMG
}
check_verdict() {   # name: check must report a problem and agree with qemu's kind
	vimg check -f qcow2 $IMG
	local rc=$?
	if [ $rc -eq 0 ]; then
		fail "$1: vireo-img check says the image is clean"
	elif [ $rc -lt 128 ]; then
		echo "$1: vireo-img check reports a problem"
	fi
}

for c in \
	"l1-past-eof|l1 0 0x8000000100000000|eof" \
	"l1-into-refcount-table|l1 0 0x8000000000010000|meta" \
	"l1-into-refcount-block|l1 0 0x8000000000020000|meta" \
	"l1-unaligned|l1 0 0x8000000000040200|align" \
	"l2-past-eof|l2 0 0x8000000100000000|eof" \
	"l2-into-refcount-table|l2 0 0x8000000000010000|meta" \
	"l2-into-l1|l2 0 0x8000000000030000|meta" \
	"l2-into-refcount-block|l2 0 0x8000000000020000|meta" \
	"l2-into-its-l2-table|l2 0 0x8000000000040000|meta" \
	"l2-unaligned|l2 0 0x8000000000050200|align" \
	"compressed-past-eof|l2 0 0x4000000100000000|eof"; do
	IFS='|' read -r name patch kind <<<"$c"
	mk || { fail "$name: setup"; continue; }
	$QCOW2PY $IMG $patch
	case $kind in
	eof) re=$EOF_RE ;;
	meta) re=$META_RE ;;
	align) re='align' ;;
	esac
	check_verdict "$name"
	survive "$name" info -f qcow2 $IMG
	if [ $kind = meta ]; then
		survive "$name" convert -f qcow2 -O raw $IMG out.raw
	else
		refuse "$name" "$re" convert -f qcow2 -O raw $IMG out.raw
	fi
	# A write to guest cluster 0 goes through the bad entry.
	refuse "$name" "$re|corrupt" bench -f qcow2 -w -c 1 -s 4096 -o 0 $IMG
	rm -f out.raw
done

# An L1 entry with a reserved bit set: check must call it a corruption (as
# qemu-img check does); reading and writing must not crash.
IFS='|' read -r name patch <<<"l1-reserved-bit|l1 0 0x8000000000040100"
mk && $QCOW2PY $IMG $patch
check_verdict "$name"
survive "$name" convert -f qcow2 -O raw $IMG out.raw
survive "$name" bench -f qcow2 -w -c 1 -s 4096 -o 0 $IMG
rm -f out.raw

# Refcount table entries: reading needs no refcounts, an allocating write
# (guest offset 2 MiB is unallocated) does.
for c in \
	"refcount-block-past-eof|rt 0 0x100000000|eof" \
	"refcount-block-into-data|rt 0 0x50000|meta" \
	"refcount-block-unaligned|rt 0 0x20100|align"; do
	IFS='|' read -r name patch kind <<<"$c"
	mk || { fail "$name: setup"; continue; }
	$QCOW2PY $IMG $patch
	case $kind in
	eof) re="$EOF_RE|refcount" ;;
	meta) re=$META_RE ;;
	align) re='align|refcount' ;;
	esac
	check_verdict "$name"
	survive "$name" convert -f qcow2 -O raw $IMG out.raw
	refuse "$name" "$re|corrupt" bench -f qcow2 -w -c 1 -s 4096 -o 2M $IMG
	rm -f out.raw
done
finish
