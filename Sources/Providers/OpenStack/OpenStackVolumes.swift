import Foundation

/// What deployctl keeps on a server's metadata for each attachment (key `deployctl_attach_VOLUMEID`), written
/// before Nova is asked to attach, so that a crash in between leaves something `resources` and `down` find.
struct AttachRecord: Sendable, Equatable {
    var name: String
    var instance: String
    var location: String?
    var readOnly: Bool
    /// For a volume served from another server (sshfs): that server's id. Nova knows nothing of such an attachment.
    var sharedFrom: String?

    init(name: String, instance: String, location: String?, readOnly: Bool, sharedFrom: String? = nil) {
        self.name = name
        self.instance = instance
        self.location = location
        self.readOnly = readOnly
        self.sharedFrom = sharedFrom
    }

    init(_ text: String) {
        let json = JSON(data: Data(text.utf8))
        name = json["n"].string ?? ""
        instance = json["i"].string ?? ""
        location = json["l"].string
        readOnly = json["r"].bool ?? false
        sharedFrom = json["s"].string
    }

    var text: String {
        var fields: [String: JSON] = [
            "n": .string(name), "i": .string(instance), "l": location.map(JSON.string) ?? .null,
            "r": .bool(readOnly),
        ]
        if let sharedFrom { fields["s"] = .string(sharedFrom) }
        return String(decoding: JSON.object(fields).data, as: UTF8.self)
    }
}

extension OpenStackProvider {
    static let attachKey = "deployctl_attach_"

    // MARK: Volumes

    public func createVolume(_ request: VolumeRequest) async throws(ProviderError) -> ProvisionedVolume {
        if let existing = request.existingID {
            guard let volume = try await getVolume(existing) else {
                throw fail(
                    "unknown-volume",
                    "volume_id '\(existing)' of \(request.instance): Cinder has no such volume in this project")
            }
            let status = volume["status"].string ?? "?"
            guard ["available", "in-use", "reserved"].contains(status) else {
                throw fail("volume-error", "volume '\(existing)' of \(request.instance) is \(status), not usable")
            }
            return ProvisionedVolume(providerID: existing)
        }
        var volume = try await findVolume(name: request.name, id: nil)
        if volume == nil {
            var gigabytes = max(1, Int((request.sizeBytes + 1_073_741_823) / 1_073_741_824))
            var body: [String: JSON] = [
                "name": .string(request.name),
                "description": .string("deployctl \(request.deployment) \(request.instance)"),
                "metadata": [
                    "deployctl_deployment": .string(request.deployment),
                    "deployctl_instance": .string(request.instance), "deployctl_name": .string(request.name),
                ],
            ]
            if let snapshot = request.snapshotID {
                let found = try await api.call(
                    .volume, "GET", "/snapshots/\(Self.query(snapshot))", expect: [200, 404],
                    what: "reading snapshot \(snapshot)")
                guard found.status == 200 else {
                    throw fail(
                        "unknown-snapshot",
                        "snapshot_id '\(snapshot)' of \(request.instance): Cinder has no such snapshot")
                }
                // A volume from a snapshot is at least the snapshot's size.
                gigabytes = max(gigabytes, found.body["snapshot"]["size"].int ?? 0)
                body["snapshot_id"] = .string(snapshot)
            }
            if let type = request.volumeType { body["volume_type"] = .string(type) }
            body["size"] = .number(Double(gigabytes))
            let payload = JSON.object(["volume": .object(body)])
            volume = try await postRecovering(
                what: "volume \(request.name)",
                find: { () async throws(ProviderError) in try await self.findVolume(name: request.name, id: nil) },
                post: { () async throws(ProviderError) in
                    try await self.api.call(
                        .volume, "POST", "/volumes", body: payload,
                        what: "creating volume \(request.name) for \(request.instance)"
                    ).body["volume"]
                })
        }
        guard let id = volume?["id"].string else {
            throw fail("openstack-request", "Cinder created volume \(request.name) but gave no id")
        }
        let ready = try await waitVolume(id, until: ["available", "in-use"], what: "volume \(request.name)")
        if ready["status"].string?.hasPrefix("error") == true {
            try? await deleteVolume(name: request.name, providerID: id)
            throw fail("volume-error", "Cinder could not create volume \(request.name) for \(request.instance)")
        }
        return ProvisionedVolume(providerID: id)
    }

    func getVolume(_ id: String) async throws(ProviderError) -> JSON? {
        let response = try await api.call(
            .volume, "GET", "/volumes/\(Self.query(id))", expect: [200, 404], what: "reading volume \(id)")
        return response.status == 404 ? nil : response.body["volume"]
    }

