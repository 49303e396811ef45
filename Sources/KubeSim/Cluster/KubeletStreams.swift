import SimStore
import SimAPIServer
import SimNode
import Processes

/// The kubelet's exec and attach, as the API server's streaming routes ask for them (the API server does not depend
/// on the node; the facade joins them).
struct KubeletStreams: PodStreams {
    let kubelet: Kubelet

    func exec(namespace: String, pod: String, container: String, command: [String]) throws -> StreamSession {
        let (process, ended) = try kubelet.exec(namespace: namespace, pod: pod, container: container, command: command)
        let (output, continuation) = AsyncStream<(channel: UInt8, bytes: [UInt8])>.makeStream()
        let forward = Task(executorPreference: SimExecutor.shared) {
            for await chunk in process.output { continuation.yield((chunk.stream, chunk.bytes)) }
            continuation.finish()
        }
        return StreamSession(
            output: output,
            writeStdin: { process.write($0) },
            closeStdin: { process.closeStdin() },
            exitCode: {
                let code = await process.waitForExit()
                ended()
                return code
            },
            cancel: {
                forward.cancel()
                process.kill()
                Task(executorPreference: SimExecutor.shared) {
                    _ = await process.waitForExit()
                    ended()
                }
            })
    }

    func attach(namespace: String, pod: String, container: String) throws -> StreamSession {
        let attachment = try kubelet.attach(namespace: namespace, pod: pod, container: container)
        let (output, continuation) = AsyncStream<(channel: UInt8, bytes: [UInt8])>.makeStream()
        let forward = Task(executorPreference: SimExecutor.shared) {
            for await bytes in attachment.output { continuation.yield((1, bytes)) }
            continuation.finish()
        }
        return StreamSession(output: output, writeStdin: attachment.writeStdin, closeStdin: attachment.closeStdin,
                             exitCode: attachment.exitCode,
                             cancel: {
                                 forward.cancel()
                                 attachment.stop()
                             })
    }
}
