//! An RPKI cache for tests: an RTR server (RFC 8210, versions 0-2 with ASPA) built from the
//! `rpki` crate's server side, serving fixture VRPs and ASPA records that the test can replace
//! (a new serial, with Serial Notify to connected clients and incremental answers to Serial
//! Queries) and stop. Owns one listening socket and the thread serving it; must not listen
//! anywhere but the address the test gives (loopback or a test namespace's address).
//!
//! ```text
//!  test thread --update()--> History (Arc<Mutex>) <--full()/diff()-- rpki::rtr::server::Server
//!             --notify-----> NotifySender -------> every connection: Serial Notify
//!             --stop()-----> oneshot: the serving thread drops its runtime, closing every socket
//! ```

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use futures::stream::{self, Stream};
use ipnet::IpNet;
use rpki::resources::{Asn, MaxLenPrefix, Prefix};
use rpki::rtr::payload::{Aspa, RouteOrigin};
use rpki::rtr::pdu::ProviderAsns;
use rpki::rtr::server::{NotifySender, PayloadDiff, PayloadSet, PayloadSource};
use rpki::rtr::{Action, Payload, PayloadRef, Serial, Server, State, Timing};
use tokio::sync::oneshot;

/// One VRP as a cache serves it: `prefix` may be announced by `asn` down to `max_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roa {
    /// The prefix.
    pub prefix: IpNet,
    /// The longest prefix length authorised.
    pub max_length: u8,
    /// The authorised origin ASN.
    pub asn: u32,
}

impl Roa {
    /// A VRP from text: `Roa::new("198.18.64.0/18", 24, 64510)`.
    ///
    /// # Panics
    /// When `prefix` is not a prefix (fixtures are written by the test).
    pub fn new(prefix: &str, max_length: u8, asn: u32) -> Roa {
        Roa {
            prefix: prefix.parse().expect("fixture prefix"),
            max_length,
            asn,
        }
    }
}

/// One ASPA record: `customer` names `providers` as its upstreams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AspaRecord {
    /// The customer ASN.
    pub customer: u32,
    /// Its provider ASNs.
    pub providers: Vec<u32>,
}

/// The payload of one serial.
type Set = BTreeSet<Payload>;

/// Every version served since start, oldest first, so a client at any earlier serial gets an
/// incremental answer.
#[derive(Debug)]
struct History {
    session: u16,
    versions: Vec<(Serial, Arc<Set>)>,
    timing: Timing,
}

impl History {
    fn current(&self) -> (State, Arc<Set>) {
        let (serial, set) = self
            .versions
            .last()
            .expect("history starts with one version");
        (State::from_parts(self.session, *serial), Arc::clone(set))
    }
}

/// The [`PayloadSource`] the server reads.
#[derive(Debug, Clone)]
struct Source(Arc<Mutex<History>>);

impl Source {
    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A full set as the server iterates it, in order.
struct FullSet {
    items: Vec<Payload>,
    next: usize,
}

impl PayloadSet for FullSet {
    fn next(&mut self) -> Option<PayloadRef<'_>> {
        let item = self.items.get(self.next)?;
        self.next += 1;
        Some(item.as_ref())
    }
}

/// The changes from one serial to the current one.
struct Diff {
    items: Vec<(Payload, Action)>,
    next: usize,
}

impl PayloadDiff for Diff {
    fn next(&mut self) -> Option<(PayloadRef<'_>, Action)> {
        let (payload, action) = self.items.get(self.next)?;
        self.next += 1;
        Some((payload.as_ref(), *action))
    }
}

/// The key an ASPA record is replaced by (RFC 8210bis: one record per customer).
fn aspa_customer(payload: &Payload) -> Option<Asn> {
    payload.as_aspa().map(|aspa| aspa.customer)
}

impl PayloadSource for Source {
    type Set = FullSet;
    type Diff = Diff;

    fn ready(&self) -> bool {
        true
    }

    fn notify(&self) -> State {
        self.history().current().0
    }

    fn full(&self) -> (State, FullSet) {
        let (state, set) = self.history().current();
        let items = set.iter().cloned().collect();
        (state, FullSet { items, next: 0 })
    }

