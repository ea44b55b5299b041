import Foundation

/// Volumes several servers mount. Cinder attaches a volume to one server (multi-attach needs a volume type and a
/// back-end that few clouds offer, and a read-write ext4 mounted twice is corrupted), so a volume's other hosts
/// mount it from the server it is attached to, over SSH (sshfs, SFTP underneath) on the project's network:
///
/// - the host makes its own key (`/etc/deployctl/shares/NAME`; the private half never leaves it),
/// - the serving host accepts that key for SFTP only (`restrict,command="internal-sftp"`, with `-R` for a
///   read-only mount) in the file its running sshd reads authorized keys from, the line ending in a marker
///   naming the attachment,
/// - the host mounts `USER@ADDRESS:LOCATION` (the serving server's fixed address) knowing the serving host's
///   keys, which deployctl read there over its own verified connection.
///
/// Nothing of it is in Nova: the record on the host's server metadata (as for attachments, written first) says
/// where it comes from, so that `down`, a scale-in and crash recovery undo it: unmount, drop the key on both ends.
extension OpenStackProvider {
    func share(_ request: AttachmentRequest, from home: AttachmentRequest.Home) async throws(ProviderError)
        -> ProvisionedAttachment
    {
        guard config.mountVolumes, let location = request.location else {
            throw fail(
                "volume-shared",
                "\(request.volumeInstance) is attached to \(home.instance) and Cinder attaches a volume to one server: "
                    + "\(request.instance) can only mount it from there, which needs a mount path and mounted volumes")
        }
        try await recordAttachment(
            AttachRecord(
                name: request.name, instance: request.instance, location: location, readOnly: request.readOnly,
                sharedFrom: home.computeID),
            server: request.computeID, volumeID: request.volumeID)
        guard let server = try await getServer(home.computeID),
            let address = Self.addresses(server, type: "fixed").first
        else {
            throw fail(
                "volume-shared", "\(home.instance), which holds \(request.volumeInstance), has no server or address")
        }
        let host = try access(computeID: request.computeID, name: request.computeID)
        let serving = try access(computeID: home.computeID, name: home.computeID)
        let name = Self.shareName(request.name)
        let port = config.sshPort
        try await offload { () throws(ProviderError) in
            let publicKey =
                try self.runOnNode(
                    host, Self.shareKeyScript(name: name),
                    what: "preparing \(request.instance) to mount \(request.volumeInstance) from \(home.instance)"
                ).split(separator: "\n").last.map(String.init) ?? ""
            let fields = publicKey.split(separator: " ")
            guard fields.count >= 2, fields[0].hasPrefix("ssh-") else {
                throw self.fail("volume-shared", "\(request.instance) gave no share key: \(publicKey.prefix(80))")
            }
            let sftp = request.readOnly ? "internal-sftp -R" : "internal-sftp"
            let line = "restrict,command=\"\(sftp)\" \(fields[0]) \(fields[1]) \(Self.shareMarker(name))"
            let hostKeys = try self.runOnNode(
                serving, Self.authorizeScript(line: line, marker: Self.shareMarker(name), port: port),
                what: "letting \(request.instance) mount \(request.volumeInstance) from \(home.instance)"
            ).split(separator: "\n").filter { $0.hasPrefix("ssh-") || $0.hasPrefix("ecdsa-") }
            guard !hostKeys.isEmpty else {
                throw self.fail("volume-shared", "\(home.instance) has no SSH host key to trust")
            }
            // known_hosts names a host on the default port by its address alone.
            let known = port == 22 ? address : "[\(address)]:\(port)"
            let knownHosts = hostKeys.map { "\(known) \($0)" }.joined(separator: "\n")
            try self.runOnNode(
                host,
                Self.mountShareScript(
                    name: name, knownHosts: knownHosts, source: "root@\(address):\(home.location)",
                    port: port, target: location, readOnly: request.readOnly),
                what: "mounting \(request.volumeInstance) on \(request.instance) from \(home.instance)")
        }
        return ProvisionedAttachment(providerID: "\(request.computeID)/\(request.volumeID)", location: location)
    }

    /// Unmounts a shared volume on its host (when that is reachable), drops the host's key on the serving host
    /// (when that is reachable) and on the host, then the record.
    func unshare(_ record: AttachRecord, volumeID: String, server: JSON, home: String) async throws(ProviderError) {
        let serverID = server["id"].string ?? ""
        let name = Self.shareName(record.name)
        // An unreachable host keeps nothing to unmount that matters (its key is dropped on the other end); a serving
        // host that cannot be reached is being deleted or is broken, and its keys go with it.
        if server["status"].string == "ACTIVE", let host = try? access(computeID: serverID, name: serverID) {
            let location = record.location ?? ""
            let script = """
                set -e
                target=\(Self.shellQuote(location))
                if [ -n "$target" ] && mountpoint -q -- "$target"; then
                  umount -- "$target" 2>/dev/null || fusermount3 -u -- "$target" 2>/dev/null || fusermount -u -- "$target"
                fi
                rm -f \(Self.shareKey(name)) \(Self.shareKey(name)).pub \(Self.shareKey(name)).known_hosts
                """
            try await runIfReachable(host, script, what: "unmounting \(location) on \(record.instance)")
        }
        if let serving = try await getServer(home), serving["status"].string == "ACTIVE",
            let access = try? access(computeID: home, name: home)
        {
            try await runIfReachable(
                access, Self.revokeScript(marker: Self.shareMarker(name), port: config.sshPort),
                what: "revoking \(record.instance)'s share key")
        }
        try await dropAttachmentRecord(server: serverID, volumeID: volumeID)
    }