    /// One of deployctl's volumes, by id (checked to be the one of that name) or by name.
    func findVolume(name: String, id: String?) async throws(ProviderError) -> JSON? {
        if let id, let volume = try await getVolume(id) {
            return volume["metadata"]["deployctl_name"].string == name ? volume : nil
        }
        let response = try await api.call(
            .volume, "GET", "/volumes/detail?name=\(Self.query(name))", what: "looking for volume \(name)")
        return response.body["volumes"].array.first {
            $0["name"].string == name && $0["metadata"]["deployctl_name"].string == name
        }
    }

    /// Waits until the volume's status is one of `until` or `error`; times out with a clear message.
    @discardableResult
    func waitVolume(_ id: String, until: Set<String>, what: String) async throws(ProviderError) -> JSON {
        let deadline = ContinuousClock.now + config.volumeTimeout
        while true {
            guard let volume = try await getVolume(id) else {
                throw fail("openstack-request", "\(what) disappeared")
            }
            let status = volume["status"].string ?? ""
            if until.contains(status) || status == "error" || status.hasPrefix("error_") { return volume }
            guard ContinuousClock.now < deadline else {
                throw fail(
                    "volume-timeout",
                    "\(what) is still '\(status)' after \(config.volumeTimeout) (waiting for "
                        + until.sorted().joined(separator: " or ") + ")")
            }
            try await sleep()
        }
    }

    public func deleteVolume(name resource: String, providerID: String?) async throws(ProviderError) {
        var deleted: Set<String> = []
        while let volume = try await findVolume(name: resource, id: deleted.isEmpty ? providerID : nil),
            let id = volume["id"].string, deleted.insert(id).inserted
        {
            try await deleteOneVolume(volume, id: id, name: resource)
        }
    }

    /// Detaches it wherever it is attached, deletes it and waits until Cinder no longer has it.
    private func deleteOneVolume(_ volume: JSON, id: String, name resource: String) async throws(ProviderError) {
        for attachment in volume["attachments"].array {
            guard let server = attachment["server_id"].string else { continue }
            try await detach(serverID: server, volumeID: id, record: nil)
        }
        _ = try await api.call(
            .volume, "DELETE", "/volumes/\(id)", expect: [202, 204, 404], what: "deleting volume \(resource)")
        let deadline = ContinuousClock.now + config.volumeTimeout
        while let left = try await getVolume(id) {
            if left["status"].string == "error_deleting" {
                throw fail("volume-error", "Cinder failed to delete volume \(resource) (error_deleting)")
            }
            guard ContinuousClock.now < deadline else {
                throw fail("delete-timeout", "volume \(resource) is still there \(config.volumeTimeout) after delete")
            }
            try await sleep()
        }
    }

    // MARK: Attachments

    public func attachVolume(_ request: AttachmentRequest) async throws(ProviderError) -> ProvisionedAttachment {
        if let home = request.sharedFrom { return try await share(request, from: home) }
        try await recordAttachment(
            AttachRecord(
                name: request.name, instance: request.instance, location: request.location,
                readOnly: request.readOnly),
            server: request.computeID, volumeID: request.volumeID)
        let attached = try await api.call(
            .compute, "GET", "/servers/\(request.computeID)/os-volume_attachments",
            what: "listing the volumes of \(request.instance)"
        ).body["volumeAttachments"].array
        var device = attached.first { $0["volumeId"].string == request.volumeID }?["device"].string
        if device == nil {
            // Cinder changes the flag only on an available volume; one in use elsewhere keeps its flag (the mount
            // below is read-only either way).
            if request.readOnly, try await getVolume(request.volumeID)?["status"].string == "available" {
                _ = try await api.call(
                    .volume, "POST", "/volumes/\(request.volumeID)/action",
                    body: ["os-update_readonly_flag": ["readonly": true]], expect: [200, 202],
                    what: "marking volume \(request.volumeInstance) read-only")
            }
            let response = try await api.call(
                .compute, "POST", "/servers/\(request.computeID)/os-volume_attachments",
                body: ["volumeAttachment": ["volumeId": .string(request.volumeID)]],
                what: "attaching \(request.volumeInstance) to \(request.instance)")
            device = response.body["volumeAttachment"]["device"].string
        }
        let volume = try await waitVolume(
            request.volumeID, until: ["in-use"],
            what: "volume \(request.volumeInstance) attaching to \(request.instance)")
        if volume["status"].string != "in-use" {
            throw fail(
                "volume-error", "volume \(request.volumeInstance) could not be attached to \(request.instance)")
        }
        guard config.mountVolumes, let location = request.location else {
            return ProvisionedAttachment(providerID: "\(request.computeID)/\(request.volumeID)", location: device)
        }
        let reported = device
        try await offload { () throws(ProviderError) in
            try self.mount(request, device: reported, location: location)
        }
        return ProvisionedAttachment(providerID: "\(request.computeID)/\(request.volumeID)", location: location)
    }

