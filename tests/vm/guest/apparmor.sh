# AppArmor scenarios (DESIGN 3 rules 2, 3, 4), sourced by the guest's /init.
# check NAME DETAIL CONDITION (lib.sh): CONDITION is eval'd.
AA=/sys/kernel/security/apparmor
PROFILE="ckpt_fx (enforce)"
mkdir -p /tmp/ok
echo secret >/tmp/secret
flat() { tr '\n' '|' <"$1"; }

check aa_stack "stack is $(cat /sys/kernel/security/lsm)" 'grep -q apparmor /sys/kernel/security/lsm'
# One write(2) of the whole binary policy (dd: one read, one write).
check aa_profile_loaded "loading ckpt_fx into $AA/.load failed" \
    'dd if=/policy/ckpt_fx.bin of=$AA/.load bs=1M status=none'

watched 20 /tmp/lsm.out ckpt lsm
check aa_ckpt_lsm "ckpt lsm exit $rc: $(flat /tmp/lsm.out)" '[ $rc = 0 ] && grep -q apparmor /tmp/lsm.out'
# An unconfined dump first: separates ckpt on this kernel from AppArmor.
( while :; do sleep 5; echo "NOTE heartbeat $(cut -d' ' -f1 /proc/uptime)"; done ) &
heartbeat=$!
/fx/fx-counter 0 /tmp/counter.log 20 </dev/null >/dev/null 2>&1 &
cpid=$!
sleep 0.3
dump_probe $cpid /tmp/counter.img
check aa_unconfined_dump "ckpt dump exit $rc: $(flat /tmp/dump.out)" '[ $rc = 0 ]'
start_probe /tmp/ok/log /tmp/secret
pid=$probe_pid
check aa_fixture_confined "attr/current is '$(attr_of $pid)'" '[ "$(attr_of $pid)" = "$PROFILE" ]'
check aa_fixture_denied_before "probe says: $(last_line /tmp/ok/log)" \
    'grep -q "label=ckpt_fx_(enforce) denied=EACCES" /tmp/ok/log'

dump_probe $pid /tmp/aa.img
check aa_dump "ckpt dump exit $rc: $(flat /tmp/dump.out)" '[ $rc = 0 ]'
n_dump=$(wc -l </tmp/ok/log)

# Rule 2: a confining label is not silently given up.
timeout 30 ckpt restore /tmp/aa.img </dev/null >/tmp/r2.out 2>&1
rc=$?
check aa_rule2_refuses_without_keep_lsm "exit $rc: $(flat /tmp/r2.out)" \
    '[ $rc = 3 ] && grep -q -- --keep-lsm /tmp/r2.out && grep -q -- --lsm-as-caller /tmp/r2.out && grep -q -- --lsm-label /tmp/r2.out'
check aa_rule2_nothing_left_running "pid $pid exists after a refused restore" '! alive $pid'
ckpt policy-diff /tmp/aa.img >/tmp/pd0.out 2>&1
rc=$?
check aa_rule2_policy_diff_agrees "exit $rc: $(flat /tmp/pd0.out)" '[ $rc = 3 ] && grep -q -- --keep-lsm /tmp/pd0.out'

# Rule 3: --keep-lsm puts the profile back; the kernel still denies.
restore_bg /tmp/ok/log /tmp/aa.img --keep-lsm
check aa_keep_lsm_restored "ckpt restore: $(flat /tmp/restore.out)" 'alive $pid'
check aa_keep_lsm_same_profile "attr/current is '$(attr_of $pid)'" '[ "$(attr_of $pid)" = "$PROFILE" ]'
line=$(last_line /tmp/ok/log)
n=${line%% *}
check aa_keep_lsm_continues "last line '$line', $n_dump lines at dump" '[ "$n" -gt "$n_dump" ]'
check aa_keep_lsm_still_denied "probe says: $line" \
    '[ "$n" -gt "$n_dump" ] && echo "$line" | grep -q "label=ckpt_fx_(enforce) denied=EACCES"'
stop_restored $pid

