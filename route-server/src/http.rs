//! The route server's HTTP listener: read-only JSON API (shaped after Alice-LG's, so its users
//! recognise it), the looking-glass page ([`crate::lg`]) and `/metrics`. Answers from the status
//! table and RIB queries; must not change any state. Only GET (and HEAD) is routed; every bad
//! request, including what axum's extractors refuse, is a 4xx with a JSON `{"error": ...}`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use vixp_bgp::{Attributes, Family, Prefix, SegmentKind};

use crate::driver::{Handles, NeighborStatus, RibQuery, RibReply};
use crate::rib::{FamilyCounts, RouteView, Window};

/// Default number of routes per page.
pub const DEFAULT_PAGE_SIZE: usize = 250;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 10_000;

/// Serves until shutdown.
pub async fn serve(listener: TcpListener, handles: Handles, mut shutdown: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/neighbors", get(neighbors))
        .route("/api/v1/neighbors/{id}/routes/received", get(received))
        .route("/api/v1/neighbors/{id}/routes/filtered", get(filtered))
        .route(
            "/api/v1/neighbors/{id}/routes/not-exported",
            get(not_exported),
        )
        .route("/api/v1/lookup/prefix", get(lookup))
        .route("/ixf-member-export.json", get(ixf_member_export))
        .route("/policy", get(crate::policy_page::page))
        .merge(crate::lg::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::new(handles));
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
}

type Shared = Arc<Handles>;

/// A JSON error answer, `{"error": message}`.
fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// The API's endpoints, listed when a client asks for one that does not exist.
const ENDPOINTS: [&str; 9] = [
    "/api/v1/status",
    "/api/v1/neighbors",
    "/api/v1/neighbors/{id}/routes/received?page=0&page_size=250",
    "/api/v1/neighbors/{id}/routes/filtered?page=0&page_size=250",
    "/api/v1/neighbors/{id}/routes/not-exported?page=0&page_size=250",
    "/api/v1/lookup/prefix?q=PREFIX_OR_ADDRESS",
    "/ixf-member-export.json",
    "/policy",
    "/metrics",
];

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": format!("nothing at {}; the looking glass is at /", uri.path()),
            "endpoints": ENDPOINTS,
        })),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "the API and the looking glass are read-only: only GET is allowed",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    response
}

/// What axum's query-string extractor refused, as a JSON 400.
fn query_rejection(rejection: &QueryRejection) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        format!("bad query string: {}", rejection.body_text()),
    )
}

/// What axum's path extractor refused, as a JSON 4xx with the status axum chose.
fn path_rejection(rejection: &PathRejection) -> Response {
    error_response(
        rejection.status(),
        format!("bad path: {}", rejection.body_text()),
    )
}

async fn metrics(State(handles): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handles.metrics.render(),
    )
        .into_response()
}

