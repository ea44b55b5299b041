#!/usr/bin/env python3
"""Cold-process validation benchmark: deployctl vs OpenStack's tosca-parser.

Generates (deterministically, from --seed) a ~100 KB custom types file, a 15-node TOSCA 1.3 template importing it
by relative path and a 1-node template into scripts/bench/out/, makes sure tosca-parser is installed in
scripts/bench/.venv, then times N cold processes of each tool on each template (one warm-up run each first) and
prints median/p90 wall time, peak RSS, the tosca-parser/deployctl ratio and whether the targets hold:

  * deployctl cold `validate` of the 15-node template: median < 20 ms
  * tosca-parser median / deployctl median >= 20x

Standard library only (the venv is created with `python3 -m venv` and `pip install tosca-parser`).
Run `scripts/bench/validate-bench.py --help` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
OUT_DIR = BENCH_DIR / "out"
VENV_DIR = BENCH_DIR / ".venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"

TYPES_FILE = "imaging-types.yaml"
TEMPLATE_15 = "imaging-stack-15-nodes.yaml"
TEMPLATE_1 = "single-node.yaml"

TARGET_COLD_MS = 20.0
TARGET_RATIO = 20.0

TOSCA_PARSER_SNIPPET = (
    "import sys\n"
    "from toscaparser.tosca_template import ToscaTemplate\n"
    "ToscaTemplate(path=sys.argv[1])\n"
)


# --------------------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------------------

DOMAINS = [
    "Ingest", "Archive", "Render", "Segment", "Register", "Anonymise", "Catalog", "Index", "Transfer",
    "Quality", "Viewer", "Report", "Audit", "Scheduler", "Notify", "Cache", "Search", "Export",
]
PROPERTY_WORDS = [
    "buffer", "cache", "queue", "worker", "retry", "batch", "session", "upload", "download", "thumbnail",
    "checksum", "compression", "encryption", "audit", "metrics", "trace", "heartbeat", "lease", "shard",
    "replica", "snapshot", "prefetch", "spool", "lock", "journal", "quota", "token", "tile", "series", "study",
]
STRING_CHOICES = [
    ["low", "medium", "high"], ["fifo", "lifo", "priority"], ["gzip", "zstd", "lz4", "none"],
    ["debug", "info", "warning", "error"], ["ssd", "hdd", "nvme"], ["strict", "relaxed", "disabled"],
    ["round_robin", "least_conn", "ip_hash"], ["daily", "weekly", "monthly"],
]
# Property kinds and the name suffixes that suit them; KIND_DRAW weights the draw by repetition.
KIND_SUFFIXES = {
    "string": ["mode", "policy", "level", "profile", "strategy"],
    "integer": ["limit", "count", "threshold", "workers", "depth"],
    "float": ["ratio", "fraction", "weight"],
    "boolean": ["enabled", "required", "strict"],
    "size": ["size", "capacity", "quota"],
    "time": ["timeout", "interval", "window", "ttl"],
    "list": ["tags", "hosts", "patterns"],
    "map": ["weights", "priorities", "counters"],
    "data": ["settings", "tuning", "credential"],
}
KIND_DRAW = ["string", "string", "integer", "integer", "float", "boolean", "size", "time", "list", "map", "data"]
PURPOSES = [
    "Controls how the service sizes its {w} pool under sustained load.",
    "Upper bound applied to {w} handling before requests are rejected.",
    "Tuning knob for {w} processing; the default suits a departmental installation.",
    "Set by operators when {w} behaviour must follow the site's data-protection policy.",
    "Used by the lifecycle scripts when rendering the {w} section of the configuration file.",
    "Read at start-up; changing it requires a restart of the {w} subsystem.",
]


class Emitter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, indent: int, text: str) -> None:
        self.lines.append(" " * indent + text)

    def blank(self) -> None:
        self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


class TypesGenerator:
    """Builds the custom types file and remembers nothing the templates depend on except the fixed stack types."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.e = Emitter()

    # A property definition with constraints and a default that satisfies them.
    def property_def(self, indent: int, name: str, word: str, kind: str, data_types: list[str]) -> None:
        rng, e = self.rng, self.e
        e.add(indent, f"{name}:")
        i = indent + 2
        description = rng.choice(PURPOSES).format(w=word)
        if kind == "string":
            e.add(i, "type: string")
            e.add(i, f"description: {q(description)}")
            if rng.random() < 0.5:
                choices = rng.choice(STRING_CHOICES)
                e.add(i, "required: true")
                e.add(i, f"default: {rng.choice(choices)}")
                e.add(i, "constraints:")
                e.add(i + 2, f"- valid_values: [ {', '.join(choices)} ]")
            else:
                e.add(i, "required: false")
                e.add(i, f"default: {q(word + '-' + str(rng.randint(1, 99)))}")
                e.add(i, "constraints:")
                e.add(i + 2, f"- pattern: {q('^[a-z][a-z0-9-]{1,62}$')}")
                e.add(i + 2, f"- max_length: {rng.choice([32, 63, 64])}")
        elif kind == "integer":
            low = rng.choice([0, 1, 2, 8, 16])
            high = low + rng.choice([16, 64, 256, 1024, 65536])
            e.add(i, "type: integer")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: true")
            e.add(i, f"default: {rng.randint(low, high)}")
            e.add(i, "constraints:")
            if rng.random() < 0.5:
                e.add(i + 2, f"- in_range: [ {low}, {high} ]")
            else:
                e.add(i + 2, f"- greater_or_equal: {low}")
                e.add(i + 2, f"- less_or_equal: {high}")
        elif kind == "float":
            e.add(i, "type: float")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: false")
            e.add(i, f"default: {rng.choice([0.1, 0.25, 0.5, 0.75, 0.9])}")
            e.add(i, "constraints:")
            e.add(i + 2, "- in_range: [ 0.0, 1.0 ]")
        elif kind == "boolean":
            e.add(i, "type: boolean")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: false")
            e.add(i, f"default: {rng.choice(['true', 'false'])}")
        elif kind == "size":
            e.add(i, "type: scalar-unit.size")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: false")
            e.add(i, f"default: {rng.choice([64, 128, 256, 512])} MB")
            e.add(i, "constraints:")
            e.add(i + 2, f"- in_range: [ 1 MB, {rng.choice([4, 16, 64])} GB ]")
        elif kind == "time":
            e.add(i, "type: scalar-unit.time")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: false")
            e.add(i, f"default: {rng.choice([5, 10, 30, 60])} s")
            e.add(i, "constraints:")
            e.add(i + 2, "- greater_or_equal: 1 s")
            e.add(i + 2, f"- less_or_equal: {rng.choice([1, 6, 24])} h")
        elif kind == "list":
            e.add(i, "type: list")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: false")
            e.add(i, "entry_schema:")
            e.add(i + 2, "type: string")
            e.add(i + 2, "constraints:")
            e.add(i + 4, "- min_length: 1")
        elif kind == "map":
            e.add(i, "type: map")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: false")
            e.add(i, "entry_schema:")
            e.add(i + 2, "type: integer")
            e.add(i + 2, "constraints:")
            e.add(i + 4, "- greater_or_equal: 0")
        else:
            e.add(i, f"type: {rng.choice(data_types) if data_types else 'tosca.datatypes.Credential'}")
            e.add(i, f"description: {q(description)}")
            e.add(i, "required: false")

    def properties(self, indent: int, count: int, used: set[str], data_types: list[str]) -> None:
        self.e.add(indent, "properties:")
        for _ in range(count):
            kind = self.rng.choice(KIND_DRAW)
            while True:
                word = self.rng.choice(PROPERTY_WORDS)
                name = f"{word}_{self.rng.choice(KIND_SUFFIXES[kind])}"
                if name not in used:
                    used.add(name)
                    break
            self.property_def(indent + 2, name, word, kind, data_types)

    def generate(self) -> str:
        e, rng = self.e, self.rng
        e.add(0, "tosca_definitions_version: tosca_simple_yaml_1_3")
        e.blank()
        e.add(0, "description: >-")
        e.add(2, "Imaging platform custom types (generated for the validate benchmark): data types with")
        e.add(2, "constraints, endpoint capability types, derived node type chains, and the stack types the")
        e.add(2, "15-node benchmark template instantiates.")
        e.blank()
        e.add(0, "metadata:")
        e.add(2, "template_name: imaging-types")
        e.add(2, "template_author: deployctl-bench")
        e.add(2, 'template_version: "4.2.0"')
        e.blank()

        # ---------------------------------------------------------------- data types
        e.add(0, "data_types:")
        data_types: list[str] = []
        e.add(2, "imaging.datatypes.TuningBase:")
        e.add(4, "derived_from: tosca.datatypes.Root")
        e.add(4, "description: Fields shared by every service's tuning block.")
        tuning_base_names: set[str] = set()
        self.properties(4, 3, tuning_base_names, [])
        data_types.append("imaging.datatypes.TuningBase")
        for domain in DOMAINS:
            settings = f"imaging.datatypes.{domain}Settings"
            tuning = f"imaging.datatypes.{domain}Tuning"
            e.blank()
            e.add(2, f"{settings}:")
            e.add(4, "derived_from: tosca.datatypes.Root")
            e.add(4, f"description: {q(f'Structured settings of the {domain.lower()} service.')}")
            self.properties(4, rng.randint(2, 4), set(), data_types[:1])
            e.blank()
            e.add(2, f"{tuning}:")
            e.add(4, "derived_from: imaging.datatypes.TuningBase")
            e.add(4, f"description: {q(f'Tuning of the {domain.lower()} service, refining the shared base.')}")
            self.properties(4, rng.randint(1, 2), set(tuning_base_names), [])
            data_types += [settings, tuning]

        # ---------------------------------------------------------------- capability types
        e.blank()
        e.add(0, "capability_types:")
        for domain in DOMAINS:
            endpoint = f"imaging.capabilities.{domain}Endpoint"
            e.add(2, f"{endpoint}:")
            e.add(4, "derived_from: tosca.capabilities.Endpoint")
            e.add(4, f"description: {q(f'Endpoint exposed by the {domain.lower()} service.')}")
            e.add(4, "properties:")
            e.add(6, "port:")
            e.add(8, "type: tosca.datatypes.network.PortDef")
            e.add(8, f"default: {rng.randint(1025, 60000)}")
            e.add(6, "api_version:")
            e.add(8, "type: string")
            e.add(8, f"default: v{rng.randint(1, 4)}")
            e.add(8, "constraints:")
            e.add(10, f"- pattern: {q('^v[0-9]+$')}")
            e.blank()
            e.add(2, f"imaging.capabilities.{domain}AdminEndpoint:")
            e.add(4, f"derived_from: {endpoint}")
            e.add(4, f"description: {q(f'Administrative endpoint of the {domain.lower()} service.')}")
            e.add(4, "properties:")
            e.add(6, "audit_log:")
            e.add(8, "type: boolean")
            e.add(8, "default: true")
            e.blank()
        self.stack_capability_types()

        # ---------------------------------------------------------------- node types
        e.blank()
        e.add(0, "node_types:")
        self.stack_node_types()
        for index, domain in enumerate(DOMAINS):
            peer = DOMAINS[(index + 7) % len(DOMAINS)]
            used: set[str] = set()
            base = f"imaging.nodes.{domain.lower()}.Base"
            service = f"imaging.nodes.{domain.lower()}.Service"
            ha = f"imaging.nodes.{domain.lower()}.HAService"
            clustered = f"imaging.nodes.{domain.lower()}.ClusteredService"
            e.blank()
            e.add(2, f"{base}:")
            e.add(4, "derived_from: tosca.nodes.SoftwareComponent")
            e.add(4, f"description: {q(f'Common base of the {domain.lower()} service family.')}")
            self.properties(4, rng.randint(2, 4), used, data_types)
            e.add(6, "settings:")
            e.add(8, f"type: imaging.datatypes.{domain}Settings")
            e.add(8, "required: false")
            e.add(4, "capabilities:")
            e.add(6, "api:")
            e.add(8, f"type: imaging.capabilities.{domain}Endpoint")
            e.blank()
            e.add(2, f"{service}:")
            e.add(4, f"derived_from: {base}")
            self.properties(4, rng.randint(1, 3), used, data_types)
            e.add(6, "tuning:")
            e.add(8, f"type: imaging.datatypes.{domain}Tuning")
            e.add(8, "required: false")
            e.add(4, "requirements:")
            e.add(6, f"- {peer.lower()}:")
            e.add(10, f"capability: imaging.capabilities.{peer}Endpoint")
            e.add(10, f"node: imaging.nodes.{peer.lower()}.Base")
            e.add(10, "relationship: tosca.relationships.ConnectsTo")
            e.add(10, "occurrences: [ 0, 1 ]")
            e.blank()
            e.add(2, f"{ha}:")
            e.add(4, f"derived_from: {service}")
            self.properties(4, rng.randint(1, 2), used, data_types)
            e.add(4, "capabilities:")
            e.add(6, "admin:")
            e.add(8, f"type: imaging.capabilities.{domain}AdminEndpoint")
            e.add(4, "interfaces:")
            e.add(6, "Standard:")
            e.add(8, "type: tosca.interfaces.node.lifecycle.Standard")
            e.add(8, "operations:")
            e.add(10, f"create: scripts/{domain.lower()}/install.sh")
            e.add(10, f"configure: scripts/{domain.lower()}/configure.sh")
            e.add(10, f"start: scripts/{domain.lower()}/start.sh")
            e.blank()
            e.add(2, f"{clustered}:")
            e.add(4, f"derived_from: {ha}")
            self.properties(4, 1, used, data_types)
            e.add(4, "capabilities:")
            e.add(6, "cluster:")
            e.add(8, "type: tosca.capabilities.Scalable")
        return e.text()

    def stack_capability_types(self) -> None:
        for line in STACK_CAPABILITY_TYPES.strip("\n").split("\n"):
            self.e.lines.append(line)

    def stack_node_types(self) -> None:
        for line in STACK_NODE_TYPES.strip("\n").split("\n"):
            self.e.lines.append(line)


