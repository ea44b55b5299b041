/// The TOSCA Simple Profile in YAML 1.3 normative type definitions, embedded so that a parse never needs the network.
///
/// The specification's descriptions are left out: nothing shows them, and this text is parsed on every run.
enum NormativeTypes {
    /// A TOSCA service template (tosca_definitions_version: tosca_simple_yaml_1_3) that defines every normative type.
    static let yaml = #"""
        tosca_definitions_version: tosca_simple_yaml_1_3


        metadata:
          template_name: tosca-normative-types
          template_author: deployctl
          template_version: "1.3"

        ##########################################################################
        # Data Types (section 5.3)
        ##########################################################################
        data_types:

          tosca.datatypes.Root:

          tosca.datatypes.json:
            derived_from: string

          tosca.datatypes.xml:
            derived_from: string

          tosca.datatypes.Credential:
            derived_from: tosca.datatypes.Root
            properties:
              protocol:
                type: string
                required: false
              token_type:
                type: string
                required: true
                default: password
              token:
                type: string
                required: true
              keys:
                type: map
                required: false
                entry_schema:
                  type: string
              user:
                type: string
                required: false

          tosca.datatypes.TimeInterval:
            derived_from: tosca.datatypes.Root
            properties:
              start_time:
                type: timestamp
                required: true
              end_time:
                type: timestamp
                required: true

          tosca.datatypes.network.NetworkInfo:
            derived_from: tosca.datatypes.Root
            properties:
              network_name:
                type: string
                required: false
              network_id:
                type: string
                required: false
              addresses:
                type: list
                required: false
                entry_schema:
                  type: string

          tosca.datatypes.network.PortInfo:
            derived_from: tosca.datatypes.Root
            properties:
              port_name:
                type: string
                required: false
              port_id:
                type: string
                required: false
              network_id:
                type: string
                required: false
              mac_address:
                type: string
                required: false
              addresses:
                type: list
                required: false
                entry_schema:
                  type: string

          tosca.datatypes.network.PortDef:
            derived_from: integer
            constraints:
              - in_range: [ 1, 65535 ]

          tosca.datatypes.network.PortSpec:
            derived_from: tosca.datatypes.Root
            properties:
              protocol:
                type: string
                required: true
                default: tcp
                constraints:
                  - valid_values: [ udp, tcp, igmp ]
              source:
                type: tosca.datatypes.network.PortDef
                required: false
              source_range:
                type: range
                required: false
                constraints:
                  - in_range: [ 1, 65535 ]
              target:
                type: tosca.datatypes.network.PortDef
                required: false
              target_range:
                type: range
                required: false
                constraints:
                  - in_range: [ 1, 65535 ]

        ##########################################################################
        # Artifact Types (section 5.4)
        ##########################################################################
        artifact_types:

          tosca.artifacts.Root:

          tosca.artifacts.File:
            derived_from: tosca.artifacts.Root

          tosca.artifacts.Deployment:
            derived_from: tosca.artifacts.Root

          tosca.artifacts.Deployment.Image:
            derived_from: tosca.artifacts.Deployment

          tosca.artifacts.Deployment.Image.VM:
            derived_from: tosca.artifacts.Deployment.Image

          tosca.artifacts.Implementation:
            derived_from: tosca.artifacts.Root

          tosca.artifacts.Implementation.Bash:
            derived_from: tosca.artifacts.Implementation
            mime_type: application/x-sh
            file_ext: [ sh ]

          tosca.artifacts.Implementation.Python:
            derived_from: tosca.artifacts.Implementation
            mime_type: application/x-python
            file_ext: [ py ]

          tosca.artifacts.template:
            derived_from: tosca.artifacts.Root

        ##########################################################################
        # Capability Types (section 5.5)
        ##########################################################################
        capability_types:

          tosca.capabilities.Root:

          tosca.capabilities.Node:
            derived_from: tosca.capabilities.Root

          tosca.capabilities.Container:
            derived_from: tosca.capabilities.Root
            # TOSCA 1.0 put the host sizing properties on Container (Compute did not exist yet), and 1.0 templates
            # still set them there; Compute refines them. They are optional, so 1.3 templates are unaffected.
            properties:
              num_cpus:
                type: integer
                required: false
                constraints:
                  - greater_or_equal: 1
              cpu_frequency:
                type: scalar-unit.frequency
                required: false
                constraints:
                  - greater_or_equal: 0.1 GHz
              disk_size:
                type: scalar-unit.size
                required: false
                constraints:
                  - greater_or_equal: 0 MB
              mem_size:
                type: scalar-unit.size
                required: false
                constraints:
                  - greater_or_equal: 0 MB

