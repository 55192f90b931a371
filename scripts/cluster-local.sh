#!/usr/bin/env bash
# N test hosts on this machine, joined by a network, with SLURM across them: the multi-node
# cluster greenfound's `multinode` tests start and stop. Run as root.
#
#   cluster-local.sh start [--hosts N] [--gpus G]   N hosts (default 2), G fake GPUs each (default 0)
#   cluster-local.sh stop                           everything below gone: namespaces, links, daemons, spool
#   cluster-local.sh status                         hosts, addresses, daemons, sinfo
#   cluster-local.sh exec HOST CMD...               run CMD on HOST (Open MPI's rsh agent)
#   cluster-local.sh link HOST up|down              plug or cut HOST's network cable
#
# A host is a network namespace (ip netns gf-hK), a UTS namespace (hostname gf-hK) and a
# mount namespace whose only difference is a private /tmp (namespace files under
# $CLUSTER_DIR), with one veth into the bridge gf-br0 on 10.213.0.0/24: the bridge is
# 10.213.0.1 (this machine, where mpirun and the SLURM clients run), host K is 10.213.0.(10+K).
# Nothing routes beyond that subnet. Hosts share the rest of the file system (like a
# cluster's shared home: run folders must not be under /tmp) and the machine's CPUs.
#
# SLURM is scripts/slurm-local.sh's, in its N-node shape: one munged and one slurmctld here,
# one slurmd per host started inside that host's namespaces. Fake GPUs are gres `gpu` backed
# by placeholder device nodes (/dev/null's numbers), so SLURM allocates them and sets
# CUDA_VISIBLE_DEVICES in every task.
# Per-host environment: `KEY=VALUE` lines in $CLUSTER_DIR/hosts/HOST/environment reach every
# process started there through `exec` (the rsh agent) and SLURM tasks (TaskProlog); tests
# put GREENFOUND_POWERCAP_ROOT there.
#
# To start ranks across hosts (what `status` prints):
#   greenfound launch --hosts gf-h1:2,gf-h2:2 --rsh-agent "$PWD/scripts/cluster-local.sh exec" \
#     --network 10.213.0.0/24 -- pretrain ...
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=slurm-local.sh
source "$SCRIPT_DIR/slurm-local.sh"
LOG_TAG=cluster-local

CLUSTER_DIR=/run/gf-cluster
BRIDGE=gf-br0
SUBNET=10.213.0
PREFIX=gf-h

host_addr() { echo "$SUBNET.$((10 + ${1#"$PREFIX"}))"; }
veth_of() { echo "$1-v"; }  # the bridge side of a host's cable; the host side is its eth0

# The hosts that exist now, in order (from the namespaces).
existing_hosts() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX[0-9]+$" | sort -V || true
}

# Runs a command on a host, in its network and UTS namespaces, with its environment file.
host_exec() {  # host cmd...
  local host=$1
  shift
  [ -e "/run/netns/$host" ] && mountpoint -q "$CLUSTER_DIR/mnt/$host" || die "no host $host (start the cluster first)"
  local env_file="$CLUSTER_DIR/hosts/$host/environment"
  local env_args=()
  if [ -s "$env_file" ]; then
    mapfile -t env_args < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$env_file")
  fi
  nsenter --net="/run/netns/$host" --uts="$CLUSTER_DIR/uts/$host" --mount="$CLUSTER_DIR/mnt/$host" -- \
    env "${env_args[@]}" "$@"
}
node_exec() { host_exec "$@"; }

make_host() {  # host
  local host=$1 addr veth
  addr=$(host_addr "$host")
  veth=$(veth_of "$host")
  install -d "$CLUSTER_DIR/hosts/$host"
  if [ ! -e "/run/netns/$host" ]; then
    log "creating host $host ($addr)"
    ip netns add "$host"
  fi
  if ! mountpoint -q "$CLUSTER_DIR/uts/$host"; then
    touch "$CLUSTER_DIR/uts/$host"
    unshare --uts="$CLUSTER_DIR/uts/$host" hostname "$host"
  fi
  # Its own /tmp, as a real node has (SLURM's PMIx and Open MPI keep per-node files there);
  # everything else is the machine's file system, shared like a cluster's home.
  if ! mountpoint -q "$CLUSTER_DIR/mnt/$host"; then
    install -d -m 1777 "$CLUSTER_DIR/hosts/$host/tmp"
    touch "$CLUSTER_DIR/mnt/$host"
    unshare --mount="$CLUSTER_DIR/mnt/$host" --propagation slave mount --bind "$CLUSTER_DIR/hosts/$host/tmp" /tmp
  fi
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$host"
    ip link set "$veth" master "$BRIDGE" up
  fi
  ip -n "$host" link set lo up
  ip -n "$host" addr replace "$addr/24" dev eth0
  ip -n "$host" link set eth0 up
}

