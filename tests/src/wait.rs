//! Polling until a condition holds. Owns the polling loop only; must not sleep unboundedly.

use std::{
    thread,
    time::{Duration, Instant},
};

/// How often conditions are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls `condition` every [`POLL_INTERVAL`] until it returns true or `timeout` passes; returns
/// whether it held. The condition is always evaluated at least once, and once more at the end.
pub fn try_wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// Like [`try_wait_until`], but panics with "timed out after Ns waiting for WHAT" on timeout.
pub fn wait_until(timeout: Duration, what: &str, condition: impl FnMut() -> bool) {
    let start = Instant::now();
    if !try_wait_until(timeout, condition) {
        panic!(
            "timed out after {:.1}s waiting for {what}",
            start.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_as_soon_as_condition_holds() {
        let mut calls = 0;
        assert!(try_wait_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
        assert_eq!(calls, 3);
    }

    #[test]
    fn gives_up_after_timeout() {
        let start = Instant::now();
        assert!(!try_wait_until(Duration::from_millis(300), || false));
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn wait_until_names_what_it_waited_for() {
        wait_until(Duration::from_millis(50), "the impossible", || false);
    }
}
