#!/usr/bin/env bash
# Real OpenSSH "hosts" on this machine for deployctl's SSH provider tests: one network namespace per host, joined
# by a Linux bridge on the root side, each running its own sshd (foreground mode) with its own host key and its
# own hostname (UTS namespace).
#
# Usage:
#   ssh-hosts.sh up N [--dir DIR] [--prefix P] [--subnet 10.231.X]
#   ssh-hosts.sh down [--dir DIR] [--prefix P]
#   ssh-hosts.sh status [--dir DIR]
#   ssh-hosts.sh selftest
#
# Defaults: DIR=/tmp/deployctl-testbed, P=dctl, subnet 10.231.7. Host i (1..N) is network namespace P-hI with
# address SUBNET.(10+i) on eth0; the bridge Pbr0 holds SUBNET.1 on the root side. See README.md next to this file.
#
# Exit codes: 0 success; 1 failure (a check failed, a host is down, set-up failed); 2 usage error.
set -euo pipefail

readonly DEFAULT_DIR=/tmp/deployctl-testbed
readonly DEFAULT_PREFIX=dctl
readonly DEFAULT_SUBNET=10.231.7
readonly SSHD=/usr/sbin/sshd
readonly MARKER=.deployctl-testbed
readonly READY_TIMEOUT=${TESTBED_READY_TIMEOUT:-10}    # seconds for all sshd to accept TCP connections
readonly STOP_TIMEOUT=${TESTBED_STOP_TIMEOUT:-3}       # seconds between SIGTERM and SIGKILL
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
readonly SELF

log() { printf 'ssh-hosts: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage_error() {
    log "$*"
    sed -n '6,10p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        die "'$1' must run as root (it creates network namespaces, veth pairs, a bridge and sshd processes)"
    fi
}

# Monotonic-enough clock in milliseconds (bash 5 has EPOCHREALTIME).
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s' "$((t / 1000))"
}

# ---------------------------------------------------------------------------------------------------------------
# Argument checks