async fn ask(handles: &Handles, query: RibQuery) -> Result<RibReply, Response> {
    let (reply, answer) = oneshot::channel();
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": "the RIB is not running"})),
        )
            .into_response()
    };
    handles
        .queries
        .send((query, reply))
        .await
        .map_err(|_| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A neighbor as shown by the API (Alice-LG field names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NeighborView {
    /// `member.family`, e.g. `alpha.ipv4`.
    pub id: String,
    /// Member name.
    pub member: String,
    /// Member's LAN address of the session's family.
    pub address: IpAddr,
    /// Member ASN.
    pub asn: u32,
    /// Session family.
    pub family: Family,
    /// RFC 4271 state name.
    pub state: String,
    /// Description from the fabric file.
    pub description: Option<String>,
    /// Seconds since the session became established (0 when down).
    pub uptime: u64,
    /// Prefixes received.
    pub routes_received: usize,
    /// Prefixes accepted.
    pub routes_accepted: usize,
    /// Prefixes filtered.
    pub routes_filtered: usize,
    /// Prefixes advertised to the member.
    pub routes_exported: usize,
    /// Why the session last went down.
    pub last_error: Option<String>,
    /// The member's BGP identifier, once known.
    pub router_id: Option<std::net::Ipv4Addr>,
}

/// The neighbor id used in URLs and the CLI.
pub fn neighbor_id(status: &NeighborStatus) -> String {
    format!("{}.{}", status.config.name, status.config.family.label())
}

fn neighbor_view(status: &NeighborStatus, counts: FamilyCounts) -> NeighborView {
    let uptime = status
        .established_since
        .and_then(|since| SystemTime::now().duration_since(since).ok())
        .map_or(0, |elapsed| elapsed.as_secs());
    NeighborView {
        id: neighbor_id(status),
        member: status.config.name.clone(),
        address: status.config.address,
        asn: status.config.asn,
        family: status.config.family,
        state: status.state.to_string(),
        description: status.config.description.clone(),
        uptime,
        routes_received: counts.received,
        routes_accepted: counts.accepted,
        routes_filtered: counts.filtered,
        routes_exported: counts.advertised,
        last_error: status.last_error.clone(),
        router_id: status.router_id,
    }
}

fn status_snapshot(handles: &Handles) -> Vec<NeighborStatus> {
    handles
        .status
        .lock()
        .map(|table| table.clone())
        .unwrap_or_default()
}

async fn status(State(handles): State<Shared>) -> Response {
    let totals = match ask(&handles, RibQuery::Counts).await {
        Ok(RibReply::Counts(_, totals)) => totals,
        Ok(_) => Default::default(),
        Err(response) => return response,
    };
    let established = status_snapshot(&handles)
        .iter()
        .filter(|status| status.state == "Established")
        .count();
    axum::Json(json!({
        "api": {"version": "1"},
        "route_server": handles.route_server,
        "exchange": handles.fabric.borrow().exchange.name.clone(),
        "version": env!("CARGO_PKG_VERSION"),
        "server_time": unix_seconds(SystemTime::now()),
        "started": unix_seconds(handles.started),
        "sessions_established": established,
        "rib": {
            "prefixes": totals.prefixes,
            "paths": totals.paths,
            "attribute_sets": totals.attribute_sets,
        },
    }))
    .into_response()
}

async fn neighbors(State(handles): State<Shared>) -> Response {
    let counts = match ask(&handles, RibQuery::Counts).await {
        Ok(RibReply::Counts(counts, _)) => counts,
        Ok(_) => Vec::new(),
        Err(response) => return response,
    };
    let views: Vec<NeighborView> = status_snapshot(&handles)
        .iter()
        .map(|status| {
            let position = usize::try_from(status.config.id.0).unwrap_or(usize::MAX);
            neighbor_view(status, counts.get(position).copied().unwrap_or_default())
        })
        .collect();
    axum::Json(json!({ "neighbors": views })).into_response()
}

/// Pagination parameters as the client wrote them; [`Page::request`] checks them.
#[derive(Debug, Default, Deserialize)]
pub struct Page {
    /// Zero-based page number.
    pub page: Option<String>,
    /// Routes per page.
    pub page_size: Option<String>,
}

/// A checked page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Zero-based page number.
    pub page: usize,
    /// Routes per page, 1 to [`MAX_PAGE_SIZE`].
    pub size: usize,
}

impl Page {
    /// The page asked for, or what is wrong with the parameters. A page size above
    /// [`MAX_PAGE_SIZE`] is refused rather than clamped, so a client never mistakes a short
    /// page for the end of the list.
    pub fn request(&self) -> Result<PageRequest, String> {
        let size = match self.page_size.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<usize>() {
                Ok(size) if (1..=MAX_PAGE_SIZE).contains(&size) => size,
                _ => {
                    return Err(format!(
                        "page_size {text:?} is not valid: use a whole number from 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})"
                    ));
                }
            },
        };
        let page = match self.page.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(text) => text.parse::<usize>().map_err(|_| {
                format!("page {text:?} is not valid: pages are numbered from 0 (the first page)")
            })?,
        };
        Ok(PageRequest { page, size })
    }
}

impl PageRequest {
    /// The index range of this page in a list of `total` routes, or why the page does not
    /// exist. Page 0 always exists (it is empty when the list is).
    pub fn window(&self, total: usize) -> Result<std::ops::Range<usize>, String> {
        let pages = total.div_ceil(self.size);
        if self.page > 0 && self.page >= pages {
            return Err(format!(
                "page {} is past the last page: {total} routes at {} per page make {pages} page(s), numbered from 0",
                self.page, self.size
            ));
        }
        let start = self.page.saturating_mul(self.size).min(total);
        let end = start.saturating_add(self.size).min(total);
        Ok(start..end)
    }