# Rule 2, explicit: --lsm-as-caller runs with the caller's label, naming what it gave up.
restore_bg /tmp/ok/log /tmp/aa.img --lsm-as-caller
check aa_lsm_as_caller_restored "ckpt restore: $(flat /tmp/restore.out)" 'alive $pid'
check aa_lsm_as_caller_unconfined "attr/current is '$(attr_of $pid)'" '[ "$(attr_of $pid)" = "unconfined" ]'
check aa_lsm_as_caller_notice_names_profile "$(flat /tmp/restore.out)" 'grep -q "ckpt_fx" /tmp/restore.out'
stop_restored $pid

# --lsm-label: a label the operator names, validated, applied by the task.
restore_bg /tmp/ok/log /tmp/aa.img --lsm-label apparmor:ckpt_fx
check aa_lsm_label_applied "attr/current is '$(attr_of $pid)': $(flat /tmp/restore.out)" '[ "$(attr_of $pid)" = "$PROFILE" ]'
stop_restored $pid
timeout 30 ckpt restore /tmp/aa.img --lsm-label apparmor:no_such_profile </dev/null >/tmp/r5.out 2>&1
rc=$?
check aa_lsm_label_invalid_refuses "exit $rc: $(flat /tmp/r5.out)" '[ $rc = 3 ] && grep -q no_such_profile /tmp/r5.out && ! alive $pid'

# Rule 4: replacing the profile changes the fingerprint.
ckpt policy-diff /tmp/aa.img --keep-lsm --require-same-policy >/tmp/pd1.out 2>&1
rc=$?
check aa_policy_diff_same "exit $rc: $(flat /tmp/pd1.out)" '[ $rc = 0 ]'
check aa_profile_replaced "loading ckpt_fx_v2 into $AA/.replace failed" \
    'dd if=/policy/ckpt_fx_v2.bin of=$AA/.replace bs=1M status=none'
ckpt policy-diff /tmp/aa.img --keep-lsm --require-same-policy >/tmp/pd2.out 2>&1
rc=$?
check aa_policy_diff_names_changed_profile "exit $rc: $(flat /tmp/pd2.out)" \
    '[ $rc = 3 ] && grep -q "apparmor/profile/ckpt_fx" /tmp/pd2.out'
timeout 30 ckpt restore /tmp/aa.img --keep-lsm --require-same-policy </dev/null >/tmp/r6.out 2>&1
rc=$?
check aa_require_same_policy_refuses "exit $rc: $(flat /tmp/r6.out)" '[ $rc = 3 ] && ! alive $pid'

kill $heartbeat 2>/dev/null
# Across stacks: the image dumped on the SELinux boot (fixture in u:r:fx_t),
# named selinux-fx-<its pid>.img.
ximg=$(ls /images/selinux-fx-*.img 2>/dev/null | head -1)
if [ -n "$ximg" ]; then
    xpid=${ximg##*/selinux-fx-}
    xpid=${xpid%.img}
    ckpt policy-diff "$ximg" --keep-lsm >/tmp/x1.out 2>&1
    rc=$?
    check cross_policy_diff_explains "exit $rc: $(flat /tmp/x1.out)" \
        '[ $rc = 3 ] && grep -q "stack: differs" /tmp/x1.out && grep -q "needs the same LSM stack" /tmp/x1.out'
    timeout 30 ckpt restore "$ximg" --keep-lsm </dev/null >/tmp/x2.out 2>&1
    rc=$?
    check cross_keep_lsm_refused "exit $rc: $(flat /tmp/x2.out)" \
        '[ $rc = 3 ] && grep -q "needs the same LSM stack" /tmp/x2.out && ! grep -qs fx-lsm-probe /proc/$xpid/comm'
    timeout 30 ckpt restore "$ximg" </dev/null >/tmp/x3.out 2>&1
    rc=$?
    check cross_rule2_refuses_without_keep_lsm "exit $rc: $(flat /tmp/x3.out)" \
        '[ $rc = 3 ] && grep -q "confined by selinux label" /tmp/x3.out && grep -q -- --lsm-as-caller /tmp/x3.out && ! grep -qs fx-lsm-probe /proc/$xpid/comm'
elif [ "${ckpt_cross:-}" = 1 ]; then
    result cross_image_present fail "no /images/selinux-fx-PID.img from the SELinux boot"
fi

cd / && capture_tree sys/kernel/security/lsm sys/kernel/security/apparmor/policy \
    proc/sys/kernel/yama proc/sys/kernel/osrelease proc/sys/kernel/arch sys/kernel/security/lockdown