    /// The attachment's name as a file name and key comment.
    static func shareName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    static func shareMarker(_ name: String) -> String { "deployctl-share:\(name)" }

    /// Where the mounting host keeps the share's key (`.pub` and `.known_hosts` beside it).
    static func shareKey(_ name: String) -> String { "/etc/deployctl/shares/\(name)" }

    /// On the mounting host: sshfs installed, the share key made once; prints its public half.
    static func shareKeyScript(name: String) -> String {
        """
        set -e
        if ! command -v sshfs >/dev/null 2>&1; then
          if command -v apt-get >/dev/null 2>&1; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -q sshfs >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q sshfs >/dev/null; }
          elif command -v dnf >/dev/null 2>&1; then dnf install -y -q fuse-sshfs >/dev/null
          fi
        fi
        command -v sshfs >/dev/null 2>&1 || { echo "sshfs is not installed and could not be installed" >&2; exit 4; }
        key=\(shareKey(name))
        mkdir -p "$(dirname "$key")"
        chmod 700 "$(dirname "$key")"
        [ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C \(shellQuote(shareMarker(name))) -f "$key"
        cut -d' ' -f1-2 "$key.pub"
        """
    }

    /// Shell that finds what the running sshd (the one listening on `port`) reads for root: `$settings` (its
    /// `sshd -T`) and `$keys`, root's first authorized keys file, absolute. (Shares log in as root with a key good
    /// for SFTP only, which `PermitRootLogin prohibit-password`, the default, lets in; what the hosts write then
    /// belongs to no login user.)
    static func sshdSettingsScript(port: Int) -> String {
        """
        user=root
        home=$(getent passwd root | cut -d: -f6)
        pid=$(ss -Htlnp "sport = :\(port)" 2>/dev/null | sed -n 's/.*pid=\\([0-9][0-9]*\\).*/\\1/p' | head -n 1)
        config=
        if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
          config=$(tr '\\0' ' ' < "/proc/$pid/cmdline" | sed -n 's/.* -f *\\([^ ]*\\).*/\\1/p')
        fi
        sshd=$(command -v sshd || echo /usr/sbin/sshd)
        settings=$("$sshd" -T ${config:+-f "$config"} -C "user=$user,host=deployctl,addr=127.0.0.1" 2>/dev/null || true)
        keys=$(printf '%s\\n' "$settings" | awk '$1 == "authorizedkeysfile" { print $2; exit }')
        [ -n "$keys" ] && [ "$keys" != none ] || keys=.ssh/authorized_keys
        keys=$(printf '%s' "$keys" | sed "s|%h|$home|g; s|%u|$user|g; s|%%|%|g")
        case "$keys" in /*) ;; *) keys="$home/$keys" ;; esac
        """
    }

    /// On the serving host: the line added once to the authorized keys; prints the host's public keys.
    static func authorizeScript(line: String, marker: String, port: Int) -> String {
        """
        set -e
        \(sshdSettingsScript(port: port))
        mkdir -p "$(dirname "$keys")"
        touch "$keys"
        grep -qF -- \(shellQuote(" " + marker)) "$keys" || printf '%s\\n' \(shellQuote(line)) >> "$keys"
        hostkeys=$(printf '%s\\n' "$settings" | awk '$1 == "hostkey" { print $2 }')
        [ -n "$hostkeys" ] || hostkeys=$(ls /etc/ssh/ssh_host_*_key 2>/dev/null || true)
        for key in $hostkeys; do [ -r "$key.pub" ] && cut -d' ' -f1-2 "$key.pub"; done
        true
        """
    }

    /// On the serving host: the share key's line removed.
    static func revokeScript(marker: String, port: Int) -> String {
        """
        set -e
        \(sshdSettingsScript(port: port))
        [ -f "$keys" ] || exit 0
        kept=$(mktemp)
        grep -vF -- \(shellQuote(" " + marker)) "$keys" > "$kept" || true
        cat "$kept" > "$keys"
        rm -f "$kept"
        """
    }

    /// On the mounting host: the serving host's keys known, the volume mounted over sshfs (read-only when asked),
    /// reconnecting after a network blip.
    static func mountShareScript(
        name: String, knownHosts: String, source: String, port: Int, target: String, readOnly: Bool
    ) -> String {
        let options = [
            readOnly ? "ro" : "rw", "allow_other", "reconnect", "ServerAliveInterval=15", "ServerAliveCountMax=3",
            "BatchMode=yes", "StrictHostKeyChecking=yes",
            "UserKnownHostsFile=\(shareKey(name)).known_hosts", "IdentityFile=\(shareKey(name))", "IdentitiesOnly=yes",
            "port=\(port)",
        ].joined(separator: ",")
        return """
            set -e
            printf '%s\\n' \(shellQuote(knownHosts)) > \(shareKey(name)).known_hosts
            target=\(shellQuote(target))
            mkdir -p -- "$target"
            if mountpoint -q -- "$target"; then exit 0; fi
            sshfs -o \(shellQuote(options)) \(shellQuote(source)) "$target"
            """
    }
}
