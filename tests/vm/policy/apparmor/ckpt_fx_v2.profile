# ckpt_fx with one more rule: loaded over ckpt_fx to change the policy.
# attaches to fx-lsm-probe on exec; may write its log, may not read /tmp/secret.
abi <abi/3.0>,
profile ckpt_fx /fx/fx-lsm-probe {
  /fx/fx-lsm-probe mr,
  /dev/null rw,
  # Its working directory: the restore reopens it as the confined task.
  / r,
  /tmp/ok/ r,
  /tmp/ok/** rw,
  /tmp/also-ok r,
  /proc/*/attr/** r,
  deny /tmp/secret rw,
  # Signals and tracing from the unconfined init and ckpt. ckpt's dump-time
  # Landlock probe injects kcmp(self, peer) into the target, which AppArmor
  # mediates as ptrace read of an unconfined peer (docs/vm-tests.md).
  signal (receive) peer=unconfined,
  ptrace (read, readby, tracedby) peer=unconfined,
  # The restore sets the mm's exe with PR_SET_MM_MAP after the label is in
  # place, which needs CAP_CHECKPOINT_RESTORE under the profile (docs/vm-tests.md).
  capability checkpoint_restore,
}