          tosca.capabilities.Compute:
            derived_from: tosca.capabilities.Container
            properties:
              name:
                type: string
                required: false
              num_cpus:
                type: integer
                required: false
                constraints:
                  - greater_or_equal: 1
              cpu_frequency:
                type: scalar-unit.frequency
                required: false
                constraints:
                  - greater_or_equal: 0.1 GHz
              disk_size:
                type: scalar-unit.size
                required: false
                constraints:
                  - greater_or_equal: 0 MB
              mem_size:
                type: scalar-unit.size
                required: false
                constraints:
                  - greater_or_equal: 0 MB

          tosca.capabilities.Network:
            derived_from: tosca.capabilities.Root
            properties:
              name:
                type: string
                required: false

          tosca.capabilities.Storage:
            derived_from: tosca.capabilities.Root
            properties:
              name:
                type: string
                required: false

          tosca.capabilities.Endpoint:
            derived_from: tosca.capabilities.Root
            properties:
              protocol:
                type: string
                required: true
                default: tcp
              port:
                type: tosca.datatypes.network.PortDef
                required: false
              secure:
                type: boolean
                required: false
                default: false
              url_path:
                type: string
                required: false
              port_name:
                type: string
                required: false
              network_name:
                type: string
                required: false
                default: PRIVATE
              initiator:
                type: string
                required: false
                default: source
                constraints:
                  - valid_values: [ source, target, peer ]
              ports:
                type: map
                required: false
                constraints:
                  - min_length: 1
                entry_schema:
                  type: tosca.datatypes.network.PortSpec
            attributes:
              ip_address:
                type: string

          tosca.capabilities.Endpoint.Public:
            derived_from: tosca.capabilities.Endpoint
            properties:
              # Change the default network_name to use the first public network found.
              network_name:
                type: string
                default: PUBLIC
                constraints:
                  - equal: PUBLIC
              floating:
                type: boolean
                required: false
                default: false
                status: experimental
              dns_name:
                type: string
                required: false
                status: experimental

          tosca.capabilities.Endpoint.Admin:
            derived_from: tosca.capabilities.Endpoint
            properties:
              # Change the Endpoint secure indicator to true from its default of false.
              secure:
                type: boolean
                default: true
                constraints:
                  - equal: true

          tosca.capabilities.Endpoint.Database:
            derived_from: tosca.capabilities.Endpoint

          tosca.capabilities.Attachment:
            derived_from: tosca.capabilities.Root

          tosca.capabilities.OperatingSystem:
            derived_from: tosca.capabilities.Root
            properties:
              architecture:
                type: string
                required: false
              type:
                type: string
                required: false
              distribution:
                type: string
                required: false
              version:
                type: version
                required: false

          tosca.capabilities.Scalable:
            derived_from: tosca.capabilities.Root
            properties:
              min_instances:
                type: integer
                required: true
                default: 1
              max_instances:
                type: integer
                required: true
                default: 1
              default_instances:
                type: integer
                required: false

          tosca.capabilities.network.Bindable:
            derived_from: tosca.capabilities.Node

          tosca.capabilities.network.Linkable:
            derived_from: tosca.capabilities.Node

        ##########################################################################
        # Interface Types (section 5.8)
        ##########################################################################
        interface_types:

          tosca.interfaces.Root:

          tosca.interfaces.node.lifecycle.Standard:
            derived_from: tosca.interfaces.Root
            operations:
              create:
              configure:
              start:
              stop:
              delete:

          tosca.interfaces.relationship.Configure:
            derived_from: tosca.interfaces.Root
            operations:
              pre_configure_source:
              pre_configure_target:
              post_configure_source:
              post_configure_target:
              add_target:
              add_source:
              target_changed:
              remove_target:
              remove_source:

        ##########################################################################
        # Relationship Types (section 5.7)
        ##########################################################################
        relationship_types:

          tosca.relationships.Root:
            attributes:
              tosca_id:
                type: string
              tosca_name:
                type: string
              state:
                type: string
            interfaces:
              Configure:
                type: tosca.interfaces.relationship.Configure

          tosca.relationships.DependsOn:
            derived_from: tosca.relationships.Root
            valid_target_types: [ tosca.capabilities.Node ]

          tosca.relationships.HostedOn:
            derived_from: tosca.relationships.Root
            valid_target_types: [ tosca.capabilities.Container ]

          tosca.relationships.ConnectsTo:
            derived_from: tosca.relationships.Root
            valid_target_types: [ tosca.capabilities.Endpoint ]
            properties:
              credential:
                type: tosca.datatypes.Credential
                required: false

