//! CoDel (RFC 8289) for the datagrams a worker takes from its UDP socket: the standing queue
//! of a bulk TCP flow sits in the receiving node's socket (encrypted, so it cannot be sorted by
//! flow there); the kernel stamps each datagram on arrival, and the sojourn time (read time
//! minus arrival) drives the control law. Owns the law only: time and sojourn come in, the
//! answer is whether to drop the packet at hand; must not read clocks or touch packets.

use std::time::Duration;

/// Sojourn time the queue may keep. RFC 8289's 5 ms is for the Internet's round trips; a
/// fabric node's receive queue holds 0.5-1 ms under one TCP stream (BBR) on a 2-core machine,
/// and 150 us with [`INTERVAL`] brought the ping under load below 1 ms (docs/datapath.md).
pub const TARGET: Duration = Duration::from_micros(150);
/// Window over which the sojourn must stay above [`TARGET`] before dropping starts (RFC 8289
/// section 4.3: a worst-case round trip; 100 ms there). With 100 ms the queue of this path
/// dips below target within every window and CoDel never drops; 5 ms is a few round trips
/// across a fabric.
pub const INTERVAL: Duration = Duration::from_millis(5);

/// The control law's state for one queue.
#[derive(Debug, Clone)]
pub struct Codel {
    target: Duration,
    interval: Duration,
    /// When the sojourn will have stayed above target for an interval (`None`: below target).
    first_above: Option<Duration>,
    dropping: bool,
    drop_next: Duration,
    count: u32,
    last_count: u32,
}

impl Default for Codel {
    fn default() -> Codel {
        Codel::new(TARGET, INTERVAL)
    }
}

impl Codel {
    /// A queue with its own `target` and `interval`.
    pub fn new(target: Duration, interval: Duration) -> Codel {
        Codel {
            target,
            interval,
            first_above: None,
            dropping: false,
            drop_next: Duration::ZERO,
            count: 0,
            last_count: 0,
        }
    }

    /// Whether the controller is in its dropping state.
    pub fn is_dropping(&self) -> bool {
        self.dropping
    }

    /// A packet leaves the queue at `now` after `sojourn` in it: whether to drop it. Only a
    /// `droppable` packet (bulk data, not a small one such as an ACK or a ping) is ever dropped;
    /// the others still tell the controller how long the queue is.
    pub fn should_drop(&mut self, now: Duration, sojourn: Duration, droppable: bool) -> bool {
        let ok_to_drop = self.above_target(now, sojourn);
        if self.dropping {
            if !ok_to_drop {
                self.dropping = false;
                return false;
            }
            if droppable && now >= self.drop_next {
                self.count = self.count.saturating_add(1);
                self.drop_next = self.control_law(self.drop_next);
                return true;
            }
            return false;
        }
        if !ok_to_drop || !droppable {
            return false;
        }
        // Enter the dropping state; start near the last drop rate when it was recent
        // (RFC 8289 section 5.5).
        self.dropping = true;
        let delta = self.count.saturating_sub(self.last_count);
        self.count = if delta > 1 && now.saturating_sub(self.drop_next) < self.interval * 16 {
            delta
        } else {
            1
        };
        self.drop_next = self.control_law(now);
        self.last_count = self.count;
        true
    }

    /// Tracks whether the sojourn has stayed above target for a whole interval.
    fn above_target(&mut self, now: Duration, sojourn: Duration) -> bool {
        if sojourn < self.target {
            self.first_above = None;
            return false;
        }
        match self.first_above {
            None => {
                self.first_above = Some(now + self.interval);
                false
            }
            Some(at) => now >= at,
        }
    }

    /// The next drop: `interval / sqrt(count)` after `from`.
    fn control_law(&self, from: Duration) -> Duration {
        from + self.interval.div_f64(f64::from(self.count.max(1)).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// RFC 8289's worked numbers scaled to this path: target 0.5 ms, interval 100 ms.
    fn rfc() -> Codel {
        Codel::new(Duration::from_micros(500), Duration::from_millis(100))
    }

    /// Feeds one droppable packet per millisecond from `start` to `end` with `sojourn`;
    /// returns the times of the drops.
    fn run(codel: &mut Codel, start: u64, end: u64, sojourn: Duration) -> Vec<u64> {
        (start..end)
            .filter(|&ms| codel.should_drop(MS * ms as u32, sojourn, true))
            .collect()
    }

    #[test]
    fn short_queue_never_drops() {
        let mut codel = rfc();
        assert!(run(&mut codel, 0, 2000, Duration::from_micros(400)).is_empty());
        assert!(!codel.is_dropping());
    }

    #[test]
    fn standing_queue_drops_after_one_interval_then_faster() {
        let mut codel = rfc();
        let drops = run(&mut codel, 0, 1000, 2 * MS);
        // Above target from 0: the first drop one interval later.
        assert_eq!(drops.first(), Some(&100));
        // Then interval / sqrt(count): 100 ms, 70.7 ms, 57.7 ms, 50 ms, ...
        assert_eq!(&drops[..5], &[100, 200, 271, 329, 379]);
        let gaps: Vec<u64> = drops.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] <= g[0]), "{gaps:?}");
        assert!(codel.is_dropping());
    }

    #[test]
    fn a_burst_shorter_than_an_interval_is_not_dropped() {
        let mut codel = rfc();
        assert!(run(&mut codel, 0, 99, 5 * MS).is_empty());
        assert!(run(&mut codel, 99, 400, Duration::ZERO).is_empty());
        // The timer restarted: another 99 ms above target is still tolerated.
        assert!(run(&mut codel, 400, 499, 5 * MS).is_empty());
    }

    #[test]
    fn leaving_the_queue_short_ends_dropping_and_resumes_near_the_last_rate() {
        let mut codel = rfc();
        let first = run(&mut codel, 0, 600, 2 * MS);
        assert!(first.len() >= 6);
        assert!(run(&mut codel, 600, 620, Duration::ZERO).is_empty());
        assert!(!codel.is_dropping());
        // Back above target soon after: dropping starts again after one interval, at the
        // count reached before (not 1), so the drops come about as fast as they were.
        let again = run(&mut codel, 620, 900, 2 * MS);
        assert_eq!(again.first(), Some(&720));
        let gap = again[1] - again[0];
        let previous_gap = first[first.len() - 1] - first[first.len() - 2];
        assert!(gap <= previous_gap + 5, "{gap} vs {previous_gap}");
    }

    #[test]
    fn the_default_reacts_within_a_few_milliseconds() {
        let mut codel = Codel::default();
        let mut drops = Vec::new();
        for us in (0..20_000u64).step_by(100) {
            if codel.should_drop(Duration::from_micros(us), Duration::from_micros(300), true) {
                drops.push(us);
            }
        }
        assert_eq!(drops.first(), Some(&5_000));
        assert!(drops.len() >= 4, "{drops:?}");
    }

    #[test]
    fn small_packets_are_never_dropped_but_keep_the_clock() {
        let mut codel = rfc();
        for ms in 0..300u32 {
            assert!(!codel.should_drop(MS * ms, 2 * MS, false));
        }
        // The queue has been long for 300 ms: the next bulk packet goes at once.
        assert!(codel.should_drop(MS * 300, 2 * MS, true));
    }
}
