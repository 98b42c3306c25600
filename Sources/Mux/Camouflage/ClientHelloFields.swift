/// The fields of a ClientHello record that the TLS transport's authentication uses, read from anyone's bytes
/// before anything is known about them: the random, the session id, the two X25519 shares a tcptunnel hello
/// carries, and the server name. Pure and bounds-checked: a malformed hello is `nil`, never a trap.
package struct ClientHelloFields {
    /// The whole record.
    package let record: [UInt8]
    package let randomRange: Range<Int>
    package let sessionIDRange: Range<Int>
    /// The `x25519` key share's public key, if the hello offers one of 32 bytes.
    package let x25519Share: Range<Int>?
    /// The X25519 half (the last 32 bytes) of the `X25519MLKEM768` share, if the hello offers one of the
    /// browser's 1,216 bytes.
    package let hybridX25519Share: Range<Int>?
    /// The host name in server_name, if any.
    package let serverName: String?

    /// The fields of `record`, a whole TLS record holding exactly one ClientHello with a 32-byte session id;
    /// `nil` for anything else.
    package init?(record: [UInt8]) {
        self.record = record
        var reader = TLSReader(record)
        guard reader.u8() == TLSRecord.ContentType.handshake.rawValue, reader.u8() == 0x03, reader.u8() != nil,
            reader.u16().map(Int.init) == record.count - TLSRecord.headerSize,
            reader.u8() == 1, reader.u24() == record.count - TLSRecord.headerSize - 4,
            reader.u16() == 0x0303, let random = reader.skip(32),
            let sessionID = reader.u8Vector(), sessionID.count == 32,
            reader.u16Vector() != nil, reader.u8Vector() != nil,
            let extensions = reader.u16Vector(), reader.isAtEnd
        else { return nil }
        randomRange = random
        sessionIDRange = sessionID
        var x25519: Range<Int>?
        var hybrid: Range<Int>?
        var name: String?
        var list = TLSReader(record, range: extensions)
        while !list.isAtEnd {
            guard let type = list.u16(), let data = list.u16Vector() else { return nil }
            switch type {
            case 0x0033:
                guard let shares = Self.keyShares(record, data) else { return nil }
                (x25519, hybrid) = shares
            case 0x0000:
                name = Self.serverName(record, data)
            default: break
            }
        }
        x25519Share = x25519
        hybridX25519Share = hybrid
        serverName = name
    }

    /// The record with its session id zeroed: what the session id authenticates.
    var recordWithoutSessionID: [UInt8] {
        var bytes = record
        bytes.replaceSubrange(sessionIDRange, with: repeatElement(0, count: sessionIDRange.count))
        return bytes
    }

    /// The x25519 share and the hybrid share's X25519 half, where present; `nil` for a malformed list.
    private static func keyShares(_ record: [UInt8], _ data: Range<Int>) -> (Range<Int>?, Range<Int>?)? {
        var reader = TLSReader(record, range: data)
        guard let list = reader.u16Vector(), reader.isAtEnd else { return nil }
        var entries = TLSReader(record, range: list)
        var x25519: Range<Int>?
        var hybrid: Range<Int>?
        while !entries.isAtEnd {
            guard let group = entries.u16(), let key = entries.u16Vector() else { return nil }
            if group == BrowserClientHello.x25519Group && key.count == 32 { x25519 = key }
            if group == BrowserClientHello.hybridGroup && key.count == MLKEMEncapsulationKey.size + 32 {
                hybrid = key.upperBound - 32..<key.upperBound
            }
        }
        return (x25519, hybrid)
    }

    /// The first host name of a server_name extension.
    private static func serverName(_ record: [UInt8], _ data: Range<Int>) -> String? {
        var reader = TLSReader(record, range: data)
        guard let list = reader.u16Vector() else { return nil }
        var names = TLSReader(record, range: list)
        guard names.u8() == 0, let name = names.u16Vector() else { return nil }
        return String(validating: Array(record[name]), as: UTF8.self)
    }
}
