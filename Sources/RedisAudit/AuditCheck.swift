/// Check ids of the Redis audit that other modules refer to (the pattern engine re-audits or filters by them):
/// named once here, so no module matches another's text.
public enum AuditCheck {
    public static let hashMissingField = "redis.hash.missing-field"
    public static let expiryRefreshed = "redis.expiry.refreshed"
    /// Keys without a TTL left by a writer known to have been killed mid-write (`RedisAuditOptions.killedWriters`).
    public static let ttlKilledWriter = "redis.ttl.killed-writer"
}