# The types the 15-node template instantiates (the end of derived chains rooted in normative types).
STACK_CAPABILITY_TYPES = """
  imaging.capabilities.HttpApi:
    derived_from: tosca.capabilities.Endpoint
    description: HTTP API of an application server.
    properties:
      port:
        type: tosca.datatypes.network.PortDef
        default: 8080
      url_path:
        type: string
        default: /api

  imaging.capabilities.Amqp:
    derived_from: tosca.capabilities.Endpoint
    description: AMQP endpoint of a message broker.
    properties:
      port:
        type: tosca.datatypes.network.PortDef
        default: 5672
      vhost:
        type: string
        default: /
"""

STACK_NODE_TYPES = """
  imaging.nodes.infra.Server:
    derived_from: tosca.nodes.Compute
    description: A virtual machine of the imaging platform; attaches data volumes.
    properties:
      flavor_hint:
        type: string
        required: false
        constraints:
          - pattern: "^[a-z0-9.-]+$"
    requirements:
      - data_volume:
          capability: tosca.capabilities.Attachment
          node: imaging.nodes.infra.Volume
          relationship: tosca.relationships.AttachesTo
          occurrences: [ 0, UNBOUNDED ]

  imaging.nodes.infra.Volume:
    derived_from: tosca.nodes.Root
    description: A block storage volume attached to one server.
    properties:
      size:
        type: scalar-unit.size
        constraints:
          - greater_or_equal: 1 GB
      volume_type:
        type: string
        default: ssd
        constraints:
          - valid_values: [ ssd, hdd, nvme ]
      encrypted:
        type: boolean
        default: true
      snapshot_id:
        type: string
        required: false
    attributes:
      volume_id:
        type: string
    capabilities:
      attachment:
        type: tosca.capabilities.Attachment

  imaging.nodes.app.Base:
    derived_from: tosca.nodes.SoftwareComponent
    description: Base of the platform's own application components.
    properties:
      log_level:
        type: string
        default: info
        constraints:
          - valid_values: [ debug, info, warning, error ]
      workers:
        type: integer
        default: 2
        constraints:
          - in_range: [ 1, 64 ]

  imaging.nodes.app.ApiServer:
    derived_from: imaging.nodes.app.Base
    description: The platform's REST API.
    properties:
      session_timeout:
        type: scalar-unit.time
        default: 30 m
        constraints:
          - in_range: [ 1 m, 24 h ]
    capabilities:
      api:
        type: imaging.capabilities.HttpApi
    requirements:
      - database:
          capability: tosca.capabilities.Endpoint.Database
          node: tosca.nodes.Database
          relationship: tosca.relationships.ConnectsTo
      - broker:
          capability: imaging.capabilities.Amqp
          node: imaging.nodes.app.Broker
          relationship: tosca.relationships.ConnectsTo
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        operations:
          create: scripts/api/install.sh
          configure: scripts/api/configure.sh
          start: scripts/api/start.sh

  imaging.nodes.app.Frontend:
    derived_from: imaging.nodes.app.Base
    description: The web front-end serving the portal and proxying the API.
    properties:
      server_name:
        type: string
        constraints:
          - pattern: "^[a-z0-9.-]+$"
    capabilities:
      https:
        type: tosca.capabilities.Endpoint.Public
    requirements:
      - backend:
          capability: imaging.capabilities.HttpApi
          node: imaging.nodes.app.ApiServer
          relationship: tosca.relationships.ConnectsTo

  imaging.nodes.app.Broker:
    derived_from: imaging.nodes.app.Base
    description: Message broker carrying job events.
    properties:
      max_queue_length:
        type: integer
        default: 100000
        constraints:
          - greater_than: 0
    capabilities:
      amqp:
        type: imaging.capabilities.Amqp

  imaging.nodes.app.Worker:
    derived_from: imaging.nodes.app.Base
    description: Batch worker consuming jobs and writing results.
    properties:
      scratch_dir:
        type: string
        default: /scratch
      gpu_enabled:
        type: boolean
        default: false
    requirements:
      - broker:
          capability: imaging.capabilities.Amqp
          node: imaging.nodes.app.Broker
          relationship: tosca.relationships.ConnectsTo
      - database:
          capability: tosca.capabilities.Endpoint.Database
          node: tosca.nodes.Database
          relationship: tosca.relationships.ConnectsTo

  imaging.nodes.app.MetricsAgent:
    derived_from: tosca.nodes.SoftwareComponent
    description: Host metrics exporter.
    properties:
      scrape_port:
        type: tosca.datatypes.network.PortDef
        default: 9100

  imaging.nodes.data.PostgreSQL:
    derived_from: tosca.nodes.DBMS
    description: PostgreSQL server.
    properties:
      max_connections:
        type: integer
        default: 200
        constraints:
          - in_range: [ 10, 5000 ]
      shared_buffers:
        type: scalar-unit.size
        default: 1 GB
        constraints:
          - greater_or_equal: 128 MB
"""


