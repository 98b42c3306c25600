import Testing

@testable import Mux

/// What a reload's log line says of the SOCKS users: only what changed, by user name, never a password.
@Suite struct SocksCredentialsChangeTests {
    private let users = SocksCredentials(passwords: ["alice": "wonderland", "bob": "builder"])

    @Test func theSameUsersAreNoChange() {
        #expect(
            SocksCredentials.change(
                from: users, to: SocksCredentials(passwords: ["bob": "builder", "alice": "wonderland"])) == nil)
        #expect(SocksCredentials.change(from: nil, to: nil) == nil)
    }

    @Test func addedRemovedAndNewPasswordsAreNamedByUser() {
        let next = SocksCredentials(passwords: ["alice": "looking-glass", "carol": "secret"])
        #expect(
            SocksCredentials.change(from: users, to: next)
                == "SOCKS users: added carol; removed bob; new password for alice")
    }

    @Test func loginTurnedOnOrOffIsSaid() {
        #expect(SocksCredentials.change(from: nil, to: users) == "SOCKS login required: 2 users")
        #expect(SocksCredentials.change(from: users, to: nil) == "SOCKS login no longer required")
    }
}
