//! The JSON API benchmark: after convergence, times GETs of vixp route server's API (pages of
//! a member's received routes at the first, a middle and the last page, filtered and
//! not-exported pages, prefix lookups) with a plain HTTP/1.1 client over the route server
//! namespace's loopback. Each answer is checked (status 200, the routes a page must hold), so a
//! fast wrong answer does not count. Runs inside the route server's namespace as `bgp-bench
//! api-probe`; owns one TCP connection at a time and nothing else. It reports times; it never
//! fails on them.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::report::median;

/// Timed GETs per request kind (after one untimed warm-up GET).
pub const DEFAULT_REQUESTS: usize = 20;
/// The route server's default page size (`route-server/src/http.rs` `DEFAULT_PAGE_SIZE`).
pub const DEFAULT_PAGE_SIZE: usize = 250;
/// The largest page the route server serves (`MAX_PAGE_SIZE`).
pub const MAX_PAGE_SIZE: usize = 10_000;
/// How long one GET may take before the probe gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What to probe: sent to `bgp-bench api-probe` as its one JSON argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSpec {
    /// The route server's HTTP listener.
    pub listen: SocketAddr,
    /// Neighbor id (`member.family`) of the member holding the big table.
    pub sender: String,
    /// Neighbor id of a member that receives it (for the not-exported listing).
    pub receiver: String,
    /// A prefix the sender announced, for the exact-match lookup.
    pub exact: String,
    /// An address inside that prefix, for the longest-match lookup.
    pub address: String,
    /// Timed GETs per request kind.
    pub requests: usize,
}

/// The timing of one request kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestTiming {
    /// What was asked, e.g. `received last page (250)`.
    pub name: String,
    /// The path and query sent.
    pub path: String,
    /// Routes in the whole listing (`total_results`; for lookups, routes in the answer).
    pub listing: u64,
    /// Routes in the answer.
    pub routes: u64,
    /// Octets of the answer's body.
    pub body_octets: u64,
    /// Median over the timed GETs, milliseconds (connect to last body octet).
    pub median_ms: f64,
    /// Fastest GET, milliseconds.
    pub min_ms: f64,
    /// Slowest GET, milliseconds.
    pub max_ms: f64,
}

/// Everything one probe measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiFigures {
    /// Timed GETs per request kind.
    pub requests: usize,
    /// One entry per request kind, in the order they ran.
    pub timings: Vec<RequestTiming>,
    /// `/proc/loadavg` when the probe started.
    pub load_average: String,
}

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// One `GET path` over a fresh connection (`Connection: close`), the body read to the end.
fn get(listen: SocketAddr, path: &str) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&listen, REQUEST_TIMEOUT)
        .with_context(|| format!("connecting to {listen}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {listen}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer to GET {path}"))?;
    parse_answer(&raw).with_context(|| format!("answer to GET {path}"))
}

/// Splits a raw HTTP/1.1 response into status and body (plain or chunked).
fn parse_answer(raw: &[u8]) -> anyhow::Result<Answer> {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no end of the header block")?;
    let head = std::str::from_utf8(&raw[..end]).context("header block is not UTF-8")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status code in {:?}", head.lines().next()))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

/// Decodes a chunked body (RFC 9112 section 7.1); trailers are ignored.
fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|window| window == b"\r\n")
            .context("chunk size line not terminated")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).context("chunk shorter than its size")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).context("chunk not terminated")?;
    }
}

/// A page of a route listing as the API answers it.
#[derive(Debug, Deserialize)]
struct PageAnswer {
    routes: Vec<serde_json::Value>,
    pagination: Pagination,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    total_pages: u64,
    total_results: u64,
}

/// A lookup answer.
#[derive(Debug, Deserialize)]
struct LookupAnswer {
    routes: Vec<LookupRoute>,
}

#[derive(Debug, Deserialize)]
struct LookupRoute {
    network: String,
}

/// Checks an answer's body; returns (routes in the listing, routes in the answer).
type Check<'a> = &'a dyn Fn(&[u8]) -> anyhow::Result<(u64, u64)>;

/// Fetches `path` once and checks the answer: 200 and what `check` says about the body.
/// Returns (routes in the listing, routes in the answer, body octets).
fn fetch_checked(
    listen: SocketAddr,
    path: &str,
    check: Check<'_>,
) -> anyhow::Result<(u64, u64, u64)> {
    let answer = get(listen, path)?;
    if answer.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    let (listing, routes) = check(&answer.body).with_context(|| format!("GET {path}"))?;
    Ok((listing, routes, answer.body.len() as u64))
}

/// Times `requests` GETs of `path` after one checked warm-up GET; every timed answer must have
/// status 200 and the warm-up's length.
fn time_request(
    spec: &ProbeSpec,
    name: &str,
    path: &str,
    check: Check<'_>,
) -> anyhow::Result<RequestTiming> {
    let (listing, routes, body_octets) = fetch_checked(spec.listen, path, check)?;
    let mut samples = Vec::with_capacity(spec.requests);
    for _ in 0..spec.requests.max(1) {
        let started = Instant::now();
        let answer = get(spec.listen, path)?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if answer.status != 200 || answer.body.len() as u64 != body_octets {
            bail!(
                "GET {path} changed between requests: status {}, {} octets (first: {body_octets})",
                answer.status,
                answer.body.len()
            );
        }
        samples.push(elapsed);
    }
    let min_ms = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max_ms = samples.iter().copied().fold(0.0, f64::max);
    Ok(RequestTiming {
        name: name.to_owned(),
        path: path.to_owned(),
        listing,
        routes,
        body_octets,
        median_ms: median(&mut samples).unwrap_or(0.0),
        min_ms,
        max_ms,
    })
}

