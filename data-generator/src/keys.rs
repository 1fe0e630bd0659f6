//! Routing keys and their sequence numbers: every event carries its key and that key's next
//! sequence number, so a reader can tell a skipped event from a duplicate (the busy reader
//! checks them in Flink state). Pravega keeps the events of one routing key in write order.

/// The routing keys events are written under, taken in turn, each counting its own events.
pub struct SequencedKeys {
    keys: Vec<String>,
    next: Vec<u64>,
    turn: usize,
}

impl SequencedKeys {
    /// `count` keys (at least one), spread uniformly over the key space so that splits really
    /// divide the load.
    pub fn new(count: usize) -> SequencedKeys {
        let count = count.max(1);
        SequencedKeys {
            keys: (0..count as u64)
                .map(|i| format!("{:016x}", spread(i)))
                .collect(),
            next: vec![0; count],
            turn: 0,
        }
    }

    /// The index of the next event's key; [`SequencedKeys::key`] and
    /// [`SequencedKeys::take_sequence`] read and advance it.
    pub fn next_key(&mut self) -> usize {
        let key = self.turn;
        self.turn = (self.turn + 1) % self.keys.len();
        key
    }

    /// The routing key at `index`.
    pub fn key(&self, index: usize) -> &str {
        &self.keys[index]
    }

    /// The next sequence number of the key at `index` (0 for its first event).
    pub fn take_sequence(&mut self, index: usize) -> u64 {
        let sequence = self.next[index];
        self.next[index] += 1;
        sequence
    }
}

/// A hash spreading key indexes uniformly over the 64-bit key space.
fn spread(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// An event: `"<key> <sequence> "`, then `template` (or nothing) and dots up to `size` bytes.
/// The key and sequence number are never cut, so an event may be longer than `size`.
pub fn payload(key: &str, sequence: u64, template: Option<&str>, size: usize) -> Vec<u8> {
    let mut event = format!("{key} {sequence} ").into_bytes();
    let header = event.len();
    event.extend(
        template
            .unwrap_or("")
            .bytes()
            .chain(std::iter::repeat(b'.'))
            .take(size.saturating_sub(header)),
    );
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_taken_in_turn() {
        let mut keys = SequencedKeys::new(3);
        let order: Vec<usize> = (0..7).map(|_| keys.next_key()).collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2, 0]);
        let distinct: std::collections::HashSet<&str> = (0..3).map(|i| keys.key(i)).collect();
        assert_eq!(distinct.len(), 3);
        assert_eq!(SequencedKeys::new(0).keys.len(), 1);
    }

    #[test]
    fn each_key_counts_its_own_events_from_zero() {
        let mut keys = SequencedKeys::new(2);
        let taken: Vec<(usize, u64)> = (0..5)
            .map(|_| {
                let key = keys.next_key();
                (key, keys.take_sequence(key))
            })
            .collect();
        assert_eq!(taken, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]);
    }

    #[test]
    fn keys_spread_over_the_key_space() {
        // Pravega hashes keys itself; here, the keys are at least all distinct.
        let keys: std::collections::HashSet<u64> = (0..10_000).map(spread).collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn payloads_start_with_key_and_sequence_and_have_the_asked_size() {
        assert_eq!(payload("k", 7, None, 10), b"k 7 ......");
        assert_eq!(payload("k", 7, Some("ab"), 8), b"k 7 ab..");
        assert_eq!(payload("k", 12345, None, 3), b"k 12345 ");
        assert_eq!(payload("00ff", 0, None, 100).len(), 100);
    }
}
