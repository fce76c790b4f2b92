#!/usr/bin/env bash
# The agent's cgroup v2 path, tested on a cgroup v2 kernel: boots a small VM
# (virtme-ng + QEMU, Debian's kernel, the host's filesystem read-only) whose
# /sys/fs/cgroup is the unified hierarchy, and runs inside it, as root with
# KUMO_REQUIRE_ROOT_TESTS=1:
#   - agent/tests/sandbox.rs (all of it: memory.max + memory.events oom_kill
#     + memory.peak, pids.max, memory.max resize on claim, cgroup removal),
#   - from tests/tests/isolation_and_limits.rs: the memory hog, the fork
#     bomb, the /tmp fill and the timeout, through kumod --all-in-one,
#   - from tests/tests/freezer_and_tmp.rs: cgroup.freeze keeps a busy child
#     idle between invocations, and a frozen instance is reclaimed,
#   - from tests/tests/network_isolation.rs: the Runtime API theft attack in
#     host mode.
# Fails unless /sys/fs/cgroup in the VM really is cgroup2 with the memory,
# pids and cpu controllers, and unless every test cgroup is gone afterwards.
#
# Builds no binaries: run `cargo build --workspace --bins` and the test
# build first (tests/run-all.sh has, when it calls this); the test
# executables are located with `cargo test --no-run` (a no-op when built).
# Installs what is missing: qemu-system-x86, linux-image-amd64 and
# busybox-static (apt), virtme-ng in a venv under /var/tmp.
#   KUMO_VM_MEMORY (3G), KUMO_VM_CPUS (2), KUMO_VM_KERNEL (newest
#   /boot/vmlinuz-*-amd64), KUMO_VNG_VENV (/var/tmp/kumo-vng-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
venv="${KUMO_VNG_VENV:-/var/tmp/kumo-vng-venv}"

step_start=$SECONDS
need_apt=()
command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86)
compgen -G '/boot/vmlinuz-*-amd64' >/dev/null || need_apt+=(linux-image-amd64)
command -v objcopy >/dev/null || need_apt+=(binutils)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "    installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -x "$venv/bin/vng" ]; then
  echo "    installing virtme-ng in $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q virtme-ng
fi
export PATH="$venv/bin:$PATH"
kernel="${KUMO_VM_KERNEL:-$(ls -v /boot/vmlinuz-*-amd64 | tail -n 1)}"
echo "    install: $((SECONDS - step_start)) s (kernel $kernel)"

# The test executables (built by the nextest/cargo test run before this).
test_exe() { # package test-target
  cargo test --no-run --quiet --message-format=json -p "$1" --test "$2" |
    /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] \
            and "test" in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])' "$2"
}
sandbox_exe="$(test_exe kumo-agent sandbox)"
limits_exe="$(test_exe kumo-tests isolation_and_limits)"
freezer_exe="$(test_exe kumo-tests freezer_and_tmp)"
network_exe="$(test_exe kumo-tests network_isolation)"
for exe in "$sandbox_exe" "$limits_exe" "$freezer_exe" "$network_exe" "$target/debug/kumod" "$target/debug/kumo" \
  "$target/debug/kumo-agent"; do
  [ -n "$exe" ] && [ -x "$exe" ] || {
    echo "missing test or binary '$exe': run cargo build --workspace --bins first"
    exit 1
  }
done

# The VM sees the host read-only; this directory is its writable one (state,
# temp dirs, the log and the exit status come back through it).
rw="$(mktemp -d /var/tmp/kumo-cgroup2-vm.XXXXXX)"
trap 'rm -rf "$rw"' EXIT
# Under TCG, reading the debug binaries (hundreds of MB) over the guest's 9p
# root is what is slow: the guest gets copies without debug info, which it
# puts in RAM and mounts over the originals (the tests find those paths).
mkdir -p "$rw/bin"
for bin in kumod kumo kumo-agent; do
  objcopy --strip-debug "$target/debug/$bin" "$rw/bin/$bin"
