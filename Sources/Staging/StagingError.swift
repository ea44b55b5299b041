/// What went wrong while staging data: a message a data manager can act on, with the file or server it concerns.
/// Messages never carry patient identifiers or credentials: they name files by path and instances by position.
public struct StagingError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable {
        /// A DICOM file could not be read (truncated, not Part 10, an unsupported transfer syntax).
        case malformed
        /// A DICOMweb server refused or failed a request.
        case server
        /// The selection, secret or options given are wrong.
        case usage
        /// A converter or other tool failed.
        case tool
        /// The volume is missing, sealed, or its files do not match the manifest.
        case volume
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
