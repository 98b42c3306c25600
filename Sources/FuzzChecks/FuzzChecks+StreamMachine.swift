import Mux

/// The stream's state machine under any order of events: the link's reader, the uplink, the downlink thread
/// and the connection's writes interleave as the input says, and the invariants hold after every event.
extension FuzzChecks {
    /// Drives one end of a stream (the input's first byte says which) through events the input chooses, with a
    /// peer that mostly keeps the protocol's rules and sometimes breaks them (then the link ends, as it would),
    /// and a connection that takes what the input says of each direct write. Checks: every byte the peer sent is
    /// written to the connection at most once and in order, and all of them before its FIN reaches it; nothing
    /// goes to the peer after the stream's RESET; send credit is never negative; and once both directions have
    /// ended, the stream retired exactly once.
    public static func streamMachine(_ input: [UInt8]) {
        var driver = StreamMachineDriver(input: input)
        driver.run()
    }
}

/// One run of `FuzzChecks.streamMachine`: the machine, a model of the peer and of the connection, and the
/// choices left in the input.
struct StreamMachineDriver {
    private var choices: ArraySlice<UInt8>
    private var machine: StreamMachine
    private let id: StreamID = 1
    private let isOpener: Bool
    /// Every byte the peer sent as DATA (each names its position, so that order and duplicates show), and how
    /// many of them the connection got, checked against these as they came.
    private var peerSent: [UInt8] = []
    private var written = 0
    private var counted = 0
    /// The bytes the peer may send in all, counted from the stream's first byte, as it reads our frames: our
    /// window once it is told it (in OPEN, or in our OPEN_OK), the opening window before, plus every WINDOW.
    private var peerAllowance: Int
    private var peerSentFIN = false
    private var peerAnswered = false
    private var connected: Bool
    private var downlinkThread = false
    private var uplinkEnded = false
    private var outputEnded = false
    private var resetQueued = false
    private var retirements = 0
    private var linkEnded = false

    init(input: [UInt8]) {
        choices = input[...]
        isOpener = (input.first ?? 0) & 1 == 0
        let carriesAtOnce = (input.first ?? 0) & 2 == 0
        connected = isOpener && carriesAtOnce
        peerAllowance = isOpener ? Self.window : Limits.openingWindow
        machine = StreamMachine(
            isOpener: isOpener, window: ReceiveWindow(size: Self.window, targetSize: Self.window),
            sendCredit: Limits.openingWindow, isConnected: connected)
        choices = choices.dropFirst()
    }

    /// The receive window of the stream under test.
    private static let window = 1 << 17

    /// Byte `i` stands for position `i` of the peer's bytes: scrambled, so that no two nearby chunks look alike.
    private static let positions = (0..<(1 << 20)).map { position in
        UInt8(truncatingIfNeeded: (UInt32(truncatingIfNeeded: position) &* 2_654_435_761) >> 24)
    }

    private mutating func choose(_ range: ClosedRange<Int>) -> Int {
        guard let byte = choices.popFirst() else { return range.lowerBound }
        return range.lowerBound + Int(byte) % (range.count)
    }

    mutating func run() {
        while !choices.isEmpty && !linkEnded {
            step(choose(0...11))
            check()
        }
        finish()
    }

    private mutating func step(_ event: Int) {
        switch event {
        case 0: peerData(breakingRules: choose(0...15) == 0)
        case 1: peerFIN()
        case 2: peerOpenOK()
        case 3: perform(frameEvent { (machine) throws(LinkError) in try machine.receiveWindow(increment: 7, id: 1) })
        case 4: perform(machine.receiveReset(.aborted))
        case 5: perform(machine.abort(sending: .aborted))
        case 6: connect()
        case 7: uplinkRead()
        case 8: uplinkEnd()
        case 9: downlinkStep()
        case 10: if isOpener { perform(machine.openUnanswered()) }
        default:
            linkEnded = true
            perform(machine.linkClosed())
        }
    }

    // MARK: The peer

    private mutating func peerData(breakingRules: Bool) {
        let room = peerAllowance - peerSent.count
        let mayData = !peerSentFIN && (isOpener ? peerAnswered : true)
        guard breakingRules || (mayData && room > 0) else { return }
        let largest = choose(0...7) == 0 ? 4096 : 64
        let count = breakingRules ? choose(1...300) + max(0, room) : choose(1...min(room, largest))
        let isLegal = mayData && count <= room
        // Each byte names its position, scrambled, so that bytes written twice or out of order show.
        let start = peerSent.count % (Self.positions.count - (1 << 17))
        let bytes = Array(Self.positions[start..<start + min(count, 1 << 17)])
        let disposition: StreamMachine.DataDisposition
        do {
            disposition = try machine.receiveData(count: count, id: id)
        } catch {
            precondition(!isLegal, "a legal DATA was refused: \(error)")
            return endLink()
        }
        precondition(isLegal || disposition == .ignore, "DATA beyond the rules was taken")
        switch disposition {
        case .ignore: break
        case .hold:
            peerSent += bytes
            perform(machine.hold(bytes))
        case .writeNow:
            peerSent += bytes
            perform(writeDirectly(bytes))
        }
    }

    private mutating func peerFIN() {
        guard !peerSentFIN else {
            // A second FIN: always a violation, unless the stream was reset (then it is ignored).
            if (try? machine.receiveFIN(id: id)) == nil { endLink() }
            return
        }
        let allowed = isOpener ? peerAnswered : true
        do {
            perform(try machine.receiveFIN(id: id))
            peerSentFIN = true
        } catch {
            precondition(!allowed || machine.isReset, "a legal FIN was refused")
            endLink()
        }
    }