          tosca.relationships.AttachesTo:
            derived_from: tosca.relationships.Root
            valid_target_types: [ tosca.capabilities.Attachment ]
            properties:
              location:
                type: string
                required: true
                constraints:
                  - min_length: 1
              device:
                type: string
                required: false
            attributes:
              device:
                type: string

          tosca.relationships.RoutesTo:
            derived_from: tosca.relationships.ConnectsTo
            valid_target_types: [ tosca.capabilities.Endpoint ]

          tosca.relationships.network.LinksTo:
            derived_from: tosca.relationships.DependsOn
            valid_target_types: [ tosca.capabilities.network.Linkable ]

          tosca.relationships.network.BindsTo:
            derived_from: tosca.relationships.DependsOn
            valid_target_types: [ tosca.capabilities.network.Bindable ]

        ##########################################################################
        # Node Types (section 5.9)
        ##########################################################################
        node_types:

          tosca.nodes.Root:
            attributes:
              tosca_id:
                type: string
              tosca_name:
                type: string
              state:
                type: string
            capabilities:
              feature:
                type: tosca.capabilities.Node
            requirements:
              - dependency:
                  capability: tosca.capabilities.Node
                  node: tosca.nodes.Root
                  relationship: tosca.relationships.DependsOn
                  occurrences: [ 0, UNBOUNDED ]
            interfaces:
              Standard:
                type: tosca.interfaces.node.lifecycle.Standard

          tosca.nodes.Abstract.Compute:
            derived_from: tosca.nodes.Root
            capabilities:
              host:
                type: tosca.capabilities.Compute

          tosca.nodes.Compute:
            derived_from: tosca.nodes.Abstract.Compute
            attributes:
              private_address:
                type: string
              public_address:
                type: string
              networks:
                type: map
                entry_schema:
                  type: tosca.datatypes.network.NetworkInfo
              ports:
                type: map
                entry_schema:
                  type: tosca.datatypes.network.PortInfo
            requirements:
              - local_storage:
                  capability: tosca.capabilities.Attachment
                  node: tosca.nodes.Storage.BlockStorage
                  relationship: tosca.relationships.AttachesTo
                  occurrences: [ 0, UNBOUNDED ]
            capabilities:
              host:
                type: tosca.capabilities.Compute
                valid_source_types: [ tosca.nodes.SoftwareComponent ]
              endpoint:
                type: tosca.capabilities.Endpoint.Admin
              os:
                type: tosca.capabilities.OperatingSystem
              scalable:
                type: tosca.capabilities.Scalable
              binding:
                type: tosca.capabilities.network.Bindable

          tosca.nodes.SoftwareComponent:
            derived_from: tosca.nodes.Root
            properties:
              component_version:
                type: version
                required: false
              admin_credential:
                type: tosca.datatypes.Credential
                required: false
            requirements:
              - host:
                  # 1.3 names tosca.capabilities.Compute here, 1.0 tosca.capabilities.Container (which Compute derives from);
                  # the node is still a tosca.nodes.Compute, so the wider capability only admits 1.0-style hosts.
                  capability: tosca.capabilities.Container
                  node: tosca.nodes.Compute
                  relationship: tosca.relationships.HostedOn

          tosca.nodes.WebServer:
            derived_from: tosca.nodes.SoftwareComponent
            capabilities:
              # Private, layer 4 endpoints.
              data_endpoint:
                type: tosca.capabilities.Endpoint
              admin_endpoint:
                type: tosca.capabilities.Endpoint.Admin
              host:
                type: tosca.capabilities.Container
                valid_source_types: [ tosca.nodes.WebApplication ]

          tosca.nodes.WebApplication:
            derived_from: tosca.nodes.Root
            properties:
              context_root:
                type: string
                required: false
            capabilities:
              app_endpoint:
                type: tosca.capabilities.Endpoint
            requirements:
              - host:
                  capability: tosca.capabilities.Container
                  node: tosca.nodes.WebServer
                  relationship: tosca.relationships.HostedOn

          tosca.nodes.DBMS:
            derived_from: tosca.nodes.SoftwareComponent
            properties:
              root_password:
                type: string
                required: false
              port:
                type: integer
                required: false
            capabilities:
              host:
                type: tosca.capabilities.Container
                valid_source_types: [ tosca.nodes.Database ]

          tosca.nodes.Database:
            derived_from: tosca.nodes.Root
            properties:
              name:
                type: string
                required: true
              port:
                type: integer
                required: false
              user:
                type: string
                required: false
              password:
                type: string
                required: false
            requirements:
              - host:
                  capability: tosca.capabilities.Container
                  node: tosca.nodes.DBMS
                  relationship: tosca.relationships.HostedOn
            capabilities:
              database_endpoint:
                type: tosca.capabilities.Endpoint.Database