# The task prolog prints `export KEY=VALUE` for each line of the host's environment file.
write_task_prolog() {
  cat >"$CLUSTER_DIR/task-prolog.sh" <<EOF
#!/bin/sh
# Written by scripts/cluster-local.sh: the host's environment file into every SLURM task.
f=$CLUSTER_DIR/hosts/\$(hostname)/environment
[ -s "\$f" ] && grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "\$f" | sed 's/^/export /'
exit 0
EOF
  chmod 0755 "$CLUSTER_DIR/task-prolog.sh"
}

# Placeholder device files for G fake GPUs per host (gres.conf needs a File= per GPU).
write_fake_gpus() {  # gpus hosts...
  local gpus=$1 host
  shift
  GRES_LINES=""
  NODE_GRES=""
  [ "$gpus" -gt 0 ] || return 0
  NODE_GRES=" Gres=gpu:$gpus"
  GRES_LINES="# Written by scripts/cluster-local.sh: fake GPUs (placeholder files), no device behind them."
  for host in "$@"; do
    install -d "$CLUSTER_DIR/dev/$host"
    # slurmd wants a device node: each is /dev/null's (1,3), so opening one does nothing.
    for ((g = 0; g < gpus; g++)); do
      [ -c "$CLUSTER_DIR/dev/$host/nvidia$g" ] || mknod "$CLUSTER_DIR/dev/$host/nvidia$g" c 1 3
    done
    GRES_LINES+=$'\n'"NodeName=$host Name=gpu File=$CLUSTER_DIR/dev/$host/nvidia[0-$((gpus - 1))]"
  done
}

cluster_start() {
  local hosts=2 gpus=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --hosts) hosts=${2:?--hosts needs a number}; shift 2 ;;
      --gpus) gpus=${2:?--gpus needs a number}; shift 2 ;;
      *) die "start: unknown option '$1' (expected --hosts N, --gpus G)" ;;
    esac
  done
  [[ $hosts =~ ^[0-9]+$ ]] && [ "$hosts" -ge 1 ] && [ "$hosts" -le 16 ] || die "--hosts: found '$hosts', expected 1 to 16"
  [[ $gpus =~ ^[0-9]+$ ]] && [ "$gpus" -le 16 ] || die "--gpus: found '$gpus', expected 0 to 16"
  [ "$(id -u)" -eq 0 ] || die "must run as root (found uid $(id -u))"
  for cmd in ip nsenter unshare mountpoint; do
    command -v "$cmd" >/dev/null || die "$cmd not found (iproute2, util-linux)"
  done
  # A cluster of another size goes first: hosts are numbered from 1 and must match slurm.conf.
  local wanted=() h
  for ((h = 1; h <= hosts; h++)); do wanted+=("$PREFIX$h"); done
  if [ -n "$(existing_hosts)" ] && [ "$(existing_hosts | paste -sd ' ' -)" != "${wanted[*]}" ]; then
    log "hosts $(existing_hosts | paste -sd ' ' -) exist: stopping them first"
    cluster_stop
  fi

  install -d -m 0755 "$CLUSTER_DIR" "$CLUSTER_DIR/hosts"
  # The UTS namespaces are bind-mounted files; they need a private mount to live on.
  if ! mountpoint -q "$CLUSTER_DIR"; then
    mount --bind "$CLUSTER_DIR" "$CLUSTER_DIR"
    mount --make-private "$CLUSTER_DIR"
  fi
  install -d -m 0755 "$CLUSTER_DIR/uts" "$CLUSTER_DIR/mnt"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($SUBNET.1/24)"
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$SUBNET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for h in "${wanted[@]}"; do make_host "$h"; done
  printf '%s\n' "${wanted[@]/%/ slots=2}" >"$CLUSTER_DIR/hostfile"

  # SLURM in its N-node shape: the controller here on the bridge address.
  CTL_NAME=$(hostname -s)
  CTL_ADDR=$SUBNET.1
  NODES=("${wanted[@]}")
  NODE_ADDRS=()
  for h in "${wanted[@]}"; do NODE_ADDRS+=("$(host_addr "$h")"); done
  SLURMD_TIMEOUT=10  # a killed node is noticed in seconds, not minutes
  write_task_prolog
  write_fake_gpus "$gpus" "${wanted[@]}"
  EXTRA_CONF="TaskProlog=$CLUSTER_DIR/task-prolog.sh"
  [ "$gpus" -eq 0 ] || EXTRA_CONF+=$'\n'"GresTypes=gpu"
  slurm_start
  log "hosts: $(for h in "${wanted[@]}"; do printf '%s=%s ' "$h" "$(host_addr "$h")"; done)"
}

