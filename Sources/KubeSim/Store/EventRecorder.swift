import Foundation
import Synchronization
import KubeModel

/// Writes core/v1 Events the way kubelet and scheduler do: one object per (object, reason, message), its `count`
/// and `lastTimestamp` bumped on repeats, `involvedObject.uid` set so `events(forUID:)` finds them.
package final class EventRecorder: Sendable {
    private let store: ObjectStore
    private let names = Mutex<[String: String]>([:])
    static let events = ResourceCatalog.find(group: "", version: "v1", plural: "events")!

    package init(store: ObjectStore) { self.store = store }

    package func record(_ object: JSONValue, type: String = "Normal", reason: String, message: String, component: String, host: String? = nil,
                fieldPath: String? = nil) {
        guard let namespace = object.string(at: "metadata", "namespace"), let name = object.string(at: "metadata", "name"),
              let uid = object.string(at: "metadata", "uid") else { return }
        let key = "\(uid)|\(reason)|\(message)"
        let now = ObjectStore.now()
        if let existing = names.withLock({ $0[key] }),
           store.modify(Self.events, namespace: namespace, name: existing, manager: component, { event in
               var event = event
               event.set(["count"], to: .number(Double((event["count"]?.intValue ?? 1) + 1)))
               event.set(["lastTimestamp"], to: .string(now))
               return event
           }) != nil {
            return
        }
        var involved: JSONValue = ["kind": .string(object.string(at: "kind") ?? "Pod"), "namespace": .string(namespace), "name": .string(name),
                                   "uid": .string(uid), "apiVersion": .string(object.string(at: "apiVersion") ?? "v1")]
        if let fieldPath { involved.set(["fieldPath"], to: .string(fieldPath)) }
        var source: JSONValue = ["component": .string(component)]
        if let host { source.set(["host"], to: .string(host)) }
        let eventName = "\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        let body: JSONValue = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string(eventName), "namespace": .string(namespace)],
            "involvedObject": involved, "reason": .string(reason), "message": .string(message), "type": .string(type),
            "source": source, "reportingComponent": .string(component), "reportingInstance": .string(host ?? ""),
            "firstTimestamp": .string(now), "lastTimestamp": .string(now), "count": 1,
        ]
        if (try? store.create(Self.events, namespace: namespace, body: body, manager: component)) != nil {
            names.withLock { $0[key] = eventName }
        }
    }
}
