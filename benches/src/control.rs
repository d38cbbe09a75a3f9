//! The line protocol between the benchmark driver (outside the namespaces) and the load
//! generator (inside its namespace): one JSON object per line, commands on the load
//! generator's stdin, reports on its stdout. Types only; no I/O here.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// Everything the load generator needs to know, sent as the first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSpec {
    /// The scenario to play.
    pub scenario: Scenario,
    /// Where the route server listens.
    pub route_server: Ipv4Addr,
    /// The route server's BGP port.
    pub port: u16,
    /// The ASN the route server must show in its OPEN.
    pub route_server_asn: u32,
    /// Hold time proposed in each OPEN, seconds.
    pub hold_time: u16,
    /// Seconds allowed for all sessions to reach Established.
    pub establish_timeout_secs: u64,
    /// Seconds allowed for each of the announce and withdraw phases.
    pub phase_timeout_secs: u64,
}

/// A command from the driver, one per line after the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Send every sender's announcements and wait for convergence.
    Announce,
    /// After convergence: the route server is about to refuse every IPv4 prefix shorter than
    /// `min_ipv4_length` (a policy reload). Arm each receiver with its new target, report
    /// [`Report::Armed`], then wait until every receiver holds exactly its new target.
    Reload {
        /// The new shortest IPv4 prefix length accepted.
        min_ipv4_length: u8,
    },
    /// Send every sender's withdrawals and wait until every receiver holds nothing.
    Withdraw,
    /// Close all sessions and exit.
    Close,
}

/// How a timed phase ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PhaseOutcome {
    /// Every receiver reached its target; seconds from the first UPDATE sent.
    Finished {
        /// Seconds from the first UPDATE written to the last receiver reaching its target.
        seconds: f64,
        /// Seconds until every sender's stream was in its socket buffer, if seen before the
        /// end: a large value means the route server read its input slowly.
        #[serde(default)]
        sent_seconds: Option<f64>,
    },
    /// The phase timed out (did not finish).
    TimedOut {
        /// The timeout, seconds.
        seconds: f64,
        /// Seconds until every sender's stream was in its socket buffer, if it ever was.
        #[serde(default)]
        sent_seconds: Option<f64>,
        /// Sum over receivers of prefixes held when the time was up.
        held: u64,
        /// Sum over receivers of prefixes they had to hold (announce) or zero (withdraw).
        target: u64,
    },
}

/// A report from the load generator, one per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Report {
    /// The UPDATE streams are encoded and all sessions are Established.
    Established {
        /// Seconds spent encoding UPDATEs.
        encode_seconds: f64,
        /// Seconds from the first connection attempt until the last session was up.
        connect_seconds: f64,
        /// Octets of UPDATEs each phase sends in total.
        announce_octets: u64,
    },
    /// The announce phase ended.
    Announced {
        /// Timing of the phase.
        outcome: PhaseOutcome,
        /// Sample routes checked (one per sender per receiver).
        samples_checked: u64,
        /// First failing sample check, if any.
        sample_error: Option<String>,
        /// Own routes reflected back to senders, all receivers together.
        reflected: u64,
        /// Announced prefixes not in the table, all receivers together.
        unknown: u64,
        /// UPDATE messages received, all receivers together.
        updates_received: u64,
    },
    /// Every receiver has its post-reload target; the driver may trigger the reload now.
    Armed {
        /// Prefixes all receivers together must lose.
        to_withdraw: u64,
    },
    /// Every receiver reached its post-reload target (or the phase timed out).
    Reloaded {
        /// How the phase ended; `Finished.seconds` counts from [`Report::Armed`].
        outcome: PhaseOutcome,
        /// Unix time (seconds) the last receiver reached its target, to compare with the time
        /// the driver triggered the reload (same machine, same clock).
        finished_unix: f64,
    },
    /// The withdraw phase ended.
    Withdrawn {
        /// Timing of the phase.
        outcome: PhaseOutcome,
    },
    /// The load generator gave up; the run is void.
    Failed {
        /// What happened.
        reason: String,
    },
}
