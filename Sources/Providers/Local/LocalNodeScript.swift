/// The root-side work of the `local` provider, as one bash program: `bash -c SCRIPT local ACTION ARGS…`.
///
/// A node is a network namespace on a bridge (its own address), with a private mount and UTS namespace (its own
/// mounts and hostname) in which an sshd runs in the foreground; everything after creation goes through SSH like a
/// real host. A node's directory (`$LOCAL/nodes/NAME`) is written, tag first, before anything is made, so a crash
/// leaves something `list` finds and `delete` removes. Changes that allocate (addresses, the bridge, known_hosts)
/// hold `$LOCAL/lock`.
enum LocalNodeScript {
    static let text = #"""
        set -euo pipefail
        LOCAL=$1; BRIDGE=$2; SUBNET=$3; ACTION=$4; shift 4
        NODES=$LOCAL/nodes; VOLUMES=$LOCAL/volumes; ATTACHMENTS=$LOCAL/attachments
        mkdir -p "$NODES" "$VOLUMES" "$ATTACHMENTS"
        die() { echo "$*" >&2; exit 3; }
        # Kernel-wide names (network namespaces, interfaces) hash the provider's directory with the node's name: two
        # providers (a test's and a demo's, or a crashed run's leftovers) never meet, and a name found taken is ours.
        nsname() { printf 'dctl-%s' "$(printf '%s\0%s' "$(realpath -m "$LOCAL")" "$1" | sha256sum | cut -c1-12)"; }
        vethname() { printf 'dv%s' "$(printf '%s\0%s' "$(realpath -m "$LOCAL")" "$1" | sha256sum | cut -c1-10)"; }
        locked() { exec 9>"$LOCAL/lock"; flock 9; }

