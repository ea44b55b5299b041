#!/usr/bin/env python3
"""A Nova/Neutron/Cinder/Glance simulator for deployctl's OpenStack tests, behind a real Keystone.

One process serves the four services on one port with devstack's prefixes:

    compute        /compute/v2.1
    network        /network            (clients append /v2.0)
    block-storage  /volume/v3/{project_id}
    image          /image              (clients append /v2)

and the same again under /internal (RegionOne's internal interface), /regiontwo (RegionTwo) and
/regiontwo/internal. Every service request needs an X-Auth-Token that the real Keystone validates; resources
belong to the token's project. Bodies follow the published API samples (nova doc/api_samples, cinder and
neutron-lib api-ref, glance api-ref). /_sim/... is the tests' control API (no auth); see scripts/testbed/README.md.

    python3 openstack-sim.py --port 0 --keystone http://127.0.0.1:K/v3 [--hosts HOSTS_JSON]
        [--authorized-keys FILE] [--build-seconds 1.0]

prints `listening on PORT` once it serves. Python 3 standard library only.
"""

import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NOVA_MIN, NOVA_MAX = (2, 1), (2, 96)
CINDER_MIN, CINDER_MAX = (3, 0), (3, 70)
ADMIN_PROJECT = "0" * 32  # owner of the shared networks and public images
PRIVATE_NET, PUBLIC_NET = "5f1e0b9a-0000-4000-8000-000000000001", "5f1e0b9a-0000-4000-8000-000000000002"
PRIVATE_SUBNET, PUBLIC_SUBNET = "5f1e0b9a-0000-4000-8000-000000000011", "5f1e0b9a-0000-4000-8000-000000000012"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."

# (id, name, vcpus, ram MB, disk GB, extra_specs)
FLAVORS = [
    ("2", "m1.small", 1, 2048, 20, {}),
    ("3", "m1.medium", 2, 4096, 40, {}),
    ("4", "m1.large", 4, 8192, 80, {}),
    ("5", "m1.xlarge", 8, 16384, 160, {}),
    ("6", "r1.xlarge", 8, 32768, 160, {}),
    ("10", "g1.a100", 8, 32768, 100, {"pci_passthrough:alias": "a100:1"}),
    ("11", "g2.a100x2", 16, 65536, 200, {"pci_passthrough:alias": "a100:2"}),
    ("12", "v1.vgpu", 4, 16384, 80, {"resources:VGPU": "1"}),
]
# (id, name, os_distro, os_version)
IMAGES = [
    ("a3c1e0f2-0000-4000-8000-0000000000d1", "debian-12", "debian", "12"),
    ("a3c1e0f2-0000-4000-8000-0000000000b2", "ubuntu-22.04", "ubuntu", "22.04"),
    ("a3c1e0f2-0000-4000-8000-0000000000c9", "rocky-9", "rocky", "9"),
]
DEFAULT_QUOTAS = {
    "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "server_groups": 10,
    "server_group_members": 10, "floatingip": 50, "port": 500, "security_group": 10,
    "security_group_rule": 100, "volumes": 10, "gigabytes": 1000, "snapshots": 10,
}
DEFAULT_DELAYS = {"server_delete": 0.5, "volume_create": 0.5, "volume_attach": 0.5, "volume_detach": 0.5,
                  "volume_delete": 0.2}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id():
    return str(uuid.uuid4())


class HTTPError(Exception):
    """An error answer; `body` is filled in by the service's error style when None."""

    def __init__(self, status, message, body=None, headers=None, kind=None):
        super().__init__(message)
        self.status, self.message, self.body, self.headers, self.kind = status, message, body, headers or {}, kind


# Nova and Cinder name their fault bodies after the status (nova/api/openstack/wsgi.py, Fault._fault_names).
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
               501: "notImplemented", 503: "serviceUnavailable"}
NEUTRON_TYPES = {400: "BadRequest", 401: "NotAuthorized", 403: "PolicyNotAuthorized", 404: "NotFound",
                 409: "Conflict", 429: "OverLimit", 500: "InternalServerError", 503: "ServiceUnavailable"}
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
           413: "Request Entity Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}


def error_body(service, status, message, kind=None):
    """(content type, bytes) of `service`'s usual error body."""
    if service in ("compute", "volume"):
        return "application/json", json.dumps(
            {FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}).encode()
    if service == "network":
        return "application/json", json.dumps({"NeutronError": {
            "type": kind or NEUTRON_TYPES.get(status, "NeutronError"), "message": message, "detail": ""}}).encode()
    # Glance answers with webob's plain-text pages.
    reason = REASONS.get(status, "Error")
    return "text/plain; charset=UTF-8", f"{status} {reason}\n\n{message}\n\n   ".encode()


def parse_version(text):
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


class Sim:
    """All the simulated clouds' state, under one lock (requests are short; timers take the lock too)."""

    def __init__(self, region, keystone, hosts, authorized_keys, build_seconds):
        self.region = region
        self.keystone = keystone.rstrip("/")
        self.hosts = hosts  # [{name, address, ...}] or None
        self.authorized_keys = authorized_keys
        self.build_seconds = build_seconds
        self.lock = threading.RLock()
        self.tokens = {}  # token -> (project_id, user_id, expires_at epoch)
        self.upload_dir = tempfile.mkdtemp(prefix="openstack-sim-")
        self.reset()

    def reset(self):
        with self.lock:
            if self.authorized_keys:
                for server in list(getattr(self, "servers", {}).values()):
                    self.remove_key(server)
            for image in getattr(self, "images", {}).values():
                if image.get("_file"):
                    try:
                        os.unlink(image["_file"])
                    except OSError:
                        pass
            self.generation = getattr(self, "generation", 0) + 1  # timers of an earlier generation do nothing
            self.server_errors = []
            self.delays = dict(DEFAULT_DELAYS, server_build=self.build_seconds)
            self.quotas = dict(DEFAULT_QUOTAS)
            self.servers, self.ports, self.floatingips, self.keypairs, self.server_groups = {}, {}, {}, {}, {}
            self.security_groups, self.rules, self.volumes, self.snapshots = {}, {}, {}, {}
            self.host_of = {}  # host name -> server id
            self.next_ip = {PRIVATE_NET: 10, PUBLIC_NET: 10}
            self.networks = {
                PRIVATE_NET: self.network(PRIVATE_NET, "private", False, PRIVATE_SUBNET),
                PUBLIC_NET: self.network(PUBLIC_NET, "public", True, PUBLIC_SUBNET),
            }
            self.subnets = {
                PRIVATE_SUBNET: self.subnet(PRIVATE_SUBNET, "private-subnet", PRIVATE_NET, "10.0.0.0/24"),
                PUBLIC_SUBNET: self.subnet(PUBLIC_SUBNET, "public-subnet", PUBLIC_NET, "172.24.4.0/24"),
            }
            self.images = {}
            for image_id, name, distro, version in IMAGES:
                digest = hashlib.sha512(name.encode()).hexdigest()
                self.images[image_id] = dict(
                    self.image_defaults(image_id, name, ADMIN_PROJECT), status="active", visibility="public",
                    disk_format="qcow2", container_format="bare", size=1073741824, virtual_size=10737418240,
                    checksum=hashlib.md5(name.encode()).hexdigest(), os_hash_algo="sha512", os_hash_value=digest,
                    os_distro=distro, os_version=version, _preloaded=True)

    # ----- Neutron's preloaded objects

    def network(self, net_id, name, external, subnet_id):
        return {
            "id": net_id, "name": name, "status": "ACTIVE", "subnets": [subnet_id], "admin_state_up": True,
            "tenant_id": ADMIN_PROJECT, "project_id": ADMIN_PROJECT, "shared": not external,
            "router:external": external, "mtu": 1450, "port_security_enabled": True, "availability_zones": ["nova"],
            "availability_zone_hints": [], "ipv4_address_scope": None, "ipv6_address_scope": None,
            "is_default": external, "description": "", "tags": [], "created_at": now(), "updated_at": now(),
            "revision_number": 1, "l2_adjacency": True,
        }

    def subnet(self, subnet_id, name, net_id, cidr):
        network = ipaddress.ip_network(cidr)
        return {
            "id": subnet_id, "name": name, "network_id": net_id, "cidr": cidr, "ip_version": 4,
            "gateway_ip": str(network[1]), "allocation_pools": [{"start": str(network[2]), "end": str(network[-2])}],
            "enable_dhcp": True, "dns_nameservers": [], "host_routes": [], "tenant_id": ADMIN_PROJECT,
            "project_id": ADMIN_PROJECT, "ipv6_address_mode": None, "ipv6_ra_mode": None, "subnetpool_id": None,
            "description": "", "service_types": [], "tags": [], "created_at": now(), "updated_at": now(),
            "revision_number": 0,
        }

    def image_defaults(self, image_id, name, owner):
        return {
            "id": image_id, "name": name, "status": "queued", "visibility": "shared", "protected": False,
            "os_hidden": False, "checksum": None, "os_hash_algo": None, "os_hash_value": None, "size": None,
            "virtual_size": None, "disk_format": None, "container_format": None, "min_disk": 0, "min_ram": 0,
            "owner": owner, "created_at": now(), "updated_at": now(), "tags": [], "self": f"/v2/images/{image_id}",
            "file": f"/v2/images/{image_id}/file", "schema": "/v2/schemas/image",
        }

    # ----- Keystone

    def authenticate(self, token):
        """(project_id, user_id) of a valid project-scoped token, else None; Keystone's answers are cached until
        the token expires."""
        if not token:
            return None
        with self.lock:
            cached = self.tokens.get(token)
        if cached and cached[2] > time.time():
            return cached[:2]
        request = urllib.request.Request(self.keystone + "/auth/tokens",
                                         headers={"X-Auth-Token": token, "X-Subject-Token": token})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                body = json.load(response)["token"]
        except urllib.error.HTTPError:
            return None
        project = body.get("project", {}).get("id")
        if not project:
            return None
        expires = datetime.datetime.strptime(body["expires_at"][:19], "%Y-%m-%dT%H:%M:%S")
        expires = expires.replace(tzinfo=datetime.timezone.utc).timestamp()
        with self.lock:
            self.tokens[token] = (project, body["user"]["id"], expires)
        return project, body["user"]["id"]

    # ----- timers

    def later(self, seconds, action, *args):
        """Runs action(*args) under the lock after `seconds`, unless /_sim/reset came in between."""
        generation = self.generation

        def run():
            CURRENT.sim = self
            with self.lock:
                if generation == self.generation:
                    action(*args)

        timer = threading.Timer(max(0.0, seconds), run)
        timer.daemon = True
        timer.start()

    # ----- cloud-init's part: the keypair in the host's authorized_keys

    def marker(self, server):
        return f"openstack-sim:{server['id']}"

    def add_key(self, server):
        keypair = self.keypairs.get((server["user_id"], server["key_name"])) if server["key_name"] else None
        if not (self.authorized_keys and keypair):
            return
        fields = keypair["public_key"].split()
        with open(self.authorized_keys, "a") as out:
            out.write(f"{fields[0]} {fields[1]} {self.marker(server)}\n")

    def remove_key(self, server):
        if not self.authorized_keys or not os.path.exists(self.authorized_keys):
            return
        with open(self.authorized_keys) as source:
            lines = source.readlines()
        kept = [line for line in lines if not line.rstrip().endswith(self.marker(server))]
        if len(kept) != len(lines):
            with open(self.authorized_keys, "w") as out:
                out.writelines(kept)


# ----- backings that make servers and volumes real (RegionOne only), for whole deployments in the tests

