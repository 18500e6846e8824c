# SELinux scenarios (DESIGN 3 rules 2, 3, 4), sourced by the guest's /init.
# The policy is tests/vm/policy/selinux/ckpt-vm.te; this shell runs in kernel_t.
SE=/sys/fs/selinux
FX=u:r:fx_t
flat() { tr '\n' '|' <"$1"; }
# start_in CONTEXT: fx-lsm-probe started in CONTEXT (setexec, then exec).
start_in() {
    (echo -n "$1" >/proc/self/attr/exec && exec /fx/fx-lsm-probe /tmp/ok/log /tmp/secret 20) </dev/null >/dev/null 2>&1 &
    probe_pid=$!
    sleep 0.3
}

check se_stack "stack is $(cat /sys/kernel/security/lsm)" 'grep -q selinux /sys/kernel/security/lsm'
check se_policy_loaded "writing the policy to $SE/load failed" \
    'dd if=/policy/policy.bin of=$SE/load bs=1M status=none'
echo 1 >$SE/enforce
check se_enforcing "enforce is $(cat $SE/enforce)" '[ "$(cat $SE/enforce)" = 1 ]'
me=$(attr_of $$)
echo "NOTE caller context: $me"
mkdir -p /tmp/ok
echo secret >/tmp/secret

start_in $FX
pid=$probe_pid
check se_fixture_in_domain "attr/current is '$(attr_of $pid)'" '[ "$(attr_of $pid)" = "$FX" ]'
check se_fixture_denied_before "probe says: $(last_line /tmp/ok/log)" 'grep -q "label=$FX denied=EACCES" /tmp/ok/log'
dump_probe $pid /tmp/se.img
check se_dump "ckpt dump exit $rc: $(flat /tmp/dump.out)" '[ $rc = 0 ]'
n_dump=$(wc -l </tmp/ok/log)
[ $rc = 0 ] && export_image /tmp/se.img "selinux-fx-$pid.img"

# Rule 2: the domain is confinement (not the caller's), so no silent loss.
timeout 30 ckpt restore /tmp/se.img </dev/null >/tmp/r2.out 2>&1
rc=$?
check se_rule2_refuses_without_keep_lsm "exit $rc: $(flat /tmp/r2.out)" \
    '[ $rc = 3 ] && grep -q -- --keep-lsm /tmp/r2.out && grep -q -- --lsm-as-caller /tmp/r2.out && ! alive $pid'

# Rule 3: --keep-lsm; the task writes its own context, the kernel still denies.
restore_bg /tmp/ok/log /tmp/se.img --keep-lsm
check se_keep_lsm_restored "ckpt restore: $(flat /tmp/restore.out)" 'alive $pid'
check se_keep_lsm_same_context "attr/current is '$(attr_of $pid)'" '[ "$(attr_of $pid)" = "$FX" ]'
line=$(last_line /tmp/ok/log)
n=${line%% *}
check se_keep_lsm_continues "last line '$line', $n_dump lines at dump" '[ "$n" -gt "$n_dump" ]'
check se_keep_lsm_still_denied "probe says: $line" '[ "$n" -gt "$n_dump" ] && echo "$line" | grep -q "label=$FX denied=EACCES"'
stop_restored $pid

# --lsm-label names the context instead of the image's.
restore_bg /tmp/ok/log /tmp/se.img --lsm-label selinux:$FX
check se_lsm_label_applied "attr/current is '$(attr_of $pid)': $(flat /tmp/restore.out)" '[ "$(attr_of $pid)" = "$FX" ]'
stop_restored $pid

# Rule 3: a transition the caller may not make (no dyntransition into fx_locked_t).
start_in u:r:fx_locked_t
lpid=$probe_pid
check se_locked_fixture_in_domain "attr/current is '$(attr_of $lpid)'" '[ "$(attr_of $lpid)" = "u:r:fx_locked_t" ]'
dump_probe $lpid /tmp/locked.img
check se_locked_dump "ckpt dump exit $rc: $(flat /tmp/dump.out)" '[ $rc = 0 ]'
timeout 30 ckpt restore /tmp/locked.img --keep-lsm </dev/null >/tmp/r3.out 2>&1
rc=$?
check se_denied_transition_refuses "exit $rc: $(flat /tmp/r3.out)" '[ $rc = 3 ] && ! alive $lpid'

# Rule 4: a boolean flip changes the fingerprint.
ckpt policy-diff /tmp/se.img --keep-lsm --require-same-policy >/tmp/pd1.out 2>&1
rc=$?
check se_policy_diff_same "exit $rc: $(flat /tmp/pd1.out)" '[ $rc = 0 ]'
echo 1 >$SE/booleans/fx_read_secret && echo 1 >$SE/commit_pending_bools
ckpt policy-diff /tmp/se.img --keep-lsm --require-same-policy >/tmp/pd2.out 2>&1
rc=$?
check se_policy_diff_names_boolean "exit $rc: $(flat /tmp/pd2.out)" \
    '[ $rc = 3 ] && grep -q "selinux/boolean/fx_read_secret" /tmp/pd2.out'
timeout 30 ckpt restore /tmp/se.img --keep-lsm --require-same-policy </dev/null >/tmp/r4.out 2>&1
rc=$?
check se_require_same_policy_refuses "exit $rc: $(flat /tmp/r4.out)" '[ $rc = 3 ] && ! alive $pid'
echo 0 >$SE/booleans/fx_read_secret && echo 1 >$SE/commit_pending_bools

cd / && capture_tree sys/kernel/security/lsm sys/fs/selinux/policy sys/fs/selinux/enforce \
    sys/fs/selinux/checkreqprot sys/fs/selinux/booleans proc/sys/kernel/yama proc/sys/kernel/osrelease proc/sys/kernel/arch sys/kernel/security/lockdown

# Rule 3: a reload that drops the domain makes the recorded label invalid.
check se_reload_without_fx_t "loading policy-nofx failed" \
    'dd if=/policy/policy-nofx.bin of=$SE/load bs=1M status=none'
timeout 30 ckpt restore /tmp/se.img --keep-lsm </dev/null >/tmp/r5.out 2>&1
rc=$?
check se_dropped_domain_refuses "exit $rc: $(flat /tmp/r5.out)" '[ $rc = 3 ] && grep -q "fx_t" /tmp/r5.out && ! alive $pid'
