#!/usr/bin/env bash
# The VM test rig (issue 10): boots Debian's own kernel under qemu once per
# LSM stack, with an initramfs built here from busybox-static, a statically
# linked ckpt, the test fixtures and a small policy for that stack, runs the
# stack's scenarios inside the guest (tests/vm/guest/<stack>.sh) and reads
# their `RESULT <name> pass|fail` lines from the serial console.
#
#   tests/vm/run.sh [STACK...]      stacks: apparmor selinux (default: all)
#
# Environment:
#   CKPT_TEST_EXPECT_VM=1   a VM that cannot be booted is a failure, not a skip (CI)
#   CKPT_VM_CACHE=DIR       kernel and build cache (default target/vm-cache)
#   CKPT_VM_KEEP=1          keep each boot's initramfs tree and console log
#
# Exit: 0 all scenarios passed (or skipped: no qemu and not expected), 1 otherwise.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VM="$ROOT/tests/vm"
CACHE=${CKPT_VM_CACHE:-$ROOT/target/vm-cache}
TRIPLE=x86_64-unknown-linux-gnu
STATIC="$ROOT/target/$TRIPLE/release"
# selinux first: its image is restored on the apparmor boot (cross-stack).
ALL_STACKS=(selinux apparmor)
STACKS=("$@")
[ ${#STACKS[@]} -gt 0 ] || STACKS=("${ALL_STACKS[@]}")

say() { echo "vm-test: $*"; }
skip_or_fail() {
    if [ "${CKPT_TEST_EXPECT_VM:-}" = 1 ]; then
        say "FAILED: $* (CKPT_TEST_EXPECT_VM=1)" >&2
        exit 1
    fi
    say "SKIPPED: $* (set CKPT_TEST_EXPECT_VM=1 to make this a failure)" >&2
    exit 0
}

for tool in qemu-system-x86_64 cpio gzip apparmor_parser checkpolicy dpkg-deb readelf strip; do
    command -v "$tool" >/dev/null 2>&1 || skip_or_fail "$tool is missing (scripts/install-deps.sh installs it)"
done
# A static binary has no program interpreter.
is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }
BUSYBOX=/bin/busybox
if [ ! -x "$BUSYBOX" ] || ! is_static "$BUSYBOX"; then
    skip_or_fail "a static /bin/busybox is missing (apt-get install busybox-static)"
fi

# --- Debian's kernel, unpacked from its package into the cache (the host's /boot is not touched).
kernel_dir() {
    local pkg deb
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || { ls -d "$CACHE"/kernel-* 2>/dev/null | tail -1; return; }
    if [ ! -e "$CACHE/kernel-$pkg/boot" ]; then
        mkdir -p "$CACHE/debs"
        if ! ls "$CACHE/debs/${pkg}_"*.deb >/dev/null 2>&1; then
            (cd "$CACHE/debs" && apt-get download "$pkg" >&2 2>/dev/null) || return 0
        fi
        deb=$(ls "$CACHE/debs/${pkg}_"*.deb | tail -1)
        rm -rf "$CACHE/kernel-$pkg.tmp"
        mkdir -p "$CACHE/kernel-$pkg.tmp"
        # Only the kernel image and its config are needed: the guest loads no modules.
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$CACHE/kernel-$pkg.tmp" --wildcards './boot/*'
        mv "$CACHE/kernel-$pkg.tmp" "$CACHE/kernel-$pkg"
    fi
    echo "$CACHE/kernel-$pkg"
}
KDIR=$(kernel_dir)
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
[ -n "$VMLINUZ" ] || skip_or_fail "cannot get Debian's kernel (apt-get download linux-image-amd64 failed)"
KREL=${VMLINUZ##*/vmlinuz-}

# --- a static ckpt and fixtures (own target triple dir: the normal build is untouched).
say "building static ckpt and fixtures (RUSTFLAGS=-C target-feature=+crt-static, --target $TRIPLE)"
(cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release \
    --target "$TRIPLE" -p ckpt-cli -p ckpt-tests --bins)
for b in ckpt fx-lsm-probe fx-counter; do
    if ! is_static "$STATIC/$b"; then
        say "FAILED: $STATIC/$b is not statically linked" >&2; exit 1
    fi
done

qemu_boot() { # TIMEOUT INITRD APPEND LOG ACCEL...
    local t=$1 initrd=$2 append=$3 log=$4
    shift 4
    timeout --kill-after=5 "$t" qemu-system-x86_64 "$@" -m 1G -smp 1 \
        -nographic -no-reboot -nodefaults -serial stdio -display none \
        -kernel "$VMLINUZ" -initrd "$initrd" \
        -append "console=ttyS0 ${CKPT_VM_KERNEL_LOG:-quiet loglevel=3} panic=-1 $append" </dev/null >"$log" 2>&1
}

# KVM when it can boot this kernel (a short probe boot), else TCG.
ACCEL_NAME=tcg
if [ -w /dev/kvm ] && [ "${CKPT_VM_ACCEL:-}" != tcg ]; then
    mkdir -p "$CACHE/probe/tree/bin"
    cp "$BUSYBOX" "$CACHE/probe/tree/bin/busybox"
    printf '#!/bin/busybox sh\n/bin/busybox echo VMINFO probe\n/bin/busybox reboot -f\n' >"$CACHE/probe/tree/init"
    chmod 0755 "$CACHE/probe/tree/init"
    (cd "$CACHE/probe/tree" && find . | cpio -o -H newc --quiet | gzip -1) >"$CACHE/probe/initrd.gz"
    cpu=${CKPT_VM_CPU:-host,-arch-capabilities}
    if qemu_boot "${CKPT_VM_PROBE_TIMEOUT:-30}" "$CACHE/probe/initrd.gz" "" "$CACHE/probe/console.log" \
            -enable-kvm -cpu "$cpu" && grep -aq 'VMINFO probe' "$CACHE/probe/console.log"; then
        ACCEL=(-enable-kvm -cpu "$cpu"); ACCEL_NAME=kvm
    else
        say "/dev/kvm is present but KVM did not boot the kernel within ${CKPT_VM_PROBE_TIMEOUT:-30}s (nested KVM on this machine); falling back to TCG"
    fi
elif [ ! -e /dev/kvm ]; then
    say "/dev/kvm is missing: falling back to TCG emulation"
fi
if [ "$ACCEL_NAME" = kvm ]; then
    BOOT_TIMEOUT=${CKPT_VM_TIMEOUT:-120}
else
    # -cpu max: qemu64 has no XSAVE, so PTRACE_GETREGSET NT_X86_XSTATE fails.
    ACCEL=(-accel tcg -cpu max); BOOT_TIMEOUT=${CKPT_VM_TIMEOUT:-600}
    say "TCG emulation is slow: timeout ${BOOT_TIMEOUT}s per boot"
fi

# The kernel command line of each stack: `lsm=` picks the LSMs (kernel order).
lsm_of() {
    case "$1" in
        apparmor) echo "landlock,lockdown,yama,apparmor,bpf" ;;
        selinux) echo "landlock,lockdown,yama,selinux,bpf" ;;
        *) return 1 ;;
    esac
}