    fn diff(&self, state: State) -> Option<(State, Diff)> {
        let history = self.history();
        if state.session() != history.session {
            return None;
        }
        let (_, old) = history
            .versions
            .iter()
            .find(|(serial, _)| *serial == state.serial())?;
        let (current, new) = history.current();
        let new_customers: BTreeSet<Asn> = new.iter().filter_map(aspa_customer).collect();
        let mut items = Vec::new();
        for payload in old.difference(&new) {
            match payload {
                // A customer still present gets its new record below, which replaces this one.
                Payload::Aspa(aspa) if new_customers.contains(&aspa.customer) => {}
                // Withdrawn with its providers: the `rpki` 0.20 client refuses an ASPA PDU with
                // an empty provider set, withdrawals included (Routinator does the same).
                other => items.push((other.clone(), Action::Withdraw)),
            }
        }
        for payload in new.difference(old) {
            items.push((payload.clone(), Action::Announce));
        }
        Some((current, Diff { items, next: 0 }))
    }

    fn timing(&self) -> Timing {
        self.history().timing
    }
}

fn payload(roas: &[Roa], aspas: &[AspaRecord]) -> io::Result<Set> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut set = Set::new();
    for roa in roas {
        let prefix = Prefix::new(roa.prefix.addr(), roa.prefix.prefix_len())
            .map_err(|error| invalid(format!("{}: {error}", roa.prefix)))?;
        let prefix = MaxLenPrefix::new(prefix, Some(roa.max_length))
            .map_err(|error| invalid(format!("{}-{}: {error}", roa.prefix, roa.max_length)))?;
        set.insert(Payload::Origin(RouteOrigin::new(
            prefix,
            Asn::from(roa.asn),
        )));
    }
    for aspa in aspas {
        let providers = ProviderAsns::try_from_iter(aspa.providers.iter().copied().map(Asn::from))
            .map_err(|_| invalid(format!("AS{}: too many providers", aspa.customer)))?;
        set.insert(Payload::Aspa(Aspa::new(
            Asn::from(aspa.customer),
            providers,
        )));
    }
    Ok(set)
}

/// A running RTR cache. Dropping it stops it.
pub struct RtrCache {
    address: SocketAddr,
    source: Source,
    notify: NotifySender,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RtrCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RtrCache")
            .field("address", &self.address)
            .field("serial", &self.serial())
            .field("running", &self.stop.is_some())
            .finish()
    }
}

impl RtrCache {
    /// Timers sent in End of Data: refresh 30 s (Serial Notify brings changes sooner), retry
    /// 10 s, expire 600 s (RFC 8210's smallest).
    pub const TIMING: Timing = Timing {
        refresh: 30,
        retry: 10,
        expire: 600,
    };

