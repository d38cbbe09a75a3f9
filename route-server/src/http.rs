//! The route server's HTTP listener: read-only JSON API (shaped after Alice-LG's, so its users
//! recognise it) and `/metrics`. Answers from the status table and RIB queries; must not change
//! any state.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use vixp_bgp::{Attributes, Family, Prefix, SegmentKind};

use crate::driver::{Handles, NeighborStatus, RibQuery, RibReply};
use crate::rib::{FamilyCounts, RouteView};

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
        Ok(RibReply::Routes(_)) => Default::default(),
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
        Ok(RibReply::Routes(_)) => Vec::new(),
        Err(response) => return response,
    };
    let views: Vec<NeighborView> = status_snapshot(&handles)
        .iter()
        .enumerate()
        .map(|(position, status)| {
            neighbor_view(status, counts.get(position).copied().unwrap_or_default())
        })
        .collect();
    axum::Json(json!({ "neighbors": views })).into_response()
}

/// Pagination parameters.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// Zero-based page number.
    #[serde(default)]
    pub page: usize,
    /// Routes per page.
    pub page_size: Option<usize>,
}

async fn received(
    State(handles): State<Shared>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Response {
    neighbor_routes(&handles, &id, &page, RibQuery::RoutesFrom).await
}

async fn filtered(
    State(handles): State<Shared>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Response {
    neighbor_routes(&handles, &id, &page, RibQuery::FilteredFrom).await
}

async fn not_exported(
    State(handles): State<Shared>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Response {
    neighbor_routes(&handles, &id, &page, RibQuery::NotExportedTo).await
}

/// One page of a neighbor's routes, chosen by `query`.
async fn neighbor_routes(
    handles: &Handles,
    id: &str,
    page: &Page,
    query: fn(crate::rib::PeerId) -> RibQuery,
) -> Response {
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
    let routes = match ask(handles, query(status.config.id)).await {
        Ok(RibReply::Routes(routes)) => routes,
        Ok(RibReply::Counts(..)) => Vec::new(),
        Err(response) => return response,
    };
    let size = page
        .page_size
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let total = routes.len();
    let pages = total.div_ceil(size);
    let start = page.page.saturating_mul(size).min(total);
    let end = start.saturating_add(size).min(total);
    let route_server_asn = route_server_asn(handles);
    let views: Vec<RouteJson> = routes[start..end]
        .iter()
        .map(|route| route_json(route, &statuses, route_server_asn))
        .collect();
    axum::Json(json!({
        "routes": views,
        "pagination": {
            "page": page.page,
            "page_size": size,
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
    pub q: String,
}

async fn lookup(State(handles): State<Shared>, Query(query): Query<LookupQuery>) -> Response {
    let text = query.q.trim();
    let request = if let Ok(prefix) = text.parse::<Prefix>() {
        RibQuery::RoutesFor(prefix)
    } else if let Ok(address) = text.parse::<IpAddr>() {
        RibQuery::Lookup(address)
    } else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": format!("{text:?} is neither a prefix nor an address; use e.g. 198.18.128.0/24 or 198.18.128.1"),
            })),
        )
            .into_response();
    };
    let statuses = status_snapshot(&handles);
    let routes = match ask(&handles, request).await {
        Ok(RibReply::Routes(routes)) => routes,
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
    let source = usize::try_from(route.peer.0)
        .ok()
        .and_then(|index| statuses.get(index));
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
