# Helpers for the guest scenario scripts (busybox sh).

# result NAME pass|fail [DETAIL]: one line for tests/vm/run.sh.
result() {
    [ -n "${3:-}" ] && echo "NOTE $1: $3"
    echo "RESULT $1 $2"
}

# check NAME DETAIL CONDITION: pass when the shell condition (eval'd) holds.
check() {
    if eval "$3"; then result "$1" pass; else result "$1" fail "$2"; fi
}

# start_probe OUT DENIED: starts fx-lsm-probe; sets $probe_pid.
start_probe() {
    /fx/fx-lsm-probe "$1" "$2" 20 </dev/null >/dev/null 2>&1 &
    probe_pid=$!
    sleep 0.3
}

# watched SECS OUT CMD...: runs CMD with output to OUT; if it is still
# running after SECS seconds, prints where it is stuck (wchan, syscall,
# kernel stack of each thread) as NOTE lines and kills it. Sets $rc (124
# when it was killed). One watchdog subshell, no polling: cheap under TCG.
watched() {
    local secs=$1 out=$2 w wd
    shift 2
    rm -f /tmp/watch.stuck
    "$@" </dev/null >"$out" 2>&1 &
    w=$!
    (
        sleep "$secs"
        if alive $w; then
            touch /tmp/watch.stuck
            echo "NOTE stuck after ${secs}s: $*"
            for t in /proc/$w/task/*; do
                echo "NOTE   task ${t##*/}: wchan=$(cat $t/wchan) syscall=$(cat $t/syscall) $(grep State $t/status) stack=$(tr '\n' ' ' <$t/stack)"
            done
            kill -9 $w
        fi
    ) &
    wd=$!
    wait $w
    rc=$?
    kill $wd 2>/dev/null
    [ -e /tmp/watch.stuck ] && rc=124
    return 0
}

# dump_probe PID IMG: `ckpt dump PID -o IMG`; sets $rc, output in
# /tmp/dump.out. The probe is killed and reaped either way (a failed dump
# leaves it running).
dump_probe() {
    watched 20 /tmp/dump.out ckpt dump "$1" -o "$2"
    if [ $rc = 124 ]; then
        echo "NOTE   probe $1: $(grep State /proc/$1/status) wchan=$(cat /proc/$1/wchan) stack=$(tr '\n' ' ' </proc/$1/stack)"
    fi
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# attr_of PID: its /proc/PID/attr/current, NULs stripped.
attr_of() { tr -d '\0' <"/proc/$1/attr/current" 2>/dev/null; }

# last_line FILE: the last complete line the probe wrote.
last_line() { tail -n 1 "$1"; }

# alive PID: whether PID exists and is not a zombie.
alive() { [ -e "/proc/$1/status" ] && ! grep -q '^State:.*Z' "/proc/$1/status"; }

# restore_bg LOG ARGS...: runs `ckpt restore ARGS...` in the background
# (ckpt waits for the restored task; it is ckpt's child, so ckpt reaps it);
# sets $restore_job. Waits until LOG grows.
restore_bg() {
    local log=$1
    shift
    local before
    before=$(wc -l <"$log")
    timeout 120 ckpt restore "$@" </dev/null >/tmp/restore.out 2>&1 &
    restore_job=$!
    local i=0
    while [ $i -lt 50 ] && [ "$(wc -l <"$log")" -le $((before + 2)) ]; do
        sleep 0.1; i=$((i + 1))
    done
}

# stop_restored PID: kills the restored task and reaps its ckpt.
stop_restored() {
    kill -9 "$1" 2>/dev/null
    local i=0
    while [ $i -lt 50 ] && [ -e "/proc/$restore_job" ] && ! grep -q '^State:.*Z' "/proc/$restore_job/status"; do
        sleep 0.1; i=$((i + 1))
    done
    kill -9 "$restore_job" 2>/dev/null
    wait "$restore_job" 2>/dev/null
    return 0
}

# capture_tree PATH...: copies the given kernel policy files (relative to /)
# into a tree (securityfs files stat as size 0, so they are read with cat;
# a read that blocks, such as apparmor/revision, is cut off after 1 s) and
# prints it as a base64 tar.gz between CAPTURE-BEGIN/CAPTURE-END markers on
# the console, for tests/vm/run.sh to extract.
capture_tree() {
    local dst=/tmp/capture f
    rm -rf $dst
    mkdir -p $dst
    # -L: securityfs links (apparmor/policy, raw_sha1) are copied as what they name.
    for f in $(cd / && find -L "$@" -type f 2>/dev/null); do
        mkdir -p "$dst/$(dirname "$f")"
        timeout 1 cat "/$f" >"$dst/$f" 2>/dev/null || rm -f "$dst/$f"
    done
    echo "CAPTURE-BEGIN"
    (cd $dst && tar -c -f - . | gzip -9 | base64)
    echo "CAPTURE-END"
}

# export_image FILE NAME: prints FILE as base64 between IMAGE-BEGIN NAME and
# IMAGE-END; run.sh saves it and puts it under /images/ on later boots.
export_image() {
    echo "IMAGE-BEGIN $2"
    base64 "$1"
    echo "IMAGE-END"
}