        node_alive() {
            local pid
            pid=$(cat "$NODES/$1/sshd.pid" 2>/dev/null) || return 1
            [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
        }

        create() {
            local name=$1 tag=$2 dir=$NODES/$1 ns veth address i pid
            case $(realpath -m "$LOCAL")/ in
                /etc/* | /var/* | /home/* | /run/*)
                    die "the local provider's directory $LOCAL is under /etc, /var, /home or /run, of which every node has its own copy; set DEPLOYCTL_HOME (or the provider's directory) elsewhere, e.g. under /root or /srv" ;;
            esac
            locked
            if [[ -f $dir/ready ]] && node_alive "$name"; then cat "$dir/address"; return; fi
            [[ -d $dir ]] && destroy_node "$name"
            mkdir -p "$dir"
            printf '%s\n' "$tag" > "$dir/tag"
            ns=$(nsname "$name"); veth=$(vethname "$name")
            for ((i = 10; i < 250; i++)); do
                grep -qxF "$SUBNET.$i" "$NODES"/*/address 2>/dev/null || { address=$SUBNET.$i; break; }
            done
            [[ -n ${address:-} ]] || die "no free address left in $SUBNET.0/24"
            printf '%s\n' "$address" > "$dir/address"
            # An address of a node deleted a moment ago: this machine's neighbour entry still names that node's
            # interface, and connections to the new node would time out until it expired.
            ip neigh flush to "$address" 2>/dev/null || true
            if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
                ip link add "$BRIDGE" type bridge
                ip addr add "$SUBNET.1/24" dev "$BRIDGE"
                ip link set "$BRIDGE" up
            fi
            flock -u 9  # the address is taken: the rest of the node is made in parallel with others
            # Left by a run of this provider that died between making them and writing the node's directory.
            [[ -e /run/netns/$ns ]] && { ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"; }
            ip link del "$veth" 2>/dev/null || true
            ip netns add "$ns"
            ip link add "$veth" type veth peer name eth0 netns "$ns"
            ip link set "$veth" master "$BRIDGE" up
            ip -n "$ns" addr add "$address/24" dev eth0
            ip -n "$ns" link set eth0 up
            ip -n "$ns" link set lo up
            ip -n "$ns" route add default via "$SUBNET.1"
            ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519" -C "$name"
            cat > "$dir/sshd_config" <<EOF
        ListenAddress $address
        Port 22
        HostKey $dir/host_ed25519
        PidFile none
        AuthorizedKeysFile $LOCAL/authorized_keys
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        AcceptEnv LANG LC_*
        Subsystem sftp internal-sftp
        EOF
            for d in etc var home; do mkdir -p "$dir/root/$d" "$dir/root/$d.work"; done
            # unshare and nsenter exec in place: the background job's pid is sshd's, and its mount namespace is the
            # node's (attach enters it). Inside it the node gets a host's own /etc, /var and /home (overlays on this
            # machine's, so installed packages show through and the node's changes stay in $dir/root) and an empty
            # /run; /usr, /sys (with its cgroup mounts, which slurmd needs), /tmp, /root and the rest are this
            # machine's. (`ip netns exec` would mount a fresh /sys without them.)
            setsid unshare --mount --uts --propagation private nsenter --net="/run/netns/$ns" /bin/sh -c "
                set -e
                hostname '$name'
                for d in etc var home; do
                    mount -t overlay overlay -o lowerdir=/\$d,upperdir='$dir/root/'\$d,workdir='$dir/root/'\$d.work /\$d
                done
                mount -t tmpfs -o mode=0755,size=256m,nosuid,nodev tmpfs /run
                mkdir -p /run/sshd /run/lock
                exec /usr/sbin/sshd -D -f '$dir/sshd_config' -E '$dir/sshd.log'" \
                </dev/null >"$dir/start.log" 2>&1 &
            pid=$!
            printf '%s\n' "$pid" > "$dir/sshd.pid"
            for ((i = 0; i < 100; i++)); do
                if ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$address/22" 2>/dev/null; then break; fi
                kill -0 "$pid" 2>/dev/null ||
                    die "node $name did not start: $(tail -n 3 "$dir/start.log" "$dir/sshd.log" 2>/dev/null)"
                sleep 0.05
            done
            (( i < 100 )) || die "sshd of $name did not accept connections within 5 s"
            locked
            sed -i "/^$address /d" "$LOCAL/known_hosts" 2>/dev/null || true
            printf '%s %s\n' "$address" "$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" >> "$LOCAL/known_hosts"
            flock -u 9
            touch "$dir/ready"
            echo "$address"
        }

        # Stops every process of the node (its network namespace holds them all), then removes the namespace, the
        # mount points it made, its known_hosts line and its directory.
        destroy_node() {
            local name=$1 dir=$NODES/$1 ns pids address legacy
            # Nodes made before the names took the directory into account hash the name alone.
            legacy=$(printf '%s' "$name" | sha256sum | cut -c1-12)
            for ns in "$(nsname "$name")" "dctl-$legacy"; do
                [[ -e /run/netns/$ns ]] || continue
                pids=$(ip netns pids "$ns" || true)
                [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
                for _ in $(seq 50); do [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break; sleep 0.05; done
                ip netns del "$ns"
            done
            # The namespace itself lives on while the kernel still holds sockets of its processes (a TCP connection
            # closing towards a peer already gone can take minutes); its interface pair must not.
            ip link del "$(vethname "$name")" 2>/dev/null || true
            ip link del "dv${legacy:0:10}" 2>/dev/null || true
            address=$(cat "$dir/address" 2>/dev/null || true)
            [[ -n $address ]] && { sed -i "/^$address /d" "$LOCAL/known_hosts" 2>/dev/null; ip neigh flush to "$address" 2>/dev/null; } || true
            rm -rf "$dir" "${LOCAL:?}/work/$name"
        }

        delete() {
            local name=$1
            locked
            [[ -d $NODES/$name ]] && destroy_node "$name"
            for f in "$ATTACHMENTS"/*; do
                [[ -f $f ]] && [[ $(cut -f4 "$f") == "$name" ]] && rm -f "$f"
            done
            # The last node gone: the bridge and the mount points made on this machine go too. (Earlier, another
            # node's mounts may still sit on them: removing a mount point detaches it in every namespace.)
            if ! ls "$NODES" | grep -q .; then
                ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
                if [[ -f $LOCAL/mountpoints ]]; then
                    sort -r "$LOCAL/mountpoints" | while read -r point; do rmdir "$point" 2>/dev/null || true; done
                    rm -f "$LOCAL/mountpoints"
                fi
            fi
            true
        }

        volume() {
            local name=$1 tag=$2
            mkdir -p "$VOLUMES/$name/data"
            printf '%s\n' "$tag" > "$VOLUMES/$name/tag"
            echo "$VOLUMES/$name/data"
        }

        delete_volume() { rm -rf "${VOLUMES:?}/$1"; }

        attach() {
            local name=$1 tag=$2 node=$3 source=$4 target=$5 readonly=$6 pid
            locked
            node_alive "$node" || die "node $node is not running"
            [[ -d $source ]] || die "volume directory $source does not exist"
            pid=$(cat "$NODES/$node/sshd.pid")
            printf '%s\t%s\t%s\n' "$tag" "$node" "$target" > "$ATTACHMENTS/$name"
            if ! nsenter -t "$pid" -m mountpoint -q "$target" 2>/dev/null; then
                if [[ ! -e $target ]]; then
                    printf '%s\n' "$target" >> "$LOCAL/mountpoints"
                    mkdir -p "$target"
                fi
                nsenter -t "$pid" -m mount --bind "$source" "$target"
                if [[ $readonly == true ]]; then nsenter -t "$pid" -m mount -o remount,bind,ro "$target"; fi
            fi
            echo "$target"
        }

        detach() {
            local name=$1 record=$ATTACHMENTS/$1 node target pid
            [[ -f $record ]] || return 0
            node=$(cut -f4 "$record"); target=$(cut -f5 "$record")
            if node_alive "$node"; then
                pid=$(cat "$NODES/$node/sshd.pid")
                nsenter -t "$pid" -m umount "$target" 2>/dev/null || true
            fi
            rm -f "$record"
        }

        list() {
            local f
            for f in "$NODES"/*/tag; do [[ -f $f ]] && printf 'compute\t%s\t%s\n' "$(cat "$f")" "$(basename "$(dirname "$f")")"; done
            for f in "$VOLUMES"/*/tag; do [[ -f $f ]] && printf 'volume\t%s\t%s\n' "$(cat "$f")" "$(dirname "$f")/data"; done
            for f in "$ATTACHMENTS"/*; do [[ -f $f ]] && printf 'attachment\t%s\t%s\n' "$(cut -f1-3 "$f")" "$(cut -f4 "$f")"; done
            true
        }

        case $ACTION in
            create) create "$@" ;;
            delete) delete "$@" ;;
            volume) volume "$@" ;;
            delete-volume) delete_volume "$@" ;;
            attach) attach "$@" ;;
            detach) detach "$@" ;;
            list) list ;;
            namespace) nsname "$1" ;;
            *) die "unknown action $ACTION" ;;
        esac
        """#
}