          tosca.nodes.Abstract.Storage:
            derived_from: tosca.nodes.Root
            properties:
              name:
                type: string
                required: false  # the spec says required; real templates never set it and deployctl names volumes itself
              size:
                type: scalar-unit.size
                required: false
                default: 0 MB
                constraints:
                  - greater_or_equal: 0 MB

          tosca.nodes.Storage.ObjectStorage:
            derived_from: tosca.nodes.Abstract.Storage
            properties:
              maxsize:
                type: scalar-unit.size
                required: false
                constraints:
                  - greater_or_equal: 0 GB
            capabilities:
              storage_endpoint:
                type: tosca.capabilities.Endpoint

          tosca.nodes.Storage.BlockStorage:
            derived_from: tosca.nodes.Abstract.Storage
            properties:
              size:
                type: scalar-unit.size
                # Optional here so that a template attaching an existing volume by id need not invent a size.
                required: false
                constraints:
                  - greater_or_equal: 1 MB
              volume_id:
                type: string
                required: false
              snapshot_id:
                type: string
                required: false
            capabilities:
              attachment:
                type: tosca.capabilities.Attachment

          tosca.nodes.Container.Runtime:
            derived_from: tosca.nodes.SoftwareComponent
            capabilities:
              host:
                type: tosca.capabilities.Container
              scalable:
                type: tosca.capabilities.Scalable

          tosca.nodes.Container.Application:
            derived_from: tosca.nodes.Root
            requirements:
              - host:
                  capability: tosca.capabilities.Container
                  node: tosca.nodes.Container.Runtime
                  relationship: tosca.relationships.HostedOn
              # The spec gives storage and network no occurrences (so [1, 1]), yet its own examples and real
              # templates never assign them; deployctl reads them as optional.
              - storage:
                  capability: tosca.capabilities.Storage
                  occurrences: [0, 1]
              - network:
                  capability: tosca.capabilities.Endpoint
                  occurrences: [0, 1]

          tosca.nodes.LoadBalancer:
            derived_from: tosca.nodes.Root
            properties:
              algorithm:
                type: string
                required: false
                status: experimental
            capabilities:
              client:
                type: tosca.capabilities.Endpoint.Public
                occurrences: [ 0, UNBOUNDED ]
            requirements:
              # Connection to one or more load balanced applications.
              - application:
                  capability: tosca.capabilities.Endpoint
                  relationship: tosca.relationships.RoutesTo
                  occurrences: [ 0, UNBOUNDED ]

          tosca.nodes.network.Network:
            derived_from: tosca.nodes.Root
            properties:
              ip_version:
                type: integer
                required: false
                default: 4
                constraints:
                  - valid_values: [ 4, 6 ]
              cidr:
                type: string
                required: false
              start_ip:
                type: string
                required: false
              end_ip:
                type: string
                required: false
              gateway_ip:
                type: string
                required: false
              network_name:
                type: string
                required: false
              network_id:
                type: string
                required: false
              segmentation_id:
                type: string
                required: false
              network_type:
                type: string
                required: false
              physical_network:
                type: string
                required: false
              dhcp_enabled:
                type: boolean
                required: false
                default: true
            capabilities:
              link:
                type: tosca.capabilities.network.Linkable

          tosca.nodes.network.Port:
            derived_from: tosca.nodes.Root
            properties:
              ip_address:
                type: string
                required: false
              order:
                type: integer
                required: true
                default: 0
                constraints:
                  - greater_or_equal: 0
              is_default:
                type: boolean
                required: false
                default: false
              ip_range_start:
                type: string
                required: false
              ip_range_end:
                type: string
                required: false
            requirements:
              - link:
                  capability: tosca.capabilities.network.Linkable
                  relationship: tosca.relationships.network.LinksTo
              - binding:
                  capability: tosca.capabilities.network.Bindable
                  relationship: tosca.relationships.network.BindsTo

        ##########################################################################
        # Group Types (section 5.10)
        ##########################################################################
        group_types:

          tosca.groups.Root:
            interfaces:
              Standard:
                type: tosca.interfaces.node.lifecycle.Standard

        ##########################################################################
        # Policy Types (section 5.11)
        ##########################################################################
        policy_types:

          tosca.policies.Root:

          tosca.policies.Placement:
            derived_from: tosca.policies.Root

          tosca.policies.Scaling:
            derived_from: tosca.policies.Root

          tosca.policies.Update:
            derived_from: tosca.policies.Root

          tosca.policies.Performance:
            derived_from: tosca.policies.Root
        """#
}
