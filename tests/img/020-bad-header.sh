#!/usr/bin/env bash
# Bad input, header level: truncated headers, bad magic/version, unknown
# incompatible feature bits, cluster sizes out of range, absurd sizes and
# table sizes, bad offsets in the header.  Every vireo-img verb must refuse
# the image with an error naming the problem, exit non-zero without crashing
# (run under ASan in the test build) and leave the file untouched.
# Stricter than QEMU in one respect: qemu-img opens images whose L1 table,
# refcount table or snapshot table lies past the end of the file (it reads
# zeros there); vireo-img must refuse them.
. "$(dirname "$0")/common.sh"

IMG=img.qcow2
mk() {
	rm -f $IMG
	"$QEMU_IMG" create -q -f qcow2 -o cluster_size=65536 $IMG 4M &&
	"$QEMU_IO" -f qcow2 -c "write -P 0xab 0 128k" $IMG >/dev/null
}

# name | patch (shell, on $IMG) | what the error must mention (ERE, any case)
CASES=(
"truncated-50|truncate -s 50 \$IMG|header|trunc|short|small|end of file|eof"
"truncated-100|truncate -s 100 \$IMG|header|trunc|short|small|end of file|eof"
"bad-magic|\$QCOW2PY \$IMG set magic 0x51464900|magic|qcow2|format"
"version-1|\$QCOW2PY \$IMG set version 1|version|format|cluster"
"version-4|\$QCOW2PY \$IMG set version 4|version"
"unknown-incompatible-bit|\$QCOW2PY \$IMG set incompatible_features 0x1000000000000000|feature|incompatible"
"unknown-incompatible-bit5|\$QCOW2PY \$IMG set incompatible_features 0x20|feature|incompatible"
"cluster-bits-8|\$QCOW2PY \$IMG set cluster_bits 8|cluster"
"cluster-bits-22|\$QCOW2PY \$IMG set cluster_bits 22|cluster"
"cluster-bits-63|\$QCOW2PY \$IMG set cluster_bits 63|cluster"
"size-2^63|\$QCOW2PY \$IMG set size 0x7fffffffffffffff|size|big|large"
"size-2^64-1|\$QCOW2PY \$IMG set size 0xffffffffffffffff|size|big|large"
"l1-size-huge|\$QCOW2PY \$IMG set l1_size 0x10000000|l1"
"l1-size-too-small|\$QCOW2PY \$IMG set l1_size 0|l1"
"l1-offset-unaligned|\$QCOW2PY \$IMG set l1_table_offset 0x40001|l1"
"l1-offset-past-eof|\$QCOW2PY \$IMG set l1_table_offset 0x100000000|l1|end of|eof|beyond|past|outside"
"refcount-order-7|\$QCOW2PY \$IMG set refcount_order 7|refcount|reference count"
"refcount-table-huge|\$QCOW2PY \$IMG set refcount_table_clusters 0x1000000|refcount|reference count"
"refcount-table-unaligned|\$QCOW2PY \$IMG set refcount_table_offset 0x10008|refcount|reference count"
"refcount-table-past-eof|\$QCOW2PY \$IMG set refcount_table_offset 0x100000000|refcount|reference count"
"header-length-small|\$QCOW2PY \$IMG set header_length 50|header"
"header-length-huge|\$QCOW2PY \$IMG set header_length 0x100000|header"
"encryption-method-5|\$QCOW2PY \$IMG set crypt_method 5|encrypt|crypt"
"snapshot-count-huge|\$QCOW2PY \$IMG set nb_snapshots 0x100000|snapshot"
"snapshot-table-past-eof|\$QCOW2PY \$IMG set nb_snapshots 1; \$QCOW2PY \$IMG set snapshots_offset 0x100000000|snapshot"
"backing-name-past-eof|\$QCOW2PY \$IMG set backing_file_offset 0x100000; \$QCOW2PY \$IMG set backing_file_size 10|backing"
"backing-name-too-long|\$QCOW2PY \$IMG set backing_file_offset 0x200; \$QCOW2PY \$IMG set backing_file_size 5000|backing|name|extension"
"compression-type-7|\$QCOW2PY \$IMG set compression_type 7; \$QCOW2PY \$IMG set incompatible_features 8|compression"
"header-extension-past-cluster|\$QCOW2PY \$IMG poke 112 6803f8570001fff0|extension|header"
)

for c in "${CASES[@]}"; do
	name=${c%%|*}
	rest=${c#*|}
	patch=${rest%%|*}
	re=${rest#*|}
	mk || { fail "$name: setup"; continue; }
	eval "$patch" || { fail "$name: patch"; continue; }
	refuse "$name" "$re" info -f qcow2 $IMG
	refuse "$name" "$re" check -f qcow2 $IMG
	refuse "$name" "$re" convert -f qcow2 -O raw $IMG out.raw
	refuse "$name" "$re" bench -f qcow2 -c 1 -s 4096 $IMG
	refuse "$name" "$re" bench -f qcow2 -w -c 1 -s 4096 $IMG
	refuse "$name" "$re" snapshot -c snap $IMG
	refuse "$name" "$re" resize -f qcow2 $IMG +1M
	# Repair may fix what it can; it must not crash.
	survive "$name" check -f qcow2 -r all $IMG
	rm -f out.raw
done
finish
