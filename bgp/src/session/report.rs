//! What a session reports besides routes: why it went down and plain counters. Must not
//! format metrics or logs itself (the daemon's `metrics.rs` and tracing do that).

use std::collections::BTreeMap;
use std::fmt;

use crate::wire::{MessageKind, Notification};

/// Why a session ended. Terminal: after it the driver flushes `poll_transmit` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// This side found an error and sent this NOTIFICATION (RFC 4271 section 6).
    NotificationSent(Notification),
    /// The peer sent this NOTIFICATION (RFC 4271 section 8.2.2, Events 24 and 25).
    NotificationReceived(Notification),
    /// No KEEPALIVE or UPDATE within the hold time; Hold Timer Expired was sent
    /// (RFC 4271 section 6.5).
    HoldTimerExpired,
    /// The transport closed or failed (RFC 4271 section 8.2.2, Event 18).
    ConnectionClosed,
    /// Stopped locally (RFC 4271 Event 2) with this Cease.
    LocalStop(Notification),
    /// Lost connection collision resolution (RFC 4271 section 6.8); Cease 7 was sent.
    CollisionLost,
}

impl DownReason {
    /// The NOTIFICATION sent or received, if one was.
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            DownReason::NotificationSent(notification)
            | DownReason::NotificationReceived(notification)
            | DownReason::LocalStop(notification) => Some(notification),
            DownReason::HoldTimerExpired
            | DownReason::ConnectionClosed
            | DownReason::CollisionLost => None,
        }
    }

    /// Short stable label for metrics (`notification_sent`, `hold_timer_expired`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            DownReason::NotificationSent(_) => "notification_sent",
            DownReason::NotificationReceived(_) => "notification_received",
            DownReason::HoldTimerExpired => "hold_timer_expired",
            DownReason::ConnectionClosed => "connection_closed",
            DownReason::LocalStop(_) => "local_stop",
            DownReason::CollisionLost => "collision_lost",
        }
    }
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::NotificationSent(notification) => {
                write!(f, "sent NOTIFICATION {notification}")
            }
            DownReason::NotificationReceived(notification) => {
                write!(f, "received NOTIFICATION {notification}")
            }
            DownReason::HoldTimerExpired => write!(f, "hold timer expired"),
            DownReason::ConnectionClosed => write!(f, "connection closed by peer"),
            DownReason::LocalStop(notification) => {
                write!(f, "stopped locally, sent {notification}")
            }
            DownReason::CollisionLost => write!(f, "connection collision lost (Cease 7 sent)"),
        }
    }
}

/// Messages per type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// OPEN messages.
    pub open: u64,
    /// UPDATE messages.
    pub update: u64,
    /// NOTIFICATION messages.
    pub notification: u64,
    /// KEEPALIVE messages.
    pub keepalive: u64,
    /// ROUTE-REFRESH messages.
    pub route_refresh: u64,
}

impl MessageCounts {
    /// The count for one type.
    pub fn of(&self, kind: MessageKind) -> u64 {
        match kind {
            MessageKind::Open => self.open,
            MessageKind::Update => self.update,
            MessageKind::Notification => self.notification,
            MessageKind::Keepalive => self.keepalive,
            MessageKind::RouteRefresh => self.route_refresh,
        }
    }

    /// All types together.
    pub fn total(&self) -> u64 {
        MessageKind::ALL.into_iter().map(|kind| self.of(kind)).sum()
    }

    pub(crate) fn add(&mut self, kind: MessageKind) {
        let slot = match kind {
            MessageKind::Open => &mut self.open,
            MessageKind::Update => &mut self.update,
            MessageKind::Notification => &mut self.notification,
            MessageKind::Keepalive => &mut self.keepalive,
            MessageKind::RouteRefresh => &mut self.route_refresh,
        };
        *slot += 1;
    }
}

/// Plain counters of one session, for the daemon to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages received, per type (only those that decoded).
    pub received: MessageCounts,
    /// Messages queued for sending, per type.
    pub sent: MessageCounts,
    /// NOTIFICATIONs sent, per (code, subcode).
    pub notifications_sent: BTreeMap<(u8, u8), u64>,
    /// NOTIFICATIONs received, per (code, subcode).
    pub notifications_received: BTreeMap<(u8, u8), u64>,
    /// UPDATEs treated as withdraw (RFC 7606 section 2).
    pub updates_treated_as_withdraw: u64,
    /// Attributes discarded (RFC 7606 section 2, attribute discard).
    pub attributes_discarded: u64,
    /// MP_REACH_NLRI / MP_UNREACH_NLRI attributes of non-unicast families ignored.
    pub non_unicast_ignored: u64,
    /// ROUTE-REFRESH requests ignored because the family or capability was not negotiated.
    pub route_refresh_ignored: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CeaseSubcode;

    #[test]
    fn down_reason_display_names_the_notification() {
        let notification = Notification::cease(CeaseSubcode::AdministrativeShutdown, "upgrade");
        let reason = DownReason::NotificationReceived(notification);
        assert_eq!(
            reason.to_string(),
            "received NOTIFICATION Cease / Administrative Shutdown (6/2): \"upgrade\""
        );
        assert_eq!(reason.label(), "notification_received");
        assert_eq!(DownReason::HoldTimerExpired.notification(), None);
    }

    #[test]
    fn message_counts_add_up() {
        let mut counts = MessageCounts::default();
        counts.add(MessageKind::Keepalive);
        counts.add(MessageKind::Keepalive);
        counts.add(MessageKind::Update);
        assert_eq!(counts.of(MessageKind::Keepalive), 2);
        assert_eq!(counts.total(), 3);
    }
}