def server(name: str, cpus: str, mem: str, disk: str, volume: str, location: str) -> str:
    return f"""
    {name}:
      type: imaging.nodes.infra.Server
      capabilities:
        host:
          properties:
            num_cpus: {cpus}
            mem_size: {mem}
            disk_size: {disk}
        os:
          properties:
            architecture: x86_64
            type: linux
            distribution: ubuntu
            version: "22.04"
      requirements:
        - data_volume:
            node: {volume}
            relationship:
              type: tosca.relationships.AttachesTo
              properties:
                location: {location}
"""


def volume(name: str, size: str, volume_type: str) -> str:
    return f"""
    {name}:
      type: imaging.nodes.infra.Volume
      properties:
        size: {size}
        volume_type: {volume_type}
"""


def template_15() -> str:
    parts = [f"""tosca_definitions_version: tosca_simple_yaml_1_3

metadata:
  template_name: imaging-stack
  template_author: deployctl-bench
  template_version: "1.0.0"

description: >-
  Imaging platform stack (generated for the validate benchmark): web, API, database and worker hosts, each with
  an attached volume, the portal front-end, the REST API, PostgreSQL with the results database, a message broker,
  a batch worker and a metrics agent.

imports:
  - {TYPES_FILE}

topology_template:
  inputs:
    server_name:
      type: string
      default: portal.imaging.example.org
      constraints:
        - pattern: "^[a-z0-9.-]+$"
    worker_cpus:
      type: integer
      default: 16
      constraints:
        - in_range: [ 2, 64 ]
    data_volume_size:
      type: scalar-unit.size
      default: 500 GB
      constraints:
        - greater_or_equal: 10 GB
    db_password:
      type: string
      default: change-me
    log_level:
      type: string
      default: info
      constraints:
        - valid_values: [ debug, info, warning, error ]

  node_templates:"""]
    parts.append(server("web_host", "2", "4 GB", "20 GB", "web_volume", "/var/www"))
    parts.append(server("app_host", "4", "8 GB", "40 GB", "app_volume", "/srv/app"))
    parts.append(server("db_host", "8", "32 GB", "40 GB", "db_volume", "/var/lib/postgresql"))
    parts.append(server("worker_host", "{ get_input: worker_cpus }", "64 GB", "100 GB", "scratch_volume",
                        "/scratch"))
    parts.append(volume("web_volume", "20 GB", "ssd"))
    parts.append(volume("app_volume", "50 GB", "ssd"))
    parts.append(volume("db_volume", "{ get_input: data_volume_size }", "nvme"))
    parts.append(volume("scratch_volume", "1 TB", "hdd"))
    parts.append("""
    frontend:
      type: imaging.nodes.app.Frontend
      properties:
        server_name: { get_input: server_name }
        log_level: { get_input: log_level }
      capabilities:
        https:
          properties:
            port: 443
            protocol: tcp
            secure: true
      requirements:
        - host: web_host
        - backend: api

    api:
      type: imaging.nodes.app.ApiServer
      properties:
        workers: 8
        log_level: { get_input: log_level }
        session_timeout: 2 h
      capabilities:
        api:
          properties:
            port: 8080
            url_path: /api/v2
      requirements:
        - host: app_host
        - database: results_db
        - broker: broker
      interfaces:
        Standard:
          operations:
            configure:
              implementation: scripts/api/configure.sh
              inputs:
                db_host: { get_attribute: [ db_host, private_address ] }
                db_name: { get_property: [ results_db, name ] }
                api_port: { get_property: [ SELF, api, port ] }
                bind_address: { get_attribute: [ HOST, private_address ] }

    postgres:
      type: imaging.nodes.data.PostgreSQL
      properties:
        component_version: 16.2.0
        port: 5432
        max_connections: 400
        shared_buffers: 8 GB
      requirements:
        - host: db_host

    results_db:
      type: tosca.nodes.Database
      properties:
        name: results
        user: imaging
        password: { get_input: db_password }
        port: 5432
      capabilities:
        database_endpoint:
          properties:
            port: 5432
      requirements:
        - host: postgres

    broker:
      type: imaging.nodes.app.Broker
      properties:
        max_queue_length: 250000
      capabilities:
        amqp:
          properties:
            port: 5672
      requirements:
        - host: app_host

    worker:
      type: imaging.nodes.app.Worker
      properties:
        workers: 16
        gpu_enabled: false
        scratch_dir: /scratch/jobs
      requirements:
        - host: worker_host
        - broker: broker
        - database: results_db

    metrics_agent:
      type: imaging.nodes.app.MetricsAgent
      properties:
        scrape_port: 9100
      requirements:
        - host: db_host

  outputs:
    portal_url:
      description: Public URL of the portal.
      value: { concat: [ "https://", { get_input: server_name }, "/" ] }
    web_public_address:
      value: { get_attribute: [ web_host, public_address ] }
    api_endpoint:
      value: { concat: [ "http://", { get_attribute: [ app_host, private_address ] }, ":", { get_property: [ api, api, port ] } ] }
    db_address:
      value: { get_attribute: [ db_host, private_address ] }
""")
    return "".join(parts)