done
objcopy --strip-debug "$sandbox_exe" "$rw/bin/sandbox-tests"
objcopy --strip-debug "$limits_exe" "$rw/bin/limits-tests"
objcopy --strip-debug "$freezer_exe" "$rw/bin/freezer-tests"
objcopy --strip-debug "$network_exe" "$rw/bin/network-tests"
cat >"$rw/in-vm.sh" <<EOF
#!/bin/bash
# Runs inside the VM.
set -u
rw="$rw"
fail=0
fs="\$(stat -fc %T /sys/fs/cgroup)"
echo "    /sys/fs/cgroup: \$fs; controllers: \$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
if [ "\$fs" != cgroup2fs ]; then
  echo "NOT a cgroup v2 host: /sys/fs/cgroup is \$fs"
  echo 1 >"\$rw/status"; exit 1
fi
for c in memory pids cpu; do
  grep -qw "\$c" /sys/fs/cgroup/cgroup.controllers || {
    echo "cgroup2 without the \$c controller"; echo 1 >"\$rw/status"; exit 1; }
done
# The writable dirs: a tmpfs on a directory of the shared one (the host's
# files are read-only here; 9p is slow for sled and sandbox state).
mkdir -p "\$rw/ram" && mount -t tmpfs -o size=1500m,mode=0755 kumo-vm "\$rw/ram" || exit 1
cp -a "\$rw/bin" "\$rw/ram/bin" && mkdir -p "\$rw/ram/tmp" "\$rw/ram/test" || exit 1
for bin in kumod kumo kumo-agent; do
  mount --bind "\$rw/ram/bin/\$bin" "$target/debug/\$bin" || exit 1
done
# Emulated CPUs are many times slower: a Python runtime's start alone can
# take longer than the default 10 s Init limit, which is not under test here.
export TMPDIR="\$rw/ram/tmp" KUMO_TEST_DIR="\$rw/ram/test" KUMO_REQUIRE_ROOT_TESTS=1 \
  KUMO_BIN_DIR="$target/debug" RUST_BACKTRACE=1 HOME="\$rw/ram" \
  KUMO_AGENT__INIT_TIMEOUT_SECONDS=60
step=\$SECONDS
cd "$repo/agent" || exit 1
echo "==> [vm] agent/tests/sandbox.rs"
"\$rw/ram/bin/sandbox-tests" --test-threads=1 || fail=1
echo "    \$((SECONDS - step)) s"; step=\$SECONDS
cd "$repo/tests" || exit 1
echo "==> [vm] tests/tests/isolation_and_limits.rs: memory hog, fork bomb, /tmp fill, timeout"
"\$rw/ram/bin/limits-tests" --test-threads=1 memory_hog_is_killed fork_bomb_stops \
  filling_tmp_stops timeout_kills || fail=1
echo "    \$((SECONDS - step)) s"; step=\$SECONDS
echo "==> [vm] tests/tests/freezer_and_tmp.rs: cgroup.freeze stops a busy child between invocations"
"\$rw/ram/bin/freezer-tests" --test-threads=1 a_background_process_burns_no_cpu \
  a_frozen_instance_is_reclaimed || fail=1
echo "    \$((SECONDS - step)) s"; step=\$SECONDS
echo "==> [vm] tests/tests/network_isolation.rs: the Runtime API theft attack in host mode"
"\$rw/ram/bin/network-tests" --test-threads=1 runtime_api_theft_fails_in_host_mode || fail=1
echo "    \$((SECONDS - step)) s"
# Every instance cgroup must be gone, and the sandbox tests' parents too (a
# kumod stopped by its test may leave its empty parent, as on v1).
left="\$(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d \\( -path '*/kumo-test-*' -o -path '*/kumo-e2e-*/*' \\) )"
if [ -n "\$left" ]; then
  echo "cgroups left behind:"; echo "\$left"; fail=1
fi
echo \$fail >"\$rw/status"
EOF
chmod +x "$rw/in-vm.sh"

# The guest mounts fresh tmpfs on /tmp and /var/tmp: the build dir is
# shared explicitly (read-only) in case it lives there.
vm_start=$SECONDS
vng --run "$kernel" --disable-kvm --memory "${KUMO_VM_MEMORY:-3G}" --cpus "${KUMO_VM_CPUS:-2}" \
  --rodir="$target" --rwdir="$rw" --exec "$rw/in-vm.sh" 2>&1 | tee "$rw/vm.log" || true
echo "    boot+tests: $((SECONDS - vm_start)) s"
status="$(cat "$rw/status" 2>/dev/null || echo missing)"
if [ "$status" != 0 ]; then
  echo "cgroup v2 VM tests FAILED (status: $status)"
  exit 1
fi
echo "    cgroup v2 VM tests passed"
