/// Turns byte ranges into `String`s, reusing one `String` for bytes seen before.
///
/// Expositions repeat a few names and label values hundreds of thousands of times; interning makes each of them
/// one allocation instead of one per sample. The table is bounded (entries and bytes), after which new tokens are
/// still returned as fresh strings, so memory stays bounded on high-cardinality input.
struct StringInterner {
    private struct Entry {
        var hash: UInt64 = 0  // 0: empty
        var length = 0
        /// Tokens of up to 16 bytes are compared as two words; longer ones against `arena`.
        var word0: UInt64 = 0
        var word1: UInt64 = 0
        var offset = 0
        var string = ""
    }

    private var entries = [Entry](repeating: Entry(), count: 1024)
    /// The bytes of every interned token longer than 16 bytes, for comparison without touching `String`.
    private var arena: [UInt8] = []
    /// Per token position on a line (metric name, label name/value k), the slot of the token last seen there.
    /// Consecutive lines mostly repeat names and many values, which then skip hashing and probing.
    private var lastSlotAtPosition = [Int](repeating: -1, count: StringInterner.cachedPositions)
    static let cachedPositions = 64
    private var count = 0
    private let maxEntries: Int
    private let maxArenaBytes: Int

    init(maxEntries: Int = 1 << 16, maxArenaBytes: Int = 8 << 20) {
        self.maxEntries = maxEntries
        self.maxArenaBytes = maxArenaBytes
        arena.reserveCapacity(64 << 10)
    }

    /// Returns the string for `length` bytes at `start` (valid UTF-8, checked by the caller) and their hash.
    /// `position` (0..<64, or -1 for none) names where on the line the token sits, for the repeat cache.
    mutating func intern(_ start: UnsafePointer<UInt8>, _ length: Int, position: Int = -1) -> (string: String, hash: UInt64) {
        let short = length <= 16
        let words = short ? loadWords(start, length) : (0, 0)
        let cacheable = position >= 0 && position < Self.cachedPositions
        if cacheable {
            let slot = lastSlotAtPosition[position]
            if slot >= 0 && matches(slot, start, length, words) { return (entries[slot].string, entries[slot].hash) }
        }
        let hash = short ? hashWords(words, length) : hashBytes(start, length)
        let mask = entries.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while entries[slot].hash != 0 {
            if entries[slot].hash == hash && matches(slot, start, length, words) {
                if cacheable { lastSlotAtPosition[position] = slot }
                return (entries[slot].string, hash)
            }
            slot = (slot + 1) & mask
        }
        let string = makeString(start, length)
        guard count < maxEntries, short || arena.count + length <= maxArenaBytes else { return (string, hash) }
        entries[slot] = Entry(hash: hash, length: length, word0: words.0, word1: words.1,
                              offset: short ? 0 : arena.count, string: string)
        if !short { arena.append(contentsOf: UnsafeBufferPointer(start: start, count: length)) }
        count += 1
        if count * 2 > entries.count {
            grow()  // slots move
        } else if cacheable {
            lastSlotAtPosition[position] = slot
        }
        return (string, hash)
    }

    @inline(__always)
    private func matches(_ slot: Int, _ start: UnsafePointer<UInt8>, _ length: Int, _ words: (UInt64, UInt64)) -> Bool {
        guard entries[slot].length == length else { return false }
        if length <= 16 { return entries[slot].word0 == words.0 && entries[slot].word1 == words.1 }
        return arena.withUnsafeBufferPointer { memoryEqual($0.baseAddress! + entries[slot].offset, start, length) }
    }

    private mutating func grow() {
        for position in lastSlotAtPosition.indices { lastSlotAtPosition[position] = -1 }
        entries = doubled(entries, empty: Entry(), hash: { $0.hash == 0 ? nil : $0.hash }) { hash, mask in
            Int(truncatingIfNeeded: hash) & mask
        }
    }
}

/// The slots of an open-addressing table (linear probing) moved into a table twice the size, for the parser's
/// three tables (interned strings, shared label sets, series). `hash` is a slot's hash, nil for an empty slot;
/// `home` is where probing for a hash starts in a table of `mask + 1` slots.
func doubled<Slot>(_ old: [Slot], empty: Slot, hash: (Slot) -> UInt64?, home: (UInt64, Int) -> Int) -> [Slot] {
    var slots = [Slot](repeating: empty, count: old.count * 2)
    let mask = slots.count - 1
    for slot in old {
        guard let slotHash = hash(slot) else { continue }
        var index = home(slotHash, mask)
        while hash(slots[index]) != nil { index = (index + 1) & mask }
        slots[index] = slot
    }
    return slots
}

/// Up to 16 bytes as two words, read without going past `length` (overlapping reads where needed). For a given
/// length the result is unique to the bytes, which is all comparison and hashing need.
@inline(__always)
func loadWords(_ start: UnsafePointer<UInt8>, _ length: Int) -> (UInt64, UInt64) {
    let raw = UnsafeRawPointer(start)
    switch length {
    case 9...16:
        return (raw.loadUnaligned(as: UInt64.self), raw.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self))
    case 4...8:
        let low = UInt64(raw.loadUnaligned(as: UInt32.self))
        let high = UInt64(raw.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self))
        return (low | high << 32, 0)
    case 1...3:
        return (UInt64(start[0]) | UInt64(start[length >> 1]) << 8 | UInt64(start[length - 1]) << 16, 0)
    default:
        return (0, 0)
    }
}

/// The hash of a token of up to 16 bytes given as words (tokens of one length always use the same function).
@inline(__always)
func hashWords(_ words: (UInt64, UInt64), _ length: Int) -> UInt64 {
    var h = (words.0 ^ 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: length)) &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 32
    h = (h ^ words.1) &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 29
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 32
    return h == 0 ? 1 : h
}

/// Makes a `String` from bytes already known to be valid UTF-8.
@inline(__always)
func makeString(_ start: UnsafePointer<UInt8>, _ length: Int) -> String {
    String(decoding: UnsafeBufferPointer(start: start, count: length), as: UTF8.self)
}

@inline(__always)
func memoryEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ length: Int) -> Bool {
    var i = 0
    let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
    while i + 8 <= length {
        if rawA.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rawB.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < length {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}

/// A fast 64-bit hash of a byte range (word at a time, multiply-xorshift mixing); never 0, so 0 can mark empty slots.
@inline(__always)
func hashBytes(_ start: UnsafePointer<UInt8>, _ length: Int) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: length)
    let raw = UnsafeRawPointer(start)
    var i = 0
    while i + 8 <= length {
        h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 32
        i += 8
    }
    var tail: UInt64 = 0
    var shift: UInt64 = 0
    while i < length {
        tail |= UInt64(start[i]) << shift
        shift += 8
        i += 1
    }
    h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 29
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 32
    return h == 0 ? 1 : h
}

/// Mixes two hashes into one (used for a label's name and value).
@inline(__always)
func combineHashes(_ a: UInt64, _ b: UInt64) -> UInt64 {
    var h = (a &* 0x9E37_79B9_7F4A_7C15) ^ (b &+ 0x7F4A_7C15_9E37_79B9 &+ (a << 6) &+ (a >> 2))
    h ^= h >> 31
    h = h &* 0xBF58_476D_1CE4_E5B9
    h ^= h >> 29
    return h
}