def template_1() -> str:
    return """tosca_definitions_version: tosca_simple_yaml_1_3

description: A single analysis VM (generated for the validate benchmark).

topology_template:
  node_templates:
    analysis_vm:
      type: tosca.nodes.Compute
      capabilities:
        host:
          properties:
            num_cpus: 4
            mem_size: 16 GB
            disk_size: 80 GB
        os:
          properties:
            architecture: x86_64
            type: linux
            distribution: ubuntu
            version: "22.04"

  outputs:
    analysis_vm_address:
      value: { get_attribute: [ analysis_vm, public_address ] }
"""


def generate(seed: int) -> dict[str, Path]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    files = {
        "types": (OUT_DIR / TYPES_FILE, TypesGenerator(random.Random(seed)).generate()),
        "15-node": (OUT_DIR / TEMPLATE_15, template_15()),
        "1-node": (OUT_DIR / TEMPLATE_1, template_1()),
    }
    # Stub lifecycle scripts for the operations of the nodes the 15-node template instantiates, so that a validator
    # checking implementation files finds them (implementations resolve beside the file that names them).
    for script in ("install", "configure", "start"):
        files[f"script-{script}"] = (OUT_DIR / "scripts" / "api" / f"{script}.sh",
                                     f"#!/bin/sh\n# {script} step of the imaging API (benchmark stub)\nexit 0\n")
    for path, text in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return {key: path for key, (path, _) in files.items()}