class Backing:
    """--node-script: each ACTIVE server is a real node (a network namespace with its own /etc, /var, /home, /run
    and sshd, made by the local provider's node script), reachable at its fixed IP, with the keypair's key in the
    nodes' authorized_keys (cloud-init's part). --block-devices: each volume is a sparse file; attaching loops it and
    links /dev/disk/by-id/virtio-<first 20 characters of the id> to the loop device, as a virtio disk's serial
    appears in a guest; detaching removes both."""
    node_script = None  # [bash, script, DIR, BRIDGE, SUBNET]
    user = None  # --default-user
    node_dir = None
    block_dir = None
    loops = {}  # volume id -> loop device

    @classmethod
    def node(cls, action, *args):
        result = subprocess.run(cls.node_script + [action, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip() or f"node script {action} failed ({result.returncode})")
        return result.stdout.strip()

    @classmethod
    def default_user(cls, node):
        """cloud-init's default user (--default-user): an account with passwordless sudo and no password (`*`, not
        locked: sshd without PAM refuses locked accounts), made in the node's own /etc and /home (entered through
        its sshd's mount namespace), and the node's name in its /etc/hosts; the keypair's key lets it in like
        root."""
        if not cls.user:
            return
        with open(os.path.join(cls.node_dir, "nodes", node, "sshd.pid")) as source:
            pid = source.read().strip()
        script = (f"id -u {cls.user} >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' {cls.user}; "
                  f"mkdir -p /etc/sudoers.d; echo '{cls.user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users; "
                  "chmod 440 /etc/sudoers.d/90-cloud-init-users; "
                  # manage_etc_hosts: the node's name resolves (else sudo waits on DNS for it, and Ansible's become
                  # times out waiting for its prompt)
                  "grep -q \"[[:space:]]$(hostname)\\$\" /etc/hosts || echo \"127.0.1.1 $(hostname)\" >> /etc/hosts")
        result = subprocess.run(["nsenter", "-t", pid, "-m", "-u", "--", "sh", "-c", script], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"cloud-init's default user: {result.stderr.strip()}")

    @staticmethod
    def hostname(server):
        name = re.sub(r"[^a-z0-9-]+", "-", server["name"].lower()).strip("-")[:40] or "server"
        return f"{name}-{server['id'][:8]}"

    @classmethod
    def volume_file(cls, volume_id):
        return os.path.join(cls.block_dir, volume_id + ".img")

    @classmethod
    def make_volume(cls, volume, files=None):
        if not cls.block_dir:
            return
        path = cls.volume_file(volume["id"])
        with open(path, "wb") as out:
            out.truncate(volume["size"] << 30)
        if files:  # a volume made out of band with contents: an ext4 file system holding them
            source = tempfile.mkdtemp(dir=cls.block_dir)
            for name, text in files.items():
                target = os.path.join(source, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as out:
                    out.write(text)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-d", source, path], check=True)
            subprocess.run(["rm", "-rf", source], check=True)

    @classmethod
    def link(cls, volume_id):
        return "/dev/disk/by-id/virtio-" + volume_id[:20]

    @classmethod
    def attach(cls, volume_id):
        if not cls.block_dir or volume_id in cls.loops:
            return
        device = subprocess.run(["losetup", "--find", "--show", cls.volume_file(volume_id)], capture_output=True,
                                text=True, check=True).stdout.strip()
        cls.loops[volume_id] = device
        os.makedirs("/dev/disk/by-id", exist_ok=True)
        if os.path.lexists(cls.link(volume_id)):
            os.unlink(cls.link(volume_id))
        os.symlink(device, cls.link(volume_id))

    @classmethod
    def detach(cls, volume_id):
        device = cls.loops.pop(volume_id, None)
        if device is None:
            return
        if os.path.lexists(cls.link(volume_id)):
            os.unlink(cls.link(volume_id))
        subprocess.run(["losetup", "-d", device], capture_output=True)

    @classmethod
    def delete_volume(cls, volume_id):
        cls.detach(volume_id)
        if cls.block_dir and os.path.exists(cls.volume_file(volume_id)):
            os.unlink(cls.volume_file(volume_id))

    @classmethod
    def cleanup(cls):
        for volume_id in list(cls.loops):
            cls.detach(volume_id)


class Current(threading.local):
    """The region a thread works for: a request's, or a timer's."""
    sim = None


CURRENT = Current()
SIMS = {}  # region name -> Sim, made in main()
LOG_LOCK = threading.Lock()
REQUESTS = []  # every service request, all regions: /_sim/requests
FAULTS = []  # injected status faults (their path regex tells regions apart)


class RegionProxy:
    """`sim` in the service code: the Sim of the region the current thread works for."""

    def __getattr__(self, name):
        return getattr(CURRENT.sim, name)


sim = RegionProxy()


def count(items, project):
    return sum(1 for item in items.values() if item["project_id"] == project)


def neutron_filter(items, query, project):
    """Neutron's list filters: attribute=value (repeated: any of), tags / tags-any / not-tags / not-tags-any."""
    result = []
    for item in items:
        if item.get("project_id") not in (project, ADMIN_PROJECT) and not item.get("shared") \
                and not item.get("router:external"):
            continue
        keep = True
        for key, values in query.items():
            if key in ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"):
                continue
            tags = set(item.get("tags", []))
            wanted = set(",".join(values).split(","))
            if key == "tags":
                keep = wanted <= tags
            elif key == "tags-any":
                keep = bool(wanted & tags)
            elif key == "not-tags":
                keep = not wanted <= tags
            elif key == "not-tags-any":
                keep = not wanted & tags
            elif key in item:
                value = item[key]
                if key == "fixed_ips":
                    continue
                text = str(value).lower() if isinstance(value, bool) or value is None else str(value)
                keep = text in [v.lower() if isinstance(value, bool) or value is None else v for v in values] \
                    or (value is None and "" in values)
            if not keep:
                break
        if keep:
            result.append(item)
    return result


def public_view(item):
    return {key: value for key, value in item.items() if not key.startswith("_")}


class Context:
    """One service request: who asks, where, and what."""

    def __init__(self, handler, method, service, rest, query, body, base, project, user):
        self.handler, self.method, self.service, self.rest, self.query = handler, method, service, rest, query
        self.body, self.base, self.project, self.user = body, base, project, user
        self.version = None  # the microversion, for compute and volume
        self.headers = {}  # extra response headers

    def at_least(self, major, minor):
        return self.version >= (major, minor)

    def first(self, name, default=None):
        return self.query.get(name, [default])[0]

    def json(self, key=None):
        try:
            body = json.loads(self.body or b"{}")
        except ValueError:
            raise HTTPError(400, "Malformed request body")
        if key is not None:
            if not isinstance(body, dict) or not isinstance(body.get(key), dict):
                raise HTTPError(400, f"Invalid input for field/attribute {key}.")
            return body[key]
        return body


# ======================================================================= Nova

def summary(ctx, collection, ident, name):
    """{id, name, links}: a list entry, and the head of a detailed view (the bookmark drops the version, as Nova
    and Cinder write it)."""
    bookmark = re.sub(r"/v[0-9.]+(?=/|$)", "", ctx.base, count=1)
    return {"id": ident, "name": name, "links": [{"rel": "self", "href": f"{ctx.base}/{collection}/{ident}"},
                                                 {"rel": "bookmark", "href": f"{bookmark}/{collection}/{ident}"}]}


def flavor_view(ctx, flavor, detail=True):
    flavor_id, name, vcpus, ram, disk, extra_specs = flavor
    view = summary(ctx, "flavors", flavor_id, name)
    if ctx.at_least(2, 55):
        view["description"] = None
    if not detail:
        return view
    view.update({"ram": ram, "disk": disk, "vcpus": vcpus, "OS-FLV-EXT-DATA:ephemeral": 0,
                 "OS-FLV-DISABLED:disabled": False, "swap": 0 if ctx.at_least(2, 75) else "",
                 "rxtx_factor": 1.0, "os-flavor-access:is_public": True})
    if ctx.at_least(2, 61):
        view["extra_specs"] = dict(extra_specs)
    return view


def find_flavor(flavor_id):
    for flavor in FLAVORS:
        if flavor[0] == flavor_id:
            return flavor
    return None


PAGE_SIZE = {"compute": 1000, "volume": 1000, "image": 25}  # Nova and Cinder's max_limit, Glance's default


def paginate(ctx, items, key, style="links"):
    """A page of `items` (dicts with an "id", in the listing's order) as the services give it: `limit` (at most the
    service's page size) items after `marker`; a full page links the next one — Nova and Cinder with `KEY_links`
    (rel next, absolute), Glance with `next` (a /v2 path)."""
    size = PAGE_SIZE[ctx.service]
    try:
        limit = min(int(ctx.first("limit", size)), size)
    except ValueError:
        raise HTTPError(400, "limit param must be an integer")
    marker = ctx.first("marker")
    if marker is not None:
        ids = [item["id"] for item in items]
        if marker not in ids:
            raise HTTPError(400, f"marker [{marker}] not found")
        items = items[ids.index(marker) + 1:]
    page = items[:limit]
    body = {key: page}
    if page and len(page) == limit:
        query = {k: v[0] for k, v in ctx.query.items() if k not in ("marker", "limit")}
        query.update({"limit": str(limit), "marker": page[-1]["id"]})
        if style == "glance":
            body["next"] = "/v2/" + "/".join(ctx.rest) + "?" + urllib.parse.urlencode(query)
        else:
            body[key + "_links"] = [{"rel": "next",
                                     "href": ctx.base + "/" + "/".join(ctx.rest) + "?" + urllib.parse.urlencode(query)}]
    return body


def nova_flavors(ctx, parts):
    if ctx.method != "GET":
        raise HTTPError(405, "The method specified is not allowed for this resource.")
    if parts in (["flavors"], ["flavors", "detail"]):
        detail = len(parts) == 2
        flavors = FLAVORS
        if "minRam" in ctx.query:
            flavors = [f for f in flavors if f[3] >= int(ctx.first("minRam"))]
        if "minDisk" in ctx.query:
            flavors = [f for f in flavors if f[4] >= int(ctx.first("minDisk"))]
        return 200, paginate(ctx, [flavor_view(ctx, f, detail) for f in flavors], "flavors")
    flavor = find_flavor(parts[1])
    if flavor is None:
        raise HTTPError(404, f"Flavor {parts[1]} could not be found.")
    if len(parts) == 2:
        return 200, {"flavor": flavor_view(ctx, flavor)}
    if parts[2] == "os-extra_specs" and len(parts) == 3:
        return 200, {"extra_specs": dict(flavor[5])}
    if parts[2] == "os-extra_specs" and len(parts) == 4:
        if parts[3] not in flavor[5]:
            raise HTTPError(404, f"Flavor {flavor[0]} has no extra specs with key {parts[3]}.")
        return 200, {parts[3]: flavor[5][parts[3]]}
    raise HTTPError(404, "The resource could not be found.")


def fingerprint(public_key):
    try:
        blob = base64.b64decode(public_key.split()[1])
    except (IndexError, ValueError):
        raise HTTPError(400, "Keypair data is invalid: failed to generate fingerprint")
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def keypair_view(ctx, keypair, full=False):
    view = {"name": keypair["name"], "public_key": keypair["public_key"], "fingerprint": keypair["fingerprint"]}
    if ctx.at_least(2, 2):
        view["type"] = keypair["type"]
    if full:
        view.update({"user_id": keypair["user_id"], "id": keypair["id"], "created_at": keypair["created_at"],
                     "deleted": False, "deleted_at": None, "updated_at": None})
    return view


def nova_keypairs(ctx, parts):
    mine = {name: kp for (user, name), kp in sim.keypairs.items() if user == ctx.user}
    if len(parts) == 1 and ctx.method == "GET":
        return 200, {"keypairs": [{"keypair": keypair_view(ctx, kp)} for kp in mine.values()]}
    if len(parts) == 1 and ctx.method == "POST":
        body = ctx.json("keypair")
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w\-. @]{1,255}", name):
            raise HTTPError(400, "Invalid input for field/attribute name.")
        if name in mine:
            raise HTTPError(409, f"Key pair '{name}' already exists.")
        if len(mine) >= sim.quotas["key_pairs"]:
            raise HTTPError(403, "Quota exceeded, too many key pairs.")
        key_type = body.get("type", "ssh")
        public_key, private_key = body.get("public_key"), None
        if public_key is None:
            if ctx.at_least(2, 92):
                raise HTTPError(400, "Invalid input for field/attribute keypair. 'public_key' is a required property")
            public_key, private_key = generate_key()
        keypair = {"id": len(sim.keypairs) + 1, "name": name, "public_key": public_key.strip(),
                   "fingerprint": fingerprint(public_key), "type": key_type, "user_id": ctx.user,
                   "project_id": ctx.project, "created_at": now()}
        sim.keypairs[(ctx.user, name)] = keypair
        view = keypair_view(ctx, keypair)
        view["user_id"] = ctx.user
        if private_key:
            view["private_key"] = private_key
        return (201 if ctx.at_least(2, 2) else 200), {"keypair": view}
    keypair = mine.get(urllib.parse.unquote(parts[1])) if len(parts) == 2 else None
    if keypair is None:
        raise HTTPError(404, f"Keypair {parts[-1]} not found for user {ctx.user}")
    if ctx.method == "GET":
        return 200, {"keypair": keypair_view(ctx, keypair, full=True)}
    if ctx.method == "DELETE":
        del sim.keypairs[(ctx.user, keypair["name"])]
        return (204 if ctx.at_least(2, 2) else 202), None
    raise HTTPError(405, "The method specified is not allowed for this resource.")


def generate_key():
    """A key pair made with ssh-keygen (Nova generates one when none is given before 2.92)."""
    directory = tempfile.mkdtemp(dir=sim.upload_dir)
    path = os.path.join(directory, "key")
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "Generated-by-Nova", "-f", path],
                       check=True, capture_output=True)
        with open(path) as private, open(path + ".pub") as public:
            return public.read().strip(), private.read()
    except (OSError, subprocess.CalledProcessError):
        raise HTTPError(400, "Keypair data is invalid: cannot generate a key pair here; give public_key")
    finally:
        for name in ("key", "key.pub"):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
        os.rmdir(directory)