    /// The page as the RIB is asked for it: only the page's routes come back, so a page costs
    /// the same wherever it is in the listing.
    pub fn rib_window(&self) -> Window {
        Window {
            start: self.page.saturating_mul(self.size),
            len: self.size,
        }
    }
}

/// The path, query and state extractors of a neighbor route listing, rejections included.
type Listing = (
    Result<Path<String>, PathRejection>,
    Result<Query<Page>, QueryRejection>,
);

async fn received(
    State(handles): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    neighbor_routes(&handles, (id, page), RibQuery::RoutesFrom).await
}

async fn filtered(
    State(handles): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    neighbor_routes(&handles, (id, page), RibQuery::FilteredFrom).await
}

async fn not_exported(
    State(handles): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    neighbor_routes(&handles, (id, page), RibQuery::NotExportedTo).await
}

/// One page of a neighbor's routes, chosen by `query`.
async fn neighbor_routes(
    handles: &Handles,
    (id, page): Listing,
    query: fn(crate::rib::PeerId, Window) -> RibQuery,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return path_rejection(&rejection),
    };
    let request = match page {
        Ok(Query(page)) => match page.request() {
            Ok(request) => request,
            Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
        },
        Err(rejection) => return query_rejection(&rejection),
    };
    let statuses = status_snapshot(handles);
    let Some(status) = statuses.iter().find(|status| neighbor_id(status) == id) else {
        let known: Vec<String> = statuses.iter().map(neighbor_id).collect();
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "error": format!("no neighbor {id}"),
                "valid": known,
            })),
        )
            .into_response();
    };
    let (total, routes) = match ask(handles, query(status.config.id, request.rib_window())).await {
        Ok(RibReply::Page(total, routes)) => (total, routes),
        Ok(RibReply::Routes(_) | RibReply::Counts(..)) => (0, Vec::new()),
        Err(response) => return response,
    };
    if let Err(message) = request.window(total) {
        return error_response(StatusCode::BAD_REQUEST, message);
    }
    let pages = total.div_ceil(request.size);
    let route_server_asn = route_server_asn(handles);
    let views: Vec<RouteJson> = routes
        .iter()
        .map(|route| route_json(route, &statuses, route_server_asn))
        .collect();
    axum::Json(json!({
        "routes": views,
        "pagination": {
            "page": request.page,
            "page_size": request.size,
            "total_pages": pages,
            "total_results": total,
        },
    }))
    .into_response()
}

/// The IX-F member export of the fabric now in force.
async fn ixf_member_export(State(handles): State<Shared>) -> Response {
    let fabric = Arc::clone(&handles.fabric.borrow());
    axum::Json(crate::ixf::member_export(&fabric, SystemTime::now())).into_response()
}

fn route_server_asn(handles: &Handles) -> vixp_fabric::Asn {
    handles
        .fabric
        .borrow()
        .route_server(Some(&handles.route_server))
        .map_or(vixp_fabric::Asn(0), |route_server| route_server.asn)
}

/// Query of a prefix lookup.
#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    /// A prefix (exact match) or an address (longest match).
    pub q: Option<String>,
}

/// The RIB question a lookup text asks: a prefix (exact match) or an address (longest match).
pub fn lookup_request(text: &str) -> Result<RibQuery, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "q is missing: give a prefix (exact match) or an address (longest match), e.g. ?q=198.18.128.0/24 or ?q=198.18.128.1".to_string(),
        );
    }
    if let Ok(prefix) = text.parse::<Prefix>() {
        Ok(RibQuery::RoutesFor(prefix))
    } else if let Ok(address) = text.parse::<IpAddr>() {
        Ok(RibQuery::Lookup(address))
    } else {
        Err(format!(
            "{text:?} is neither a prefix nor an address; use e.g. 198.18.128.0/24 or 198.18.128.1"
        ))
    }
}

