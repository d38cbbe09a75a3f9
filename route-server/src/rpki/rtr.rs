//! The RPKI payload source of the running route server: the RTR client (RFC 8210, the `rpki`
//! crate's client, protocol version 2 with ASPA and fallback to 1) over the configured caches
//! in preference order, plus the JSON VRP file. Driver code: the only RPKI part with sockets,
//! tasks and clocks. It hands each new payload to the RIB task as `RibEvent::Rpki` and keeps
//! the metrics; it must not judge routes. The VRP file is read by the driver (at start-up,
//! where a malformed file stops the start, and at every reload, where it refuses the reload)
//! and handed in through [`RpkiTask`], so a file that does not parse never reaches this task.
//!
//! ```text
//!  caches[0] --TCP/RTR--+                       (failover: next cache when one fails;
//!  caches[1] --TCP/RTR--+--> run() --RibEvent::Rpki(set)--> RIB task   after the last,
//!  driver: RpkiTask ----+         \--> RpkiMetrics               wait `retry`, start over)
//!   (policy + VRP file's set, watch; dropped: the task ends)
//! ```
//!
//! Payload in force: the last set a cache delivered, until `expire` seconds after its last
//! successful update (RFC 8210 section 6) even while no cache answers; then the VRP file's set
//! if there is one; else nothing (every route "not found", none refused).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family as MetricFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rpki::rtr::client::{PayloadError, PayloadTarget};
use rpki::rtr::{Action, Client, Payload, Timing};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use vixp_bgp::Family;
use vixp_fabric::{RpkiPolicy, RtrCache};

use super::json::{self, VrpFileError};
use super::vrps::{Aspas, Vrp, VrpSet};
use crate::driver::RibEvent;
use crate::metrics::Metrics;

/// How long a connection attempt to a cache may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Labels of the per-cache gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheLabels {
    /// The cache as written in the fabric file (`host:port`).
    pub cache: String,
}

/// Labels of the VRP count gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct VrpFamilyLabels {
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// The RPKI metrics (`route_server_rpki_*`).
#[derive(Debug, Default)]
pub struct RpkiMetrics {
    /// 1 while an RTR session with the cache is up and has delivered data, else 0.
    pub cache_up: MetricFamily<CacheLabels, Gauge>,
    /// VRPs in force per family.
    pub vrps: MetricFamily<VrpFamilyLabels, Gauge>,
    /// ASPA records in force.
    pub aspas: Gauge,
    /// Unix time of the last payload update from a cache or the VRP file (0: never).
    pub last_update: Gauge,
    /// Serial number of the cache data in force (RFC 8210 section 5.1).
    pub serial: Gauge,
    /// 1 when caches are configured and none is up: the payload in force is kept from an
    /// earlier session (until it expires) or comes from the VRP file only.
    pub stale: Gauge,
    /// 1 when the VRP file could not be read or was malformed at its last reading.
    pub vrp_file_error: Gauge,
}

impl RpkiMetrics {
    /// Registers every RPKI metric in `registry` (prefix `route_server_` added by it); every
    /// series is listed from start-up, at 0 until there is payload.
    pub fn register(&self, registry: &mut Registry) {
        for family in [Family::Ipv4, Family::Ipv6] {
            self.vrps
                .get_or_create(&VrpFamilyLabels {
                    family: family.label().to_string(),
                })
                .set(0);
        }
        registry.register(
            "rpki_cache_up",
            "Whether the RTR session with the RPKI cache is up and synchronised (1) or not (0)",
            self.cache_up.clone(),
        );
        registry.register(
            "rpki_vrps",
            "Validated ROA payloads in force per address family",
            self.vrps.clone(),
        );
        registry.register("rpki_aspas", "ASPA records in force", self.aspas.clone());
        registry.register(
            "rpki_last_update_timestamp_seconds",
            "Unix time of the last RPKI payload update (0: never)",
            self.last_update.clone(),
        );
        registry.register(
            "rpki_serial",
            "Serial number of the RTR cache data in force",
            self.serial.clone(),
        );
        registry.register(
            "rpki_stale",
            "Whether RTR caches are configured and none is up (1), so the payload in force is \
             kept from earlier or comes from the VRP file",
            self.stale.clone(),
        );
        registry.register(
            "rpki_vrp_file_error",
            "Whether the VRP file was unreadable or malformed at its last reading (1)",
            self.vrp_file_error.clone(),
        );
    }