    /// Starts serving `roas` and `aspas` as serial 1 on `bind` (port 0 picks a free port; the
    /// address must be the test's own: loopback or one it assigned in its namespace).
    pub fn start(bind: SocketAddr, roas: &[Roa], aspas: &[AspaRecord]) -> io::Result<RtrCache> {
        let listener = std::net::TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        // Any fixed number works; the port keeps two caches of one test apart.
        let session = address.port();
        let source = Source(Arc::new(Mutex::new(History {
            session,
            versions: vec![(Serial(1), Arc::new(payload(roas, aspas)?))],
            timing: Self::TIMING,
        })));
        let notify = NotifySender::new();
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = {
            let (source, notify) = (source.clone(), notify.clone());
            std::thread::Builder::new()
                .name(format!("rtr-cache-{}", address.port()))
                .spawn(move || {
                    runtime.block_on(async move {
                        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                            return;
                        };
                        let server = Server::new(Box::pin(connections(listener)), notify, source);
                        tokio::select! {
                            _ = server.run() => {}
                            _ = stopped => {}
                        }
                    });
                    // Dropping the runtime ends every connection task and closes its socket.
                    drop(runtime);
                })?
        };
        Ok(RtrCache {
            address,
            source,
            notify,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where the cache listens, as the fabric file's `policy.rpki.caches` entry wants it.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The serial of the payload served now.
    pub fn serial(&self) -> u32 {
        self.source.history().current().0.serial().0
    }

    /// Serves a new payload under the next serial and sends Serial Notify to every client;
    /// returns the new serial.
    ///
    /// # Errors
    /// A VRP that is not valid (maxLength shorter than the prefix or too long).
    pub fn update(&mut self, roas: &[Roa], aspas: &[AspaRecord]) -> io::Result<u32> {
        let set = Arc::new(payload(roas, aspas)?);
        let serial = {
            let mut history = self.source.history();
            let (state, _) = history.current();
            let serial = state.serial().add(1);
            history.versions.push((serial, set));
            serial.0
        };
        self.notify.notify();
        Ok(serial)
    }

    /// Stops listening and closes every client connection (a cache that went away).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RtrCache {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The listener as the stream of sockets the `rpki` server takes.
fn connections(
    listener: tokio::net::TcpListener,
) -> impl Stream<Item = io::Result<tokio::net::TcpStream>> {
    stream::unfold(listener, |listener| async move {
        let socket = listener.accept().await.map(|(socket, _)| socket);
        Some((socket, listener))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rpki::rtr::client::{Client, PayloadError, PayloadTarget};

    use super::*;

    /// The client side of the `rpki` crate, collecting what it is told.
    #[derive(Default)]
    struct Collected {
        payload: BTreeSet<Payload>,
    }

    impl PayloadTarget for Collected {
        type Update = Vec<(Action, Payload)>;

        fn start(&mut self, reset: bool) -> Self::Update {
            if reset {
                self.payload.clear();
            }
            Vec::new()
        }

        fn apply(&mut self, update: Self::Update, _timing: Timing) -> Result<(), PayloadError> {
            for (action, payload) in update {
                match (action, payload) {
                    (Action::Announce, Payload::Aspa(aspa)) => {
                        self.payload
                            .retain(|old| aspa_customer(old) != Some(aspa.customer));
                        self.payload.insert(Payload::Aspa(aspa));
                    }
                    (Action::Withdraw, Payload::Aspa(aspa)) => {
                        self.payload
                            .retain(|old| aspa_customer(old) != Some(aspa.customer));
                    }
                    (Action::Announce, payload) => {
                        self.payload.insert(payload);
                    }
                    (Action::Withdraw, payload) => {
                        self.payload.remove(&payload);
                    }
                }
            }
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_client_gets_the_payload_then_the_changes_then_loses_the_cache() {
        let roas = [Roa::new("198.18.64.0/18", 24, 64510)];
        let aspas = [AspaRecord {
            customer: 64510,
            providers: vec![64520],
        }];
        let mut cache = RtrCache::start("127.0.0.1:0".parse().expect("address"), &roas, &aspas)
            .expect("cache starts");
        let socket = tokio::net::TcpStream::connect(cache.address())
            .await
            .expect("connect");
        let mut client = Client::new(socket, Collected::default(), None);
        client.step().await.expect("first answer");
        assert_eq!(
            client.target().payload,
            payload(&roas, &aspas).expect("valid")
        );

        let roas = [
            Roa::new("198.18.64.0/18", 24, 64511),
            Roa::new("fd00:64::/32", 48, 64510),
        ];
        let aspas = [AspaRecord {
            customer: 64510,
            providers: vec![64520, 64530],
        }];
        assert_eq!(cache.update(&roas, &aspas).expect("valid"), 2);
        // Serial Notify, then an incremental answer to the client's Serial Query.
        tokio::time::timeout(Duration::from_secs(5), client.step())
            .await
            .expect("notified in time")
            .expect("update");
        assert_eq!(
            client.target().payload,
            payload(&roas, &aspas).expect("valid")
        );
        assert_eq!(
            client.state().map(|state| state.serial().0),
            Some(cache.serial())
        );

        assert_eq!(cache.update(&roas, &[]).expect("valid"), 3);
        tokio::time::timeout(Duration::from_secs(5), client.step())
            .await
            .expect("notified in time")
            .expect("update");
        assert_eq!(client.target().payload, payload(&roas, &[]).expect("valid"));

        cache.stop();
        let ended = tokio::time::timeout(Duration::from_secs(5), client.step())
            .await
            .expect("the closed connection is seen at once");
        assert!(ended.is_err(), "a stopped cache ends the session");
        assert!(
            tokio::net::TcpStream::connect(cache.address())
                .await
                .is_err(),
            "a stopped cache no longer listens"
        );
    }
}