def group_view(ctx, group):
    view = {"id": group["id"], "name": group["name"], "members": list(group["members"])}
    if ctx.at_least(2, 64):
        view.update({"policy": group["policy"], "rules": group["rules"]})
    else:
        view.update({"policies": [group["policy"]], "metadata": {}})
    if ctx.at_least(2, 13):
        view.update({"project_id": group["project_id"], "user_id": group["user_id"]})
    return view


def nova_server_groups(ctx, parts):
    if len(parts) == 1 and ctx.method == "GET":
        groups = [g for g in sim.server_groups.values() if g["project_id"] == ctx.project]
        return 200, {"server_groups": [group_view(ctx, g) for g in groups]}
    if len(parts) == 1 and ctx.method == "POST":
        body = ctx.json("server_group")
        if ctx.at_least(2, 64):
            policy, rules = body.get("policy"), body.get("rules", {})
        else:
            policies = body.get("policies")
            if not isinstance(policies, list) or len(policies) != 1:
                raise HTTPError(400, "Invalid input for field/attribute policies.")
            policy, rules = policies[0], {}
        if policy not in ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"):
            raise HTTPError(400, "Invalid input for field/attribute policy.")
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise HTTPError(400, "Invalid input for field/attribute name.")
        if count(sim.server_groups, ctx.project) >= sim.quotas["server_groups"]:
            raise HTTPError(403, "Quota exceeded, too many server groups.")
        group = {"id": new_id(), "name": body["name"], "policy": policy, "rules": rules, "members": [],
                 "project_id": ctx.project, "user_id": ctx.user}
        sim.server_groups[group["id"]] = group
        return 200, {"server_group": group_view(ctx, group)}
    group = sim.server_groups.get(parts[1]) if len(parts) == 2 else None
    if group is None or group["project_id"] != ctx.project:
        raise HTTPError(404, f"Instance group {parts[-1]} could not be found.")
    if ctx.method == "GET":
        return 200, {"server_group": group_view(ctx, group)}
    if ctx.method == "DELETE":
        del sim.server_groups[group["id"]]
        return 204, None
    raise HTTPError(405, "The method specified is not allowed for this resource.")


def usage(project):
    servers = [s for s in sim.servers.values() if s["project_id"] == project]
    flavors = [find_flavor(s["flavor_id"]) for s in servers]
    return {"instances": len(servers), "cores": sum(f[2] for f in flavors), "ram": sum(f[3] for f in flavors)}


def nova_limits(ctx, parts):
    used = usage(ctx.project)
    q = sim.quotas
    absolute = {
        "maxTotalInstances": q["instances"], "maxTotalCores": q["cores"], "maxTotalRAMSize": q["ram"],
        "maxTotalKeypairs": q["key_pairs"], "maxServerMeta": 128, "maxImageMeta": 128,
        "maxServerGroups": q["server_groups"], "maxServerGroupMembers": q["server_group_members"],
        "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"], "totalRAMUsed": used["ram"],
        "totalServerGroupsUsed": count(sim.server_groups, ctx.project),
    }
    if not ctx.at_least(2, 57):
        absolute.update({"maxPersonality": 5, "maxPersonalitySize": 10240})
    if not ctx.at_least(2, 36):
        absolute.update({"maxSecurityGroups": q["security_group"], "maxSecurityGroupRules": q["security_group_rule"],
                         "maxTotalFloatingIps": q["floatingip"], "totalSecurityGroupsUsed": 0,
                         "totalFloatingIpsUsed": count(sim.floatingips, ctx.project)})
    return 200, {"limits": {"rate": [], "absolute": absolute}}


def host_id(server):
    """Nova's hostId: a hash of the project and the host, the same for two servers of a project on one host."""
    if not server.get("_host"):
        return ""
    return hashlib.sha224((server["project_id"] + server["_host"]).encode()).hexdigest()


