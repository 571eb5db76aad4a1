# Sourced by the signal tests: start_spinning VMM GUEST starts the tiny
# guest on 2 vCPUs with "spin" (it prints "spinning" and runs on) and waits
# until it spins; sets $dir (out, err; removed on exit) and $pid. Fails the
# test if the guest does not start within 60 s.
start_spinning() {
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
	"$1" --cpus 2 --kernel "$2" --cmdline spin </dev/null >"$dir/out" 2>"$dir/err" &
	pid=$!
	for _ in $(seq 600); do
		grep -q spinning "$dir/out" && return 0
		sleep 0.1
	done
	echo "guest did not start"; kill -KILL $pid; cat "$dir/err"; exit 1
}
