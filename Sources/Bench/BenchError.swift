/// Why a benchmark could not run or could not finish, in words a user can act on.
public struct BenchError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
