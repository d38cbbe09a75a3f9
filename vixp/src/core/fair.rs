//! Fair queueing of the frames a worker has read from the TAP device and not yet encrypted
//! (deficit round robin over flow buckets, with new flows first and drops from the fattest
//! flow, as fq_codel does, RFC 8290 sections 4.1-4.2). The worker drains the TAP's ring into
//! its own buffers as fast as it can read, so the standing queue of a bulk TCP flow sits here
//! instead of in the kernel's ring, and a ping or a small flow goes out ahead of it instead of
//! waiting behind megabytes. Holds only buffer numbers and lengths; the driver owns the
//! buffers. Must not read clocks or buffers' contents (the driver hashes the flow).

use std::collections::VecDeque;

use super::packet::{ETHERNET_HEADER, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// Flow buckets (RFC 8290 uses 1024 for a router; a worker sees far fewer flows at once).
pub const FLOW_BUCKETS: usize = 64;
/// Bytes a flow may send per round before the next flow's turn (one Ethernet frame, RFC 8290
/// section 5.2.2).
pub const QUANTUM: i64 = 1514;

/// One flow bucket: its frames (buffer number, bytes) in arrival order.
#[derive(Debug, Default)]
struct Bucket {
    frames: VecDeque<(usize, usize)>,
    bytes: usize,
    deficit: i64,
    /// In `new_flows` or `old_flows`.
    listed: bool,
}

/// The queues of one worker. Call order: [`FairQueues::push`] for each frame read (it may
/// hand back a buffer dropped to make room), [`FairQueues::pop`] for the next frame to
/// encrypt.
#[derive(Debug)]
pub struct FairQueues {
    buckets: Vec<Bucket>,
    new_flows: VecDeque<usize>,
    old_flows: VecDeque<usize>,
    queued: usize,
    capacity: usize,
}

impl FairQueues {
    /// Queues for at most `capacity` frames (the worker's buffers).
    pub fn new(capacity: usize) -> FairQueues {
        FairQueues {
            buckets: (0..FLOW_BUCKETS).map(|_| Bucket::default()).collect(),
            new_flows: VecDeque::new(),
            old_flows: VecDeque::new(),
            queued: 0,
            capacity,
        }
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.queued
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Whether every buffer holds a queued frame.
    pub fn is_full(&self) -> bool {
        self.queued >= self.capacity
    }

    /// Drops the oldest frame of the flow with the most bytes queued (RFC 8290 section 4.1)
    /// and returns its buffer, to make room when every buffer is taken.
    pub fn drop_from_fattest(&mut self) -> Option<usize> {
        let fattest = (0..self.buckets.len()).max_by_key(|index| self.buckets[*index].bytes)?;
        let bucket = &mut self.buckets[fattest];
        let (buffer, length) = bucket.frames.pop_front()?;
        bucket.bytes -= length;
        self.queued -= 1;
        Some(buffer)
    }

    /// Queues `buffer` holding a `length`-byte frame of flow `hash`.
    pub fn push(&mut self, hash: u64, buffer: usize, length: usize) {
        let index = (hash % FLOW_BUCKETS as u64) as usize;
        let bucket = &mut self.buckets[index];
        bucket.frames.push_back((buffer, length));
        bucket.bytes += length;
        self.queued += 1;
        if !bucket.listed {
            // A flow that was idle starts as a new flow, served before the old ones.
            bucket.listed = true;
            bucket.deficit = QUANTUM;
            self.new_flows.push_back(index);
        }
    }

    /// The next frame to send: new flows first, then the old ones in turn, each for its
    /// quantum of bytes (RFC 8290 section 4.2). Frames of one flow leave in arrival order.
    pub fn pop(&mut self) -> Option<(usize, usize)> {
        loop {
            let (index, from_new) = match self.new_flows.front() {
                Some(index) => (*index, true),
                None => (*self.old_flows.front()?, false),
            };
            let bucket = &mut self.buckets[index];
            if bucket.deficit <= 0 {
                bucket.deficit += QUANTUM;
                if from_new {
                    self.new_flows.pop_front();
                } else {
                    self.old_flows.pop_front();
                }
                self.old_flows.push_back(index);
                continue;
            }
            match bucket.frames.pop_front() {
                Some((buffer, length)) => {
                    bucket.bytes -= length;
                    bucket.deficit -= length as i64;
                    self.queued -= 1;
                    return Some((buffer, length));
                }
                None => {
                    // Empty: a new flow moves to the old ones once (so that a flow cannot stay
                    // new by sending one packet at a time), an old one leaves the lists.
                    if from_new {
                        self.new_flows.pop_front();
                        self.old_flows.push_back(index);
                    } else {
                        self.old_flows.pop_front();
                        bucket.listed = false;
                    }
                }
            }
        }
    }
}

/// A hash of the flow of an Ethernet frame: addresses, protocol and (TCP, UDP) ports; frames
/// that are not IP hash by their EtherType. FNV-1a: fast, and the buckets need no secret
/// (frames come from this host's own kernel).
pub fn flow_hash(frame: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let ethertype = frame
        .get(12..14)
        .map_or(0, |bytes| u16::from_be_bytes([bytes[0], bytes[1]]));
    add(&ethertype.to_be_bytes());
    let ip = ETHERNET_HEADER;
    let (addresses, protocol, transport) = match ethertype {
        ETHERTYPE_IPV4 => {
            let header_length = frame
                .get(ip)
                .map_or(0, |first| usize::from(first & 0x0f) * 4);
            (
                frame.get(ip + 12..ip + 20),
                frame.get(ip + 9).copied(),
                ip + header_length,
            )
        }
        ETHERTYPE_IPV6 => (
            frame.get(ip + 8..ip + 40),
            frame.get(ip + 6).copied(),
            ip + 40,
        ),
        _ => (None, None, 0),
    };
    if let Some(addresses) = addresses {
        add(addresses);
    }
    if let Some(protocol) = protocol {
        add(&[protocol]);
        if matches!(protocol, 6 | 17)
            && let Some(ports) = frame.get(transport..transport + 4)
        {
            add(ports);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_flow_goes_ahead_of_a_bulk_flow_and_each_flow_keeps_its_order() {
        let mut queues = FairQueues::new(64);
        // A bulk flow queues ten 64 KiB frames, then a ping arrives.
        for buffer in 0..10 {
            queues.push(1, buffer, 65_000);
        }
        assert_eq!(queues.pop(), Some((0, 65_000)), "the bulk flow was first");
        queues.push(2, 10, 98);
        assert_eq!(
            queues.pop(),
            Some((10, 98)),
            "the ping does not wait for the bulk"
        );
        let rest: Vec<usize> = std::iter::from_fn(|| queues.pop())
            .map(|(buffer, _)| buffer)
            .collect();
        assert_eq!(rest, (1..10).collect::<Vec<_>>(), "bulk order kept");
        assert!(queues.is_empty());
    }

    #[test]
    fn two_bulk_flows_share_by_bytes() {
        let mut queues = FairQueues::new(64);
        for buffer in 0..20 {
            queues.push(if buffer % 2 == 0 { 1 } else { 2 }, buffer, 1500);
        }
        let order: Vec<usize> = std::iter::from_fn(|| queues.pop())
            .map(|(buffer, _)| buffer % 2)
            .collect();
        // Alternating flows (one quantum each), never three in a row from one.
        assert!(
            order
                .windows(3)
                .all(|window| window.iter().any(|f| *f != window[0]))
        );
        assert_eq!(order.len(), 20);
    }

    #[test]
    fn when_full_the_fattest_flow_loses_its_oldest_frame() {
        let mut queues = FairQueues::new(4);
        queues.push(1, 0, 60_000);
        queues.push(1, 1, 60_000);
        queues.push(2, 2, 100);
        queues.push(3, 3, 100);
        assert!(queues.is_full());
        assert_eq!(queues.drop_from_fattest(), Some(0));
        assert_eq!(queues.len(), 3);
        let order: Vec<usize> = std::iter::from_fn(|| queues.pop())
            .map(|(buffer, _)| buffer)
            .collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(queues.drop_from_fattest(), None);
    }

    #[test]
    fn flows_hash_by_addresses_protocol_and_ports() {
        let mut frame = vec![0u8; 14 + 20 + 8];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame[14] = 0x45;
        frame[14 + 9] = 17;
        frame[14 + 12..14 + 20].copy_from_slice(&[198, 18, 0, 11, 198, 18, 0, 12]);
        frame[34..38].copy_from_slice(&[0x30, 0x39, 0x14, 0x51]);
        let first = flow_hash(&frame);
        frame[40] = 0xff; // payload: same flow
        assert_eq!(flow_hash(&frame), first);
        frame[35] ^= 1; // another source port
        assert_ne!(flow_hash(&frame), first);
        for length in 0..frame.len() {
            let _ = flow_hash(&frame[..length]);
        }
    }
}
