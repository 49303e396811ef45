/// Check ids of the Redis audit that other modules refer to (the pattern engine re-audits or filters by them):
/// named once here, so no module matches another's text.
public enum AuditCheck {
    public static let hashMissingField = "redis.hash.missing-field"
    public static let expiryRefreshed = "redis.expiry.refreshed"
    /// Keys without a TTL left by a writer known to have been interrupted mid-write (hung and killed, or gone uncounted) (`RedisAuditOptions.killedWriters`).
    public static let ttlKilledWriter = "redis.ttl.killed-writer"
    /// The same keys in the expiry observation (`RedisAuditOptions.killedWriters`).
    public static let expiryKilledWriter = "redis.expiry.killed-writer"
    /// Keys without a TTL written while the app shut down (`RedisAuditOptions.shutdownSince`).
    public static let expiryShutdownWrite = "redis.expiry.shutdown-write"
}