async fn lookup(
    State(handles): State<Shared>,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Response {
    let text = match query {
        Ok(Query(query)) => query.q.unwrap_or_default(),
        Err(rejection) => return query_rejection(&rejection),
    };
    let request = match lookup_request(&text) {
        Ok(request) => request,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    let statuses = status_snapshot(&handles);
    let routes = match ask(&handles, request).await {
        Ok(RibReply::Routes(routes) | RibReply::Page(_, routes)) => routes,
        Ok(RibReply::Counts(..)) => Vec::new(),
        Err(response) => return response,
    };
    let route_server_asn = route_server_asn(&handles);
    let views: Vec<RouteJson> = routes
        .iter()
        .map(|route| route_json(route, &statuses, route_server_asn))
        .collect();
    axum::Json(json!({ "routes": views })).into_response()
}

/// A route as shown by the API (Alice-LG field names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteJson {
    /// The prefix.
    pub network: Prefix,
    /// Next hop.
    pub gateway: IpAddr,
    /// Neighbor id it was learnt from.
    pub neighbor_id: String,
    /// Member name it was learnt from.
    pub learnt_from: String,
    /// Whether it is the overall best path.
    pub primary: bool,
    /// Path attributes.
    pub bgp: BgpJson,
    /// Why the import policy refused the route; absent for accepted routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered: Option<FilteredJson>,
    /// Why the route is not exported to the neighbor asked about (not-exported listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_exported: Option<String>,
}

/// Why a route was filtered, in the forms members and tools know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilteredJson {
    /// Plain words, e.g. "next hop 198.18.0.99 is not alpha's LAN address 198.18.0.11".
    pub reason: String,
    /// Stable label, as in the metrics (`next_hop_not_peer`).
    pub label: String,
    /// Euro-IX reject reason code (`rs:1101:code`).
    pub code: u32,
    /// The Euro-IX large community `[route server ASN, 1101, code]`.
    pub large_community: [u32; 3],
}

/// Path attributes of a route in the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BgpJson {
    /// `igp`, `egp` or `incomplete`.
    pub origin: String,
    /// ASNs in order (sets flattened, as Alice-LG shows them).
    pub as_path: Vec<u32>,
    /// Next hop.
    pub next_hop: IpAddr,
    /// MED, if present.
    pub med: Option<u32>,
    /// LOCAL_PREF as received, if present.
    pub local_pref: Option<u32>,
    /// Standard communities as `[asn, value]`.
    pub communities: Vec<[u32; 2]>,
    /// Large communities as `[global, local1, local2]`.
    pub large_communities: Vec<[u32; 3]>,
    /// Extended communities, 16 hex digits each.
    pub ext_communities: Vec<String>,
    /// Whether any AS_SET is in the path.
    pub as_set: bool,
}

fn route_json(
    route: &RouteView,
    statuses: &[NeighborStatus],
    route_server_asn: vixp_fabric::Asn,
) -> RouteJson {
    let source = statuses
        .iter()
        .find(|status| status.config.id == route.peer);
    RouteJson {
        network: route.prefix,
        gateway: route.attributes.next_hop,
        neighbor_id: source.map(neighbor_id).unwrap_or_default(),
        learnt_from: source
            .map(|status| status.config.name.clone())
            .unwrap_or_default(),
        primary: route.best,
        bgp: bgp_json(&route.attributes),
        filtered: route.filtered.as_ref().map(|reason| {
            let community = reason.large_community(route_server_asn);
            FilteredJson {
                reason: reason.to_string(),
                label: reason.label().to_string(),
                code: reason.euro_ix_code(),
                large_community: [community.0, community.1, community.2],
            }
        }),
        not_exported: route.withheld.clone(),
    }
}

