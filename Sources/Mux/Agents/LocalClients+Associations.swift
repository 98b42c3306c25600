import Logging

/// SOCKS5 UDP ASSOCIATE (RFC 1928 §7): a relay of the client's datagrams for as long as its control connection
/// stays open.
extension LocalClients {
    /// Runs on the SOCKS client's thread, after its handshake: takes a stream slot (an association holds two
    /// threads and two sockets, like a stream), binds a UDP relay on the address the client reached, tells the
    /// client where it is, and waits for the control connection to end; then ends the relay and its flows.
    func associate(_ client: Socket, server: SocksServer) {
        guard limiter.tryAcquire() else {
            limitWarnings.log(
                logger, level: .warning, "refused SOCKS client \(client.peerEndpoint): \(limiter.refusal)")
            server.reply(.generalFailure)
            return client.close()
        }
        defer { limiter.release() }
        let peer = client.peerAddress
        let relay: UDPForwarder
        do {
            relay = try UDPForwarder(
                listen: Endpoint(host: client.localEndpoint.host, port: 0),
                addressing: .socks(client: peer.addressBytes), limiter: flowLimiter,
                idleTimeout: settings.udpIdleTimeout, metrics: metrics.datagrams, logger: logger
            ) { [links] in links.await(seconds: 0) }
            try relay.start()
        } catch {
            socksWarnings.log(logger, level: .error, "SOCKS client \(peer.endpoint): no UDP relay: \(error)")
            server.reply(.generalFailure)
            return client.close()
        }
        guard track(client), server.replyAssociated(relay: relay.endpoint) else {
            relay.stop()
            return untrackAndClose(client)
        }
        logger.debug("SOCKS client \(peer.endpoint): UDP relay on \(relay.endpoint)")
        awaitEnd(of: client)
        relay.stop()
        untrackAndClose(client)
        logger.debug("SOCKS client \(peer.endpoint): UDP association ended")
    }

    /// Ends every association, and any that starts from now on: each control connection is shut down, which
    /// wakes the thread that serves it.
    func endAssociations() {
        associations.withLock { associations in
            associations.isStopping = true
            for client in associations.controls.values { client.shutdown(.both) }
        }
    }

    /// Registers `client` as an association's control connection; `false` if the agent is stopping.
    private func track(_ client: Socket) -> Bool {
        associations.withLock { associations in
            guard !associations.isStopping else { return false }
            associations.controls[client.fd] = client
            return true
        }
    }

    /// Forgets `client` and closes it; under the lock `endAssociations` shuts sockets down with, so that it never
    /// reaches a descriptor already closed.
    private func untrackAndClose(_ client: Socket) {
        associations.withLock { associations in
            associations.controls[client.fd] = nil
            client.close()
        }
    }

    /// Reads and drops whatever the client sends on its control connection (nothing, by the RFC) until it ends.
    private func awaitEnd(of client: Socket) {
        client.setReceiveTimeout(seconds: 0)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        defer { buffer.deallocate() }
        while let count = try? client.receive(into: buffer), count > 0 {}
    }
}
