# Inner scenario: a login on the virtio console. busybox getty on /dev/hvc0
# (its controlling terminal) prompts for a login name, busybox login lets
# root in (empty password) and starts a login shell there with the prompt
# "hvc-shell# " from /etc/profile; the host side types at it through
# vireo-vmm's standard input (tests/lab/scenarios/vireo-hvc-login.sh). When
# that shell exits, the scenario ends (and the guest powers off).
echo 'root::0:0:root:/root:/bin/sh' >/etc/passwd
echo 'root:x:0:' >/etc/group
mkdir -p /root
echo "PS1='hvc-shell# '" >/etc/profile
n=0
while [ ! -c /dev/hvc0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -c /dev/hvc0 ] || { echo "hvc-login: no /dev/hvc0"; exit 1; }
echo "hvc-login: getty on hvc0"
getty -i -L 0 hvc0 vt100
echo "hvc-login: the session on hvc0 ended ($?)"