    /// Writes an attachment's record on its server's metadata (before anything is attached or mounted).
    func recordAttachment(_ record: AttachRecord, server: String, volumeID: String) async throws(ProviderError) {
        let key = Self.attachKey + volumeID
        _ = try await api.call(
            .compute, "PUT", "/servers/\(server)/metadata/\(key)", body: ["meta": [key: .string(record.text)]],
            what: "recording attachment \(record.name)")
    }

    /// Drops an attachment's record from its server's metadata (after it is undone).
    func dropAttachmentRecord(server: String, volumeID: String) async throws(ProviderError) {
        _ = try await api.call(
            .compute, "DELETE", "/servers/\(server)/metadata/\(Self.attachKey + volumeID)", expect: [204, 404],
            what: "dropping the attachment record")
    }

    /// Runs a script on a node that may be gone or broken: one that cannot be reached is skipped (what the script
    /// would undo goes with the node); any other failure is thrown.
    func runIfReachable(_ access: HostAccess, _ script: String, what: String) async throws(ProviderError) {
        do {
            try await offload { () throws(ProviderError) in _ = try self.runOnNode(access, script, what: what) }
        } catch  where error.code == "ssh-connect" {}
    }

    /// Mounts the attached volume at its location on the node (read-only when asked), making a file system first
    /// only on a writable volume that has none. The disk is found by the serial Nova gives virtio disks (the first
    /// 20 characters of the volume id), else by the device Nova reported.
    func mount(_ request: AttachmentRequest, device: String?, location: String) throws(ProviderError) {
        let access = try access(computeID: request.computeID, name: request.computeID)
        let serial = String(request.volumeID.prefix(20))
        let script = """
            set -e
            serial=\(Self.shellQuote(serial)); fallback=\(Self.shellQuote(device ?? "")); target=\(Self.shellQuote(location))
            ro=\(request.readOnly ? 1 : 0)
            dev=
            for i in $(seq 1 120); do
              for candidate in /dev/disk/by-id/virtio-$serial /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_$serial; do
                if [ -e "$candidate" ]; then dev=$(readlink -f "$candidate"); break 2; fi
              done
              sleep 0.5
            done
            if [ -z "$dev" ] && [ -n "$fallback" ] && [ -b "$fallback" ]; then dev=$fallback; fi
            [ -n "$dev" ] || { echo "the volume's disk (serial $serial) did not appear" >&2; exit 3; }
            mkdir -p -- "$target"
            if mountpoint -q -- "$target"; then exit 0; fi
            if [ "$ro" = 0 ] && ! blkid -p "$dev" >/dev/null 2>&1; then mkfs.ext4 -q -F "$dev"; fi
            if [ "$ro" = 1 ]; then mount -o ro -- "$dev" "$target"; else mount -- "$dev" "$target"; fi
            """
        try runOnNode(access, script, what: "mounting \(request.volumeInstance) on \(request.instance)")
    }

    /// Runs a script on a node as root: as the provider's SSH user when that is root, else through `sudo -n` (a
    /// cloud image's default user); returns what it printed.
    @discardableResult
    func runOnNode(_ access: HostAccess, _ script: String, what: String) throws(ProviderError) -> String {
        do {
            let session = try SSHSession(access.endpoint)
            let sudo = access.endpoint.user == "root" ? "" : "sudo -n "
            let result = try session.run("\(sudo)sh -c \(Self.shellQuote(script))")
            guard result.exitStatus == 0 else {
                throw fail("operation-failed", "\(what) failed (\(result.exitStatus)): \(result.stderr)")
            }
            return result.stdout
        } catch let error as ProviderError {
            throw error
        } catch {
            throw fail("ssh-connect", "\(what): \(error)")
        }
    }

