#!/usr/bin/env bash
# A real single-node SLURM cluster (Debian's slurm-wlm 22.05 + munge) on this machine, without
# systemd, for greenfound's SLURM tests: `start` (idempotent: starts only what is not running,
# restarts slurmctld/slurmd only when slurm.conf changed), `stop`, `status`. Run as root.
#
# Layout: /etc/slurm/slurm.conf (the default path, so clients need no SLURM_CONF), state, logs
# and pid files under $SLURM_LOCAL_DIR (default /var/spool/slurm-local). Daemons are stopped
# by the pids in their pid files, never by name. The node's CPUs and memory come from
# `slurmd -C`, so the config never claims more than the machine has (else the node is INVAL).
set -euo pipefail

LOCAL_DIR=${SLURM_LOCAL_DIR:-/var/spool/slurm-local}
CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)
PACKAGES=(munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins)

log() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }

# A pid file names a live daemon when the process exists, is not a zombie (PID 1 here reaps
# late, so `kill -0` is not enough) and its comm is the expected name.
pid_alive() {  # pidfile comm
  local pid
  pid=$(tr -dc '0-9' 2>/dev/null <"$1") || return 1  # the daemon may remove it meanwhile
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  # Field 3 of /proc/PID/stat is the state; the comm field before it may contain spaces.
  [ "$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat")" != "Z" ]
}

pid_of() { tr -dc '0-9' 2>/dev/null <"$1"; }

