#!/usr/bin/env bash
# A real SLURM cluster (Debian's slurm-wlm 22.05 + munge) on this machine, without systemd,
# for greenfound's SLURM tests: `start` (idempotent: starts only what is not running,
# restarts slurmctld/slurmd only when slurm.conf changed), `stop`, `status`. Run as root.
#
# Executed, it runs the one-node shape: this machine is the only node. Sourced
# (`source scripts/slurm-local.sh`), it only defines the functions, and
# scripts/cluster-local.sh uses them for the N-host shape (hosts in network namespaces): the
# caller sets NODES/NODE_ADDRS/CTL_ADDR and a `node_exec` that runs a command on a node.
# Both shapes share one slurm.conf, one state folder and one set of daemons, so starting
# one stops the other's daemons first (the config differs, so everything restarts).
#
# Layout: /etc/slurm/slurm.conf (the default path, so clients need no SLURM_CONF), state, logs
# and pid files under $SLURM_LOCAL_DIR (default /var/spool/slurm-local), one slurmd pid file,
# log and spool per node (slurm.conf's %n). Daemons are stopped by the pids in their pid
# files, never by name. A node's CPUs and memory come from `slurmd -C`, so the config never
# claims more than the machine has (else the node is INVAL).
set -euo pipefail

LOCAL_DIR=${SLURM_LOCAL_DIR:-/var/spool/slurm-local}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
PACKAGES=(munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins)

# The cluster's shape; scripts/cluster-local.sh overrides these before calling slurm_start.
CTL_NAME=$(hostname -s)
CTL_ADDR=127.0.0.1
NODES=("$CTL_NAME")
NODE_ADDRS=(127.0.0.1)
SLURMD_TIMEOUT=30   # seconds before slurmctld marks a silent node DOWN
EXTRA_CONF=""       # more slurm.conf lines (GresTypes, TaskProlog)
NODE_GRES=""        # e.g. " Gres=gpu:2", appended to every node line
GRES_LINES=""       # gres.conf content ("" = no gres.conf)
LOG_TAG=slurm-local

log() { echo "$LOG_TAG: $*"; }
die() { echo "$LOG_TAG: error: $*" >&2; exit 1; }

# Runs a command on a node: here, on this machine; cluster-local.sh enters the node's namespaces.
node_exec() { shift; "$@"; }

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
  getent hosts "$CTL_NAME" >/dev/null || echo "127.0.0.1 $CTL_NAME" >>/etc/hosts
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

# One munged for every node: its socket is a path, which every network namespace reaches.
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
  local hw i
  # First line only: `NodeName=vm CPUs=2 ... RealMemory=N`; the second is UpTime. Every node
  # of the N-host shape is this machine, so each gets its figures.
  hw=$(slurmd -C | head -n1)
  [[ $hw == NodeName=* ]] || die "slurmd -C printed '$hw', expected NodeName=..."
  hw=${hw#NodeName=* }
  cat <<EOF
# Written by greenfound's scripts/slurm-local.sh: a ${#NODES[@]}-node test cluster.
ClusterName=localcluster
SlurmctldHost=$CTL_NAME($CTL_ADDR)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$LOCAL_DIR/state
SlurmdSpoolDir=$LOCAL_DIR/slurmd-%n
SlurmctldPidFile=$LOCAL_DIR/run/slurmctld.pid
SlurmdPidFile=$LOCAL_DIR/run/slurmd-%n.pid
SlurmctldLogFile=$LOCAL_DIR/log/slurmctld.log
SlurmdLogFile=$LOCAL_DIR/log/slurmd-%n.log
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
SlurmdTimeout=$SLURMD_TIMEOUT
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOCAL_DIR/log/jobcomp.txt
EOF
  [ -z "$EXTRA_CONF" ] || printf '%s\n' "$EXTRA_CONF"
  for i in "${!NODES[@]}"; do
    echo "NodeName=${NODES[$i]} NodeAddr=${NODE_ADDRS[$i]} $hw$NODE_GRES State=UNKNOWN"
  done
  local list
  list=$(IFS=,; echo "${NODES[*]}")
  echo "PartitionName=debug Nodes=$list Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
}

# Writes `file` only when its content changes (slurm.conf's mtime then tells running daemons
# apart from ones started with an older config). An empty content removes the file.
write_if_changed() {  # file content
  if [ -z "$2" ]; then
    [ ! -e "$1" ] || { log "removing $1"; rm -f "$1"; }
    return 0
  fi
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
    return 0
  fi
  log "writing $1"
  install -d "$(dirname "$1")"
  printf '%s\n' "$2" >"$1.tmp"
  chmod 0644 "$1.tmp"
  mv -f "$1.tmp" "$1"
}