check_dir() {
    local d=$1
    [[ $d == /* ]] || d=$PWD/$d
    d=${d%/}
    # Paths end up unquoted in sshd_config, JSON and YAML: keep them to a safe character set.
    [[ $d =~ ^/[A-Za-z0-9._/+-]+$ ]] || usage_error "--dir '$1': use an absolute path of letters, digits and . _ / + -"
    [[ $d != / && ! $d =~ (^|/)\.\.?(/|$) ]] || usage_error "--dir '$1' is not acceptable"
    printf '%s' "$d"
}

check_prefix() {
    # Interface names are limited to 15 characters: P + "v" + up to 3 digits, and P + "br0".
    [[ $1 =~ ^[a-z][a-z0-9]{0,9}$ ]] || usage_error "--prefix '$1': 1-10 characters, lowercase letters and digits, starting with a letter"
}

check_subnet() {
    local s=$1
    [[ $s =~ ^10\.231\.([0-9]{1,3})$ ]] || usage_error "--subnet '$s': must be 10.231.X (the test bed stays inside 10.231.0.0/16)"
    ((10#${BASH_REMATCH[1]} <= 255)) || usage_error "--subnet '$s': X must be 0..255"
    printf '10.231.%d' "$((10#${BASH_REMATCH[1]}))"
}

# ---------------------------------------------------------------------------------------------------------------
# Processes

# Prints the NUL-separated command line of PID with spaces, or nothing if the process is gone.
cmdline_of() {
    local pid=$1
    [[ -r /proc/$pid/cmdline ]] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true
}

is_alive() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A zombie still answers kill -0; treat it as dead.
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)
    [[ $state != Z ]]
}

# Sends SIGTERM to the given PIDs, waits up to STOP_TIMEOUT seconds, then SIGKILLs what is left.
stop_pids() {
    local pid left deadline
    (($# > 0)) || return 0
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
    while :; do
        left=()
        for pid in "$@"; do is_alive "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && return 0
        (($(now_ms) >= deadline)) && break
        sleep 0.1
    done
    log "SIGKILL to ${left[*]} (still running ${STOP_TIMEOUT}s after SIGTERM)"
    for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    deadline=$(($(now_ms) + 2000))
    while (($(now_ms) < deadline)); do
        left=()
        for pid in "$@"; do is_alive "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && return 0
        sleep 0.1
    done
    log "warning: processes ${left[*]} did not exit"
}

# PIDs of sshd processes whose command line names a config file under DIR.
sshd_pids_under() {
    local dir=$1 p cmd
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        cmd=$(cmdline_of "$p")
        [[ $cmd == *sshd* && $cmd == *" -f $dir/"* ]] && printf '%s\n' "$p"
    done
    return 0
}

# ---------------------------------------------------------------------------------------------------------------
# Network objects of one prefix

netns_of_prefix() {
    local p=$1
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${p}-h[0-9]+$" || true
}

veths_of_prefix() {
    local p=$1
    ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${p}v[0-9]+$" || true
}

# Collapses whitespace (newlines included) to single spaces.
oneline() {
    local s
    s=$(tr -s '[:space:]' ' ' <<<"$1")
    s=${s# }
    printf '%s' "${s% }"
}

link_exists() { ip link show "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------------------------
# up

ensure_packages() {
    local missing=()
    [[ -x $SSHD ]] || missing+=(openssh-server)
    command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    command -v ip >/dev/null || missing+=(iproute2)
    ((${#missing[@]} == 0)) && return 0
    require_root "installing ${missing[*]}"
    command -v apt-get >/dev/null || die "${missing[*]} missing and apt-get not available: install them by hand"
    log "installing ${missing[*]} (apt-get)"
    local apt=(apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}")
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update >&2 ||
            die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    fi
    [[ -x $SSHD ]] || die "$SSHD still missing after installing openssh-server"
}

write_sshd_config() {
    local cfg=$1 addr=$2 hostkey=$3 pidfile=$4 authkeys=$5
    cat >"$cfg" <<EOF
# deployctl test bed: generated by ssh-hosts.sh, removed by 'ssh-hosts.sh down'
ListenAddress $addr
Port 22
AddressFamily inet
HostKey $hostkey
PidFile $pidfile
AuthorizedKeysFile $authkeys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 64:30:128
MaxSessions 32
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
}

# Leaves the bed as it is (for debugging) if TESTBED_KEEP_ON_FAILURE=1; otherwise prints sshd logs and tears down.
UP_DIR='' UP_PREFIX='' UP_DONE=0
on_up_exit() {
    local rc=$? f
    ((UP_DONE)) && return 0
    [[ -n $UP_DIR ]] || return 0
    log "'up' failed (exit $rc)"
    for f in "$UP_DIR"/h*.log; do
        [[ -s $f ]] || continue
        log "--- last lines of $f"
        tail -n 15 "$f" >&2 || true
    done
    if [[ ${TESTBED_KEEP_ON_FAILURE:-0} == 1 ]]; then
        log "TESTBED_KEEP_ON_FAILURE=1: leaving the partial bed; remove it with: $SELF down --dir $UP_DIR --prefix $UP_PREFIX"
    else
        log "removing the partial bed"
        teardown "$UP_DIR" "$UP_PREFIX" || true
    fi
}

cmd_up() {
    local n='' dir=$DEFAULT_DIR prefix=$DEFAULT_PREFIX subnet=$DEFAULT_SUBNET
    while (($#)); do
        case $1 in
            --dir) (($# >= 2)) || usage_error "--dir needs a value"; dir=$2; shift 2 ;;
            --prefix) (($# >= 2)) || usage_error "--prefix needs a value"; prefix=$2; shift 2 ;;
            --subnet) (($# >= 2)) || usage_error "--subnet needs a value"; subnet=$2; shift 2 ;;
            -*) usage_error "up: unknown option '$1'" ;;
            *) [[ -z $n ]] || usage_error "up: unexpected argument '$1'"; n=$1; shift ;;
        esac
    done
    [[ $n =~ ^[1-9][0-9]*$ ]] || usage_error "up: N must be a positive integer (got '${n}')"
    ((n <= 200)) || usage_error "up: at most 200 hosts"
    dir=$(check_dir "$dir")
    check_prefix "$prefix"
    subnet=$(check_subnet "$subnet")
    local t0
    t0=$(now_ms)

    require_root up
    ensure_packages
    command -v unshare >/dev/null || die "unshare (util-linux) is missing"
    command -v timeout >/dev/null || die "timeout (coreutils) is missing"
    command -v setsid >/dev/null || die "setsid (util-linux) is missing"

    # Refuse to clobber anything that exists already.
    if [[ -e $dir/$MARKER ]]; then
        die "a test bed already exists in $dir: run '$SELF down --dir $dir' first"
    fi
    if [[ -e $dir && ! -d $dir ]]; then
        die "$dir exists and is not a directory"
    fi
    if [[ -d $dir && -n $(ls -A "$dir") ]]; then
        die "$dir exists and is not empty (and is not a test-bed directory): choose another --dir"
    fi
    local existing
    existing=$(netns_of_prefix "$prefix"; veths_of_prefix "$prefix")
    link_exists "${prefix}br0" && existing+=" ${prefix}br0"
    if [[ -n ${existing//[[:space:]]/} ]]; then
        die "network objects with prefix '$prefix' exist already ($(oneline "$existing")): run '$SELF down --prefix $prefix [--dir DIR]' or use another --prefix"
    fi
    if ip -o -4 addr show 2>/dev/null | grep -q " inet ${subnet//./\\.}\."; then
        die "subnet $subnet.0/24 is already in use on this machine: use another --subnet 10.231.X"
    fi

    # From here on, a failure tears down what was built.
    UP_DIR=$dir UP_PREFIX=$prefix
    trap on_up_exit EXIT
    set -E
    trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR
    mkdir -p "$dir"
    chmod 700 "$dir"
    : >"$dir/$MARKER"
    printf 'prefix=%s\nsubnet=%s\nn=%s\n' "$prefix" "$subnet" "$n" >"$dir/state.partial"
    mkdir -p /run/sshd
    chmod 755 /run/sshd

    # Client key (ed25519: libssh2 1.10 signs ssh-rsa with SHA-1 only, which OpenSSH 9.2 refuses).
    ssh-keygen -q -t ed25519 -N '' -C "deployctl-testbed-client" -f "$dir/id_ed25519" >/dev/null </dev/null
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    chmod 600 "$dir/id_ed25519" "$dir/authorized_keys"

    # Hostnames: a UTS namespace per host when the kernel (or gVisor) allows it.
    local use_uts=1
    if ! unshare --uts -- true 2>/dev/null; then
        use_uts=0
        log "warning: 'unshare --uts' does not work here; hosts will report this machine's hostname"
    fi

    # Bridge on the root side.
    local br=${prefix}br0
    ip link add "$br" type bridge
    ip addr add "$subnet.1/24" dev "$br"
    ip link set "$br" up

    local i ns veth addr hn cfg pid
    local -a pids=()
    for ((i = 1; i <= n; i++)); do
        ns=$prefix-h$i veth=${prefix}v$i addr=$subnet.$((10 + i))
        ip netns add "$ns"
        # Create the peer directly inside the namespace under a temporary name, then rename it eth0 there (the
        # root namespace usually has an eth0 of its own).
        ip link add "$veth" type veth peer name "${prefix}p$i" netns "$ns"
        ip link set "$veth" master "$br"
        ip link set "$veth" up
        ip -n "$ns" link set "${prefix}p$i" name eth0
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add default via "$subnet.1"

        ssh-keygen -q -t ed25519 -N '' -C "$ns" -f "$dir/h$i.host_ed25519" >/dev/null </dev/null
        chmod 600 "$dir/h$i.host_ed25519"
        cfg=$dir/h$i.sshd_config
        write_sshd_config "$cfg" "$addr" "$dir/h$i.host_ed25519" "$dir/h$i.sshd.pid" "$dir/authorized_keys"
        "$SSHD" -t -f "$cfg" || die "sshd rejected its configuration $cfg"

        if ((use_uts)); then
            hn=$ns
            # ip netns exec -> setsid -> unshare -> sh -> exec sshd, each exec'ing the next without a fork, so $! is
            # sshd's own PID (checked below). setsid: own session, no controlling terminal, so a Ctrl-C or hang-up
            # of the terminal that ran 'up' does not reach the daemons.
            # shellcheck disable=SC2016  # $1..$4 are expanded by the inner sh
            ip netns exec "$ns" setsid unshare --uts -- /bin/sh -c 'hostname "$1" && exec "$2" -D -f "$3" -E "$4"' \
                sh "$hn" "$SSHD" "$cfg" "$dir/h$i.log" </dev/null >>"$dir/h$i.out" 2>&1 &
        else
            hn=$(hostname)
            ip netns exec "$ns" setsid "$SSHD" -D -f "$cfg" -E "$dir/h$i.log" </dev/null >>"$dir/h$i.out" 2>&1 &
        fi
        pid=$!
        printf '%s\n' "$pid" >"$dir/h$i.pid"
        printf '%s\n' "$hn" >"$dir/h$i.hostname"
        pids+=("$pid")
    done

    # Wait (bounded) until every sshd accepts TCP connections on port 22.
    local deadline pending
    deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
    pending=$(seq 1 "$n")
    while [[ -n $pending ]]; do
        local still=
        for i in $pending; do
            pid=${pids[i - 1]}
            is_alive "$pid" || die "sshd of host h$i (pid $pid) exited during start-up; see $dir/h$i.log and $dir/h$i.out"
            if ! timeout 1 bash -c "</dev/tcp/$subnet.$((10 + i))/22" 2>/dev/null; then
                still+=" $i"
            fi
        done
        pending=${still# }
        [[ -z $pending ]] && break
        if (($(now_ms) >= deadline)); then
            die "sshd of host number(s) $(oneline "$pending") not accepting connections after ${READY_TIMEOUT}s"
        fi
        sleep 0.1
    done
    # The PID we recorded must be the sshd itself (not a wrapper).
    for ((i = 1; i <= n; i++)); do
        pid=${pids[i - 1]}
        [[ $(cmdline_of "$pid") == *sshd*" -f $dir/h$i.sshd_config"* ]] ||
            die "recorded PID $pid of h$i is not its sshd ($(cmdline_of "$pid"))"
    done

    # known_hosts, hosts.json, providers.yaml, ssh_config.
    {
        for ((i = 1; i <= n; i++)); do
            printf '%s %s\n' "$subnet.$((10 + i))" "$(cut -d' ' -f1,2 "$dir/h$i.host_ed25519.pub")"
        done
    } >"$dir/known_hosts"

    {
        printf '{"hosts":['
        for ((i = 1; i <= n; i++)); do
            ((i > 1)) && printf ','
            printf '{"name":"h%d","address":"%s","port":22,"user":"root","key":"%s","known_hosts":"%s","hostname":"%s"}' \
                "$i" "$subnet.$((10 + i))" "$dir/id_ed25519" "$dir/known_hosts" "$(cat "$dir/h$i.hostname")"
        done
        printf ']}\n'
    } >"$dir/hosts.json"

    {
        printf 'providers:\n  testbed:\n    type: ssh\n    known_hosts: %s\n    state_dir: %s\n    hosts:\n' "$dir/known_hosts" "$dir/remote"
        for ((i = 1; i <= n; i++)); do
            local labels='cpus: 2, mem: 4 GB'
            ((n >= 3 && i == n)) && labels+=', gpus: 1'
            printf '      - name: h%d\n        address: %s\n        port: 22\n        user: root\n        key: %s\n        labels: { %s }\n' \
                "$i" "$subnet.$((10 + i))" "$dir/id_ed25519" "$labels"
        done
    } >"$dir/providers.yaml"

    {
        printf '# ssh -F %s h1\n' "$dir/ssh_config"
        for ((i = 1; i <= n; i++)); do
            printf 'Host h%d %s\n  HostName %s\n  Port 22\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n\n' \
                "$i" "$prefix-h$i" "$subnet.$((10 + i))" "$dir/id_ed25519" "$dir/known_hosts"
        done
    } >"$dir/ssh_config"

    mv "$dir/state.partial" "$dir/state"
    UP_DONE=1
    trap - EXIT ERR
    local t1
    t1=$(now_ms)
    log "up: $n host(s) on $subnet.0/24 (bridge $br) in $((t1 - t0)) ms; files in $dir"
    for ((i = 1; i <= n; i++)); do
        printf 'h%d\t%s\t%s\tpid %s\n' "$i" "$subnet.$((10 + i))" "$(cat "$dir/h$i.hostname")" "${pids[i - 1]}"
    done
}

# ---------------------------------------------------------------------------------------------------------------
# down

state_get() {
    local dir=$1 key=$2 f
    for f in "$dir/state" "$dir/state.partial"; do
        if [[ -r $f ]]; then
            sed -n "s/^$key=//p" "$f" | head -n 1
            return 0
        fi
    done
}

# teardown DIR PREFIX: stops the bed's processes, removes its network objects and DIR. Idempotent.
teardown() {
    local dir=$1 prefix=$2 f pid ns veth
    local -a pids=()

    # 1. sshd processes by their recorded PIDs (only if the PID still runs one of our sshd: PIDs get reused).
    for f in "$dir"/h*.pid; do
        [[ -r $f ]] || continue
        pid=$(head -n 1 "$f" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || continue
        [[ $(cmdline_of "$pid") == *" -f $dir/"* ]] && pids+=("$pid")
    done
    # 2. Any leftover sshd started with a config under DIR (e.g. from an 'up' that died before recording PIDs).
    while read -r pid; do
        [[ -n $pid ]] && [[ " ${pids[*]} " != *" $pid "* ]] && pids+=("$pid")
    done < <(sshd_pids_under "$dir")
    stop_pids "${pids[@]}"

    # 3. Whatever still runs inside the bed's namespaces (ssh sessions outliving their listener, etc.).
    pids=()
    for ns in $(netns_of_prefix "$prefix"); do
        while read -r pid; do
            [[ $pid =~ ^[0-9]+$ ]] && pids+=("$pid")
        done < <(ip netns pids "$ns" 2>/dev/null || true)
    done
    stop_pids "${pids[@]}"

    # 4. Network objects. Deleting the root side of a veth removes its peer; gVisor destroys a deleted namespace
    #    (and the veth ends inside it) asynchronously, so delete the veths explicitly and wait for them to vanish.
    for veth in $(veths_of_prefix "$prefix"); do
        ip link del "$veth" 2>/dev/null || true
    done
    for ns in $(netns_of_prefix "$prefix"); do
        ip netns del "$ns" 2>/dev/null || log "warning: could not delete namespace $ns"
    done
    if link_exists "${prefix}br0"; then
        ip link del "${prefix}br0" 2>/dev/null || log "warning: could not delete bridge ${prefix}br0"
    fi
    local deadline left
    deadline=$(($(now_ms) + 5000))
    while :; do
        left=$(netns_of_prefix "$prefix"; veths_of_prefix "$prefix")
        link_exists "${prefix}br0" && left+=" ${prefix}br0"
        [[ -z ${left//[[:space:]]/} ]] && break
        if (($(now_ms) >= deadline)); then
            log "warning: still present after 5 s: $(oneline "$left")"
            return 1
        fi
        sleep 0.1
    done

    # 5. The directory, only if it is ours (or empty).
    if [[ -d $dir ]]; then
        if [[ -e $dir/$MARKER || -z $(ls -A "$dir") ]]; then
            rm -rf -- "$dir"
        else
            log "warning: $dir is not a test-bed directory (no $MARKER): left in place"
        fi
    fi
    return 0
}

cmd_down() {
    local dir=$DEFAULT_DIR prefix=
    while (($#)); do
        case $1 in
            --dir) (($# >= 2)) || usage_error "--dir needs a value"; dir=$2; shift 2 ;;
            --prefix) (($# >= 2)) || usage_error "--prefix needs a value"; prefix=$2; shift 2 ;;
            *) usage_error "down: unknown argument '$1'" ;;
        esac
    done
    dir=$(check_dir "$dir")
    # The prefix recorded by 'up' in DIR wins over the default; an explicit --prefix wins over both.
    local recorded
    recorded=$(state_get "$dir" prefix)
    if [[ -n $prefix && -n $recorded && $prefix != "$recorded" ]]; then
        die "$dir belongs to a test bed with prefix '$recorded', not '$prefix': to remove only the network objects of '$prefix', pass a --dir that does not exist"
    fi
    [[ -n $prefix ]] || prefix=$recorded
    [[ -n $prefix ]] || prefix=$DEFAULT_PREFIX
    check_prefix "$prefix"
    require_root down
    local t0 what
    t0=$(now_ms)
    what=$(netns_of_prefix "$prefix"; veths_of_prefix "$prefix"; sshd_pids_under "$dir")
    link_exists "${prefix}br0" && what+=" ${prefix}br0"
    [[ -e $dir ]] && what+=" $dir"
    teardown "$dir" "$prefix" || die "down: some network objects of prefix '$prefix' could not be removed"
    if [[ -n ${what//[[:space:]]/} ]]; then
        log "down: prefix $prefix, $dir: removed in $(($(now_ms) - t0)) ms"
    else
        log "down: prefix $prefix, $dir: nothing to remove"
    fi
}

# ---------------------------------------------------------------------------------------------------------------
# status

cmd_status() {
    local dir=$DEFAULT_DIR
    while (($#)); do
        case $1 in
            --dir) (($# >= 2)) || usage_error "--dir needs a value"; dir=$2; shift 2 ;;
            *) usage_error "status: unknown argument '$1'" ;;
        esac
    done
    dir=$(check_dir "$dir")
    if [[ ! -r $dir/state ]]; then
        if [[ -r $dir/state.partial ]]; then
            log "$dir holds a partial test bed (an 'up' failed or is running): '$SELF down --dir $dir' removes it"
        else
            log "no test bed in $dir"
        fi
        return 1
    fi
    local prefix subnet n i pid addr alive reach banner bad=0
    prefix=$(state_get "$dir" prefix) subnet=$(state_get "$dir" subnet) n=$(state_get "$dir" n)
    printf 'test bed %s: prefix %s, bridge %sbr0 (%s.1), %s host(s)\n' "$dir" "$prefix" "$prefix" "$subnet" "$n"
    printf '%-4s %-14s %-16s %-8s %-6s %s\n' HOST ADDRESS HOSTNAME PID SSHD REACHABLE
    for ((i = 1; i <= n; i++)); do
        addr=$subnet.$((10 + i))
        pid=$(cat "$dir/h$i.pid" 2>/dev/null || echo '?')
        alive=dead
        if is_alive "$pid" && [[ $(cmdline_of "$pid") == *" -f $dir/h$i.sshd_config"* ]]; then alive=alive; fi
        # Read the SSH banner: proves something speaks SSH on the address, not only that the port is open.
        # shellcheck disable=SC2016  # $1 and $l are expanded by the inner bash
        banner=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/22" && IFS= read -r -t 2 l <&3 && printf "%s" "${l%$'"'\r'"'}"' \
            sh "$addr" 2>/dev/null || true)
        if [[ $banner == SSH-2.0-* ]]; then reach="yes ($banner)"; else reach=no; fi
        [[ $alive == alive && $reach == yes* ]] || bad=1
        printf '%-4s %-14s %-16s %-8s %-6s %s\n' "h$i" "$addr" "$(cat "$dir/h$i.hostname" 2>/dev/null || echo '?')" \
            "$pid" "$alive" "$reach"
    done
    return "$bad"
}

# ---------------------------------------------------------------------------------------------------------------
# selftest

ST_PASS=0 ST_FAIL=0
st_check() {
    # st_check "description" command...: runs the command, prints PASS/FAIL.
    local desc=$1
    shift
    if "$@"; then
        ST_PASS=$((ST_PASS + 1))
        printf 'PASS  %s\n' "$desc"
    else
        ST_FAIL=$((ST_FAIL + 1))
        printf 'FAIL  %s\n' "$desc"
    fi
}

ST_DIR='' ST_PREFIX=dctlst ST_SUBNET=10.231.8 ST_DOWN_DONE=0
st_ssh() {
    # st_ssh KNOWN_HOSTS KEY ADDR CMD...: the real OpenSSH client, strict host-key checking, no user config.
    local kh=$1 key=$2 addr=$3
    shift 3
    ssh -F none -i "$key" -o IdentitiesOnly=yes -o UserKnownHostsFile="$kh" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5 "root@$addr" "$@"
}

st_hostname_is() {
    local addr=$1 want=$2 got
    got=$(st_ssh "$ST_DIR/known_hosts" "$ST_DIR/id_ed25519" "$addr" hostname 2>"$ST_DIR/st.err") || {
        sed 's/^/      ssh: /' "$ST_DIR/st.err"
        return 1
    }
    printf '      %s -> %s\n' "$addr" "$got"
    [[ $got == "$want" ]]
}

st_mismatch_refused() {
    # known_hosts that pins h2's host key to h1's address: ssh to h1 must fail on host-key verification.
    printf '%s %s\n' "$ST_SUBNET.11" "$(cut -d' ' -f1,2 "$ST_DIR/h2.host_ed25519.pub")" >"$ST_DIR/st_wrong_known_hosts"
    if st_ssh "$ST_DIR/st_wrong_known_hosts" "$ST_DIR/id_ed25519" "$ST_SUBNET.11" hostname >/dev/null 2>"$ST_DIR/st.err"; then
        echo "      ssh succeeded despite the wrong host key"
        return 1
    fi
    grep -q 'Host key verification failed' "$ST_DIR/st.err" || {
        sed 's/^/      ssh: /' "$ST_DIR/st.err"
        return 1
    }
    echo "      refused: $(grep -m1 -E 'Host key for .* has changed|Host key verification failed' "$ST_DIR/st.err")"
}

st_unknown_key_refused() {
    # A client key that is not in authorized_keys must be refused.
    ssh-keygen -q -t ed25519 -N '' -f "$ST_DIR/st_other_key" </dev/null >/dev/null
    if st_ssh "$ST_DIR/known_hosts" "$ST_DIR/st_other_key" "$ST_SUBNET.11" true >/dev/null 2>"$ST_DIR/st.err"; then
        echo "      login succeeded with a key that is not authorized"
        return 1
    fi
    grep -q 'Permission denied' "$ST_DIR/st.err" || {
        sed 's/^/      ssh: /' "$ST_DIR/st.err"
        return 1
    }
    echo "      refused: $(grep -m1 'Permission denied' "$ST_DIR/st.err")"
}

st_files_ok() {
    local f ok=0
    for f in id_ed25519 id_ed25519.pub known_hosts hosts.json providers.yaml; do
        [[ -s $ST_DIR/$f ]] || { echo "      missing $f"; ok=1; }
    done
    [[ $(wc -l <"$ST_DIR/known_hosts") -eq 3 ]] || { echo "      known_hosts should have 3 lines"; ok=1; }
    grep -q "\"address\":\"$ST_SUBNET.13\"" "$ST_DIR/hosts.json" || { echo "      hosts.json lacks h3"; ok=1; }
    grep -q '"hostname":"dctlst-h3"' "$ST_DIR/hosts.json" || { echo "      hosts.json lacks h3's hostname"; ok=1; }
    [[ $(grep -c 'gpus: 1' "$ST_DIR/providers.yaml") -eq 1 ]] || { echo "      providers.yaml: expected one gpus label"; ok=1; }
    if command -v python3 >/dev/null; then
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["hosts"])==3' "$ST_DIR/hosts.json" ||
            { echo "      hosts.json is not valid JSON with 3 hosts"; ok=1; }
        # PyYAML is optional; parse providers.yaml if it is importable.
        if python3 -c 'import yaml' 2>/dev/null; then
            python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))["providers"]["testbed"]
assert d["type"] == "ssh" and len(d["hosts"]) == 3, d
assert d["hosts"][2]["labels"] == {"cpus": 2, "mem": "4 GB", "gpus": 1}, d["hosts"][2]
' "$ST_DIR/providers.yaml" || { echo "      providers.yaml does not parse as expected"; ok=1; }
        fi
    fi
    return "$ok"
}

# libssh2 (the library deployctl's SSH provider links) through curl's sftp:// support, if curl has it: logs in with
# the ed25519 client key and pins the host key by its SHA-256 fingerprint; a wrong pin must be refused.
st_libssh2_available() {
    command -v curl >/dev/null && command -v openssl >/dev/null && curl -V 2>/dev/null | grep -q 'libssh2/'
}
st_host_sha256() {
    cut -d' ' -f2 "$1" | base64 -d | openssl dgst -sha256 -binary | base64
}
st_libssh2() {
    local good bad
    good=$(st_host_sha256 "$ST_DIR/h1.host_ed25519.pub")
    bad=$(st_host_sha256 "$ST_DIR/h2.host_ed25519.pub")
    curl -sS --max-time 10 -u root: --key "$ST_DIR/id_ed25519" --pubkey "$ST_DIR/id_ed25519.pub" \
        --hostpubsha256 "$good" "sftp://$ST_SUBNET.11$ST_DIR/hosts.json" -o "$ST_DIR/st_sftp.json" 2>"$ST_DIR/st.err" || {
        sed 's/^/      curl: /' "$ST_DIR/st.err"
        return 1
    }
    cmp -s "$ST_DIR/st_sftp.json" "$ST_DIR/hosts.json" || { echo "      sftp download differs"; return 1; }
    if curl -sS --max-time 10 -u root: --key "$ST_DIR/id_ed25519" --pubkey "$ST_DIR/id_ed25519.pub" \
        --hostpubsha256 "$bad" "sftp://$ST_SUBNET.11$ST_DIR/hosts.json" -o /dev/null 2>"$ST_DIR/st.err"; then
        echo "      libssh2 accepted a wrong host-key fingerprint"
        return 1
    fi
    echo "      $(curl -V | head -n 1 | grep -o 'libssh2/[0-9.]*'): sftp download OK, wrong pin refused"
}

# Runs "$SELF" ARGS... with its stdout and stderr indented under the check line.
st_self() {
    "$SELF" "$@" 2>&1 | sed 's/^/      /'
}

st_tcp_from() {
    local ns=$1 addr=$2
    ip netns exec "$ns" timeout 3 bash -c "</dev/tcp/$addr/22"
}

st_nothing_left() {
    local ok=0 leftovers
    leftovers=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${ST_PREFIX}-" || true)
    [[ -z $leftovers ]] || { echo "      namespaces left: $(oneline "$leftovers")"; ok=1; }
    if link_exists "${ST_PREFIX}br0"; then echo "      bridge ${ST_PREFIX}br0 left"; ok=1; fi
    leftovers=$(veths_of_prefix "$ST_PREFIX")
    [[ -z $leftovers ]] || { echo "      veths left: $(oneline "$leftovers")"; ok=1; }
    leftovers=$(
        for p in /proc/[0-9]*; do
            c=$(cmdline_of "${p#/proc/}")
            [[ $c == *sshd* && $c == *"$ST_DIR"* ]] && printf '%s ' "${p#/proc/}"
        done
        true
    )
    [[ -z $leftovers ]] || { echo "      sshd processes left: $leftovers"; ok=1; }
    [[ ! -e $ST_DIR ]] || { echo "      $ST_DIR still exists"; ok=1; }
    return "$ok"
}

st_cleanup() {
    ((ST_DOWN_DONE)) && return 0
    [[ -n $ST_DIR ]] || return 0
    "$SELF" down --dir "$ST_DIR" --prefix "$ST_PREFIX" >/dev/null 2>&1 || true
}

cmd_selftest() {
    (($# == 0)) || usage_error "selftest takes no arguments"
    require_root selftest
    command -v flock >/dev/null || die "flock (util-linux) is missing"
    # One selftest at a time (they share prefix and subnet): lock this script file itself, so no lock file is left.
    local leftovers old
    exec 9<"$SELF"
    # Wait a little: the children of a selftest that was just killed may hold the descriptor for a moment.
    flock -w 10 9 || die "another selftest is running (it holds a lock on $SELF)"
    # Holding the lock, any dctlst-* object is a leftover of a selftest that was killed (SIGKILL skips its trap):
    # remove it, with its directory.
    leftovers=$(netns_of_prefix "$ST_PREFIX"; veths_of_prefix "$ST_PREFIX")
    link_exists "${ST_PREFIX}br0" && leftovers+=" ${ST_PREFIX}br0"
    for old in /tmp/dctl-selftest.*; do
        [[ -e $old/$MARKER ]] && leftovers+=" $old"
    done
    if [[ -n ${leftovers//[[:space:]]/} ]]; then
        echo "selftest: removing leftovers of an earlier selftest: $(oneline "$leftovers")"
        for old in /tmp/dctl-selftest.*; do
            [[ -e $old/$MARKER ]] && st_self down --dir "$old" --prefix "$ST_PREFIX"
        done
        st_self down --dir /tmp/dctl-selftest.leftovers --prefix "$ST_PREFIX"
    fi
    ST_DIR=$(mktemp -d /tmp/dctl-selftest.XXXXXX)
    trap st_cleanup EXIT
    trap 'exit 130' INT TERM
    local t0 t1 i addr out

    echo "selftest: dir $ST_DIR, prefix $ST_PREFIX, subnet $ST_SUBNET.0/24"
    t0=$(now_ms)
    if out=$("$SELF" up 3 --dir "$ST_DIR" --prefix "$ST_PREFIX" --subnet "$ST_SUBNET" 2>&1); then
        t1=$(now_ms)
        st_check "up 3 ($((t1 - t0)) ms)" true
    else
        st_check "up 3" false
    fi
    printf '%s\n' "$out" | sed 's/^/      /'

    if [[ -r $ST_DIR/state ]]; then
        st_check "files: keys, known_hosts, hosts.json, providers.yaml" st_files_ok
        st_check "status: every sshd alive and answering with an SSH banner" st_self status --dir "$ST_DIR"
        for i in 1 2 3; do
            addr=$ST_SUBNET.$((10 + i))
            t0=$(now_ms)
            if st_hostname_is "$addr" "$ST_PREFIX-h$i"; then
                st_check "ssh root@$addr hostname = $ST_PREFIX-h$i ($(($(now_ms) - t0)) ms)" true
            else
                st_check "ssh root@$addr hostname = $ST_PREFIX-h$i" false
            fi
        done
        st_check "host key mismatch refused (h2's key pinned for h1's address)" st_mismatch_refused
        st_check "unauthorized client key refused" st_unknown_key_refused
        if st_libssh2_available; then
            st_check "libssh2 (curl sftp://) with the ed25519 key and a pinned host key" st_libssh2
        else
            echo "SKIP  libssh2 check (curl without libssh2, or no openssl)"
        fi
        st_check "h1 reaches h2:22 over the bridge (TCP)" st_tcp_from "$ST_PREFIX-h1" "$ST_SUBNET.12"
        st_check "h3 reaches h1:22 over the bridge (TCP)" st_tcp_from "$ST_PREFIX-h3" "$ST_SUBNET.11"
        st_check "ssh from inside h1 to h2 prints $ST_PREFIX-h2" \
            ip netns exec "$ST_PREFIX-h1" bash -c "$(declare -f st_ssh); [[ \$(st_ssh '$ST_DIR/known_hosts' '$ST_DIR/id_ed25519' '$ST_SUBNET.12' hostname) == '$ST_PREFIX-h2' ]]"
    fi

    t0=$(now_ms)
    if st_self down --dir "$ST_DIR" --prefix "$ST_PREFIX"; then
        st_check "down ($(($(now_ms) - t0)) ms)" true
    else
        st_check "down" false
    fi
    ST_DOWN_DONE=1
    st_check "nothing left: no $ST_PREFIX-* namespace, no ${ST_PREFIX}br0/veths, no sshd naming $ST_DIR, dir gone" \
        st_nothing_left
    st_check "down again (idempotent)" st_self down --dir "$ST_DIR" --prefix "$ST_PREFIX"

    printf '%d passed, %d failed\n' "$ST_PASS" "$ST_FAIL"
    ((ST_FAIL == 0))
}

# ---------------------------------------------------------------------------------------------------------------

main() {
    (($# >= 1)) || usage_error "missing command"
    local cmd=$1
    shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        selftest) cmd_selftest "$@" ;;
        -h | --help | help) sed -n '2,16p' "$SELF" | sed 's/^# \{0,1\}//' ;;
        *) usage_error "unknown command '$cmd'" ;;
    esac
}

main "$@"
