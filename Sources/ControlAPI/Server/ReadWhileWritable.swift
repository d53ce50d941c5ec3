import NIOCore

/// Holds a connection's reads while its answers wait to be written. HTTP pipelining hands the
/// next request over as soon as an answer is written into the channel, not once it has left;
/// a client that sends requests and never reads their answers would otherwise pile them up in
/// the VMM's memory without end. Held, it fills its own socket and the idle time ends it.
final class ReadWhileWritable: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    private var readHeld = false

    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, readHeld {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }
}
