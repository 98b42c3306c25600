import Logging

extension Link {
    /// How a client accepted by this agent learns the outcome of its OPEN before any byte of the target
    /// reaches it.
    enum ClientAnswer {
        /// Nothing to say: a refused client is reset, so it fails at once rather than read an empty reply.
        case none
        /// A SOCKS5 reply, then a graceful close if it was a failure (RFC 1928 §6).
        case socks(SocksServer)
    }

    /// Carries `client` as a new stream to `target` until the stream ends, on the calling thread (the client's
    /// own, which becomes the stream's uplink), telling the peer it connected from `origin` (`client.origin`,
    /// which the caller reads once for its own log lines too), counting its bytes into `forwardBytes` too when
    /// given. The caller holds a slot of `slots`; this returns
    /// it in every case. Returns how the peer answered the OPEN, or `nil`
    /// if the link took no new stream.
    ///
    /// A client with nothing to be told is carried at once: its first bytes go out right behind the OPEN,
    /// and a refusal resets it. A SOCKS client must hear the real outcome first, so its stream waits for it.
    func carry(
        _ client: Socket, to target: StreamTarget, from origin: StreamOrigin?, answer: ClientAnswer,
        counting forwardBytes: StreamCounters? = nil
    ) -> StreamOpenOutcome? {
        let carriesAtOnce = if case .none = answer { true } else { false }
        guard
            let stream = openStream(
                to: target, from: origin, carrying: carriesAtOnce ? client : nil, counting: forwardBytes)
        else {
            slots.release()
            close(client, answer: answer, outcome: .linkClosed)
            return nil
        }
        if carriesAtOnce {
            stream.run()
            return stream.awaitEstablished(within: Limits.openAnswerTimeout)
        }
        let outcome = stream.awaitEstablished(within: Limits.openAnswerTimeout)
        if outcome == .established, answer.tell(.established), stream.attach(client) {
            stream.run()
            return outcome
        }
        stream.abort(sending: .aborted)
        stream.abandon()
        close(client, answer: answer, outcome: outcome)
        return outcome
    }

    private func close(_ client: Socket, answer: ClientAnswer, outcome: StreamOpenOutcome) {
        if case .none = answer {
            client.setAbortOnClose()
        } else if outcome != .established {
            answer.tell(outcome)
        }
        client.close()
    }
}

extension Link.ClientAnswer {
    /// Tells the client `outcome`; returns whether it got it.
    @discardableResult
    fileprivate func tell(_ outcome: StreamOpenOutcome) -> Bool {
        switch self {
        case .none: true
        case .socks(let server): server.reply(SocksServer.ReplyCode(outcome))
        }
    }
}
