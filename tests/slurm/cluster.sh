#!/usr/bin/env bash
# A real single-node SLURM cluster (munged + slurmctld + slurmd from Debian's packages) for tests.
#   tests/slurm/cluster.sh up DIR     start it; config, state, logs and pid files all live in DIR
#   tests/slurm/cluster.sh down DIR   stop what `up` started and remove its pid files
# Clients find the config through the link /etc/slurm/slurm.conf -> DIR/slurm.conf: SLURM_CONF
# alone is not enough, the executor plugin strips SLURM_* variables before its srun inside a job.
# An existing real /etc/slurm/slurm.conf is never replaced (`up` fails instead), and the ports are
# not SLURM's defaults. Needs root (no systemd to start the daemons for us).
set -euo pipefail

cmd=${1:?usage: cluster.sh up|down DIR}
dir=$(realpath -m "${2:?usage: cluster.sh up|down DIR}")
conf=$dir/slurm.conf
link=/etc/slurm/slurm.conf

stop_pidfile() {
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    # A stale pid file makes the next start (or a purge) fail.
    rm -f "$pidfile"
}

up() {
    # A link left by a run that died before `down` is replaced; a real config file never is.
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        echo "$link exists and is not a link from an earlier test cluster; not replacing it" >&2
        return 1
    fi
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$(dirname "$link")"
    local node mem
    # slurmd -C describes this machine (CPUs, sockets, cores); a NodeName line that claims more
    # than the hardware has leaves the node drained.
    node=$(slurmd -C | head -n 1)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<< "$node")
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/" <<< "$node")
    cat > "$conf" <<CONF
ClusterName=signpose-ci
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue this long; the executor plugin's squeue status checks need
# it to be at least 3x slurm-init-seconds-before-status-checks.
MinJobAge=300
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    ln -sfn "$conf" "$link"
    # A munged that answers is reused (and left running by `down`).
    if ! munge -n > /dev/null 2>&1; then
        install -d -o munge -g munge -m 0755 /run/munge
        runuser -u munge -- /usr/sbin/munged
        touch "$dir/munged.ours"
    fi
    /usr/sbin/slurmctld -f "$conf"
    /usr/sbin/slurmd -f "$conf"
    for _ in $(seq 150); do
        if sinfo -h -o %T 2> /dev/null | grep -qx idle; then
            return 0
        fi
        sleep 0.2
    done
    echo "SLURM node did not become idle; see $dir/log/" >&2
    sinfo >&2 || true
    return 1
}

down() {
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    if [ -f "$dir/munged.ours" ]; then
        stop_pidfile /run/munge/munged.pid
        rm -f "$dir/munged.ours"
    fi
    if [ "$(readlink "$link")" = "$conf" ]; then
        rm -f "$link"
    fi
}

case $cmd in
    up) up ;;
    down) down ;;
    *) echo "usage: cluster.sh up|down DIR" >&2; exit 2 ;;
esac