/// Routes page `page` of a listing of `total` routes must hold at `size` per page.
pub fn expected_page_length(total: u64, page: u64, size: u64) -> u64 {
    total.saturating_sub(page.saturating_mul(size)).min(size)
}

/// A check for a page: the listing total as first seen, and exactly the routes that page must
/// hold.
fn page_check(page: u64, size: u64) -> impl Fn(&[u8]) -> anyhow::Result<(u64, u64)> {
    move |body| {
        let answer: PageAnswer = serde_json::from_slice(body).context("not a page of routes")?;
        let total = answer.pagination.total_results;
        let want = expected_page_length(total, page, size);
        if answer.routes.len() as u64 != want {
            bail!(
                "page {page} at {size} per page of {total} routes holds {} routes, not {want}",
                answer.routes.len()
            );
        }
        if answer.pagination.total_pages != total.div_ceil(size) {
            bail!(
                "{} pages announced for {total} routes at {size} per page",
                answer.pagination.total_pages
            );
        }
        Ok((total, want))
    }
}

/// A check for a lookup: at least one route, all for `prefix` (when given).
fn lookup_check(prefix: Option<String>) -> impl Fn(&[u8]) -> anyhow::Result<(u64, u64)> {
    move |body| {
        let answer: LookupAnswer = serde_json::from_slice(body).context("not a lookup answer")?;
        if answer.routes.is_empty() {
            bail!("no route found");
        }
        if let Some(prefix) = &prefix
            && let Some(other) = answer.routes.iter().find(|route| route.network != *prefix)
        {
            bail!("a route for {} in the answer, not {prefix}", other.network);
        }
        let count = answer.routes.len() as u64;
        Ok((count, count))
    }
}

/// The total of a listing, from its first page.
fn listing_total(listen: SocketAddr, path: &str) -> anyhow::Result<u64> {
    let answer = get(listen, &format!("{path}?page=0&page_size=1"))?;
    if answer.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    let page: PageAnswer = serde_json::from_slice(&answer.body)
        .with_context(|| format!("GET {path}: not a page of routes"))?;
    Ok(page.pagination.total_results)
}

/// Runs every timed request of `spec` in turn.
///
/// # Errors
/// The API cannot be reached, answers an error, or answers something a check refuses.
pub fn probe(spec: &ProbeSpec) -> anyhow::Result<ApiFigures> {
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let base =
        |neighbor: &str, listing: &str| format!("/api/v1/neighbors/{neighbor}/routes/{listing}");
    let received = base(&spec.sender, "received");
    let total = listing_total(spec.listen, &received)?;
    let mut timings = Vec::new();
    for size in [DEFAULT_PAGE_SIZE as u64, MAX_PAGE_SIZE as u64] {
        let pages = total.div_ceil(size).max(1);
        for (which, page) in [("first", 0), ("middle", pages / 2), ("last", pages - 1)] {
            let name = format!("received {which} page (page {page}, {size} per page)");
            let path = format!("{received}?page={page}&page_size={size}");
            timings.push(time_request(spec, &name, &path, &page_check(page, size))?);
        }
    }
    let size = DEFAULT_PAGE_SIZE as u64;
    for (name, path) in [
        (
            "filtered first page (250 per page)",
            base(&spec.sender, "filtered"),
        ),
        (
            "not-exported first page (250 per page), a receiver",
            base(&spec.receiver, "not-exported"),
        ),
    ] {
        let path = format!("{path}?page=0&page_size={size}");
        timings.push(time_request(spec, name, &path, &page_check(0, size))?);
    }
    timings.push(time_request(
        spec,
        &format!("lookup exact {}", spec.exact),
        &format!("/api/v1/lookup/prefix?q={}", spec.exact),
        &lookup_check(Some(spec.exact.clone())),
    )?);
    timings.push(time_request(
        spec,
        &format!("lookup longest match {}", spec.address),
        &format!("/api/v1/lookup/prefix?q={}", spec.address),
        &lookup_check(Some(spec.exact.clone())),
    )?);
    Ok(ApiFigures {
        requests: spec.requests,
        timings,
        load_average,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_the_remainder_at_the_end_and_nothing_past_it() {
        assert_eq!(expected_page_length(100_000, 0, 250), 250);
        assert_eq!(expected_page_length(100_000, 399, 250), 250);
        assert_eq!(expected_page_length(100_001, 400, 250), 1);
        assert_eq!(expected_page_length(95_000, 9, 10_000), 5_000);
        assert_eq!(expected_page_length(0, 0, 250), 0);
        assert_eq!(expected_page_length(10, 7, 250), 0);
    }

    #[test]
    fn plain_and_chunked_answers_are_read() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let answer = parse_answer(plain).expect("plain");
        assert_eq!((answer.status, answer.body.as_slice()), (200, &b"{}"[..]));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n";
        let answer = parse_answer(chunked).expect("chunked");
        assert_eq!(answer.status, 404);
        assert_eq!(answer.body, b"{\"a\":1}");
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn a_short_page_or_a_wrong_lookup_is_refused() {
        let body = br#"{"routes":[{},{}],"pagination":{"page":1,"page_size":3,"total_pages":2,"total_results":5}}"#;
        assert_eq!(page_check(1, 3)(body).expect("a good page"), (5, 2));
        assert!(page_check(0, 3)(body).is_err());
        let lookup = br#"{"routes":[{"network":"11.0.0.0/24"}]}"#;
        assert!(lookup_check(Some("11.0.0.0/24".into()))(lookup).is_ok());
        assert!(lookup_check(Some("11.0.1.0/24".into()))(lookup).is_err());
        assert!(lookup_check(None)(br#"{"routes":[]}"#).is_err());
    }
}