wait_until() {  # seconds command...
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# TERM, then KILL after 10 s; waits until the process is gone (or a zombie).
stop_pidfile() {  # pidfile comm
  pid_alive "$1" "$2" || return 0
  local pid
  pid=$(pid_of "$1")
  log "stopping $2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until 10 eval "! pid_alive '$1' '$2'"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 5 eval "! pid_alive '$1' '$2'" || die "$2 (pid $pid) does not exit"
  fi
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local i
  for i in $(seq 1 60); do  # another apt/dpkg may hold the lock on a fresh machine
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
      return 0
    fi
    sleep 5
  done
  die "apt-get install ${missing[*]} failed"
}

ensure_hostname() {
  getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >>/etc/hosts
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge  # systemd's RuntimeDirectory= elsewhere
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  # munged refuses a key readable by others or not owned by munge.
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if pid_alive /run/munge/munged.pid munged || munge_works; then
    return 0
  fi
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --num-threads=2
  touch "$LOCAL_DIR/run/munged.ours"  # `stop` ends munged only when this script started it
  wait_until 10 munge_works || die "munged does not answer (see /var/log/munge/munged.log)"
}

render_conf() {
  local hw
  # First line only: `NodeName=vm CPUs=2 ... RealMemory=N`; the second is UpTime.
  hw=$(slurmd -C | head -n1)
  [[ $hw == NodeName=* ]] || die "slurmd -C printed '$hw', expected NodeName=..."
  cat <<EOF
# Written by greenfound's scripts/slurm-local.sh: a single-node test cluster.
ClusterName=localcluster
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$LOCAL_DIR/state
SlurmdSpoolDir=$LOCAL_DIR/slurmd
SlurmctldPidFile=$LOCAL_DIR/run/slurmctld.pid
SlurmdPidFile=$LOCAL_DIR/run/slurmd.pid
SlurmctldLogFile=$LOCAL_DIR/log/slurmctld.log
SlurmdLogFile=$LOCAL_DIR/log/slurmd.log
# cgroup plugins fail without a writable freezer hierarchy; linuxproc + none need nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# CR_Core, not CR_Core_Memory: jobs without --mem would each take the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Debian's Open MPI has PMIx but no PMI-1/2.
MpiDefault=pmix
ReturnToService=2
JobRequeue=1
MaxArraySize=1001
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOCAL_DIR/log/jobcomp.txt
$hw NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

# Writes slurm.conf only when its content changes (its mtime then tells running daemons apart
# from ones started with an older config).
write_conf() {
  local new
  new=$(render_conf)
  if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new" ]; then
    return 0
  fi
  log "writing $CONF"
  install -d /etc/slurm
  printf '%s\n' "$new" >"$CONF.tmp"
  chmod 0644 "$CONF.tmp"
  mv -f "$CONF.tmp" "$CONF"
}

# True when the daemon in `pidfile` started before slurm.conf was last written.
older_than_conf() {  # pidfile
  local pid age conf_age
  pid=$(pid_of "$1")
  age=$(ps -o etimes= -p "$pid" | tr -d ' ')
  conf_age=$(($(date +%s) - $(stat -c %Y "$CONF")))
  [ -n "$age" ] && [ "$age" -gt "$conf_age" ]
}

ctl_up() {
  local out
  out=$(scontrol ping 2>/dev/null || true)  # captured: a pipe into grep -q can SIGPIPE scontrol
  [[ $out == *UP* ]]
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1; }

# Idle, and registered by the slurmd now running (a recovered state file can say idle before
# the new slurmd has registered).
node_ready() {
  local state start_line slurmd_start
  state=$(node_state)
  [ "$state" = idle ] || [ "$state" = mixed ] || [ "$state" = allocated ] || return 1
  start_line=$(scontrol show node "$NODE" 2>/dev/null || true)
  slurmd_start=$(sed -nE 's/.*SlurmdStartTime=([0-9T:-]+).*/\1/p' <<<"$start_line")
  [ -n "$slurmd_start" ] && [ "$slurmd_start" != None ] || return 1
  [ "$(date -d "$slurmd_start" +%s)" -ge "$SLURMD_STARTED_AT" ]
}

start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (found uid $(id -u))"
  install_packages
  install -d -m 0755 "$LOCAL_DIR" "$LOCAL_DIR/run" "$LOCAL_DIR/slurmd"
  install -d -o slurm -g slurm -m 0755 "$LOCAL_DIR/state" "$LOCAL_DIR/log"
  ensure_hostname
  start_munge
  write_conf

  local restart=0
  if pid_alive "$LOCAL_DIR/run/slurmctld.pid" slurmctld && older_than_conf "$LOCAL_DIR/run/slurmctld.pid"; then
    restart=1
  fi
  if pid_alive "$LOCAL_DIR/run/slurmd.pid" slurmd && older_than_conf "$LOCAL_DIR/run/slurmd.pid"; then
    restart=1
  fi
  if [ $restart -eq 1 ]; then
    log "slurm.conf changed: restarting slurmd and slurmctld"
    stop_pidfile "$LOCAL_DIR/run/slurmd.pid" slurmd
    stop_pidfile "$LOCAL_DIR/run/slurmctld.pid" slurmctld
  fi

  if ! pid_alive "$LOCAL_DIR/run/slurmctld.pid" slurmctld; then
    log "starting slurmctld"
    /usr/sbin/slurmctld -i
  fi
  wait_until 30 ctl_up || die "slurmctld does not answer scontrol ping (see $LOCAL_DIR/log/slurmctld.log)"

  if pid_alive "$LOCAL_DIR/run/slurmd.pid" slurmd; then
    SLURMD_STARTED_AT=$(($(date +%s) - $(ps -o etimes= -p "$(pid_of "$LOCAL_DIR/run/slurmd.pid")" | tr -d ' ') - 1))
  else
    log "starting slurmd"
    SLURMD_STARTED_AT=$(($(date +%s) - 1))
    /usr/sbin/slurmd
  fi

  local deadline=$((SECONDS + 60)) state
  until node_ready; do
    state=$(node_state)
    case "$state" in
      down* | drain* | fail*)
        # A node left down by a previous run (or ReturnToService races): resume it.
        scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
      inval*)
        die "node $NODE is INVAL: $(sinfo -R -h -n "$NODE")" ;;
    esac
    [ $SECONDS -lt $deadline ] || die "node $NODE not idle after 60 s (state '$state'; see $LOCAL_DIR/log/slurmd.log)"
    sleep 0.2
  done
  log "up: node $NODE $(node_state), $(sinfo -h -n "$NODE" -o '%c CPUs, %m MB')"
}

stop() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (found uid $(id -u))"
  if ctl_up; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      log "cancelling jobs: $(echo $jobs)"
      xargs -r scancel <<<"$jobs" || true
      wait_until 20 eval '[ -z "$(squeue -h -o %A 2>/dev/null)" ]' || log "jobs still listed after 20 s"
    fi
  fi
  stop_pidfile "$LOCAL_DIR/run/slurmd.pid" slurmd
  stop_pidfile "$LOCAL_DIR/run/slurmctld.pid" slurmctld
  if [ -e "$LOCAL_DIR/run/munged.ours" ]; then
    stop_pidfile /run/munge/munged.pid munged
    rm -f "$LOCAL_DIR/run/munged.ours"
  fi
  log "stopped"
}

status() {
  local name pidfile rc=0
  for name in munged slurmctld slurmd; do
    case $name in
      munged) pidfile=/run/munge/munged.pid ;;
      *) pidfile=$LOCAL_DIR/run/$name.pid ;;
    esac
    if pid_alive "$pidfile" "$name"; then
      echo "$name: running (pid $(pid_of "$pidfile"))"
    else
      echo "$name: not running"
      rc=1
    fi
  done
  if ctl_up; then
    sinfo
    squeue
  fi
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
