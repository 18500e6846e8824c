#!/usr/bin/env bash
# Installs what ckpt's build and tests need on a Debian 12 machine, and
# prepares the kernel interfaces the tests read. Idempotent; needs root for
# the apt and mount steps (skipped with a message otherwise).
set -euo pipefail

need_pkgs=()
for pair in gcc:gcc make:make python3:python3 perl:perl bash:bash sleep:coreutils \
            setpriv:util-linux useradd:passwd pkg-config:pkg-config go:golang-go node:nodejs; do
    cmd=${pair%%:*}; pkg=${pair##*:}
    command -v "$cmd" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
# The VM test rig (tests/vm/run.sh): qemu, a static busybox for the
# initramfs, the AppArmor and SELinux policy compilers. Debian's kernel is
# fetched by the rig itself with `apt-get download` into target/vm-cache.
for pair in qemu-system-x86_64:qemu-system-x86 cpio:cpio apparmor_parser:apparmor \
            checkpolicy:checkpolicy readelf:binutils; do
    cmd=${pair%%:*}; pkg=${pair##*:}
    command -v "$cmd" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
[ -e /usr/include/linux/seccomp.h ] || need_pkgs+=(linux-libc-dev)
[ -e /usr/include/stdio.h ] || need_pkgs+=(libc6-dev)

if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "install-deps: installing ${need_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
    else
        echo "install-deps: missing packages ${need_pkgs[*]}; run as root or: sudo apt-get install ${need_pkgs[*]}" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found. ckpt needs a Rust toolchain >= 1.80 (rustup's stable);" >&2
    echo "              Debian 12's packaged cargo is too old for its dependencies." >&2
    exit 1
fi
for comp in rustfmt clippy; do
    if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$comp" 2>/dev/null || { echo "install-deps: cargo $comp is missing (rustup component add $comp)" >&2; exit 1; }
    fi
done

# securityfs holds the LSM stack list and the policies ckpt fingerprints.
if [ ! -e /sys/kernel/security/lsm ] && [ "$(id -u)" = 0 ]; then
    mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || \
        echo "install-deps: could not mount securityfs; ckpt will use the lsm_list_modules syscall" >&2
fi
# The BPF enumeration test attaches a program to a cgroup2 directory.
if ! awk '$9 == "cgroup2" {found=1} END {exit !found}' /proc/self/mountinfo && [ "$(id -u)" = 0 ]; then
    mkdir -p /run/ckpt-cgroup2
    mount -t cgroup2 none /run/ckpt-cgroup2 2>/dev/null || \
        echo "install-deps: could not mount cgroup2; the BPF enumeration test will fail" >&2
fi
exit 0