# Ends every process still inside a host's network namespace (ranks, orted, slurmstepd).
kill_host_processes() {  # host
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  log "ending processes left on $1: $(echo $pids)"
  kill -TERM $pids 2>/dev/null || true
  wait_until 5 eval '[ -z "$(ip netns pids '"$1"' 2>/dev/null)" ]' && return 0
  kill -KILL $(ip netns pids "$1" 2>/dev/null) 2>/dev/null || true
  wait_until 5 eval '[ -z "$(ip netns pids '"$1"' 2>/dev/null)" ]' || log "processes still on $1: $(ip netns pids "$1" | paste -sd ' ' -)"
}

cluster_stop() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (found uid $(id -u))"
  local h
  for h in $(existing_hosts); do ip link set "$(veth_of "$h")" up 2>/dev/null || true; done  # a cut cable would stall scancel
  # Our SLURM only (a one-node shape started by slurm-local.sh is left alone).
  if [ -f "$CONF" ] && grep -q "^NodeName=$PREFIX[0-9]" "$CONF"; then
    slurm_stop
    rm -f "$CONF" "$GRES_CONF"
    rm -rf "$LOCAL_DIR"
  fi
  for h in $(existing_hosts); do
    kill_host_processes "$h"
    ip link del "$(veth_of "$h")" 2>/dev/null || true
    ip netns del "$h"
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  if mountpoint -q "$CLUSTER_DIR"; then
    for h in "$CLUSTER_DIR"/uts/* "$CLUSTER_DIR"/mnt/*; do
      ! mountpoint -q "$h" || umount "$h"
    done
    umount "$CLUSTER_DIR"
  fi
  rm -rf "$CLUSTER_DIR"
  log "stopped"
}

cluster_status() {
  local hosts h rc=0
  hosts=$(existing_hosts)
  if [ -z "$hosts" ]; then
    echo "hosts: none (cluster-local.sh start)"
    return 1
  fi
  for h in $hosts; do
    echo "host $h: $(host_addr "$h"), link $(cat "/sys/class/net/$(veth_of "$h")/operstate" 2>/dev/null || echo missing)"
  done
  NODES=($hosts)
  slurm_status || rc=1
  echo "ranks across hosts: greenfound launch --hosts $(echo $hosts | sed 's/ /:2,/g'):2 --rsh-agent \"$SCRIPT_DIR/cluster-local.sh exec\" --network $SUBNET.0/24 -- ..."
  return $rc
}

case "${1:-}" in
  start) shift; cluster_start "$@" ;;
  stop) cluster_stop ;;
  status) cluster_status ;;
  exec)
    [ $# -ge 3 ] || die "usage: $0 exec HOST CMD..."
    host=$2
    shift 2
    # Like ssh: the words are joined into one command line for the host's shell (Open MPI
    # passes the daemon's command line quoted for a remote shell).
    host_exec "$host" /bin/sh -c "$*" ;;
  link)
    [ $# -eq 3 ] && [[ $3 =~ ^(up|down)$ ]] || die "usage: $0 link HOST up|down"
    ip link set "$(veth_of "$2")" "$3" ;;
  *) echo "usage: $0 start [--hosts N] [--gpus G] | stop | status | exec HOST CMD... | link HOST up|down" >&2; exit 2 ;;
esac
