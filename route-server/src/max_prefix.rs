//! The max-prefix watch of one session (issue 5 item 4): from the prefixes a member announces
//! in the session's family and its limit, says when it crosses the warning threshold and when
//! it goes over the limit. Pure: no clocks, no I/O, no metrics; the RIB task acts on what it
//! says (logs, counts, ends the session) and exports the usage gauges.

/// The warning threshold, in percent of the limit: a member announcing at least this share of
/// its `max_prefix` is flagged (`route_server_max_prefix_warning` 1, one log line) before the
/// limit's action (`policy.max_prefix_action`) hits it. Operators alert on it
/// (`RouteServerMemberNearMaxPrefix` in `configs/prometheus/alerts.yml`).
pub const WARNING_PERCENT: u32 = 90;

/// Received prefixes as a share of the limit (1.0 at the limit, above 1.0 over it). A limit
/// of 0, which the fabric parser never lets through, counts as 1.
pub fn usage_ratio(received: usize, limit: u32) -> f64 {
    // Prefix counts stay far below 2^53, where f64 stops being exact.
    let received = received as f64;
    received / f64::from(limit.max(1))
}

/// Whether `received` is at or above [`WARNING_PERCENT`] of `limit` (integer arithmetic, so
/// 9 of 10 is exactly at the threshold).
pub fn at_warning(received: usize, limit: u32) -> bool {
    let received = u128::try_from(received).unwrap_or(u128::MAX);
    received.saturating_mul(100) >= u128::from(limit) * u128::from(WARNING_PERCENT)
}

/// Whether `received` is over `limit` (the limit itself is allowed).
pub fn is_over(received: usize, limit: u32) -> bool {
    u64::try_from(received).unwrap_or(u64::MAX) > u64::from(limit)
}

/// What a new count means for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// The member reached [`WARNING_PERCENT`] of its limit (and is not over it).
    Warning,
    /// The member went over its limit: the `max_prefix_action` applies.
    Exceeded,
}

/// Which thresholds a session has crossed. Each crossing is reported once; both re-arm when the
/// count falls back below the warning threshold (so a member hovering at the limit with
/// `warn` is not counted over and over), and [`Watch::reset`] re-arms them for a new session
/// or a changed limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watch {
    warned: bool,
    exceeded: bool,
}

impl Watch {
    /// A watch with nothing crossed yet.
    pub fn new() -> Watch {
        Watch::default()
    }

    /// Forgets the crossings (a new session, or a changed limit).
    pub fn reset(&mut self) {
        *self = Watch::default();
    }

    /// Whether the limit was exceeded and not yet re-armed.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Takes the member's current count: returns a crossing the first time the count reaches
    /// the warning threshold or goes over the limit (going straight over reports only
    /// [`Crossing::Exceeded`]).
    pub fn observe(&mut self, received: usize, limit: u32) -> Option<Crossing> {
        if !at_warning(received, limit) {
            self.reset();
            return None;
        }
        if is_over(received, limit) {
            if self.exceeded {
                return None;
            }
            self.exceeded = true;
            self.warned = true;
            return Some(Crossing::Exceeded);
        }
        if self.warned {
            return None;
        }
        self.warned = true;
        Some(Crossing::Warning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_threshold_is_inclusive_and_the_limit_itself_is_allowed() {
        assert!(!at_warning(8, 10));
        assert!(at_warning(9, 10));
        assert!(!at_warning(899, 1000));
        assert!(at_warning(900, 1000));
        assert!(at_warning(1, 1));
        assert!(!is_over(10, 10));
        assert!(is_over(11, 10));
        assert!(at_warning(usize::MAX, u32::MAX));
        assert!(is_over(usize::MAX, u32::MAX));
    }

    #[test]
    fn usage_is_received_over_limit() {
        assert!((usage_ratio(9, 10) - 0.9).abs() < 1e-12);
        assert!((usage_ratio(0, 10)).abs() < 1e-12);
        assert!((usage_ratio(12, 10) - 1.2).abs() < 1e-12);
        assert!((usage_ratio(3, 0) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn each_crossing_is_reported_once_per_rise() {
        let mut watch = Watch::new();
        assert_eq!(watch.observe(5, 10), None);
        assert_eq!(watch.observe(9, 10), Some(Crossing::Warning));
        assert_eq!(watch.observe(10, 10), None);
        assert_eq!(watch.observe(11, 10), Some(Crossing::Exceeded));
        assert!(watch.exceeded());
        assert_eq!(watch.observe(12, 10), None);
        // Back to 90%: still flagged, nothing new.
        assert_eq!(watch.observe(9, 10), None);
        assert_eq!(watch.observe(14, 10), None);
        // Below the warning threshold re-arms both.
        assert_eq!(watch.observe(3, 10), None);
        assert!(!watch.exceeded());
        assert_eq!(watch.observe(9, 10), Some(Crossing::Warning));
        assert_eq!(watch.observe(11, 10), Some(Crossing::Exceeded));
    }

    #[test]
    fn going_straight_over_reports_only_the_excess_and_reset_rearms() {
        let mut watch = Watch::new();
        assert_eq!(watch.observe(50, 10), Some(Crossing::Exceeded));
        assert_eq!(watch.observe(9, 10), None);
        watch.reset();
        assert_eq!(watch.observe(50, 10), Some(Crossing::Exceeded));
        watch.reset();
        assert_eq!(watch.observe(10, 10), Some(Crossing::Warning));
    }
}
