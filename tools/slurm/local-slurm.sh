#!/usr/bin/env bash
# A throw-away single-node SLURM on this machine (localhost), for tests and for trying the job-array recipe.
#
#   tools/slurm/local-slurm.sh start    # munged + slurmctld + slurmd, waits until the node is idle
#   tools/slurm/local-slurm.sh status   # daemons' pids and sinfo
#   tools/slurm/local-slurm.sh stop     # kills the daemons it started (by their pid files)
#
# Everything lives in $LOCAL_SLURM_DIR (default ${TMPDIR:-/tmp}/saharank-slurm-$UID): munge key and socket,
# slurm.conf, state, spool and logs; nothing is written outside it (the binaries come from the Debian packages
# slurm-wlm and munge: .ci/slurm-setup installs them). No cgroups, no accounting, no systemd:
# ProctrackType=proctrack/linuxproc, TaskPlugin=task/none. A `start` that fails stops what it started (the
# logs stay) and prints the daemon's error line; tested with SLURM 22.05 (Debian 12) as root in a container.
#
# Settings (environment): LOCAL_SLURM_DIR, LOCAL_SLURM_CTLD_PORT (default 6817), LOCAL_SLURM_SLURMD_PORT
# (default 6818), LOCAL_SLURM_CPUS (default nproc), LOCAL_SLURM_TIMEOUT (seconds to wait for the node, 60).
# After `start`, clients need SLURM_CONF: `eval "$(tools/slurm/local-slurm.sh env)"`.
# Runs as root (a container) or as any user (SlurmUser is the user that starts it).
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-${TMPDIR:-/tmp}/saharank-slurm-$(id -u)}
CTLD_PORT=${LOCAL_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${LOCAL_SLURM_SLURMD_PORT:-6818}
CPUS=${LOCAL_SLURM_CPUS:-$(nproc)}
TIMEOUT=${LOCAL_SLURM_TIMEOUT:-60}
HOST=$(hostname -s)
USER_NAME=$(id -un)
CONF=$DIR/etc/slurm.conf
SOCKET=$DIR/munge/munge.socket
PATH=$PATH:/usr/sbin:/sbin

die() { echo "local-slurm: $*" >&2; exit 1; }

first_log_line() {  # the first fatal line of a log, else its last error line, else its last line
  # (slurmd logs harmless errors at start, e.g. that the PMIx library is missing)
  local f=$1
  [ -s "$f" ] || { echo "(no log at $f)"; return; }
  grep -m1 -iE "fatal" "$f" || grep -iE "error|cannot|failed|refus" "$f" | grep -viE "pmix|MPI:" | tail -n1 \
    || tail -n1 "$f"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_pidfile() {  # a daemon writes its pid file a moment after it forks
  for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

write_conf() {
  mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
  chmod 700 "$DIR/state" "$DIR/spool"
  : > "$DIR/etc/plugstack.conf"
  # No cgroup.conf: with proctrack/linuxproc and task/none, slurmd 22.05 (Debian 12) starts without one (and
  # refuses CgroupPlugin=disabled, which it does not know). start_slurmd writes CgroupPlugin=disabled only if
  # slurmd fails on cgroups (later SLURM versions know that value; untested here).
  cat > "$CONF" <<EOF
# written by tools/slurm/local-slurm.sh: a single-node SLURM on localhost, no cgroups, no accounting
ClusterName=saharank-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
PlugStackConfig=$DIR/etc/plugstack.conf
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
MaxArraySize=1001
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

start_munge() {
  alive "$DIR/munge/munged.pid" && return 0
  command -v munged >/dev/null || die "munged not found (install the Debian package munge: bash .ci/slurm-setup)"
  mkdir -p "$DIR/munge"; chmod 700 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    head -c 1024 /dev/urandom > "$DIR/munge/munge.key"
    chmod 400 "$DIR/munge/munge.key"
  fi
  # --force: munged wants its socket's folder reachable by every user; ours is private (mode 700)
  munged --force --key-file="$DIR/munge/munge.key" --socket="$SOCKET" --pid-file="$DIR/munge/munged.pid" \
         --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" \
    || die "munged could not start: $(first_log_line "$DIR/munge/munged.log")"
  for _ in $(seq 50); do [ -S "$SOCKET" ] && return 0; sleep 0.1; done
  die "munged started but its socket $SOCKET did not appear: $(first_log_line "$DIR/munge/munged.log")"
}

start_slurmd() {
  if ! SLURM_CONF=$CONF slurmd -f "$CONF" -N "$HOST"; then
    # a SLURM that initialises a cgroup plugin regardless: "disabled" (SLURM >= 23) turns that off
    if [ ! -e "$DIR/etc/cgroup.conf" ] && grep -qi cgroup "$DIR/log/slurmd.log" 2>/dev/null; then
      printf 'CgroupPlugin=disabled\n' > "$DIR/etc/cgroup.conf"
      SLURM_CONF=$CONF slurmd -f "$CONF" -N "$HOST" && return 0
    fi
    die "slurmd could not start: $(first_log_line "$DIR/log/slurmd.log")"
  fi
}

node_state() { SLURM_CONF=$CONF sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1; }

start() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    || die "slurmctld/slurmd not found (install the Debian package slurm-wlm: bash .ci/slurm-setup)"
  mkdir -p "$DIR"
  alive "$DIR/run/slurmctld.pid" || write_conf
  start_munge
  if ! alive "$DIR/run/slurmctld.pid"; then
    # -c: start clean (no jobs from an earlier run of this folder); -i: ignore unreadable state files
    SLURM_CONF=$CONF slurmctld -f "$CONF" -c -i \
      || die "slurmctld could not start: $(first_log_line "$DIR/log/slurmctld.log")"
    wait_pidfile "$DIR/run/slurmctld.pid" || die "slurmctld wrote no pid file: $(first_log_line "$DIR/log/slurmctld.log")"
  fi
  if ! alive "$DIR/run/slurmd.pid"; then
    start_slurmd
    wait_pidfile "$DIR/run/slurmd.pid" || die "slurmd wrote no pid file: $(first_log_line "$DIR/log/slurmd.log")"
  fi
  local state="" t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$TIMEOUT" ]; do
    alive "$DIR/run/slurmctld.pid" || die "slurmctld exited: $(first_log_line "$DIR/log/slurmctld.log")"
    alive "$DIR/run/slurmd.pid" || die "slurmd exited: $(first_log_line "$DIR/log/slurmd.log")"
    state=$(node_state)
    case $state in idle*) echo "local-slurm: node $HOST idle ($CPUS CPUs); SLURM_CONF=$CONF"; return 0;; esac
    sleep 0.5
  done
  die "node $HOST not idle after ${TIMEOUT}s (state '${state:-unknown}'): slurmd: $(first_log_line "$DIR/log/slurmd.log"); slurmctld: $(first_log_line "$DIR/log/slurmctld.log")"
}

stop_one() {  # pid file, name
  local pf=$1 pid
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

stop() {
  # the jobs first (killing slurmd leaves its job steps running), then slurmd, the controller, munge
  if alive "$DIR/run/slurmctld.pid"; then
    SLURM_CONF=$CONF scancel --user="$USER_NAME" 2>/dev/null || true
    for _ in $(seq 100); do
      [ -z "$(SLURM_CONF=$CONF squeue -h -t PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_one "$DIR/run/slurmd.pid"
  stop_one "$DIR/run/slurmctld.pid"
  stop_one "$DIR/munge/munged.pid"
  echo "local-slurm: stopped (logs kept in $DIR/log; remove $DIR to clean up)"
}

status() {
  local rc=0
  for d in munge/munged run/slurmctld run/slurmd; do
    if alive "$DIR/$d.pid"; then echo "$(basename $d): running (pid $(cat "$DIR/$d.pid"))"; else echo "$(basename $d): stopped"; rc=3; fi
  done
  [ $rc -eq 0 ] && SLURM_CONF=$CONF sinfo -N -l || true
  return $rc
}

case ${1:-} in
  start) trap '[ $? -eq 0 ] || stop >/dev/null 2>&1' EXIT; start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