def server_addresses(server):
    addresses = {}
    for port in sim.ports.values():
        if port["device_id"] != server["id"]:
            continue
        network = sim.networks[port["network_id"]]["name"]
        entries = addresses.setdefault(network, [])
        for fixed in port["fixed_ips"]:
            entries.append({"version": 4, "addr": fixed["ip_address"], "OS-EXT-IPS:type": "fixed",
                            "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
        for fip in sim.floatingips.values():
            if fip["port_id"] == port["id"]:
                entries.append({"version": 4, "addr": fip["floating_ip_address"], "OS-EXT-IPS:type": "floating",
                                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
    return addresses


def server_view(ctx, server, detail=True):
    view = summary(ctx, "servers", server["id"], server["name"])
    if not detail:
        return view
    flavor = find_flavor(server["flavor_id"])
    if ctx.at_least(2, 47):
        flavor_body = {"vcpus": flavor[2], "ram": flavor[3], "disk": flavor[4], "ephemeral": 0, "swap": 0,
                       "original_name": flavor[1], "extra_specs": dict(flavor[5])}
    else:
        flavor_body = {"id": flavor[0], "links": [{"rel": "bookmark", "href": f"{ctx.base}/flavors/{flavor[0]}"}]}
    status = server["status"]
    attached = [a for a in sim_attachments() if a["server_id"] == server["id"]]
    view.update({
        "status": status, "tenant_id": server["project_id"], "user_id": server["user_id"],
        "metadata": dict(server["metadata"]), "hostId": host_id(server),
        "image": {"id": server["image_id"], "links": [
            {"rel": "bookmark", "href": f"{ctx.base.rsplit('/compute', 1)[0]}/compute/images/{server['image_id']}"}]},
        "flavor": flavor_body, "created": server["created"], "updated": server["updated"],
        "addresses": server_addresses(server), "accessIPv4": "", "accessIPv6": "",
        "OS-DCF:diskConfig": "MANUAL", "progress": 0 if status != "BUILD" else 50,
        "OS-EXT-AZ:availability_zone": "nova" if status != "BUILD" else "", "config_drive": "",
        "key_name": server["key_name"], "OS-SRV-USG:launched_at": server.get("launched_at"),
        "OS-SRV-USG:terminated_at": None, "OS-EXT-STS:task_state": server["task_state"],
        "OS-EXT-STS:vm_state": {"BUILD": "building", "ACTIVE": "active", "ERROR": "error"}.get(status, "active"),
        "OS-EXT-STS:power_state": 1 if status == "ACTIVE" else 0,
        "os-extended-volumes:volumes_attached": [
            dict({"id": a["volume_id"]}, **({"delete_on_termination": False} if ctx.at_least(2, 3) else {}))
            for a in attached],
        "security_groups": [{"name": name} for name in server["security_groups"]],
    })
    if ctx.at_least(2, 9):
        view["locked"] = False
    if ctx.at_least(2, 19):
        view["description"] = server.get("description")
    if ctx.at_least(2, 26):
        view["tags"] = list(server["tags"])
    if ctx.at_least(2, 63):
        view["trusted_image_certificates"] = None
    if ctx.at_least(2, 71):
        view["server_groups"] = [g["id"] for g in sim.server_groups.values() if server["id"] in g["members"]]
    if ctx.at_least(2, 73):
        view["locked_reason"] = None
    if ctx.at_least(2, 96):
        view["pinned_availability_zone"] = None
    if status == "ERROR" and server.get("fault"):
        view["fault"] = dict(server["fault"])
    return view


def sim_attachments():
    return [a for v in sim.volumes.values() for a in v["_attachments"]]


def find_server(ctx, server_id):
    server = sim.servers.get(server_id)
    if server is None or server["project_id"] != ctx.project:
        raise HTTPError(404, f"Instance {server_id} could not be found.")
    return server


def allocate_ip(network_id):
    subnet = sim.subnets[sim.networks[network_id]["subnets"][0]]
    network = ipaddress.ip_network(subnet["cidr"])
    used = {f["ip_address"] for p in sim.ports.values() for f in p["fixed_ips"]}
    used |= {f["floating_ip_address"] for f in sim.floatingips.values()}
    while True:
        index = sim.next_ip[network_id]
        sim.next_ip[network_id] = index + 1 if index < network.num_addresses - 3 else 10
        address = str(network[index])
        if address not in used:
            return address


def make_port(project, network_id, name="", device_id="", device_owner="", address=None, groups=None):
    if count(sim.ports, project) >= sim.quotas["port"]:
        raise HTTPError(409, "Quota exceeded for resources: ['port'].", kind="OverQuota")
    network = sim.networks[network_id]
    port = {
        "id": new_id(), "name": name, "network_id": network_id, "tenant_id": project, "project_id": project,
        "mac_address": "fa:16:3e:%02x:%02x:%02x" % (random.randrange(256), random.randrange(256),
                                                    random.randrange(256)),
        "fixed_ips": [{"subnet_id": network["subnets"][0], "ip_address": address or allocate_ip(network_id)}],
        "device_id": device_id, "device_owner": device_owner, "status": "ACTIVE" if device_id else "DOWN",
        "admin_state_up": True, "security_groups": groups if groups is not None else [default_group(project)["id"]],
        "binding:vnic_type": "normal", "allowed_address_pairs": [], "extra_dhcp_opts": [], "description": "",
        "port_security_enabled": True, "tags": [], "created_at": now(), "updated_at": now(),
        "revision_number": 1, "dns_name": "", "dns_assignment": [], "propagate_uplink_status": False,
    }
    sim.ports[port["id"]] = port
    return port


def nova_create_server(ctx):
    body = ctx.json("server")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise HTTPError(400, "Invalid input for field/attribute name.")
    flavor = find_flavor(str(body.get("flavorRef", "")).rstrip("/").rsplit("/", 1)[-1])
    if flavor is None:
        raise HTTPError(400, f"Flavor {body.get('flavorRef')} could not be found.")
    image_id = str(body.get("imageRef", "")).rstrip("/").rsplit("/", 1)[-1]
    image = sim.images.get(image_id)
    if image is None or (image["visibility"] != "public" and image["owner"] != ctx.project):
        raise HTTPError(400, "Can not find requested image")
    if image["status"] != "active":
        raise HTTPError(400, f"Image {image_id} is not active.")
    key_name = body.get("key_name")
    if key_name is not None and (ctx.user, key_name) not in sim.keypairs:
        raise HTTPError(400, "Invalid key_name provided.")
    if body.get("user_data") is not None:
        if len(body["user_data"]) > 65535:
            raise HTTPError(400, "User data too large. User data must be no larger than 65535 bytes once base64 "
                                 f"encoded. Your data is {len(body['user_data'])} bytes")
        try:
            base64.b64decode(body["user_data"], validate=True)
        except ValueError:
            raise HTTPError(400, "User data needs to be valid base 64.")
    tags = body.get("tags", [])
    if tags and not ctx.at_least(2, 52):
        raise HTTPError(400, "Additional properties are not allowed ('tags' was unexpected)")
    hints = ctx.json().get("os:scheduler_hints") or ctx.json().get("OS-SCH-HNT:scheduler_hints") or {}
    group = None
    if hints.get("group"):
        group = sim.server_groups.get(hints["group"])
        if group is None or group["project_id"] != ctx.project:
            raise HTTPError(400, f"Invalid input for field/attribute group. Value: {hints['group']}.")
    groups = []
    for entry in body.get("security_groups", []):
        found = [g for g in visible_groups(ctx.project) if entry.get("name") in (g["name"], g["id"])]
        if not found:
            raise HTTPError(400, f"Security group {entry.get('name')} not found for project {ctx.project}.")
        groups.append(found[0])
    if not groups:
        groups = [default_group(ctx.project)]
    # The network requests, checked before anything is made.
    networks = body.get("networks", "auto" if not ctx.at_least(2, 37) else None)
    if networks is None:
        raise HTTPError(400, "Invalid input for field/attribute networks. 'networks' is a required property")
    requests = []
    if networks == "auto":
        requests = [("network", PRIVATE_NET)]
    elif isinstance(networks, list):
        for entry in networks:
            if entry.get("port"):
                port = sim.ports.get(entry["port"])
                if port is None or port["project_id"] != ctx.project:
                    raise HTTPError(400, f"Port {entry['port']} could not be found.")
                if port["device_id"]:
                    raise HTTPError(409, f"Port {entry['port']} is still in use.")
                requests.append(("port", port["id"]))
            elif entry.get("uuid"):
                if entry["uuid"] not in sim.networks:
                    raise HTTPError(400, f"Network {entry['uuid']} could not be found.")
                requests.append(("network", entry["uuid"]))
            else:
                raise HTTPError(400, "Invalid input for field/attribute networks.")
    elif networks != "none":
        raise HTTPError(400, "Invalid input for field/attribute networks.")
    # Quotas, with Nova's message.
    used, q = usage(ctx.project), sim.quotas
    asked = {"instances": 1, "cores": flavor[2], "ram": flavor[3]}
    over = [r for r in ("cores", "instances", "ram") if used[r] + asked[r] > q[r]]
    if over:
        raise HTTPError(403, "Quota exceeded for %s: Requested %s, but already used %s of %s %s" % (
            ", ".join(over), ", ".join(str(asked[r]) for r in over), ", ".join(str(used[r]) for r in over),
            ", ".join(str(q[r]) for r in over), ", ".join(over)))
    server = {
        "id": new_id(), "name": name, "project_id": ctx.project, "user_id": ctx.user, "flavor_id": flavor[0],
        "image_id": image_id, "key_name": key_name, "metadata": dict(body.get("metadata", {})),
        "tags": list(tags), "security_groups": [g["name"] for g in groups], "status": "BUILD",
        "task_state": "scheduling", "created": now(), "updated": now(), "description": body.get("description"),
        "user_data": body.get("user_data"), "_host": None, "_prefix": ctx.handler.prefix,
    }
    sim.servers[server["id"]] = server
    # Placement: a free host of the pool (anti-affinity: none holding a member of the group; affinity: the
    # members' host), else ERROR after the build time.
    fault = None
    for error in sim.server_errors:
        remaining = error.get("count", -1)  # -1: every matching server
        if remaining != 0 and re.search(error.get("name", ""), name):
            fault = error.get("message", NO_VALID_HOST)
            if remaining > 0:
                error["count"] = remaining - 1
            break
    address = None
    if fault is None and sim.hosts is not None:
        members = [sim.servers[m] for m in (group["members"] if group else []) if m in sim.servers]
        member_hosts = {m["_host"] for m in members if m["_host"]}
        free = [h for h in sim.hosts if h["name"] not in sim.host_of]
        if group and group["policy"] == "anti-affinity":
            free = [h for h in free if h["name"] not in member_hosts]
        if group and group["policy"] == "affinity" and member_hosts:
            free = []
        if free:
            server["_host"] = free[0]["name"]
            sim.host_of[free[0]["name"]] = server["id"]
            address = free[0]["address"]
        else:
            fault = NO_VALID_HOST
    elif fault is None and Backing.node_script and sim.region == "RegionOne":
        node = Backing.hostname(server)
        try:
            address = Backing.node("create", node, f"openstack-sim\t{server['id']}\t{node}")
            server["_host"] = node
            server["_node"] = node
            Backing.default_user(node)
        except RuntimeError as error:
            fault = f"Build of instance {server['id']} aborted: {error}"
    elif fault is None:
        server["_host"] = "sim-compute-1"
    if group:
        group["members"].append(server["id"])
    for kind, ident in requests:
        if kind == "port":
            port = sim.ports[ident]
            port.update(device_id=server["id"], device_owner="compute:nova", status="ACTIVE")
            if address and port["network_id"] == PRIVATE_NET:
                port["fixed_ips"][0]["ip_address"] = address
        else:
            make_port(ctx.project, ident, device_id=server["id"], device_owner="compute:nova",
                      address=address if ident == PRIVATE_NET else None, groups=[g["id"] for g in groups])
    sim.later(sim.delays["server_build"], finish_build, server["id"], fault)
    ctx.headers["Location"] = f"{ctx.base}/servers/{server['id']}"
    view = {"id": server["id"], "links": server_view(ctx, server, detail=False)["links"],
            "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": g["name"]} for g in groups],
            "adminPass": base64.b32encode(os.urandom(10)).decode()[:12]}
    return 202, {"server": view}


def finish_build(server_id, fault):
    server = sim.servers.get(server_id)
    if server is None or server["status"] != "BUILD":
        return
    server["updated"] = now()
    server["task_state"] = None
    if fault:
        server.update(status="ERROR", fault={"code": 500, "created": now(), "message": fault})
        # Nova de-allocates the networks of a server that failed to build.
        for port in [p for p in sim.ports.values() if p["device_id"] == server_id]:
            release_port(port)
        if server["_host"]:
            sim.host_of.pop(server["_host"], None)
            server["_host"] = None
        return
    server.update(status="ACTIVE", launched_at=now()[:-1] + ".000000")
    sim.add_key(server)


def release_port(port):
    """A server's port goes with it (a port the user made is only unbound, as Nova does)."""
    for fip in sim.floatingips.values():
        if fip["port_id"] == port["id"]:
            fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
    if port["device_owner"] == "compute:nova" and not port.get("_user_made"):
        del sim.ports[port["id"]]
    else:
        port.update(device_id="", device_owner="", status="DOWN")


def nova_delete_server(ctx, server):
    if server["task_state"] == "deleting":
        return 204, None
    server.update(task_state="deleting", updated=now())
    sim.later(sim.delays["server_delete"], finish_delete, server["id"])
    return 204, None


def finish_delete(server_id):
    server = sim.servers.pop(server_id, None)
    if server is None:
        return
    for port in [p for p in sim.ports.values() if p["device_id"] == server_id]:
        release_port(port)
    for volume in sim.volumes.values():
        if any(a["server_id"] == server_id for a in volume["_attachments"]):
            Backing.detach(volume["id"])
            volume["_attachments"] = [a for a in volume["_attachments"] if a["server_id"] != server_id]
            volume.update(status="available" if not volume["_attachments"] else volume["status"], updated_at=now())
    for group in sim.server_groups.values():
        if server_id in group["members"]:
            group["members"].remove(server_id)
    if server["_host"]:
        sim.host_of.pop(server["_host"], None)
    sim.remove_key(server)
    if server.get("_node"):
        try:
            Backing.node("delete", server["_node"])
        except RuntimeError as error:
            print(f"deleting node {server['_node']} failed: {error}", file=sys.stderr, flush=True)


def server_matches(ctx, server):
    q = ctx.query
    if "name" in q and not re.search(q["name"][0], server["name"]):
        return False
    if "status" in q and server["status"] not in [s.upper() for s in q["status"]]:
        return False
    for key in ("image", "flavor"):
        if key in q and server[key + "_id"] != q[key][0]:
            return False
    tags = set(server["tags"])
    if "tags" in q and not set(q["tags"][0].split(",")) <= tags:
        return False
    if "tags-any" in q and not set(q["tags-any"][0].split(",")) & tags:
        return False
    if "not-tags" in q and set(q["not-tags"][0].split(",")) <= tags:
        return False
    if "not-tags-any" in q and set(q["not-tags-any"][0].split(",")) & tags:
        return False
    return True


def nova_servers(ctx, parts):
    if parts in (["servers"], ["servers", "detail"]) and ctx.method == "GET":
        servers = sorted((s for s in sim.servers.values() if s["project_id"] == ctx.project),
                         key=lambda s: s["created"], reverse=True)
        servers = [s for s in servers if server_matches(ctx, s)]
        return 200, paginate(ctx, [server_view(ctx, s, len(parts) == 2) for s in servers], "servers")
    if parts == ["servers"] and ctx.method == "POST":
        return nova_create_server(ctx)
    server = find_server(ctx, parts[1])
    if len(parts) == 2:
        if ctx.method == "GET":
            return 200, {"server": server_view(ctx, server)}
        if ctx.method == "DELETE":
            return nova_delete_server(ctx, server)
        if ctx.method == "PUT":
            body = ctx.json("server")
            for key in ("name", "description"):
                if key in body:
                    server[key] = body[key]
            return 200, {"server": server_view(ctx, server)}
    elif parts[2] == "tags":
        return nova_server_tags(ctx, server, parts[3:])
    elif parts[2] == "os-volume_attachments":
        return nova_attachments(ctx, server, parts[3:])
    elif parts[2] == "metadata":
        return nova_server_metadata(ctx, server, parts[3:])
    elif parts[2] == "action" and ctx.method == "POST":
        action = next(iter(ctx.json()), None)
        if action in ("os-stop", "os-start", "reboot"):
            return 202, None
        raise HTTPError(400, f"There is no such action: {action}")
    raise HTTPError(404, "The resource could not be found.")


def nova_server_metadata(ctx, server, parts):
    """Nova's server metadata API: the whole dict (GET; POST merges, PUT replaces) or one item
    (GET/PUT/DELETE /metadata/{key}, the PUT body {"meta": {key: value}} with exactly that key)."""
    metadata = server["metadata"]
    if not parts:
        if ctx.method == "GET":
            return 200, {"metadata": dict(metadata)}
        if ctx.method in ("POST", "PUT"):
            body = ctx.json("metadata")
            if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
                raise HTTPError(400, "Invalid input for field/attribute metadata.")
            if ctx.method == "PUT":
                metadata.clear()
            metadata.update(body)
            return 200, {"metadata": dict(metadata)}
        raise HTTPError(405, "Method not allowed.")
    key = parts[0]
    if ctx.method == "GET":
        if key not in metadata:
            raise HTTPError(404, "Metadata item was not found")
        return 200, {"meta": {key: metadata[key]}}
    if ctx.method == "PUT":
        meta = ctx.json("meta")
        if not isinstance(meta, dict) or list(meta) != [key]:
            raise HTTPError(400, "Request body and URI mismatch")
        if len(meta[key]) > 255:
            raise HTTPError(400, "Invalid input for field/attribute meta. Value too long.")
        metadata[key] = meta[key]
        return 200, {"meta": {key: meta[key]}}
    if ctx.method == "DELETE":
        if key not in metadata:
            raise HTTPError(404, "Metadata item was not found")
        del metadata[key]
        return 204, None
    raise HTTPError(405, "Method not allowed.")


def nova_server_tags(ctx, server, parts):
    if not ctx.at_least(2, 26):
        raise HTTPError(404, "The resource could not be found.")
    if not parts and ctx.method == "GET":
        return 200, {"tags": list(server["tags"])}
    if not parts and ctx.method == "PUT":
        tags = ctx.json().get("tags")
        if not isinstance(tags, list) or len(tags) > 50 or not all(isinstance(t, str) for t in tags):
            raise HTTPError(400, "Invalid input for field/attribute tags.")
        server["tags"] = list(dict.fromkeys(tags))
        return 200, {"tags": list(server["tags"])}
    if not parts and ctx.method == "DELETE":
        server["tags"] = []
        return 204, None
    tag = urllib.parse.unquote(parts[0])
    if ctx.method == "GET":
        if tag not in server["tags"]:
            raise HTTPError(404, f"Tag {tag} could not be found.")
        return 204, None
    if ctx.method == "PUT":
        if tag in server["tags"]:
            return 204, None
        if len(server["tags"]) >= 50:
            raise HTTPError(400, "The number of tags exceeded the per-server limit 50")
        server["tags"].append(tag)
        ctx.headers["Location"] = f"{ctx.base}/servers/{server['id']}/tags/{tag}"
        return 201, None
    if ctx.method == "DELETE":
        if tag not in server["tags"]:
            raise HTTPError(404, f"Tag {tag} could not be found.")
        server["tags"].remove(tag)
        return 204, None
    raise HTTPError(405, "The method specified is not allowed for this resource.")


def attachment_view(ctx, attachment):
    view = {"device": attachment["device"], "id": attachment["volume_id"], "serverId": attachment["server_id"],
            "volumeId": attachment["volume_id"]}
    if ctx.at_least(2, 70):
        view["tag"] = None
    if ctx.at_least(2, 79):
        view["delete_on_termination"] = False
    if ctx.at_least(2, 89):
        view.update(attachment_id=attachment["attachment_id"], bdm_uuid=attachment["bdm_uuid"])
        del view["id"]
    return view


def nova_attachments(ctx, server, parts):
    mine = [a for a in sim_attachments() if a["server_id"] == server["id"]]
    if not parts and ctx.method == "GET":
        return 200, {"volumeAttachments": [attachment_view(ctx, a) for a in mine]}
    if not parts and ctx.method == "POST":
        body = ctx.json("volumeAttachment")
        volume = sim.volumes.get(body.get("volumeId"))
        if volume is None or volume["project_id"] != ctx.project:
            raise HTTPError(404, f"Volume {body.get('volumeId')} could not be found.")
        if server["status"] not in ("ACTIVE", "SHUTOFF") or server["task_state"]:
            raise HTTPError(409, f"Cannot 'attach_volume' instance {server['id']} while it is in vm_state "
                                 f"{'building' if server['status'] == 'BUILD' else server['status'].lower()}")
        if volume["status"] != "available":
            raise HTTPError(400, f"Invalid volume: volume {volume['id']} status must be available, "
                                 f"but current status is: {volume['status']}")
        used = {a["device"] for a in mine}
        device = next(f"/dev/vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{letter}" not in used)
        attachment = {"volume_id": volume["id"], "server_id": server["id"], "device": device,
                      "attachment_id": new_id(), "bdm_uuid": new_id(), "attached_at": now()}
        volume["_attachments"].append(attachment)
        volume.update(status="attaching", updated_at=now())
        sim.later(sim.delays["volume_attach"], finish_attach, volume["id"])
        return 200, {"volumeAttachment": attachment_view(ctx, attachment)}
    found = [a for a in mine if a["volume_id"] == parts[0]]
    if not found:
        raise HTTPError(404, f"Volume {parts[0]} is not attached to {server['id']}")
    if ctx.method == "GET":
        return 200, {"volumeAttachment": attachment_view(ctx, found[0])}
    if ctx.method == "DELETE":
        volume = sim.volumes[found[0]["volume_id"]]
        if volume["status"] != "in-use":
            raise HTTPError(400, f"Invalid volume: Unable to detach volume. Volume status must be 'in-use' "
                                 f"and attach_status must be 'attached' to detach.")
        volume.update(status="detaching", updated_at=now())
        sim.later(sim.delays["volume_detach"], finish_detach, volume["id"], server["id"])
        return 202, None
    raise HTTPError(405, "The method specified is not allowed for this resource.")


def set_volume_status(volume_id, before, after):
    volume = sim.volumes.get(volume_id)
    if volume is not None and volume["status"] == before:
        volume.update(status=after, updated_at=now())


def finish_attach(volume_id):
    volume = sim.volumes.get(volume_id)
    if volume is not None and volume["status"] == "attaching":
        Backing.attach(volume_id)
        volume.update(status="in-use", updated_at=now())


def finish_detach(volume_id, server_id):
    volume = sim.volumes.get(volume_id)
    if volume is None or volume["status"] != "detaching":
        return
    Backing.detach(volume_id)
    volume["_attachments"] = [a for a in volume["_attachments"] if a["server_id"] != server_id]
    volume.update(status="in-use" if volume["_attachments"] else "available", updated_at=now())


def nova_versions(base_root):
    return {"id": "v2.1", "status": "CURRENT", "version": "2.96", "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": base_root + "/v2.1/"},
                      {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


def nova(ctx, parts):
    if not parts or parts[0] not in ROUTES_NOVA:
        raise HTTPError(404, "The resource could not be found.")
    return ROUTES_NOVA[parts[0]](ctx, parts)


ROUTES_NOVA = {"flavors": nova_flavors, "os-keypairs": nova_keypairs, "os-server-groups": nova_server_groups,
               "limits": nova_limits, "servers": nova_servers}


# ======================================================================= Neutron

def rule(project, group_id, direction, ethertype, protocol=None, port_min=None, port_max=None, remote_ip=None,
         remote_group=None, description=""):
    return {"id": new_id(), "security_group_id": group_id, "direction": direction, "ethertype": ethertype,
            "protocol": protocol, "port_range_min": port_min, "port_range_max": port_max,
            "remote_ip_prefix": remote_ip, "remote_group_id": remote_group, "remote_address_group_id": None,
            "normalized_cidr": remote_ip, "tenant_id": project, "project_id": project, "description": description,
            "tags": [], "created_at": now(), "updated_at": now(), "revision_number": 0}


def default_group(project):
    """The project's `default` security group, made on first use as Neutron does."""
    for group in sim.security_groups.values():
        if group["project_id"] == project and group["_default"]:
            return group
    group = {"id": new_id(), "name": "default", "description": "Default security group", "tenant_id": project,
             "project_id": project, "stateful": True, "shared": False, "tags": [], "created_at": now(),
             "updated_at": now(), "revision_number": 1, "_default": True}
    sim.security_groups[group["id"]] = group
    for ethertype in ("IPv4", "IPv6"):
        for made in (rule(project, group["id"], "egress", ethertype),
                     rule(project, group["id"], "ingress", ethertype, remote_group=group["id"])):
            sim.rules[made["id"]] = made
    return group


def visible_groups(project):
    default_group(project)
    return [g for g in sim.security_groups.values() if g["project_id"] == project]


def group_body(group):
    view = public_view(group)
    view["security_group_rules"] = [r for r in sim.rules.values() if r["security_group_id"] == group["id"]]
    return view


def over_quota(resource):
    return HTTPError(409, f"Quota exceeded for resources: ['{resource}'].", kind="OverQuota")


def not_found(kind, ident):
    return HTTPError(404, f"{kind} {ident} could not be found.", kind=kind.replace(" ", "") + "NotFound")


def neutron_networks(ctx, parts):
    if len(parts) == 1 and ctx.method == "GET":
        return 200, {"networks": neutron_filter(sim.networks.values(), ctx.query, ctx.project)}
    if len(parts) == 2 and ctx.method == "GET":
        if parts[1] not in sim.networks:
            raise not_found("Network", parts[1])
        return 200, {"network": sim.networks[parts[1]]}
    raise HTTPError(403 if ctx.method in ("POST", "PUT", "DELETE") else 405,
                    "The simulator's networks are fixed: private and public.", kind="PolicyNotAuthorized")


def neutron_subnets(ctx, parts):
    if len(parts) == 1 and ctx.method == "GET":
        return 200, {"subnets": neutron_filter(sim.subnets.values(), ctx.query, ctx.project)}
    if len(parts) == 2 and ctx.method == "GET":
        if parts[1] not in sim.subnets:
            raise not_found("Subnet", parts[1])
        return 200, {"subnet": sim.subnets[parts[1]]}
    raise HTTPError(403, "The simulator's subnets are fixed.", kind="PolicyNotAuthorized")


def owned(ctx, items, ident, kind):
    item = items.get(ident)
    if item is None or item["project_id"] != ctx.project:
        raise not_found(kind, ident)
    return item


def neutron_ports(ctx, parts):
    if len(parts) == 1 and ctx.method == "GET":
        return 200, {"ports": neutron_filter(sim.ports.values(), ctx.query, ctx.project)}
    if len(parts) == 1 and ctx.method == "POST":
        body = ctx.json("port")
        if body.get("network_id") not in sim.networks:
            raise not_found("Network", body.get("network_id"))
        groups = body.get("security_groups")
        if groups is not None:
            for group_id in groups:
                owned(ctx, sim.security_groups, group_id, "Security group")
        port = make_port(ctx.project, body["network_id"], name=body.get("name", ""),
                         device_id=body.get("device_id", ""), device_owner=body.get("device_owner", ""),
                         groups=groups)
        port["_user_made"] = True
        port["description"] = body.get("description", "")
        return 201, {"port": public_view(port)}
    port = owned(ctx, sim.ports, parts[1], "Port")
    if ctx.method == "GET":
        return 200, {"port": public_view(port)}
    if ctx.method == "PUT":
        body = ctx.json("port")
        for key in ("name", "description", "security_groups", "admin_state_up", "device_id", "device_owner"):
            if key in body:
                port[key] = body[key]
        port["revision_number"] += 1
        return 200, {"port": public_view(port)}
    if ctx.method == "DELETE":
        for fip in sim.floatingips.values():
            if fip["port_id"] == port["id"]:
                fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
        del sim.ports[port["id"]]
        return 204, None
    raise HTTPError(405, "Method not allowed.")


def neutron_security_groups(ctx, parts):
    if len(parts) == 1 and ctx.method == "GET":
        groups = neutron_filter([group_body(g) for g in visible_groups(ctx.project)], ctx.query, ctx.project)
        return 200, {"security_groups": groups}
    if len(parts) == 1 and ctx.method == "POST":
        body = ctx.json("security_group")
        visible_groups(ctx.project)
        if count(sim.security_groups, ctx.project) >= sim.quotas["security_group"]:
            raise over_quota("security_group")
        group = {"id": new_id(), "name": body.get("name", ""), "description": body.get("description", ""),
                 "tenant_id": ctx.project, "project_id": ctx.project, "stateful": body.get("stateful", True),
                 "shared": False, "tags": [], "created_at": now(), "updated_at": now(), "revision_number": 1,
                 "_default": False}
        sim.security_groups[group["id"]] = group
        for ethertype in ("IPv4", "IPv6"):
            made = rule(ctx.project, group["id"], "egress", ethertype)
            sim.rules[made["id"]] = made
        return 201, {"security_group": group_body(group)}
    visible_groups(ctx.project)
    group = owned(ctx, sim.security_groups, parts[1], "Security group")
    if ctx.method == "GET":
        return 200, {"security_group": group_body(group)}
    if ctx.method == "PUT":
        body = ctx.json("security_group")
        for key in ("name", "description"):
            if key in body:
                group[key] = body[key]
        return 200, {"security_group": group_body(group)}
    if ctx.method == "DELETE":
        if group["_default"]:
            raise HTTPError(409, "Insufficient rights for removing default security group.",
                            kind="SecurityGroupCannotRemoveDefault")
        if any(group["id"] in p["security_groups"] for p in sim.ports.values()):
            raise HTTPError(409, f"Security Group {group['id']} in use.", kind="SecurityGroupInUse")
        for made in [r for r in sim.rules.values() if r["security_group_id"] == group["id"]]:
            del sim.rules[made["id"]]
        del sim.security_groups[group["id"]]
        return 204, None
    raise HTTPError(405, "Method not allowed.")


def neutron_rules(ctx, parts):
    visible_groups(ctx.project)
    if len(parts) == 1 and ctx.method == "GET":
        return 200, {"security_group_rules": neutron_filter(sim.rules.values(), ctx.query, ctx.project)}
    if len(parts) == 1 and ctx.method == "POST":
        body = ctx.json("security_group_rule")
        group = owned(ctx, sim.security_groups, body.get("security_group_id"), "Security group")
        if body.get("direction") not in ("ingress", "egress"):
            raise HTTPError(400, "Invalid input for direction.", kind="InvalidInput")
        if count(sim.rules, ctx.project) >= sim.quotas["security_group_rule"]:
            raise over_quota("security_group_rule")
        made = rule(ctx.project, group["id"], body["direction"], body.get("ethertype", "IPv4"),
                    body.get("protocol"), body.get("port_range_min"), body.get("port_range_max"),
                    body.get("remote_ip_prefix"), body.get("remote_group_id"), body.get("description", ""))
        keys = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
                "remote_group_id")
        for existing in sim.rules.values():
            if existing["security_group_id"] == group["id"] and all(existing[k] == made[k] for k in keys):
                raise HTTPError(409, f"Security group rule already exists. Rule id is {existing['id']}.",
                                kind="SecurityGroupRuleExists")
        sim.rules[made["id"]] = made
        return 201, {"security_group_rule": made}
    made = owned(ctx, sim.rules, parts[1], "Security group rule")
    if ctx.method == "GET":
        return 200, {"security_group_rule": made}
    if ctx.method == "DELETE":
        del sim.rules[made["id"]]
        return 204, None
    raise HTTPError(405, "Method not allowed.")


def associate(ctx, fip, port_id):
    if port_id is None:
        fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
        return
    port = owned(ctx, sim.ports, port_id, "Port")
    if port["network_id"] != PRIVATE_NET:
        raise HTTPError(404, f"External network {PUBLIC_NET} is not reachable from subnet "
                             f"{port['fixed_ips'][0]['subnet_id']}.", kind="ExternalGatewayForFloatingIPNotFound")
    for other in sim.floatingips.values():
        if other["port_id"] == port_id and other["id"] != fip["id"]:
            raise HTTPError(409, f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) with "
                                 f"port {port_id} using fixed IP {port['fixed_ips'][0]['ip_address']}, as that "
                                 f"fixed IP already has a floating IP on external network {PUBLIC_NET}.",
                            kind="FloatingIPPortAlreadyAssociated")
    fip.update(port_id=port_id, fixed_ip_address=port["fixed_ips"][0]["ip_address"],
               router_id="5f1e0b9a-0000-4000-8000-0000000000a1", status="ACTIVE")


def neutron_floatingips(ctx, parts):
    if len(parts) == 1 and ctx.method == "GET":
        return 200, {"floatingips": neutron_filter(sim.floatingips.values(), ctx.query, ctx.project)}
    if len(parts) == 1 and ctx.method == "POST":
        body = ctx.json("floatingip")
        network = sim.networks.get(body.get("floating_network_id"))
        if network is None:
            raise not_found("Network", body.get("floating_network_id"))
        if not network["router:external"]:
            raise HTTPError(400, f"Bad floatingip request: Network {network['id']} is not a valid external "
                                 f"network.", kind="BadRequest")
        if count(sim.floatingips, ctx.project) >= sim.quotas["floatingip"]:
            raise over_quota("floatingip")
        fip = {"id": new_id(), "floating_ip_address": body.get("floating_ip_address") or allocate_ip(PUBLIC_NET),
               "floating_network_id": network["id"], "router_id": None, "port_id": None, "fixed_ip_address": None,
               "status": "DOWN", "tenant_id": ctx.project, "project_id": ctx.project,
               "description": body.get("description", ""), "tags": [], "port_details": None,
               "dns_domain": "", "dns_name": "", "port_forwardings": [], "qos_policy_id": None,
               "created_at": now(), "updated_at": now(), "revision_number": 0}
        associate(ctx, fip, body.get("port_id"))
        sim.floatingips[fip["id"]] = fip
        return 201, {"floatingip": fip}
    fip = owned(ctx, sim.floatingips, parts[1], "Floating IP")
    if ctx.method == "GET":
        return 200, {"floatingip": fip}
    if ctx.method == "PUT":
        body = ctx.json("floatingip")
        if "port_id" in body:
            associate(ctx, fip, body["port_id"])
        if "description" in body:
            fip["description"] = body["description"]
        fip["revision_number"] += 1
        fip["updated_at"] = now()
        return 200, {"floatingip": fip}
    if ctx.method == "DELETE":
        del sim.floatingips[fip["id"]]
        return 204, None
    raise HTTPError(405, "Method not allowed.")


NEUTRON_COLLECTIONS = {  # URL collection -> (store, kind in messages)
    "networks": (lambda: sim.networks, "Network"), "subnets": (lambda: sim.subnets, "Subnet"),
    "ports": (lambda: sim.ports, "Port"), "security-groups": (lambda: sim.security_groups, "Security group"),
    "floatingips": (lambda: sim.floatingips, "Floating IP"),
}


def neutron_tags(ctx, parts):
    """/v2.0/{resources}/{id}/tags[/{tag}] (Neutron's tag extension)."""
    store, kind = NEUTRON_COLLECTIONS[parts[0]]
    item = store().get(parts[1])
    if item is None or item["project_id"] not in (ctx.project, ADMIN_PROJECT):
        raise not_found(kind, parts[1])
    if len(parts) == 3:
        if ctx.method == "GET":
            return 200, {"tags": list(item["tags"])}
        if ctx.method == "PUT":
            tags = ctx.json().get("tags")
            if not isinstance(tags, list):
                raise HTTPError(400, "Invalid input for tags.", kind="InvalidInput")
            item["tags"] = list(dict.fromkeys(tags))
            return 200, {"tags": list(item["tags"])}
        if ctx.method == "DELETE":
            item["tags"] = []
            return 204, None
    tag = urllib.parse.unquote(parts[3])
    if ctx.method == "GET":
        if tag not in item["tags"]:
            raise HTTPError(404, f"Tag {tag} could not be found.", kind="TagNotFound")
        return 204, None
    if ctx.method == "PUT":
        if tag not in item["tags"]:
            item["tags"].append(tag)
        return 201, None
    if ctx.method == "DELETE":
        if tag not in item["tags"]:
            raise HTTPError(404, f"Tag {tag} could not be found.", kind="TagNotFound")
        item["tags"].remove(tag)
        return 204, None
    raise HTTPError(405, "Method not allowed.")


def neutron_quotas(ctx, parts):
    keys = ("floatingip", "port", "security_group", "security_group_rule")
    quota = {k: sim.quotas[k] for k in keys}
    quota.update(network=100, subnet=100, router=10, rbac_policy=10, subnetpool=-1)
    return 200, {"quota": quota}


def neutron(ctx, parts):
    if not parts:
        raise HTTPError(404, "The resource could not be found.")
    if parts[-1].endswith(".json"):
        parts[-1] = parts[-1][:-5]
    if parts[0] in NEUTRON_COLLECTIONS and len(parts) >= 3 and parts[2] == "tags":
        return neutron_tags(ctx, parts)
    routes = {"networks": neutron_networks, "subnets": neutron_subnets, "ports": neutron_ports,
              "security-groups": neutron_security_groups, "security-group-rules": neutron_rules,
              "floatingips": neutron_floatingips, "quotas": neutron_quotas}
    if parts[0] == "extensions":
        return 200, {"extensions": [{"alias": a, "name": a, "description": "", "links": [], "updated": ""}
                                    for a in ("standard-attr-tag", "security-group", "router", "external-net",
                                              "quotas", "port-security", "binding", "fip-port-details")]}
    if parts[0] not in routes or len(parts) > 2:
        raise HTTPError(404, "The resource could not be found.")
    return routes[parts[0]](ctx, parts)


# ======================================================================= Cinder

VOLUME_TYPES = [
    {"id": "7a3b3c51-0000-4000-8000-0000000000c1", "name": "lvmdriver-1", "description": None, "is_public": True,
     "os-volume-type-access:is_public": True, "extra_specs": {"volume_backend_name": "lvmdriver-1"},
     "qos_specs_id": None},
    {"id": "7a3b3c51-0000-4000-8000-0000000000c2", "name": "__DEFAULT__", "description": "Default Volume Type",
     "is_public": True, "os-volume-type-access:is_public": True, "extra_specs": {}, "qos_specs_id": None},
]


def volume_quota_check(project, size):
    mine = [v for v in sim.volumes.values() if v["project_id"] == project]
    if len(mine) + 1 > sim.quotas["volumes"]:
        raise HTTPError(413, "VolumeLimitExceeded: Maximum number of volumes allowed (%d) exceeded for quota "
                             "'volumes'." % sim.quotas["volumes"])
    consumed = sum(v["size"] for v in mine)
    if consumed + size > sim.quotas["gigabytes"]:
        raise HTTPError(413, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                             "gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed."
                        % (size, sim.quotas["gigabytes"], consumed))


def make_volume(project, user, name, size, volume_type=None, snapshot_id=None, source_volid=None, metadata=None,
                description=None, status="creating", files=None):
    volume_quota_check(project, size)
    vtype = next((t for t in VOLUME_TYPES if volume_type in (t["name"], t["id"])), None)
    if volume_type is not None and vtype is None:
        raise HTTPError(404, f"Volume type with name {volume_type} could not be found.")
    vtype = vtype or VOLUME_TYPES[0]
    volume = {"id": new_id(), "name": name, "size": size, "status": status, "project_id": project,
              "user_id": user, "volume_type": vtype["name"], "volume_type_id": vtype["id"],
              "snapshot_id": snapshot_id, "source_volid": source_volid, "metadata": dict(metadata or {}),
              "description": description, "created_at": now(), "updated_at": now(), "_attachments": []}
    sim.volumes[volume["id"]] = volume
    if sim.region == "RegionOne":
        Backing.make_volume(volume, files)
    if status == "creating":
        sim.later(sim.delays["volume_create"], set_volume_status, volume["id"], "creating", "available")
    return volume


def volume_view(ctx, volume, detail=True):
    view = summary(ctx, "volumes", volume["id"], volume["name"])
    if not detail:
        return view
    attachments = [{"id": volume["id"], "attachment_id": a["attachment_id"], "volume_id": volume["id"],
                    "server_id": a["server_id"], "host_name": None, "device": a["device"],
                    "attached_at": a["attached_at"]} for a in volume["_attachments"]]
    view.update({
        "status": volume["status"], "size": volume["size"], "availability_zone": "nova",
        "created_at": volume["created_at"], "updated_at": volume["updated_at"], "attachments": attachments,
        "description": volume["description"], "volume_type": volume["volume_type"],
        "snapshot_id": volume["snapshot_id"], "source_volid": volume["source_volid"],
        "metadata": dict(volume["metadata"]), "user_id": volume["user_id"], "bootable": "false",
        "encrypted": False, "replication_status": None, "consistencygroup_id": None, "multiattach": False,
        "migration_status": None, "os-vol-tenant-attr:tenant_id": volume["project_id"],
    })
    if ctx.at_least(3, 13):
        view["group_id"] = None
    if ctx.at_least(3, 21):
        view["provider_id"] = None
    if ctx.at_least(3, 48):
        view.update(service_uuid=None, shared_targets=False)
    if ctx.at_least(3, 61):
        view["cluster_name"] = None
    if ctx.at_least(3, 63):
        view["volume_type_id"] = volume["volume_type_id"]
    if ctx.at_least(3, 65):
        view["consumes_quota"] = True
    return view


def volume_matches(ctx, volume):
    q = ctx.query
    if "name" in q and volume["name"] != q["name"][0]:
        return False
    if "status" in q and volume["status"] != q["status"][0]:
        return False
    if "metadata" in q:
        try:
            wanted = json.loads(q["metadata"][0].replace("'", '"'))
        except ValueError:
            raise HTTPError(400, "Invalid filter metadata")
        if any(volume["metadata"].get(k) != v for k, v in wanted.items()):
            return False
    return True


def cinder_volumes(ctx, parts):
    if parts in (["volumes"], ["volumes", "detail"]) and ctx.method == "GET":
        volumes = sorted((v for v in sim.volumes.values() if v["project_id"] == ctx.project),
                         key=lambda v: v["created_at"], reverse=True)
        return 200, paginate(
            ctx, [volume_view(ctx, v, len(parts) == 2) for v in volumes if volume_matches(ctx, v)], "volumes")
    if parts == ["volumes"] and ctx.method == "POST":
        body = ctx.json("volume")
        size = body.get("size")
        source = None
        if body.get("snapshot_id"):
            source = owned(ctx, sim.snapshots, body["snapshot_id"], "Snapshot")
        elif body.get("source_volid"):
            source = owned(ctx, sim.volumes, body["source_volid"], "Volume")
        if size is None and source is not None:
            size = source["size"] if "size" in source else 1
        if not isinstance(size, int) or size < 1:
            raise HTTPError(400, f"Invalid input received: Invalid input for field/attribute size. Value: {size}.")
        volume = make_volume(ctx.project, ctx.user, body.get("name"), size, body.get("volume_type"),
                             body.get("snapshot_id"), body.get("source_volid"), body.get("metadata"),
                             body.get("description"))
        return 202, {"volume": volume_view(ctx, volume)}
    volume = sim.volumes.get(parts[1])
    if volume is None or volume["project_id"] != ctx.project:
        raise HTTPError(404, f"Volume {parts[1]} could not be found.")
    if len(parts) == 2 and ctx.method == "GET":
        return 200, {"volume": volume_view(ctx, volume)}
    if len(parts) == 2 and ctx.method == "PUT":
        body = ctx.json("volume")
        for key in ("name", "description", "metadata"):
            if key in body:
                volume[key] = body[key]
        return 200, {"volume": volume_view(ctx, volume)}
    if len(parts) == 2 and ctx.method == "DELETE":
        if volume["status"] not in ("available", "error", "error_restoring", "error_extending", "error_managing") \
                or volume["_attachments"] or any(s["volume_id"] == volume["id"] for s in sim.snapshots.values()):
            raise HTTPError(400, "Invalid volume: Volume status must be available or error or error_restoring or "
                                 "error_extending or error_managing and must not be migrating, attached, belong to "
                                 "a group, have snapshots, awaiting a transfer, or be disassociated from snapshots "
                                 "after volume transfer.")
        volume.update(status="deleting", updated_at=now())
        sim.later(sim.delays["volume_delete"], lambda: (sim.volumes.pop(volume["id"], None),
                                                         Backing.delete_volume(volume["id"])))
        return 202, None
    if parts[2:] == ["action"] and ctx.method == "POST":
        body = ctx.json()
        if "os-update_readonly_flag" in body:
            readonly = body["os-update_readonly_flag"].get("readonly")
            if not isinstance(readonly, bool):
                raise HTTPError(400, "Invalid input received: Invalid value for 'readonly'.")
            volume["metadata"]["readonly"] = str(readonly)
            return 202, None
        if "os-extend" in body:
            new_size = body["os-extend"].get("new_size")
            if not isinstance(new_size, int) or new_size <= volume["size"]:
                raise HTTPError(400, "Invalid input received: New size for extend must be greater than current size.")
            volume["size"] = new_size
            return 202, None
        raise HTTPError(400, f"There is no such action: {next(iter(body), None)}")
    if parts[2:] == ["metadata"] and ctx.method == "GET":
        return 200, {"metadata": dict(volume["metadata"])}
    if parts[2:] == ["metadata"] and ctx.method in ("POST", "PUT"):
        metadata = ctx.json().get("metadata", {})
        volume["metadata"] = dict(volume["metadata"], **metadata) if ctx.method == "POST" else dict(metadata)
        return 200, {"metadata": dict(volume["metadata"])}
    raise HTTPError(404, "The resource could not be found.")


def snapshot_view(snapshot):
    return {key: snapshot[key] for key in ("id", "name", "status", "size", "volume_id", "description",
                                           "created_at", "updated_at", "metadata")}


def cinder_snapshots(ctx, parts):
    if parts in (["snapshots"], ["snapshots", "detail"]) and ctx.method == "GET":
        return 200, {"snapshots": [snapshot_view(s) for s in sim.snapshots.values()
                                   if s["project_id"] == ctx.project]}
    if parts == ["snapshots"] and ctx.method == "POST":
        body = ctx.json("snapshot")
        volume = sim.volumes.get(body.get("volume_id"))
        if volume is None or volume["project_id"] != ctx.project:
            raise HTTPError(404, f"Volume {body.get('volume_id')} could not be found.")
        if volume["status"] != "available" and not body.get("force"):
            raise HTTPError(400, "Invalid volume: Volume must be available or in-use.")
        if count(sim.snapshots, ctx.project) >= sim.quotas["snapshots"]:
            raise HTTPError(413, "SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) exceeded"
                            % sim.quotas["snapshots"])
        snapshot = {"id": new_id(), "name": body.get("name"), "status": "creating", "size": volume["size"],
                    "volume_id": volume["id"], "description": body.get("description"), "created_at": now(),
                    "updated_at": now(), "metadata": dict(body.get("metadata", {})), "project_id": ctx.project}
        sim.snapshots[snapshot["id"]] = snapshot
        sim.later(sim.delays["volume_create"], lambda: snapshot.update(status="available"))
        return 202, {"snapshot": snapshot_view(snapshot)}
    snapshot = sim.snapshots.get(parts[1])
    if snapshot is None or snapshot["project_id"] != ctx.project:
        raise HTTPError(404, f"Snapshot {parts[1]} could not be found.")
    if ctx.method == "GET":
        return 200, {"snapshot": snapshot_view(snapshot)}
    if ctx.method == "DELETE":
        del sim.snapshots[snapshot["id"]]
        return 202, None
    raise HTTPError(405, "The method specified is not allowed for this resource.")


def cinder_limits(ctx, parts):
    mine = [v for v in sim.volumes.values() if v["project_id"] == ctx.project]
    q = sim.quotas
    return 200, {"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": q["volumes"], "maxTotalVolumeGigabytes": q["gigabytes"],
        "maxTotalSnapshots": q["snapshots"], "maxTotalBackups": 10, "maxTotalBackupGigabytes": 1000,
        "totalVolumesUsed": len(mine), "totalGigabytesUsed": sum(v["size"] for v in mine),
        "totalSnapshotsUsed": count(sim.snapshots, ctx.project), "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0}}}


def cinder(ctx, parts):
    if not parts:
        raise HTTPError(404, "The resource could not be found.")
    if parts[0] in ("volumes",):
        return cinder_volumes(ctx, parts)
    if parts[0] == "snapshots":
        return cinder_snapshots(ctx, parts)
    if parts[0] == "limits":
        return cinder_limits(ctx, parts)
    if parts[0] == "types" and ctx.method == "GET":
        if len(parts) == 1:
            return 200, {"volume_types": VOLUME_TYPES}
        for vtype in VOLUME_TYPES:
            if parts[1] in (vtype["id"], vtype["name"]) or (parts[1] == "default" and vtype is VOLUME_TYPES[0]):
                return 200, {"volume_type": vtype}
        raise HTTPError(404, f"Volume type {parts[1]} could not be found.")
    raise HTTPError(404, "The resource could not be found.")


def cinder_version(root):
    return {"id": "v3.0", "status": "CURRENT", "version": "3.70", "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z", "links": [{"rel": "self", "href": root + "/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


# ======================================================================= Glance

def image_visible(ctx, image):
    return image["visibility"] in ("public", "community") or image["owner"] == ctx.project


def image_matches(ctx, image):
    for key, values in ctx.query.items():
        if key in ("limit", "marker", "sort", "sort_key", "sort_dir", "member_status"):
            continue
        if key == "tag":
            if not set(values) <= set(image["tags"]):
                return False
        elif key == "visibility":
            if values[0] != "all" and image["visibility"] != values[0]:
                return False
        elif key in ("name", "status", "disk_format", "container_format", "owner", "id") or key in image:
            value = values[0]
            if value.startswith("in:"):
                if str(image.get(key)) not in value[3:].split(","):
                    return False
            elif str(image.get(key)) != value:
                return False
    return True


def glance_images(ctx, parts):
    if parts == ["images"] and ctx.method == "GET":
        images = [public_view(i) for i in sim.images.values() if image_visible(ctx, i) and image_matches(ctx, i)]
        return 200, dict(paginate(ctx, images, "images", style="glance"), first="/v2/images",
                         schema="/v2/schemas/images")
    if parts == ["images"] and ctx.method == "POST":
        body = ctx.json()
        image_id = body.pop("id", None) or new_id()
        if image_id in sim.images:
            raise HTTPError(409, f"Image with identifier {image_id} already exists!")
        image = sim.image_defaults(image_id, body.pop("name", None), ctx.project)
        for key, value in body.items():
            if key in ("status", "self", "file", "schema", "size", "checksum", "created_at", "updated_at"):
                raise HTTPError(403, f"Attribute '{key}' is read-only.")
            image[key] = value
        sim.images[image_id] = image
        ctx.headers["Location"] = f"{ctx.base}/v2/images/{image_id}"
        return 201, public_view(image)
    image = sim.images.get(parts[1]) if len(parts) >= 2 else None
    if image is None or not image_visible(ctx, image):
        raise HTTPError(404, f"No image found with ID {parts[1] if len(parts) > 1 else ''}")
    if len(parts) == 2 and ctx.method == "GET":
        return 200, public_view(image)
    if len(parts) == 2 and ctx.method == "PATCH":
        for op in ctx.json():
            key = op.get("path", "/").lstrip("/")
            if op.get("op") in ("add", "replace"):
                image[key] = op.get("value")
            elif op.get("op") == "remove":
                image.pop(key, None)
        image["updated_at"] = now()
        return 200, public_view(image)
    if len(parts) == 2 and ctx.method == "DELETE":
        if image.get("_preloaded") or image["owner"] != ctx.project:
            raise HTTPError(403, "You are not permitted to delete this image.")
        if image.get("_file"):
            try:
                os.unlink(image["_file"])
            except OSError:
                pass
        del sim.images[image["id"]]
        return 204, None
    if parts[2:] == ["file"] and ctx.method == "GET":
        if not image.get("_file"):
            return 204, None
        return 200, ("file", image["_file"])
    raise HTTPError(404, "The resource could not be found.")


def glance_upload(handler, image_id, project):
    """PUT /v2/images/{id}/file, streamed to a temporary file (chunked or Content-Length), never whole in memory.
    Runs without the lock while the data comes in."""
    with sim.lock:
        image = sim.images.get(image_id)
        if image is None or image["owner"] != project:
            raise HTTPError(404, f"No image found with ID {image_id}")
        if image["status"] != "queued":
            raise HTTPError(409, f"Image status transition from {image['status']} to saving is not allowed")
        if not image.get("disk_format") or not image.get("container_format"):
            raise HTTPError(400, "Properties disk_format, container_format must be set prior to saving data.")
        image["status"] = "saving"
    md5, sha512, size = hashlib.md5(), hashlib.sha512(), 0
    fd, path = tempfile.mkstemp(dir=sim.upload_dir, prefix="image-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in handler.body_chunks():
                md5.update(chunk)
                sha512.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except Exception:
        with sim.lock:
            image["status"] = "queued"
        os.unlink(path)
        raise
    with sim.lock:
        image.update(status="active", size=size, checksum=md5.hexdigest(), os_hash_algo="sha512",
                     os_hash_value=sha512.hexdigest(), updated_at=now(), _file=path)
    return 204, None


def glance_versions(root):
    return [{"id": f"v2.{minor}", "status": "CURRENT" if minor == 16 else "SUPPORTED",
             "links": [{"rel": "self", "href": root + "/v2/"}]} for minor in (16, 15, 12, 9, 7, 6, 5, 4, 3, 2, 1, 0)]


def glance(ctx, parts):
    if parts and parts[0] == "images":
        return glance_images(ctx, parts)
    if parts and parts[0] == "schemas":
        return 200, {"name": parts[-1], "properties": {}, "additionalProperties": {"type": "string"}}
    raise HTTPError(404, "The resource could not be found.")


# ======================================================================= HTTP

SERVICE_PREFIXES = {"compute": "compute", "network": "network", "volume": "volume", "image": "image"}


def parse_microversion(handler, service, minimum, maximum, legacy=None):
    """The requested microversion from OpenStack-API-Version (or the legacy header), None when out of range."""
    asked = None
    for value in handler.headers.get_all("OpenStack-API-Version") or []:
        for item in value.split(","):
            fields = item.split()
            if len(fields) == 2 and fields[0].lower() == service:
                asked = fields[1]
    if asked is None and legacy:
        asked = handler.headers.get(legacy)
    if asked is None:
        return minimum, None
    if asked.strip().lower() == "latest":
        return maximum, None
    version = parse_version(asked)
    if version is None:
        return None, f"Invalid API version request string {asked}"
    if not minimum <= version <= maximum:
        return None, (f"Version {asked} is not supported by the API. Minimum is {minimum[0]}.{minimum[1]} and "
                      f"maximum is {maximum[0]}.{maximum[1]}.")
    return version, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openstack-sim"

    def log_message(self, *args):
        pass  # quiet: the tests read /_sim/requests

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_HEAD(self):
        self.handle_any("HEAD")

    # ----- bodies

    def body_chunks(self):
        """The request body, piece by piece: Content-Length or chunked transfer encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                while size:
                    data = self.rfile.read(min(size, 1 << 20))
                    if not data:
                        raise ConnectionError("the client closed the connection mid-body")
                    size -= len(data)
                    yield data
                self.rfile.readline(3)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(remaining, 1 << 20))
                if not data:
                    raise ConnectionError("the client closed the connection mid-body")
                remaining -= len(data)
                yield data

    def read_body(self):
        if self.body is None:
            self.body = b"".join(self.body_chunks())
        return self.body

    def send(self, status, body=None, content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("X-Openstack-Request-Id", "req-" + new_id())
        if data or status not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_file(self, path, headers):
        size = os.path.getsize(path)
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as source:
            while True:
                data = source.read(1 << 20)
                if not data:
                    break
                self.wfile.write(data)

    # ----- dispatch

    def handle_any(self, method):
        self.body = None
        url = urllib.parse.urlsplit(self.path)
        path = re.sub(r"/+", "/", url.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            if path.startswith("/_sim/"):
                return self.control(method, path, query)
            self.serve(method, path, query)
        except HTTPError as error:
            # Outside any service (an unknown prefix): a plain JSON error.
            self.send(error.status, error.body or {"error": {"code": error.status, "message": error.message}},
                      headers=error.headers)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def serve(self, method, path, query):
        parts = [p for p in path.split("/") if p]
        region, interface, prefix = "RegionOne", "public", []
        if parts[:1] == ["regiontwo"]:
            region, prefix, parts = "RegionTwo", prefix + ["regiontwo"], parts[1:]
        if parts[:1] == ["internal"]:
            interface, prefix, parts = "internal", prefix + ["internal"], parts[1:]
        self.prefix = "/" + "/".join(prefix) if prefix else ""
        service = parts[0] if parts else None
        if service not in SERVICE_PREFIXES:
            raise HTTPError(404, f"no service at {path}")
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        root = f"http://{host}{self.prefix}/{service}"
        rest = parts[1:]
        record = {"method": method, "path": path, "query": urllib.parse.urlencode(query, doseq=True),
                  "region": region, "interface": interface,
                  "prefix": self.prefix, "service": service,
                  "openstack_api_version": ", ".join(self.headers.get_all("OpenStack-API-Version") or []),
                  "x_openstack_nova_api_version": self.headers.get("X-OpenStack-Nova-API-Version", "")}
        with LOG_LOCK:
            REQUESTS.append(record)
        CURRENT.sim = SIMS[region]
        # Version discovery documents need no token (as behind keystonemiddleware's exemptions in devstack).
        discovery = self.discovery(service, rest, root)
        if discovery is not None and method == "GET":
            self.read_body()
            return self.send(*discovery)
        body_is_stream = service == "image" and method == "PUT" and rest[-1:] == ["file"]
        if not body_is_stream:
            self.read_body()
        try:
            self.check_fault(method, path)
            auth = sim.authenticate(self.headers.get("X-Auth-Token"))
            if auth is None:
                keystone = sim.keystone.rsplit("/v3", 1)[0]
                raise HTTPError(401, "The request you have made requires authentication.", headers={
                    "WWW-Authenticate": f"Keystone uri=\"{keystone}\""}, body={"error": {
                        "code": 401, "title": "Unauthorized",
                        "message": "The request you have made requires authentication."}})
            project, user = auth
            if service == "compute":
                base = root + "/v2.1"
                rest = rest[1:] if rest[:1] == ["v2.1"] else rest
                ctx = Context(self, method, service, rest, query, self.body, base, project, user)
                version, problem = parse_microversion(self, "compute", NOVA_MIN, NOVA_MAX,
                                                      "X-OpenStack-Nova-API-Version")
                if problem:
                    raise HTTPError(406 if "not supported" in problem else 400, problem)
                ctx.version = version
                text = f"{version[0]}.{version[1]}"
                ctx.headers.update({"OpenStack-API-Version": f"compute {text}",
                                    "X-OpenStack-Nova-API-Version": text,
                                    "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"})
                handler = nova
            elif service == "network":
                if rest[:1] != ["v2.0"]:
                    raise HTTPError(404, "The resource could not be found.")
                rest = rest[1:]
                ctx = Context(self, method, service, rest, query, self.body, root + "/v2.0", project, user)
                handler = neutron
            elif service == "volume":
                if rest[:1] != ["v3"] or len(rest) < 2:
                    raise HTTPError(404, "The resource could not be found.")
                if rest[1] != project:
                    raise HTTPError(403, f"Policy doesn't allow this operation: project {rest[1]} is not the "
                                         "token's project.")
                base = f"{root}/v3/{project}"
                rest = rest[2:]
                ctx = Context(self, method, service, rest, query, self.body, base, project, user)
                version, problem = parse_microversion(self, "volume", CINDER_MIN, CINDER_MAX)
                if problem:
                    raise HTTPError(406 if "not supported" in problem else 400, problem)
                ctx.version = version
                ctx.headers.update({"OpenStack-API-Version": f"volume {version[0]}.{version[1]}",
                                    "Vary": "OpenStack-API-Version"})
                handler = cinder
            else:
                if rest[:1] != ["v2"]:
                    raise HTTPError(404, "The resource could not be found.")
                rest = rest[1:]
                if body_is_stream and len(rest) == 3 and rest[0] == "images":
                    status, body = glance_upload(self, rest[1], project)
                    return self.send(status, body)
                ctx = Context(self, method, service, rest, query, self.body, root, project, user)
                handler = glance
            with sim.lock:
                status, body = handler(ctx, list(rest))
            self.check_fault(method, path, after=True)
            if isinstance(body, tuple) and body[0] == "file":
                return self.send_file(body[1], ctx.headers)
            self.send(status, body, headers=ctx.headers)
        except HTTPError as error:
            if body_is_stream and self.body is None:
                self.close_connection = True  # the unread body cannot be skipped
            if error.body is not None:
                return self.send(error.status, error.body, headers=error.headers)
            content_type, data = error_body(service, error.status, error.message, error.kind)
            headers = dict(error.headers)
            if service == "compute" and ctx_version_header(self):
                headers.update(ctx_version_header(self))
            self.send(error.status, data, content_type=content_type, headers=headers)

    def discovery(self, service, rest, root):
        """(status, body) of a version document at a service's root, else None."""
        if service == "compute" and rest == []:
            return 300, {"versions": [nova_versions(root)]}
        if service == "compute" and rest == ["v2.1"]:
            return 200, {"version": nova_versions(root)}
        if service == "network" and rest in ([], ["v2.0"]):
            versions = [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": root + "/v2.0/"}]}]
            return (300 if not rest else 200), ({"versions": versions} if not rest else {"resources": [
                {"name": n, "collection": c, "links": [{"rel": "self", "href": f"{root}/v2.0/{c}"}]}
                for n, c in (("network", "networks"), ("subnet", "subnets"), ("port", "ports"))]})
        if service == "volume" and rest in ([], ["v3"]):
            return 300, {"versions": [cinder_version(root)]}
        if service == "image" and rest in ([], ["v2"], ["versions"]):
            return 300, {"versions": glance_versions(root)}
        return None

    def check_fault(self, method, path, after=False):
        """Answers with an injected fault instead of the service: before acting on the request, or with
        {"after": true} after acting on it (the client then does not know that it was done, as when an answer is
        lost)."""
        with LOG_LOCK:
            for fault in FAULTS:
                if fault["count"] == 0 or bool(fault.get("after", False)) != after:
                    continue
                if fault.get("method", method).upper() != method or not re.search(fault.get("path", ""), path):
                    continue
                fault["count"] -= 1
                status = fault["status"]
                message = fault.get("message") or {409: "Conflict injected by the simulator.",
                                                   429: "Rate limit exceeded (injected by the simulator).",
                                                   }.get(status, f"Fault injected by the simulator ({status}).")
                kind = fault.get("type")
                raise HTTPError(status, message, headers=fault.get("headers", {}), kind=kind)

    # ----- control API

    def control(self, method, path, query):
        """The tests' control API. `?region=RegionTwo` picks one region; without it, state lists both, and
        quotas, server errors, delays and reset apply to both (volumes go to RegionOne)."""
        body = json.loads(self.read_body() or b"{}")
        region = query.get("region", [None])[0]
        if region is not None and region not in SIMS:
            return self.send(400, {"error": f"unknown region {region}; known: {sorted(SIMS)}"})
        regions = [SIMS[region]] if region else list(SIMS.values())
        if path == "/_sim/requests" and method == "GET":
            with LOG_LOCK:
                return self.send(200, {"requests": list(REQUESTS)})
        if path == "/_sim/state" and method == "GET":
            merged = {}
            for one in regions:
                with one.lock:
                    for kind, items in region_state(one).items():
                        merged.setdefault(kind, []).extend(dict(item, region=one.region) for item in items)
            return self.send(200, merged)
        if path == "/_sim/faults" and method == "POST":
            unknown = set(body.get("delays", {})) - set(DEFAULT_DELAYS) - {"server_build"}
            if unknown:
                return self.send(400, {"error": f"unknown delays {sorted(unknown)}"})
            with LOG_LOCK:
                if "status" in body:
                    FAULTS.append(dict(body, count=body.get("count", 1)))
            for one in regions:
                with one.lock:
                    if "server_error" in body:
                        one.server_errors.append(dict(body["server_error"]))
                    one.delays.update({k: float(v) for k, v in body.get("delays", {}).items()})
            return self.send(200, {"faults": len(FAULTS)})
        if path == "/_sim/quotas" and method == "POST":
            unknown = set(body) - set(DEFAULT_QUOTAS)
            if unknown:
                return self.send(400, {"error": f"unknown quotas {sorted(unknown)}; known: {sorted(DEFAULT_QUOTAS)}"})
            for one in regions:
                with one.lock:
                    one.quotas.update(body)
            return self.send(200, {"quotas": regions[0].quotas})
        if path == "/_sim/volumes" and method == "POST":
            CURRENT.sim = SIMS[region or "RegionOne"]
            with sim.lock:
                project = body.get("project_id") or next((p for p, _, _ in sim.tokens.values()), None)
                if project is None:
                    return self.send(400, {"error": "no project known yet: give project_id"})
                try:
                    volume = make_volume(project, body.get("user_id", ""), body.get("name"),
                                         int(body.get("size", 1)), metadata=body.get("metadata"),
                                         status="available", files=body.get("files"))
                except HTTPError as error:
                    return self.send(error.status, {"error": error.message})
                return self.send(201, {"id": volume["id"], "project_id": project})
        if path == "/_sim/cleanup" and method == "POST":
            # Before the simulator is killed: the real nodes and loop devices behind servers and volumes go.
            one = SIMS["RegionOne"]
            CURRENT.sim = one
            with one.lock:
                for server in one.servers.values():
                    if server.get("_node"):
                        try:
                            Backing.node("delete", server["_node"])
                        except RuntimeError as error:
                            print(f"deleting node {server['_node']}: {error}", file=sys.stderr, flush=True)
                        server["_node"] = None
                Backing.cleanup()
            import shutil
            for each in SIMS.values():
                shutil.rmtree(each.upload_dir, ignore_errors=True)
            return self.send(200, {"cleaned": True})
        if path == "/_sim/reset" and method == "POST":
            with LOG_LOCK:
                REQUESTS.clear()
                FAULTS.clear()
            for one in regions:
                one.reset()
            return self.send(200, {"reset": True})
        self.send(404, {"error": f"no control endpoint {method} {path}"})


def ctx_version_header(handler):
    version, _ = parse_microversion(handler, "compute", NOVA_MIN, NOVA_MAX, "X-OpenStack-Nova-API-Version")
    if version is None:
        return {}
    text = f"{version[0]}.{version[1]}"
    return {"OpenStack-API-Version": f"compute {text}", "X-OpenStack-Nova-API-Version": text}


def region_state(self):
    """Every resource the tests made in one region, by kind (not the preloaded ones, nor default security
    groups)."""
    CURRENT.sim = self  # server_addresses reads this region's ports
    def servers():
        return [{"id": s["id"], "name": s["name"], "status": s["status"], "task_state": s["task_state"],
                 "project_id": s["project_id"], "host": s["_host"] or "", "key_name": s["key_name"],
                 "tags": list(s["tags"]), "metadata": dict(s["metadata"]), "user_data": s["user_data"],
                 "flavor_id": s["flavor_id"], "image_id": s["image_id"], "fault": s.get("fault"),
                 "prefix": s["_prefix"], "addresses": server_addresses(s)} for s in self.servers.values()]
    return {
        "servers": servers(),
        "ports": [public_view(p) for p in self.ports.values()],
        "floatingips": list(self.floatingips.values()),
        "security_groups": [group_body(g) for g in self.security_groups.values() if not g["_default"]],
        "keypairs": [{"name": k["name"], "user_id": k["user_id"], "fingerprint": k["fingerprint"]}
                     for k in self.keypairs.values()],
        "server_groups": [dict(g) for g in self.server_groups.values()],
        "volumes": [{k: v for k, v in vol.items() if not k.startswith("_")} for vol in self.volumes.values()],
        "attachments": [a for v in self.volumes.values() for a in v["_attachments"]],
        "snapshots": list(self.snapshots.values()),
        "images": [public_view(i) for i in self.images.values() if not i.get("_preloaded")],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keystone", required=True, help="Keystone's v3 URL, e.g. http://127.0.0.1:5000/v3")
    parser.add_argument("--hosts", help="hosts.json of scripts/testbed/ssh-hosts.sh: servers land on these hosts")
    parser.add_argument("--authorized-keys", help="file that receives the servers' keypairs (cloud-init's part)")
    parser.add_argument("--build-seconds", type=float, default=1.0)
    parser.add_argument("--node-script", help="the local provider's node script: servers become real nodes")
    parser.add_argument("--node-dir", help="the node script's directory (its authorized_keys takes the keypairs)")
    parser.add_argument("--node-bridge", default="dctlos0")
    parser.add_argument("--node-subnet", default="10.233.0")
    parser.add_argument("--default-user", help="cloud-init's default user on every node (passwordless sudo)")
    parser.add_argument("--extra-network", action="append", default=[], metavar="NAME=CIDR",
                        help="another shared project network with one subnet, e.g. storage=10.0.1.0/24")
    parser.add_argument("--page-size", type=int, help="the most items a list gives (Nova, Cinder 1000; Glance 25)")
    parser.add_argument("--block-devices", help="a directory: volumes become sparse files, attached as loop devices")
    args = parser.parse_args()
    if args.page_size:
        PAGE_SIZE.update({service: args.page_size for service in PAGE_SIZE})
    if args.node_script:
        Backing.node_script = ["bash", args.node_script, args.node_dir, args.node_bridge, args.node_subnet]
        Backing.node_dir = args.node_dir
        Backing.user = args.default_user
        os.makedirs(args.node_dir, exist_ok=True)
        args.authorized_keys = args.authorized_keys or os.path.join(args.node_dir, "authorized_keys")
    if args.block_devices:
        Backing.block_dir = args.block_devices
        os.makedirs(args.block_devices, exist_ok=True)
    hosts = None
    if args.hosts:
        with open(args.hosts) as source:
            hosts = json.load(source)["hosts"]
    # RegionOne owns the host pool; RegionTwo's servers take addresses of its private network.
    SIMS["RegionOne"] = Sim("RegionOne", args.keystone, hosts, args.authorized_keys, args.build_seconds)
    SIMS["RegionTwo"] = Sim("RegionTwo", args.keystone, None, None, args.build_seconds)
    if args.node_script:  # the nodes' addresses come from their bridge's subnet: the private subnet says so
        SIMS["RegionOne"].subnets[PRIVATE_SUBNET] = SIMS["RegionOne"].subnet(
            PRIVATE_SUBNET, "private-subnet", PRIVATE_NET, f"{args.node_subnet}.0/24")
    for index, spec in enumerate(args.extra_network):
        name, _, cidr = spec.partition("=")
        net_id, subnet_id = f"5f1e0b9a-0000-4000-8000-0000000001{index:02d}", f"5f1e0b9a-0000-4000-8000-0000000002{index:02d}"
        for one in SIMS.values():
            one.networks[net_id] = one.network(net_id, name, False, subnet_id)
            one.subnets[subnet_id] = one.subnet(subnet_id, name + "-subnet", net_id, cidr)
            one.next_ip[net_id] = 10
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        import shutil
        Backing.cleanup()
        for one in SIMS.values():
            shutil.rmtree(one.upload_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