# --------------------------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------------------------


def ensure_tosca_parser() -> str:
    """Creates scripts/bench/.venv with tosca-parser from PyPI when missing; returns the installed version."""
    probe = [str(VENV_PYTHON), "-c", "import importlib.metadata as m; print(m.version('tosca-parser'))"]
    if VENV_PYTHON.exists():
        result = subprocess.run(probe, capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.strip()
    print(f"Installing tosca-parser into {VENV_DIR.relative_to(REPO_ROOT)} (python3 -m venv, pip install) ...",
          flush=True)
    if not VENV_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)
    subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "tosca-parser"], check=True)
    result = subprocess.run(probe, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: tosca-parser is still not importable from {VENV_PYTHON}:\n{result.stderr}")
    return result.stdout.strip()


def find_deployctl(explicit: str | None) -> Path:
    candidate = explicit or os.environ.get("DEPLOYCTL") or str(REPO_ROOT / ".build" / "release" / "deployctl")
    path = Path(candidate)
    return path if path.is_absolute() else (Path.cwd() / path)


def run_once(argv: list[str]) -> tuple[float, int, int, str]:
    """One cold process: wall ms, exit code, peak RSS in KiB (from wait4's per-child rusage), stderr tail."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter_ns()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=REPO_ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed_ms = (time.perf_counter_ns() - start) / 1e6
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; tell Popen
        err.seek(0)
        out.seek(0)
        tail = (out.read()[-2000:] + err.read()[-4000:]).decode(errors="replace")
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss_kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return elapsed_ms, process.returncode, rss_kib, tail


GNU_TIME = Path("/usr/bin/time")


def gnu_time_works() -> bool:
    if not GNU_TIME.is_file():
        return False
    with tempfile.NamedTemporaryFile("r") as report:
        result = subprocess.run([str(GNU_TIME), "-f", "%M", "-o", report.name, "true"], capture_output=True)
        return result.returncode == 0 and report.read().strip().isdigit()


def peak_rss_gnu_time(argv: list[str]) -> int:
    """Peak RSS in KiB of one run under GNU time, whose small process forks the tool: unlike a child forked by this
    Python process, the figure does not start from Python's own resident size."""
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run([str(GNU_TIME), "-f", "%M", "-o", report.name] + argv, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT)
        lines = [line for line in report.read().splitlines() if line.strip().isdigit()]
        return int(lines[-1]) if lines else 0


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[8] if len(ordered) > 1 else ordered[0]
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(p90, 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
    }


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed cold runs per tool and template (default 20)")
    parser.add_argument("--seed", type=int, default=20240611, help="generator seed (default 20240611)")
    parser.add_argument("--deployctl", help="deployctl binary (default $DEPLOYCTL, else .build/release/deployctl)")
    parser.add_argument("--json", nargs="?", const=str(OUT_DIR / "results.json"), metavar="FILE",
                        help="also write the results as JSON (default file: scripts/bench/out/results.json)")
    parser.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    parser.add_argument("--tosca-parser-only", action="store_true",
                        help="measure tosca-parser only (no deployctl binary needed; targets are not judged)")
    parser.add_argument("--generate-only", action="store_true", help="write the templates to out/ and stop")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target does not hold")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    files = generate(args.seed)
    types_kb = files["types"].stat().st_size / 1024
    print(f"Generated into {OUT_DIR.relative_to(REPO_ROOT)}/ (seed {args.seed}): {TYPES_FILE} ({types_kb:.1f} KiB), "
          f"{TEMPLATE_15}, {TEMPLATE_1}")
    if args.generate_only:
        return 0

    tosca_parser_version = ensure_tosca_parser()
    deployctl = find_deployctl(args.deployctl)
    deployctl_missing = not (deployctl.is_file() and os.access(deployctl, os.X_OK))
    measure_deployctl = not args.tosca_parser_only
    if measure_deployctl and deployctl_missing:
        print(f"\nNOTE: deployctl binary not found at {deployctl}.\n"
              f"      Build it with `swift build -c release` (or `make release`), or pass --deployctl PATH / set\n"
              f"      DEPLOYCTL. Measuring tosca-parser only; the targets cannot be judged (exit status 2).\n",
              flush=True)
        measure_deployctl = False

    tools: dict[str, list[str]] = {}
    if measure_deployctl:
        tools["deployctl"] = [str(deployctl), "validate"]
    tools["tosca-parser"] = [str(VENV_PYTHON), "-c", TOSCA_PARSER_SNIPPET]

    # Peak RSS: GNU time (`/usr/bin/time`, Debian package `time`) when present, in a few extra runs so that the
    # timed runs are not slowed by it; otherwise the per-child rusage that wait4 returns for the timed runs, whose
    # ru_maxrss cannot go below what this Python process had resident when it spawned the child (the kernel carries
    # the pre-exec high-water mark over exec), so small figures are reported as "<= floor".
    rss_method = "gnu-time" if gnu_time_works() else "wait4"
    rss_floor_kib = 0
    if rss_method == "wait4":
        rss_floor_kib = run_once(["true"])[2]
        print(f"NOTE: /usr/bin/time not found (apt-get install time); peak RSS comes from wait4 and cannot be shown "
              f"below {rss_floor_kib / 1024:.1f} MiB.", flush=True)

    templates = [("1-node", files["1-node"], 1), ("15-node", files["15-node"], 15)]
    results: dict[str, dict] = {}
    for label, path, nodes in templates:
        relative = str(path.relative_to(REPO_ROOT))
        entry: dict = {"file": relative, "nodes": nodes, "bytes": path.stat().st_size, "tools": {}}
        samples: dict[str, list[float]] = {tool: [] for tool in tools}
        peak: dict[str, int] = {tool: 0 for tool in tools}
        # Warm-up (page cache, first-run effects), which also checks that each tool accepts the template.
        for tool, argv in tools.items():
            _, code, _, tail = run_once(argv + [relative])
            if code != 0:
                print(f"\nerror: {tool} rejected {relative} (exit {code}); the benchmark templates must be valid for "
                      f"both tools.\n--- {tool} output (tail) ---\n{tail}", file=sys.stderr)
                return 1
        print(f"Timing {args.runs} cold runs per tool on {relative} ...", flush=True)
        for _ in range(args.runs):
            for tool, argv in tools.items():  # interleaved so that drift affects both tools alike
                elapsed, code, rss, tail = run_once(argv + [relative])
                if code != 0:
                    print(f"\nerror: {tool} failed on {relative} during timing (exit {code}):\n{tail}",
                          file=sys.stderr)
                    return 1
                samples[tool].append(elapsed)
                peak[tool] = max(peak[tool], rss)
        if rss_method == "gnu-time":
            for tool, argv in tools.items():
                peak[tool] = max(peak_rss_gnu_time(argv + [relative]) for _ in range(min(3, args.runs)))
        for tool in tools:
            entry["tools"][tool] = {**summarize(samples[tool]), "peak_rss_kib": peak[tool],
                                    "peak_rss_at_floor": rss_method == "wait4" and peak[tool] <= rss_floor_kib,
                                    "samples_ms": [round(s, 3) for s in samples[tool]]}
        if "deployctl" in tools:
            entry["ratio"] = round(entry["tools"]["tosca-parser"]["median_ms"] / entry["tools"]["deployctl"]["median_ms"],
                                   1)
        results[label] = entry

    # ---------------------------------------------------------------- report
    print()
    header = f"{'template':<10} {'nodes':>5}  {'tool':<13} {'median ms':>10} {'p90 ms':>9} {'min ms':>9} {'peak RSS MiB':>13}"
    print(header)
    print("-" * len(header))
    for label, entry in results.items():
        for tool, stats in entry["tools"].items():
            rss = f"{stats['peak_rss_kib'] / 1024:.1f}"
            rss = f"<= {rss}" if stats["peak_rss_at_floor"] else rss
            print(f"{label:<10} {entry['nodes']:>5}  {tool:<13} {stats['median_ms']:>10.1f} {stats['p90_ms']:>9.1f} "
                  f"{stats['min_ms']:>9.1f} {rss:>13}")
    print()
    targets: dict[str, dict] = {}
    if "deployctl" in tools:
        for label, entry in results.items():
            print(f"ratio tosca-parser/deployctl (median), {label}: {entry['ratio']:.1f}x")
        cold = results["15-node"]["tools"]["deployctl"]["median_ms"]
        ratio = results["15-node"]["ratio"]
        targets = {
            "deployctl_15_node_cold_ms": {"target": f"< {TARGET_COLD_MS:g}", "value": cold,
                                          "holds": cold < TARGET_COLD_MS},
            "ratio_15_node": {"target": f">= {TARGET_RATIO:g}", "value": ratio, "holds": ratio >= TARGET_RATIO},
        }
        print(f"target: deployctl cold validate, 15-node template, median < {TARGET_COLD_MS:g} ms: "
              f"{'HOLDS' if cold < TARGET_COLD_MS else 'MISSED'} ({cold:.1f} ms)")
        print(f"target: tosca-parser / deployctl median >= {TARGET_RATIO:g}x: "
              f"{'HOLDS' if ratio >= TARGET_RATIO else 'MISSED'} ({ratio:.1f}x)")
    else:
        print("targets: not judged (deployctl not measured)")

    if args.markdown:
        print()
        print("| template | tool | median ms | p90 ms | peak RSS MiB |")
        print("| --- | --- | ---: | ---: | ---: |")
        for label, entry in results.items():
            for tool, stats in entry["tools"].items():
                print(f"| {label} ({entry['bytes'] / 1024:.1f} KiB"
                      f"{', imports ' + str(round(types_kb)) + ' KiB of types' if label == '15-node' else ''}) "
                      f"| {tool} | {stats['median_ms']:.1f} | {stats['p90_ms']:.1f} | "
                      f"{stats['peak_rss_kib'] / 1024:.1f} |")
        if "deployctl" in tools:
            print()
            print(", ".join(f"{label}: tosca-parser is {entry['ratio']:.1f}x slower" for label, entry in results.items()))

    if args.json:
        document = {
            "seed": args.seed,
            "runs": args.runs,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "tosca_parser_version": tosca_parser_version,
            "peak_rss_method": rss_method,
            "deployctl": str(deployctl) if measure_deployctl else None,
            "types_file": {"file": str(files["types"].relative_to(REPO_ROOT)), "bytes": files["types"].stat().st_size},
            "templates": results,
            "targets": targets,
        }
        json_path = Path(args.json)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nwrote {json_path}")

    if measure_deployctl is False and not args.tosca_parser_only:
        return 2
    if args.check and targets and not all(t["holds"] for t in targets.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