/// The API view of a set of path attributes.
pub fn bgp_json(attributes: &Attributes) -> BgpJson {
    BgpJson {
        origin: match attributes.origin {
            vixp_bgp::Origin::Igp => "igp",
            vixp_bgp::Origin::Egp => "egp",
            vixp_bgp::Origin::Incomplete => "incomplete",
        }
        .to_string(),
        as_path: attributes.as_path.asns().collect(),
        next_hop: attributes.next_hop,
        med: attributes.med,
        local_pref: attributes.local_pref,
        communities: attributes
            .communities
            .iter()
            .map(|community| [community >> 16, community & 0xffff])
            .collect(),
        large_communities: attributes
            .large_communities
            .iter()
            .map(|community| [community.0, community.1, community.2])
            .collect(),
        ext_communities: attributes
            .extended_communities
            .iter()
            .map(|community| format!("{community:016x}"))
            .collect(),
        as_set: attributes
            .as_path
            .segments
            .iter()
            .any(|segment| segment.kind == SegmentKind::Set),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;
    use vixp_fabric::Fabric;

    use super::*;
    use crate::driver::neighbors;
    use crate::metrics::Metrics;

    const FABRIC: &str = "version: 1
exchange: {name: VIXP-Unit}
lan: {ipv4: 198.18.0.0/24, ipv6: \"fd00:198:18::/64\"}
policy: {allow_prefixes: [198.18.0.0/15, \"fd00::/8\"], reject_private_asns: false}
route_servers:
  - {name: rs1, asn: 64500, ipv4: 198.18.0.1, public_key: \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\", http: 127.0.0.1:9179}
members:
  - {name: alpha, asn: 64501, ipv4: 198.18.0.11, public_key: \"CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws=\"}
";

    fn page(page: Option<&str>, size: Option<&str>) -> Page {
        Page {
            page: page.map(str::to_string),
            page_size: size.map(str::to_string),
        }
    }

    #[test]
    fn page_parameters_default_and_accept_the_whole_valid_range() {
        assert_eq!(
            page(None, None).request(),
            Ok(PageRequest {
                page: 0,
                size: DEFAULT_PAGE_SIZE
            })
        );
        assert_eq!(
            page(Some("3"), Some("10000")).request(),
            Ok(PageRequest {
                page: 3,
                size: MAX_PAGE_SIZE
            })
        );
        assert_eq!(page(Some(""), Some("1")).request().map(|r| r.size), Ok(1));
    }

    #[test]
    fn page_sizes_outside_one_to_the_maximum_are_refused_with_the_valid_range() {
        for size in ["0", "10001", "99999999999999999999999", "abc", "-5", "2.5"] {
            let error = page(None, Some(size))
                .request()
                .expect_err("an invalid page size");
            assert!(error.contains("from 1 to 10000"), "{size}: {error}");
            assert!(error.contains(size), "{size}: {error}");
        }
    }

    #[test]
    fn page_numbers_must_be_whole_numbers_from_zero() {
        for number in ["-1", "x", "1e3", "18446744073709551616"] {
            let error = page(Some(number), None)
                .request()
                .expect_err("an invalid page number");
            assert!(error.contains("numbered from 0"), "{number}: {error}");
        }
    }

    #[test]
    fn a_page_past_the_last_is_refused_but_the_first_page_always_exists() {
        let request = PageRequest { page: 0, size: 10 };
        assert_eq!(request.window(0), Ok(0..0));
        assert_eq!(request.window(25), Ok(0..10));
        assert_eq!(PageRequest { page: 2, size: 10 }.window(25), Ok(20..25));
        let error = PageRequest { page: 3, size: 10 }
            .window(25)
            .expect_err("past the end");
        assert!(error.contains("3 page(s)"), "{error}");
        assert!(
            PageRequest {
                page: usize::MAX,
                size: MAX_PAGE_SIZE
            }
            .window(5)
            .is_err()
        );
    }

    #[test]
    fn lookups_take_a_prefix_or_an_address_and_explain_anything_else() {
        assert!(matches!(
            lookup_request(" 198.18.128.0/24 "),
            Ok(RibQuery::RoutesFor(_))
        ));
        assert!(matches!(
            lookup_request("fd00:198:18::11"),
            Ok(RibQuery::Lookup(_))
        ));
        for bad in ["", "   ", "198.18.0.0/33", "example.net", "198.18.0.256"] {
            let error = lookup_request(bad).expect_err("a bad lookup");
            assert!(error.contains("198.18.128.0/24"), "{bad:?}: {error}");
        }
    }

    /// Serves the API on a loopback port with a status table of one neighbor and no RIB task
    /// (its queue is closed), so every RIB question answers 503.
    async fn serve_without_rib() -> (SocketAddr, watch::Sender<bool>) {
        let fabric = Fabric::parse(FABRIC, std::path::Path::new("fabric.yaml"))
            .unwrap_or_else(|error| panic!("{error}"));
        let route_server = fabric.route_servers[0].clone();
        let status = neighbors(&fabric, &route_server)
            .into_iter()
            .map(|config| NeighborStatus {
                config,
                state: "Idle",
                established_since: None,
                router_id: None,
                last_error: None,
            })
            .collect();
        let (queries, closed) = mpsc::channel(1);
        drop(closed);
        let (_keep, fabric_view) = watch::channel(Arc::new(fabric));
        let handles = Handles {
            status: Arc::new(Mutex::new(status)),
            queries,
            metrics: Arc::new(Metrics::new()),
            fabric: fabric_view,
            route_server: route_server.name.clone(),
            started: SystemTime::now(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(serve(listener, handles, shutdown));
        (address, stop)
    }

    /// One HTTP/1.1 request; returns status, lower-cased header block and body.
    async fn request(address: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: lg.test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8(raw).expect("UTF-8 response");
        let (headers, body) = text.split_once("\r\n\r\n").expect("a header block");
        let status = headers
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status code");
        (status, headers.to_ascii_lowercase(), body.to_string())
    }

    /// Asserts a JSON error answer with `status` whose message contains `needle`.
    async fn expect_json_error(address: SocketAddr, path: &str, status: u16, needle: &str) {
        let (code, headers, body) = request(address, "GET", path).await;
        assert_eq!(code, status, "{path}: {body}");
        assert!(
            headers.contains("content-type: application/json"),
            "{path}: {headers}"
        );
        let value: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"));
        let message = value["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{path}: {message:?} lacks {needle:?}"
        );
    }

    #[tokio::test]
    async fn malformed_queries_answer_4xx_with_a_json_error() {
        let (address, _stop) = serve_without_rib().await;
        let routes = "/api/v1/neighbors/alpha.ipv4/routes";
        let cases = [
            (
                "/api/v1/neighbors/nobody.ipv4/routes/received".to_string(),
                404,
                "no neighbor nobody.ipv4",
            ),
            (format!("{routes}/received?page_size=0"), 400, "1 to 10000"),
            (
                format!("{routes}/filtered?page_size=1000000"),
                400,
                "1 to 10000",
            ),
            (
                format!("{routes}/not-exported?page_size=lots"),
                400,
                "1 to 10000",
            ),
            (format!("{routes}/received?page=-1"), 400, "numbered from 0"),
            (
                format!("{routes}/received?page=two"),
                400,
                "numbered from 0",
            ),
            (
                format!("{routes}/received?page=1&page=2"),
                400,
                "bad query string",
            ),
            (
                "/api/v1/neighbors/%FF%FE/routes/received".to_string(),
                400,
                "bad path",
            ),
            (
                "/api/v1/lookup/prefix?q=198.18.0.0/33".to_string(),
                400,
                "neither a prefix nor an address",
            ),
            (
                "/api/v1/lookup/prefix?q=%3Cscript%3E".to_string(),
                400,
                "neither a prefix nor an address",
            ),
            ("/api/v1/lookup/prefix".to_string(), 400, "q is missing"),
            ("/api/v1/lookup/prefix?q=".to_string(), 400, "q is missing"),
            (
                "/api/v1/neighbors/alpha.ipv4".to_string(),
                404,
                "nothing at",
            ),
            ("/api/v2/status".to_string(), 404, "nothing at"),
            // Well-formed, but the RIB is not running: the checks above come first.
            (format!("{routes}/received?page_size=5"), 503, "not running"),
        ];
        for (path, status, needle) in cases {
            expect_json_error(address, &path, status, needle).await;
        }
    }

    #[tokio::test]
    async fn nothing_but_get_is_accepted() {
        let (address, _stop) = serve_without_rib().await;
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            for path in ["/api/v1/status", "/api/v1/neighbors", "/", "/lg/lg.js"] {
                let (code, headers, body) = request(address, method, path).await;
                assert_eq!(code, 405, "{method} {path}: {body}");
                assert!(headers.contains("allow: get, head"), "{headers}");
                assert!(body.contains("read-only"), "{body}");
            }
        }
    }

    #[tokio::test]
    async fn the_looking_glass_is_served_from_the_binary_with_a_same_origin_policy() {
        let (address, _stop) = serve_without_rib().await;
        for (path, content_type, marker) in [
            ("/", "text/html", "<main id=\"main\""),
            ("/lg/neighbors/alpha.ipv4", "text/html", "/lg/lg.js"),
            ("/lg/lookup?q=198.18.0.0/24", "text/html", "/lg/lg.css"),
            ("/lg/lg.js", "text/javascript", "neighborsView"),
            ("/lg/lg.css", "text/css", "@media"),
        ] {
            let (code, headers, body) = request(address, "GET", path).await;
            assert_eq!(code, 200, "{path}");
            assert!(
                headers.contains(&format!("content-type: {content_type}")),
                "{path}: {headers}"
            );
            assert!(
                headers.contains("content-security-policy: default-src 'none'"),
                "{path}: {headers}"
            );
            assert!(body.contains(marker), "{path}");
        }
    }
}
