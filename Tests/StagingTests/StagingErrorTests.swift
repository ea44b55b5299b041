import Testing

@testable import Staging

@Suite("Staging errors")
struct StagingErrorTests {
    @Test("an error reads as its message")
    func description() {
        #expect(StagingError(.usage, "give --secret-file").description == "give --secret-file")
    }
}