    /// The ledger name of the node a server was made for, from the files kept for it on this machine.
    func nodeName(serverID: String) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: config.keyDirectory)) ?? []
        return names.first { name in
            (try? String(contentsOfFile: nodeDirectory(name) + "/server-id", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) == serverID
        }
    }

    static func shellQuote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    public func detachVolume(name resource: String, providerID: String?) async throws(ProviderError) {
        // Find the attachment: from its id (SERVER/VOLUME), else from the record on a server.
        var target: (server: String, volume: String, record: AttachRecord?)?
        if let providerID {
            let parts = providerID.split(separator: "/").map(String.init)
            if parts.count == 2 { target = (parts[0], parts[1], nil) }
        }
        if target == nil {
            for server in try await taggedServers() {
                guard let id = server["id"].string else { continue }
                for (key, value) in server["metadata"].object where key.hasPrefix(Self.attachKey) {
                    let record = AttachRecord(value.string ?? "")
                    if record.name == resource { target = (id, String(key.dropFirst(Self.attachKey.count)), record) }
                }
            }
        }
        guard let target else { return }
        var record = target.record
        if record == nil, let server = try await getServer(target.server) {
            record = server["metadata"][Self.attachKey + target.volume].string.map(AttachRecord.init)
        }
        try await detach(serverID: target.server, volumeID: target.volume, record: record)
    }

    /// Unmounts (when the node is still reachable), detaches through Nova, waits until Cinder no longer lists the
    /// attachment, and drops the record.
    func detach(serverID: String, volumeID: String, record: AttachRecord?) async throws(ProviderError) {
        guard let server = try await getServer(serverID) else { return }
        if let record, let home = record.sharedFrom {
            return try await unshare(record, volumeID: volumeID, server: server, home: home)
        }
        if config.mountVolumes, let location = record?.location, server["status"].string == "ACTIVE",
            let name = server["metadata"]["deployctl_name"].string,
            let access = try? access(computeID: serverID, name: name)
        {
            let script =
                "if mountpoint -q -- \(Self.shellQuote(location)); then umount -- \(Self.shellQuote(location)); fi"
            // A node that cannot be reached cannot be unmounted; Nova still detaches the disk, so that a broken node
            // never keeps its volumes (or `down`) hostage. An unmount that fails on a reachable node (the mount is
            // busy) stops the detach instead.
            try await runIfReachable(access, script, what: "unmounting \(location) on \(name)")
        }
        _ = try await api.call(
            .compute, "DELETE", "/servers/\(serverID)/os-volume_attachments/\(volumeID)", expect: [202, 204, 404],
            what: "detaching volume \(volumeID) from \(serverID)")
        let deadline = ContinuousClock.now + config.volumeTimeout
        while let volume = try await getVolume(volumeID),
            volume["attachments"].array.contains(where: { $0["server_id"].string == serverID })
        {
            guard ContinuousClock.now < deadline else {
                throw fail("volume-timeout", "volume \(volumeID) is still attached to \(serverID) after detaching")
            }
            try await sleep()
        }
        try await dropAttachmentRecord(server: serverID, volumeID: volumeID)
    }

    // MARK: Finding everything of a deployment

    func taggedServers() async throws(ProviderError) -> [JSON] {
        let filter = try await api.minor(.compute) >= 52 ? "?tags=\(Self.tag)" : ""
        return try await api.list(.compute, "/servers/detail\(filter)", key: "servers", what: "listing servers")
            .filter { $0["metadata"]["deployctl_name"].string != nil }
    }

    public func resources(deployment: String) async throws(ProviderError) -> [TaggedResource] {
        var found: [TaggedResource] = []
        var names: Set<String> = []
        for server in try await taggedServers() where server["metadata"]["deployctl_deployment"].string == deployment {
            guard let id = server["id"].string, let name = server["metadata"]["deployctl_name"].string else { continue }
            for (key, value) in server["metadata"].object where key.hasPrefix(Self.attachKey) {
                let record = AttachRecord(value.string ?? "")
                found.append(
                    TaggedResource(
                        kind: "attachment", name: record.name,
                        providerID: "\(id)/\(key.dropFirst(Self.attachKey.count))", instance: record.instance))
            }
            names.insert(name)
            found.append(
                TaggedResource(
                    kind: "compute", name: name, providerID: id,
                    instance: server["metadata"]["deployctl_instance"].string ?? ""))
        }
        // A node whose server was never made (or is gone) may still have its security group, keypair or floating IP:
        // its group's description names the deployment, and deleting the node by name removes them all.
        let groups = try await api.list(
            .network, "/security-groups", key: "security_groups", what: "listing security groups")
        let prefix = "deployctl deployment=\(deployment) instance="
        for group in groups {
            guard let description = group["description"].string, description.hasPrefix(prefix),
                let name = group["name"].string, !names.contains(name)
            else { continue }
            names.insert(name)
            let instance = description.dropFirst(prefix.count).split(separator: " ").first.map(String.init) ?? ""
            found.append(TaggedResource(kind: "compute", name: name, providerID: "", instance: instance))
        }
        let volumes = try await api.list(.volume, "/volumes/detail", key: "volumes", what: "listing volumes")
        for volume in volumes
        where volume["metadata"]["deployctl_deployment"].string == deployment {
            guard let id = volume["id"].string, let name = volume["metadata"]["deployctl_name"].string else { continue }
            found.append(
                TaggedResource(
                    kind: "volume", name: name, providerID: id,
                    instance: volume["metadata"]["deployctl_instance"].string ?? ""))
        }
        return found
    }
}
