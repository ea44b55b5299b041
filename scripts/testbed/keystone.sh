#!/usr/bin/env bash
# A real Keystone (Debian python3-keystone) for the OpenStack provider's tests, in front of the
# Nova/Neutron/Cinder/Glance simulator (openstack-sim.py).
#
#   keystone.sh up --dir DIR --port K --catalog-url http://127.0.0.1:SIMPORT [--token-expiration SECONDS]
#   keystone.sh down --dir DIR
#
# `up` copies a migrated, bootstrapped database (admin; project `research` in domain Default; user `tech` with
# the member role on it) from a template directory made once per Keystone version
# (~/.cache/deployctl/keystone-VERSION), writes the service catalog into the copy with SQL (SQLite refuses a
# second catalog write while keystone-wsgi-public runs: "database is locked"), starts keystone-wsgi-public on
# 127.0.0.1:K in the background, waits until /v3 answers and creates an application credential for `tech`.
#
# Files in DIR: keystone.conf, keystone.db, fernet-keys/, credential-keys/, keystone.log, keystone.pid,
# credentials.json ({user, password, project, domain, admin_password}) and appcred.json ({id, secret, user_id,
# project_id}), both 0600.
set -euo pipefail

PY=/usr/bin/python3 # Debian's python3-* packages import only under the system interpreter
MANAGE=/usr/bin/keystone-manage
WSGI=/usr/bin/keystone-wsgi-public

die() {
    echo "keystone.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: keystone.sh up --dir DIR --port K --catalog-url URL [--token-expiration SECONDS]" >&2
    echo "       keystone.sh down --dir DIR" >&2
    exit 2
}

# Prints the last lines of Keystone's log (set-up or server) and fails.
fail_with_log() {
    echo "keystone.sh: $1" >&2
    for log in "$2"/keystone.log "$2"/manage.log; do
        [ -f "$log" ] && { echo "--- tail of $log" >&2; tail -n 40 "$log" >&2; }
    done
    exit 1
}

# keystone.conf for DIR with the given token lifetime.
write_conf() {
    local dir=$1 expiration=$2
    cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
expiration = $expiration
[fernet_tokens]
key_repository = $dir/fernet-keys
max_active_keys = 3
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[identity]
password_hash_rounds = 4
[oslo_policy]
enforce_new_defaults = false
enforce_scope = false
EOF
}

# The template: migrated database, keys, the admin from `bootstrap`, then project research and user tech (member)
# made with Keystone's own managers, in one Python process with no server running.
make_template() {
    local template=$1 work
    work=$(mktemp -d "${template}.tmp.XXXXXX")
    local admin_password tech_password
    admin_password=$($PY -c 'import secrets; print(secrets.token_urlsafe(18))')
    tech_password=$($PY -c 'import secrets; print(secrets.token_urlsafe(18))')
    write_conf "$work" 3600
    mkdir -p "$work/fernet-keys" "$work/credential-keys"
    {
        $MANAGE --config-file "$work/keystone.conf" db_sync &&
            $MANAGE --config-file "$work/keystone.conf" fernet_setup \
                --keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
            $MANAGE --config-file "$work/keystone.conf" credential_setup \
                --keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
            $MANAGE --config-file "$work/keystone.conf" bootstrap --bootstrap-password "$admin_password" \
                --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin &&
            TECH_PASSWORD=$tech_password $PY - "$work/keystone.conf" <<'EOF'
import os, sys, uuid
import keystone.conf
from keystone.common import provider_api, sql
from keystone.common import driver_hints
from keystone.server import backends

CONF = keystone.conf.CONF
keystone.conf.configure()
sql.initialize()
CONF(args=[], project="keystone", default_config_files=[sys.argv[1]])
backends.load_backends()
P = provider_api.ProviderAPIs
project_id = uuid.uuid4().hex
P.resource_api.create_project(project_id, {
    "id": project_id, "name": "research", "domain_id": "default", "parent_id": "default",
    "is_domain": False, "enabled": True, "description": "deployctl test project"})
user = P.identity_api.create_user({
    "name": "tech", "domain_id": "default", "enabled": True, "password": os.environ["TECH_PASSWORD"]})
hints = driver_hints.Hints()
hints.add_filter("name", "member")
member = P.role_api.list_roles(hints)[0]
P.assignment_api.add_role_to_user_and_project(user["id"], project_id, member["id"])
EOF
    } >"$work/manage.log" 2>&1 || fail_with_log "building the Keystone template failed" "$work"
    umask 077
    $PY -c 'import json,sys; print(json.dumps({"user": "tech", "password": sys.argv[2], "project": "research",
"domain": "Default", "admin_password": sys.argv[1]}))' "$admin_password" "$tech_password" >"$work/credentials.json"
    rm -f "$work/keystone.conf" "$work/keystone.log"
    # Another bed may have built the same template meanwhile: the first rename wins.
    mv -T "$work" "$template" 2>/dev/null || rm -rf "$work"
}

