#!/usr/bin/env bash
# Compiles the VM scenarios' SELinux policy into DEST: policy.bin, and
# policy-nofx.bin (the same without fx_t, to make a recorded label invalid).
# handle_unknown=allow (-U allow): what the policy does not name is allowed.
set -euo pipefail
dest=$1
here=$(cd "$(dirname "$0")" && pwd)
checkpolicy -U allow -o "$dest/policy.bin" "$here/ckpt-vm.te" >/dev/null
# The reload that drops the fixture's domain: no type fx_t at all.
sed -e '/^type fx_t,/d' -e '/^allow kernel_t fx_t:process dyntransition;/d' \
    -e 's/{ kernel_t fx_t fx_locked_t }/{ kernel_t fx_locked_t }/' \
    "$here/ckpt-vm.te" >"$dest/nofx.te"
checkpolicy -U allow -o "$dest/policy-nofx.bin" "$dest/nofx.te" >/dev/null
rm -f "$dest/nofx.te"
