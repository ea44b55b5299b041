/// The TOSCA Simple Profile's non-normative example types (Docker containers, MySQL, Apache, WordPress), which real
/// templates and types files reference as if they were built in. Written for deployctl from the specification's
/// descriptions.
enum NonNormativeTypes {
    static let yaml = #"""
        tosca_definitions_version: tosca_simple_yaml_1_3

        artifact_types:
          tosca.artifacts.Deployment.Image.Container.Docker:
            derived_from: tosca.artifacts.Deployment.Image
            description: A Docker container image.
          tosca.artifacts.Deployment.Image.VM.ISO:
            derived_from: tosca.artifacts.Deployment.Image.VM
            description: A virtual machine image in ISO disk format.
            mime_type: application/octet-stream
            file_ext: [ iso ]
          tosca.artifacts.Deployment.Image.VM.QCOW2:
            derived_from: tosca.artifacts.Deployment.Image.VM
            description: A virtual machine image in QCOW2 disk format.
            mime_type: application/octet-stream
            file_ext: [ qcow2 ]

        capability_types:
          tosca.capabilities.Container.Docker:
            derived_from: tosca.capabilities.Container
            description: The host capability of a Docker runtime.
            properties:
              version:
                type: list
                required: false
                entry_schema:
                  type: version
              publish_all:
                type: boolean
                required: false
                default: false
              publish_ports:
                type: list
                required: false
                entry_schema:
                  type: tosca.datatypes.network.PortSpec
              expose_ports:
                type: list
                required: false
                entry_schema:
                  type: tosca.datatypes.network.PortSpec
              volumes:
                type: list
                required: false
                entry_schema:
                  type: string

        node_types:
          tosca.nodes.Container.Application.Docker:
            derived_from: tosca.nodes.Container.Application
            description: An application packaged as a Docker container.
            requirements:
              - host:
                  capability: tosca.capabilities.Container.Docker
                  node: tosca.nodes.Container.Runtime
                  relationship: tosca.relationships.HostedOn

          tosca.nodes.WebServer.Apache:
            derived_from: tosca.nodes.WebServer
            description: The Apache HTTP web server.

          tosca.nodes.WebApplication.WordPress:
            derived_from: tosca.nodes.WebApplication
            description: The WordPress web application.
            properties:
              admin_user:
                type: string
                required: false
              admin_password:
                type: string
                required: false
              db_host:
                type: string
                required: false
            requirements:
              - database_endpoint:
                  capability: tosca.capabilities.Endpoint.Database
                  node: tosca.nodes.Database
                  relationship: tosca.relationships.ConnectsTo

          tosca.nodes.DBMS.MySQL:
            derived_from: tosca.nodes.DBMS
            description: The MySQL database management system.
            properties:
              port:
                type: integer
                description: The port MySQL listens on.
                required: false
                default: 3306
            capabilities:
              host:
                type: tosca.capabilities.Container
                valid_source_types: [ tosca.nodes.Database.MySQL ]

          tosca.nodes.Database.MySQL:
            derived_from: tosca.nodes.Database
            description: A MySQL database.
            requirements:
              - host:
                  capability: tosca.capabilities.Container
                  node: tosca.nodes.DBMS.MySQL
                  relationship: tosca.relationships.HostedOn
        """#
}