# The catalog, written into DIR's database before the server starts: identity, and compute, network, volumev3,
# block-storage and image at the simulator's prefixes: public and internal (/internal) in RegionOne, public in
# RegionTwo (/regiontwo).
seed_catalog() {
    local dir=$1 port=$2 sim=$3
    $PY - "$dir/keystone.db" "$port" "$sim" <<'EOF'
import json, sqlite3, sys, uuid
db, port, sim = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
services = [  # type, name, path under a prefix
    ("compute", "nova", "/compute/v2.1"),
    ("network", "neutron", "/network"),
    ("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
    ("block-storage", "cinder", "/volume/v3/$(project_id)s"),
    ("image", "glance", "/image"),
]
connection = sqlite3.connect(db)
c = connection.cursor()
for region in ("RegionOne", "RegionTwo"):
    c.execute("INSERT OR IGNORE INTO region (id, description, extra) VALUES (?, '', '{}')", (region,))
def endpoint(service_id, interface, url, region):
    c.execute("INSERT INTO endpoint (id, interface, service_id, url, extra, enabled, region_id) "
              "VALUES (?, ?, ?, ?, '{}', 1, ?)", (uuid.uuid4().hex, interface, service_id, url, region))
def service(type_, name):
    service_id = uuid.uuid4().hex
    c.execute("INSERT INTO service (id, type, extra, enabled) VALUES (?, ?, ?, 1)",
              (service_id, type_, json.dumps({"name": name})))
    return service_id
identity = service("identity", "keystone")
for region in ("RegionOne", "RegionTwo"):
    for interface in ("public", "internal", "admin"):
        endpoint(identity, interface, f"http://127.0.0.1:{port}/v3", region)
for type_, name, path in services:
    service_id = service(type_, name)
    endpoint(service_id, "public", sim + path, "RegionOne")
    endpoint(service_id, "internal", sim + "/internal" + path, "RegionOne")
    endpoint(service_id, "public", sim + "/regiontwo" + path, "RegionTwo")
    endpoint(service_id, "internal", sim + "/regiontwo/internal" + path, "RegionTwo")
connection.commit()
EOF
}

# Waits until the server answers /v3 (it is gone: fail with its log).
wait_ready() {
    local dir=$1 port=$2 pid=$3
    for _ in $(seq 1 1200); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/v3" 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || fail_with_log "keystone-wsgi-public exited before answering" "$dir"
        sleep 0.1
    done
    fail_with_log "keystone-wsgi-public did not answer on port $port within 120 s" "$dir"
}

# An application credential for tech (password token, then POST …/application_credentials).
make_appcred() {
    local dir=$1 port=$2
    $PY - "$dir" "$port" <<'EOF' || fail_with_log "creating the application credential failed" "$dir"
import json, os, sys, urllib.request
dir, port = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}/v3"
creds = json.load(open(os.path.join(dir, "credentials.json")))
def call(method, path, body, token=None):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(request, timeout=300) as response:
        return response.headers, json.load(response)
headers, token = call("POST", "/auth/tokens", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": creds["user"], "domain": {"name": creds["domain"]}, "password": creds["password"]}}},
    "scope": {"project": {"name": creds["project"], "domain": {"name": creds["domain"]}}}}})
user_id = token["token"]["user"]["id"]
_, answer = call("POST", f"/users/{user_id}/application_credentials",
                 {"application_credential": {"name": "deployctl-test"}}, headers["X-Subject-Token"])
path = os.path.join(dir, "appcred.json")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as out:
    json.dump({"id": answer["application_credential"]["id"],
               "secret": answer["application_credential"]["secret"],
               "user_id": user_id, "project_id": token["token"]["project"]["id"]}, out)
EOF
}

cmd_up() {
    local dir="" port="" sim="" expiration=3600
    while [ $# -gt 0 ]; do
        case $1 in
        --dir) dir=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --catalog-url) sim=$2; shift 2 ;;
        --token-expiration) expiration=$2; shift 2 ;;
        *) usage ;;
        esac
    done
    [ -n "$dir" ] && [ -n "$port" ] && [ -n "$sim" ] || usage
    [ -x "$WSGI" ] && [ -x "$MANAGE" ] || die "python3-keystone is not installed (make deps)"
    local version template
    version=$(dpkg-query -W -f '${Version}' python3-keystone 2>/dev/null | tr ':~' '__' || echo unknown)
    template="${XDG_CACHE_HOME:-$HOME/.cache}/deployctl/keystone-$version"
    mkdir -p "$(dirname "$template")"
    [ -f "$template/credentials.json" ] || make_template "$template"
    mkdir -p "$dir"
    [ -e "$dir/keystone.pid" ] && die "$dir already holds a Keystone"
    cp -r "$template/." "$dir/"
    write_conf "$dir" "$expiration"
    seed_catalog "$dir" "$port" "$sim" >"$dir/manage.log" 2>&1 || fail_with_log "seeding the catalog failed" "$dir"
    # setsid: a Ctrl-C in the terminal that ran `up` does not reach the server. Every descriptor but 0-2 is closed
    # first: a server that kept one our caller passed on would hold it open for its whole life (Foundation's Process
    # learns of the exit of `up` through a socket the child inherits; $(keystone.sh up …) waits for its pipe's end).
    # Neither the subshell (no job control) nor setsid (not a group leader) forks again: $! is the server's PID.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
        done
        OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf" exec setsid "$WSGI" --host 127.0.0.1 --port "$port"
    ) </dev/null >>"$dir/keystone.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/keystone.pid"
    wait_ready "$dir" "$port" "$pid"
    make_appcred "$dir" "$port"
    echo "keystone up on http://127.0.0.1:$port/v3 (pid $pid)"
}

cmd_down() {
    local dir=""
    while [ $# -gt 0 ]; do
        case $1 in
        --dir) dir=$2; shift 2 ;;
        *) usage ;;
        esac
    done
    [ -n "$dir" ] || usage
    if [ -f "$dir/keystone.pid" ]; then
        local pid
        pid=$(cat "$dir/keystone.pid")
        # Only while the PID is still our server (PIDs get reused).
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q keystone-wsgi-public; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
*) usage ;;
esac