# Stack-specific policy, compiled on the host, placed under /policy.
build_policy() {
    local stack=$1 dest=$2
    mkdir -p "$dest"
    case "$stack" in
        apparmor)
            for p in "$VM"/policy/apparmor/*.profile; do
                apparmor_parser -Q -K -q -M /usr/share/apparmor-features/features \
                    -o "$dest/$(basename "$p" .profile).bin" "$p"
            done ;;
        selinux)
            "$VM/policy/selinux/build.sh" "$dest" ;;
    esac
}

build_initrd() {
    local stack=$1 tree=$2 out=$3
    rm -rf "$tree"
    mkdir -p "$tree"/{bin,fx,proc,sys,dev,tmp,run,policy,scenario}
    cp "$BUSYBOX" "$tree/bin/busybox"
    # Stripped copies: a smaller initramfs boots faster.
    strip -o "$tree/bin/ckpt" "$STATIC/ckpt"
    strip -o "$tree/fx/fx-lsm-probe" "$STATIC/fx-lsm-probe"
    strip -o "$tree/fx/fx-counter" "$STATIC/fx-counter"
    cp "$VM/guest/init" "$tree/init"
    cp "$VM/guest/lib.sh" "$VM/guest/$stack.sh" "$tree/scenario/"
    build_policy "$stack" "$tree/policy"
    # Images dumped on earlier boots (guest `export_image`), for cross-stack checks.
    if [ -d "$CACHE/images" ]; then
        mkdir -p "$tree/images"
        cp "$CACHE/images/"*.img "$tree/images/" 2>/dev/null || true
    fi
    chmod 0755 "$tree/init"
    (cd "$tree" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$out"
}

overall=0
summary=()
booted_before=()
rm -rf "$CACHE/images"
suite_start=$(date +%s.%N)
for stack in "${STACKS[@]}"; do
    lsm=$(lsm_of "$stack") || { say "unknown stack $stack (known: ${ALL_STACKS[*]})" >&2; exit 2; }
    work="$CACHE/boot-$stack"
    mkdir -p "$work"
    build_initrd "$stack" "$work/tree" "$work/initrd.gz"
    log="$work/console.log"
    say "booting Debian kernel $KREL ($ACCEL_NAME) with lsm=$lsm, stack $stack"
    t0=$(date +%s.%N)
    set +e
    # The apparmor boot must find the SELinux boot's image when that ran first.
    cross=0
    [ "$stack" = apparmor ] && [[ " ${booted_before[*]} " == *" selinux "* ]] && cross=1
    qemu_boot "$BOOT_TIMEOUT" "$work/initrd.gz" "lsm=$lsm ckpt_stack=$stack ckpt_cross=$cross" "$log" "${ACCEL[@]}"
    booted_before+=("$stack")
    qrc=$?
    set -e
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
    tr -d '\r' <"$log" >"$log.txt"
    grep -aoE '(RESULT|VMINFO|NOTE) .*' "$log.txt" | sed 's/^/  guest: /' || true
    npass=$(grep -c '^RESULT .* pass$' "$log.txt" || true)
    nfail=$(grep -c '^RESULT .* fail$' "$log.txt" || true)
    booted=$(grep -m1 -ao 'VMINFO .*' "$log.txt" || true)
    if ! grep -aq '^VMDONE' "$log.txt"; then
        say "FAILED: stack $stack did not finish (qemu exit $qrc after ${secs}s); console log: $log.txt" >&2
        tail -30 "$log.txt" >&2
        overall=1; nfail=$((nfail + 1))
    elif [ "$nfail" -gt 0 ] || [ "$npass" -eq 0 ]; then
        overall=1
    fi
    summary+=("stack $stack: kernel $KREL, lsm=$lsm, ${booted#VMINFO }, $ACCEL_NAME, ${secs}s: $npass passed, $nfail failed")
    # Captured kernel policy files (tests/vm/guest/lib.sh capture_tree), for the fixture tests.
    if grep -q '^CAPTURE-BEGIN' "$log.txt"; then
        sed -n '/^CAPTURE-BEGIN/,/^CAPTURE-END/p' "$log.txt" | sed '1d;$d' | base64 -d >"$work/capture.tar.gz" 2>/dev/null || true
    fi
    # Images the guest exported (IMAGE-BEGIN <name> ... IMAGE-END).
    for name in $(grep -ao 'IMAGE-BEGIN [a-z0-9_.-]*' "$log.txt" | awk '{print $2}'); do
        mkdir -p "$CACHE/images"
        sed -n "/^IMAGE-BEGIN $name\$/,/^IMAGE-END/p" "$log.txt" | sed '1d;$d' | base64 -d >"$CACHE/images/$name" || rm -f "$CACHE/images/$name"
    done
    [ "${CKPT_VM_KEEP:-}" = 1 ] || rm -rf "$work/tree"
done
total=$(awk -v a="$suite_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
say "summary (${total}s):"
for s in "${summary[@]}"; do say "  $s"; done
[ "$overall" = 0 ] && say "all VM scenarios passed" || say "FAILED: some VM scenarios failed" >&2
exit "$overall"