write_conf() {
  write_if_changed "$GRES_CONF" "$GRES_LINES"
  write_if_changed "$CONF" "$(render_conf)"
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

node_state() { sinfo -h -n "$1" -o %T 2>/dev/null | head -n1; }

slurmd_pidfile() { echo "$LOCAL_DIR/run/slurmd-$1.pid"; }

# Idle (or busy), and registered by the slurmd now running (a recovered state file can say
# idle before the new slurmd has registered).
node_ready() {  # node started_at
  local state start_line slurmd_start
  state=$(node_state "$1")
  [ "$state" = idle ] || [ "$state" = mixed ] || [ "$state" = allocated ] || return 1
  start_line=$(scontrol show node "$1" 2>/dev/null || true)
  slurmd_start=$(sed -nE 's/.*SlurmdStartTime=([0-9T:-]+).*/\1/p' <<<"$start_line")
  [ -n "$slurmd_start" ] && [ "$slurmd_start" != None ] || return 1
  [ "$(date -d "$slurmd_start" +%s)" -ge "$2" ]
}

wait_node_ready() {  # node started_at
  local deadline=$((SECONDS + 60)) state
  until node_ready "$1" "$2"; do
    state=$(node_state "$1")
    case "$state" in
      down* | drain* | fail*)
        # A node left down by a previous run (or ReturnToService races): resume it.
        scontrol update nodename="$1" state=resume 2>/dev/null || true ;;
      inval*)
        die "node $1 is INVAL: $(sinfo -R -h -n "$1")" ;;
    esac
    [ $SECONDS -lt $deadline ] || die "node $1 not idle after 60 s (state '$state'; see $LOCAL_DIR/log/slurmd-$1.log)"
    sleep 0.2
  done
}

# Every slurmd pid file of any shape: a node of the other shape must stop too.
stop_all_slurmd() {
  local pidfile
  for pidfile in "$LOCAL_DIR"/run/slurmd-*.pid "$LOCAL_DIR"/run/slurmd.pid; do
    [ -e "$pidfile" ] && stop_pidfile "$pidfile" slurmd
  done
  return 0
}

slurm_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (found uid $(id -u))"
  install_packages
  install -d -m 0755 "$LOCAL_DIR" "$LOCAL_DIR/run"
  install -d -o slurm -g slurm -m 0755 "$LOCAL_DIR/state" "$LOCAL_DIR/log"
  ensure_hostname
  start_munge
  write_conf

  local restart=0 node pidfile
  if pid_alive "$LOCAL_DIR/run/slurmctld.pid" slurmctld && older_than_conf "$LOCAL_DIR/run/slurmctld.pid"; then
    restart=1
  fi
  for pidfile in "$LOCAL_DIR"/run/slurmd-*.pid "$LOCAL_DIR"/run/slurmd.pid; do
    if pid_alive "$pidfile" slurmd && older_than_conf "$pidfile"; then restart=1; fi
  done
  if [ $restart -eq 1 ]; then
    log "slurm.conf changed: restarting slurmd and slurmctld"
    stop_all_slurmd
    stop_pidfile "$LOCAL_DIR/run/slurmctld.pid" slurmctld
  fi

  if ! pid_alive "$LOCAL_DIR/run/slurmctld.pid" slurmctld; then
    log "starting slurmctld"
    /usr/sbin/slurmctld -i
  fi
  wait_until 30 ctl_up || die "slurmctld does not answer scontrol ping (see $LOCAL_DIR/log/slurmctld.log)"

  local -A started_at
  for node in "${NODES[@]}"; do
    pidfile=$(slurmd_pidfile "$node")
    if pid_alive "$pidfile" slurmd; then
      started_at[$node]=$(($(date +%s) - $(ps -o etimes= -p "$(pid_of "$pidfile")" | tr -d ' ') - 1))
    else
      log "starting slurmd on $node"
      started_at[$node]=$(($(date +%s) - 1))
      install -d -m 0755 "$LOCAL_DIR/slurmd-$node"
      node_exec "$node" /usr/sbin/slurmd -N "$node"
    fi
  done
  for node in "${NODES[@]}"; do
    wait_node_ready "$node" "${started_at[$node]}"
  done
  log "up: $(sinfo -h -o '%D node(s) %T: %N' | paste -sd ';' -), $(sinfo -h -o '%c CPUs, %m MB' | head -n1) each"
}

slurm_stop() {
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
  stop_all_slurmd
  stop_pidfile "$LOCAL_DIR/run/slurmctld.pid" slurmctld
  if [ -e "$LOCAL_DIR/run/munged.ours" ]; then
    stop_pidfile /run/munge/munged.pid munged
    rm -f "$LOCAL_DIR/run/munged.ours"
  fi
  log "stopped"
}

slurm_status() {
  local rc=0 node pidfile
  report() {  # name pidfile
    if pid_alive "$2" "${1%% *}"; then
      echo "$1: running (pid $(pid_of "$2"))"
    else
      echo "$1: not running"
      rc=1
    fi
  }
  report munged /run/munge/munged.pid
  report slurmctld "$LOCAL_DIR/run/slurmctld.pid"
  for node in "${NODES[@]}"; do report "slurmd on $node" "$(slurmd_pidfile "$node")"; done
  if ctl_up; then
    sinfo
    squeue
  fi
  return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    start) slurm_start ;;
    stop) slurm_stop ;;
    status) slurm_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
  esac
fi