    private mutating func peerOpenOK() {
        guard isOpener else { return }
        do {
            perform(try machine.receiveOpenOK(window: UInt32(Self.window), id: id))
            peerAnswered = true
        } catch {
            precondition(peerAnswered, "the first OPEN_OK was refused")
            endLink()
        }
    }

    private mutating func frameEvent(_ event: (inout StreamMachine) throws(LinkError) -> [StreamEffect])
        -> [StreamEffect]
    {
        (try? event(&machine)) ?? []
    }

    private mutating func endLink() {
        linkEnded = true
        perform(machine.linkClosed())
    }

    // MARK: The stream's threads

    private mutating func connect() {
        guard !connected else { return }
        let effects = isOpener ? machine.attach() : machine.accept(id: id)
        guard let effects else { return }
        connected = true
        perform(effects)
    }

    private mutating func uplinkRead() {
        guard !uplinkEnded, connected else { return }
        switch machine.takeCredit(upTo: choose(1...40_000)) {
        case .granted(let grant): machine.settleRead(granted: grant, received: choose(0...grant))
        case .wait, .reset: break
        }
    }

    /// The connection reached end of stream (FIN), and the uplink thread may end too; one never connected ends
    /// its uplink at once (`Stream.abandon`).
    private mutating func uplinkEnd() {
        guard !uplinkEnded else { return }
        if connected { _ = machine.sendFIN() }
        guard !connected || choose(0...1) == 0 else { return }
        uplinkEnded = true
        perform(connected ? machine.uplinkEnded() : machine.abandoned())
    }

    private mutating func downlinkStep() {
        guard downlinkThread else { return }
        switch machine.nextDownlinkStep() {
        case .wait: break
        case .write(let chunk):
            let failed = choose(0...20) == 0
            if !failed { deliver(chunk) }
            perform(machine.downlinkWrote(chunk.count, failed: failed, id: id, roundTrip: nil, grow: { $0 }))
        case .endOutput:
            endOutput()
            downlinkThread = false
            perform(machine.downlinkThreadEnded())
        case .stop:
            downlinkThread = false
            perform(machine.downlinkThreadEnded())
        }
    }

    // MARK: Effects, as `Stream.perform` carries them out

    private mutating func perform(_ effects: [StreamEffect]) {
        for effect in effects {
            switch effect {
            case .wake, .abortConnection, .countOpened: break
            case .send(let frame):
                precondition(!resetQueued, "\(frame) after the stream's RESET")
                switch frame {
                case .window(_, let increment): peerAllowance += Int(increment)
                case .openOK(_, let window): peerAllowance = max(peerAllowance, Int(window))
                default: break
                }
            case .cancelQueued: resetQueued = true
            case .endConnectionOutput: endOutput()
            case .deliverHeld: deliverHeld()
            case .startDownlinkThread:
                precondition(!downlinkThread, "a second downlink thread")
                downlinkThread = true
            case .countDown(let count): counted += count
            case .retire:
                retirements += 1
                precondition(retirements == 1, "retired twice")
            }
        }
    }

    private mutating func deliverHeld() {
        while let chunk = machine.takeHeldForDirectWrite() { perform(writeDirectly(chunk)) }
        perform(machine.heldDelivered())
    }

    /// A non-blocking write of `bytes` that takes as many as the input says (or fails).
    private mutating func writeDirectly(_ bytes: [UInt8]) -> [StreamEffect] {
        let taken = choose(0...40) == 0 ? nil : min(bytes.count, choose(0...bytes.count + 8))
        if let taken { deliver(Array(bytes[..<taken])) }
        return machine.wroteDirectly(
            taken, of: bytes.count, remainder: Array(bytes[(taken ?? bytes.count)...]), id: id, roundTrip: nil,
            grow: { $0 })
    }

    private mutating func deliver(_ bytes: [UInt8]) {
        precondition(!outputEnded, "bytes written after the peer's FIN reached the connection")
        let end = written + bytes.count
        precondition(
            end <= peerSent.count && peerSent[written..<end].elementsEqual(bytes),
            "the connection got bytes out of order or twice")
        written = end
    }

    private mutating func endOutput() {
        precondition(!outputEnded, "the connection's output ended twice")
        precondition(written == peerSent.count, "the peer's FIN reached the connection before all its bytes")
        outputEnded = true
    }

    private func check() {
        precondition(machine.sendCredit >= 0, "negative send credit")
        precondition(counted == written, "counted \(counted) bytes written, wrote \(written)")
    }

    /// Ends both directions as the stream's threads would once the link is gone, and checks the one retirement.
    private mutating func finish() {
        if !linkEnded { perform(machine.linkClosed()) }
        if !uplinkEnded {
            uplinkEnded = true
            perform(connected ? machine.uplinkEnded() : machine.abandoned())
        }
        // With the link gone the downlink thread either writes what is held, then the FIN, or stops: it never
        // waits, and each step takes one chunk, so it ends within as many steps as chunks are held.
        var steps = 0
        while downlinkThread && steps < 100_000 {
            downlinkStep()
            steps += 1
        }
        precondition(!downlinkThread, "the downlink thread still runs after the link ended")
        check()
        precondition(retirements == 1, "retired \(retirements) times once both directions ended")
    }
}
