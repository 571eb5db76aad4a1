# User-mode networking (--net user, libslirp) under vireo-vmm (issue 16): the
# guest (tests/lab/inner/net-user.sh, 1 vCPU) gets 10.0.2.15 by DHCP,
# fetches a page this host serves on its own 127.0.0.1 through the gateway
# 10.0.2.2, and answers an HTTP request that this host sends to a hostfwd
# port (127.0.0.1:8022 -> guest port 80), then confirms through a second
# one (8023 -> 81) that the answer arrived.  No tap and no root are needed
# by vireo-vmm for this.
# lab-timeout: 400
# lab-sample: yes
. "$LAB_SCENARIOS/lib.sh"
lab_need_kvm

mkdir -p "$LAB_TMP/www"
echo "page-from-the-lab-host-$$" >"$LAB_TMP/www/page.txt"
busybox httpd -f -p 127.0.0.1:8080 -h "$LAB_TMP/www" &
httpd=$!
# Ask the guest's port 80 through the forward until it answers.
( n=0
  while [ $n -lt 600 ]; do
	# stdin stays open a while: nc must not end before the answer comes.
	if out=$({ printf 'GET / HTTP/1.0\r\n\r\n'; sleep 3; } |
		   timeout 5 nc 127.0.0.1 8022 2>/dev/null) &&
	   echo "$out" | grep -q hello-from-the-guest; then
		echo "$out" >"$LAB_TMP/fwd.out"
		# Tell the guest, which waits for this before it ends. Again
		# and again until the VM is gone (this loop is killed then):
		# libslirp accepts on 8023 before it reaches the guest, so nc
		# succeeds even when the guest's port 81 refused it.
		m=0
		while [ $m -lt 120 ]; do
			{ printf 'got-it\n'; sleep 1; } | timeout 5 nc 127.0.0.1 8023 >/dev/null 2>&1
			sleep 0.5; m=$((m + 1))
		done
		break
	fi
	sleep 0.5; n=$((n + 1))
  done ) &
asker=$!
export LAB_INNER_MEM=256
LAB_VMM_ARGS="--verbose --net user,hostfwd=tcp:127.0.0.1:8022-:80,hostfwd=tcp:127.0.0.1:8023-:81"
lab_boot vireo "$LAB_INNER_CMDLINE vireo.run=net-user" 300
rc=$?
kill $httpd $asker 2>/dev/null
wait $httpd $asker 2>/dev/null
out=$LAB_TMP/vireo.out
[ $rc -eq 0 ] || lab_fail "no VIREO-BOOT-OK under vireo-vmm with --net user"
lab_expect "$out" '^net-user: eth0 10.0.2.15 by DHCP' "the guest did not get 10.0.2.15 by DHCP"
lab_expect "$out" "^net-user: fetched 'page-from-the-lab-host-$$'" \
	"the guest did not fetch the host's page through 10.0.2.2"
lab_expect "$out" '^net-user: the host got the answer' "the guest never heard that the host got its answer"
lab_expect "$out" '^net-user: ok' "the inner net-user scenario did not report ok"
[ -s "$LAB_TMP/fwd.out" ] || lab_fail "the hostfwd port 127.0.0.1:8022 never reached the guest's port 80"
lab_expect_sandboxed "$out"
echo "net-user: DHCP 10.0.2.15, host page fetched through 10.0.2.2, hostfwd reached the guest (sandboxed)"