    fn cache(&self, cache: &RtrCache) -> Gauge {
        self.cache_up
            .get_or_create(&CacheLabels {
                cache: cache.to_string(),
            })
            .clone()
    }

    fn show(&self, set: Option<&VrpSet>) {
        for family in [Family::Ipv4, Family::Ipv6] {
            let count = set.map_or(0, |set| set.count(family));
            self.vrps
                .get_or_create(&VrpFamilyLabels {
                    family: family.label().to_string(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let aspas = set.map_or(0, VrpSet::aspa_count);
        self.aspas.set(i64::try_from(aspas).unwrap_or(i64::MAX));
    }
}

/// The RTR payload as received: what the `rpki` crate's client writes into.
#[derive(Debug, Default)]
struct Target {
    origins: HashSet<Vrp>,
    aspas: HashMap<u32, Vec<u32>>,
    /// The update being received replaces everything (a Cache Reset answer).
    reset: bool,
    /// The timers of the cache's last End of Data.
    timing: Option<Timing>,
}

impl Target {
    fn set(&self) -> VrpSet {
        let aspas: Aspas = self
            .aspas
            .iter()
            .map(|(customer, providers)| (*customer, providers.clone()))
            .collect();
        VrpSet::new(self.origins.iter().copied(), aspas)
    }
}

impl PayloadTarget for Target {
    type Update = Vec<(Action, Payload)>;

    fn start(&mut self, reset: bool) -> Self::Update {
        self.reset = reset;
        Vec::new()
    }

    fn apply(&mut self, update: Self::Update, timing: Timing) -> Result<(), PayloadError> {
        if self.reset {
            self.origins.clear();
            self.aspas.clear();
        }
        for (action, payload) in update {
            match payload {
                Payload::Origin(origin) => {
                    let prefix = origin.prefix.prefix();
                    let Ok(network) = ipnet::IpNet::new(prefix.addr(), prefix.len()) else {
                        continue;
                    };
                    let vrp = Vrp {
                        prefix: network.trunc(),
                        max_length: origin.prefix.resolved_max_len(),
                        asn: origin.asn.into_u32(),
                    };
                    if action.is_announce() {
                        self.origins.insert(vrp);
                    } else {
                        self.origins.remove(&vrp);
                    }
                }
                Payload::Aspa(aspa) => {
                    let customer = aspa.customer.into_u32();
                    if action.is_announce() {
                        let providers = aspa.providers.iter().map(|asn| asn.into_u32()).collect();
                        self.aspas.insert(customer, providers);
                    } else {
                        self.aspas.remove(&customer);
                    }
                }
                // BGPsec router keys are of no use to a route server.
                Payload::RouterKey(_) => {}
            }
        }
        self.timing = Some(timing);
        Ok(())
    }
}

/// What the driver hands the RPKI task: the policy in force and the VRP file's payload, read
/// by the driver ([`read_file`]) at start-up and at every reload.
#[derive(Debug, Clone)]
pub struct Input {
    /// `policy.rpki` of the fabric in force.
    pub policy: RpkiPolicy,
    /// The payload of `policy.vrp_file` (`None`: no file configured).
    pub file: Option<Arc<VrpSet>>,
}

/// Reads the VRP file `policy` names; `Ok(None)` when it names none. A malformed file is
/// refused whole ([`VrpFileError`] names the entry) and nothing changes.
pub fn read_file(policy: &RpkiPolicy) -> Result<Option<Arc<VrpSet>>, VrpFileError> {
    let Some(path) = &policy.vrp_file else {
        return Ok(None);
    };
    let set = json::load(path)?;
    info!(path = %path.display(), ipv4 = set.count(Family::Ipv4),
        ipv6 = set.count(Family::Ipv6), aspas = set.aspa_count(), "VRP file read");
    Ok(Some(Arc::new(set)))
}

/// The running RPKI task as the driver holds it: [`RpkiTask::update`] hands it a reloaded
/// policy and VRP file; dropping the handle ends the task (the `rpki` block was removed).
#[derive(Debug)]
pub struct RpkiTask {
    input: watch::Sender<Input>,
}

impl RpkiTask {
    /// Spawns the task on `tasks` with `input` (VRP file already read).
    pub fn spawn(
        input: Input,
        metrics: Arc<Metrics>,
        events: mpsc::Sender<RibEvent>,
        shutdown: watch::Receiver<bool>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> RpkiTask {
        let (sender, receiver) = watch::channel(input);
        tasks.spawn(task(receiver, metrics, events, shutdown));
        RpkiTask { input: sender }
    }

    /// Applies a reloaded policy and VRP file: the file's payload replaces the old one at
    /// once (it is in force when no cache data is); a session with a cache no longer listed
    /// ends, and the cache list is followed from then on.
    pub fn update(&self, input: Input) {
        self.input.send_replace(input);
    }
}

/// Why a session with a cache ended.
enum SessionEnd {
    /// It failed before delivering any data.
    Failed(String),
    /// It ended after delivering data.
    Ended,
    /// A reload dropped the cache from the list.
    Unlisted,
    /// The route server is stopping, or the driver dropped the task.
    Stop,
}

/// The state `run` keeps between caches.
struct Source {
    input: watch::Receiver<Input>,
    policy: RpkiPolicy,
    metrics: Arc<Metrics>,
    events: mpsc::Sender<RibEvent>,
    /// The VRP file's payload, if it was read.
    file: Option<Arc<VrpSet>>,
    /// The last payload a cache delivered, when, and how long it may be used.
    cached: Option<(Arc<VrpSet>, Instant, Duration)>,
    /// What was last handed to the RIB task (by address), to send only changes.
    in_force: Option<Arc<VrpSet>>,
}

impl Source {
    /// The payload that should be in force now.
    fn current(&mut self, now: Instant) -> Option<Arc<VrpSet>> {
        if let Some((_, updated, expire)) = &self.cached
            && now.duration_since(*updated) >= *expire
        {
            warn!("RPKI cache data expired: no cache answered for the expire interval");
            self.cached = None;
        }
        match &self.cached {
            Some((set, _, _)) => Some(Arc::clone(set)),
            None => self.file.clone(),
        }
    }

    /// Hands the payload in force to the RIB task when it changed.
    async fn publish(&mut self, now: Instant) {
        let current = self.current(now);
        let same = match (&current, &self.in_force) {
            (Some(new), Some(old)) => Arc::ptr_eq(new, old),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        self.metrics.rpki.show(current.as_deref());
        self.in_force = current.clone();
        let _ = self.events.send(RibEvent::Rpki(current)).await;
    }

    /// Takes the driver's latest input (policy and VRP file).
    fn take_input(&mut self) {
        let input = self.input.borrow_and_update().clone();
        for cache in &input.policy.caches {
            if !self.policy.caches.contains(cache) {
                self.metrics.rpki.cache(cache).set(0);
            }
        }
        match (&input.file, &self.file) {
            // The same payload read again: the set in force stays, nothing is judged again.
            (Some(new), Some(old)) if new == old => {}
            (file, _) => {
                if file.is_some() {
                    self.metrics.rpki.last_update.set(unix_now());
                }
                self.file = input.file;
            }
        }
        self.metrics.rpki.vrp_file_error.set(0);
        self.policy = input.policy;
    }

    /// Waits for a reload's input or the route server's stop; `false` when the task must end.
    async fn reloaded(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            changed = self.input.changed() => {
                if changed.is_err() {
                    return false;
                }
                self.take_input();
                self.publish(Instant::now()).await;
                true
            }
            changed = shutdown.changed() => changed.is_ok() && !*shutdown.borrow(),
        }
    }

    /// One RTR session with `cache` until it fails, the cache is unlisted by a reload, or the
    /// task stops.
    async fn session(
        &mut self,
        cache: &RtrCache,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SessionEnd {
        let address = cache.to_string();
        let socket = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await
        {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => return SessionEnd::Failed(error.to_string()),
            Err(_) => return SessionEnd::Failed(format!("no answer within {CONNECT_TIMEOUT:?}")),
        };
        let mut client = Client::new(socket, Target::default(), None);
        let up = self.metrics.rpki.cache(cache);
        let mut delivered = false;
        loop {
            // The step future is kept across reloads and shutdown wake-ups: the `rpki` client
            // is not cancel-safe (dropping a step in the middle of a PDU would desynchronise
            // the stream), so it is dropped only when the session ends anyway.
            let step = {
                let step = client.step();
                tokio::pin!(step);
                loop {
                    tokio::select! {
                        result = &mut step => break result,
                        changed = self.input.changed() => {
                            if changed.is_err() {
                                up.set(0);
                                return SessionEnd::Stop;
                            }
                            self.take_input();
                            self.publish(Instant::now()).await;
                            if !self.policy.caches.contains(cache) {
                                up.set(0);
                                return SessionEnd::Unlisted;
                            }
                        }
                        changed = shutdown.changed() => {
                            if changed.is_err() || *shutdown.borrow() {
                                up.set(0);
                                return SessionEnd::Stop;
                            }
                        }
                    }
                }
            };
            if let Err(error) = step {
                up.set(0);
                return if delivered {
                    SessionEnd::Ended
                } else {
                    SessionEnd::Failed(error.to_string())
                };
            }
            let target = client.target();
            let expire = target
                .timing
                .map_or(self.policy.timers.expire, |timing| timing.expire);
            let set = Arc::new(target.set());
            if let Some(state) = client.state() {
                self.metrics.rpki.serial.set(i64::from(state.serial().0));
            }
            if !delivered {
                info!(cache = %address, ipv4 = set.count(Family::Ipv4),
                    ipv6 = set.count(Family::Ipv6), aspas = set.aspa_count(),
                    "RTR cache synchronised");
            }
            delivered = true;
            up.set(1);
            self.metrics.rpki.stale.set(0);
            self.metrics.rpki.last_update.set(unix_now());
            self.cached = Some((set, Instant::now(), Duration::from_secs(u64::from(expire))));
            self.publish(Instant::now()).await;
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Runs the payload source until `shutdown` turns true or the driver drops the [`RpkiTask`]:
/// the VRP file's payload first, then an RTR session with the first cache that answers,
/// failing over down the list and, after the last, waiting `retry` before starting again. The
/// payload of a cache that went away stays in force until its expire time.
async fn task(
    mut input: watch::Receiver<Input>,
    metrics: Arc<Metrics>,
    events: mpsc::Sender<RibEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let first = input.borrow_and_update().clone();
    for cache in &first.policy.caches {
        metrics.rpki.cache(cache).set(0);
    }
    if first.file.is_some() {
        metrics.rpki.last_update.set(unix_now());
    }
    let mut source = Source {
        input,
        policy: first.policy,
        metrics,
        events,
        file: first.file,
        cached: None,
        in_force: None,
    };
    serve(&mut source, &mut shutdown).await;
    if source.input.has_changed().is_err() {
        // A reload removed the `rpki` block: nothing of this task stays in force.
        for cache in &source.policy.caches {
            source.metrics.rpki.cache(cache).set(0);
        }
        source.metrics.rpki.stale.set(0);
        source.cached = None;
        source.file = None;
        source.publish(Instant::now()).await;
    }
}

/// The body of [`task`]: returns when the task must end.
async fn serve(source: &mut Source, shutdown: &mut watch::Receiver<bool>) {
    source.publish(Instant::now()).await;
    'rounds: loop {
        let caches = source.policy.caches.clone();
        if caches.is_empty() {
            // A VRP file only: wait for a reload (which may add caches) or the stop.
            if !source.reloaded(shutdown).await {
                return;
            }
            continue;
        }
        for cache in &caches {
            if *shutdown.borrow() {
                return;
            }
            if !source.policy.caches.contains(cache) {
                continue;
            }
            match source.session(cache, shutdown).await {
                SessionEnd::Ended => warn!(cache = %cache, "RTR session with the cache ended"),
                SessionEnd::Failed(error) => {
                    warn!(cache = %cache, %error, "RTR cache unavailable");
                }
                SessionEnd::Unlisted => {
                    // Straight on to the new list, from its first cache.
                    info!(cache = %cache, "RTR cache removed by a reload; session closed");
                    source.metrics.rpki.stale.set(1);
                    source.publish(Instant::now()).await;
                    continue 'rounds;
                }
                SessionEnd::Stop => return,
            }
            source.metrics.rpki.stale.set(1);
            source.publish(Instant::now()).await;
        }
        let retry = Duration::from_secs(u64::from(source.policy.timers.retry));
        let deadline = source
            .cached
            .as_ref()
            .map(|(_, updated, expire)| *updated + *expire);
        let wait = match deadline {
            Some(deadline) => retry.min(deadline.saturating_duration_since(Instant::now())),
            None => retry,
        };
        tokio::select! {
            () = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
            running = source.reloaded(shutdown) => {
                if !running {
                    return;
                }
            }
        }
        source.publish(Instant::now()).await;
    }
}
