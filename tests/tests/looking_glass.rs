//! The route server's looking glass in headless Chromium (Debian's `chromium`), against our
//! route server with real BIRD members: the page loads, lists the members and their session
//! states, shows why a route was filtered and why one is not exported, looks up a prefix, and
//! reads on a phone. The JSON API refuses bad input with a JSON 4xx, and nothing it or the page
//! serves holds anything but the fabric's public data. With `VIXP_SCREENSHOTS=1` the
//! screenshots are copied to docs/images/. Must not send traffic outside the namespaces it
//! creates (the browser runs inside the route server's namespace).

use std::time::Duration;

use ipnet::IpNet;
use vixp_tests::chromium::{Chromium, Window, visible_text};
use vixp_tests::exchange::{ROUTE_SERVER_ASN, ROUTE_SERVER_HTTP, test_public_key};
use vixp_tests::{Announcement, Exchange, MemberKind, MemberSpec, RouteServerKind, workspace_root};

/// Screenshots larger than this are too heavy for the docs.
const SCREENSHOT_BUDGET: u64 = 150 * 1024;

fn prefix(text: &str) -> IpNet {
    text.parse().expect("test prefix")
}

fn member(name: &str, asn: u32, host: u8, announcements: Vec<Announcement>) -> MemberSpec {
    MemberSpec {
        name: name.to_owned(),
        asn,
        host,
        kind: MemberKind::Bird,
        announcements,
    }
}

/// Alpha announces one good route and two the import policy refuses; bravo announces one route
/// it keeps from alpha with the Euro-IX `rs:0:peer` action; charlie announces one route.
fn members() -> Vec<MemberSpec> {
    let mut transit = Announcement::new(prefix("198.18.141.0/24"));
    // AS174 behind the member: a transit network leaking through a member.
    transit.foreign_path = vec![174];
    let mut hijack = Announcement::new(prefix("198.18.144.0/24"));
    // Bravo's LAN address as next hop: alpha would divert bravo-bound traffic.
    hijack.next_hop = Some("198.18.0.12".parse().expect("address"));
    let mut withheld = Announcement::new(prefix("198.18.150.0/24"));
    withheld.large_communities = vec![(ROUTE_SERVER_ASN, 0, 64501)];
    vec![
        member(
            "alpha",
            64501,
            11,
            vec![
                Announcement::new(prefix("198.18.140.0/24")),
                transit,
                hijack,
            ],
        ),
        member("bravo", 64502, 12, vec![withheld]),
        member(
            "charlie",
            64503,
            13,
            vec![Announcement::new(prefix("198.18.160.0/24"))],
        ),
    ]
}

/// GETs `path` from the route server with curl inside its namespace (the path sent as written,
/// `..` included); returns the status code and the body.
fn get(exchange: &Exchange, path: &str) -> (u16, String) {
    let url = format!("http://{ROUTE_SERVER_HTTP}{path}");
    let output = exchange
        .route_server_host()
        .netns()
        .run(
            "curl",
            &[
                "-sS",
                "--path-as-is",
                "--max-time",
                "5",
                "-w",
                "\n%{http_code}",
                &url,
            ],
        )
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    let (body, code) = output.rsplit_once('\n').unwrap_or(("", &output));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn get_json(exchange: &Exchange, path: &str) -> serde_json::Value {
    let (code, body) = get(exchange, path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {path}: {error}: {body}"))
}

/// Waits until alpha's two refused routes are listed and bravo's route is withheld from alpha.
fn wait_for_policy(exchange: &Exchange) {
    exchange.wait_for(
        Duration::from_secs(15),
        "alpha's refused routes and bravo's withheld route in the API",
        |exchange| {
            let filtered = get_json(exchange, "/api/v1/neighbors/alpha.ipv4/routes/filtered");
            let withheld = get_json(exchange, "/api/v1/neighbors/alpha.ipv4/routes/not-exported");
            filtered["routes"].as_array().map(Vec::len) == Some(2)
                && withheld["routes"].as_array().map(Vec::len) == Some(1)
        },
    );
}

/// The `<tr>` elements of a DOM dump that link to neighbor `id`.
fn rows_for<'a>(dom: &'a str, id: &str) -> Vec<&'a str> {
    let link = format!("href=\"/lg/neighbors/{id}\"");
    dom.split("<tr")
        .filter(|row| row.contains(&link))
        .map(|row| row.split("</tr>").next().unwrap_or(row))
        .collect()
}

/// The session state a neighbors-table row shows (its state badge's `data-state`).
fn row_state(row: &str) -> &str {
    row.split("data-state=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
}

/// Copies a screenshot to docs/images/ when `VIXP_SCREENSHOTS=1`; checks it is a PNG.
fn keep_screenshot(file: &std::path::Path) {
    let bytes = std::fs::read(file).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        file.display()
    );
    if std::env::var("VIXP_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    assert!(
        size <= SCREENSHOT_BUDGET,
        "{} is {size} bytes, over the docs budget of {SCREENSHOT_BUDGET}",
        file.display()
    );
    let images = workspace_root().join("docs").join("images");
    std::fs::create_dir_all(&images).expect("docs/images");
    let name = file.file_name().expect("a file name");
    std::fs::copy(file, images.join(name)).expect("copy the screenshot");
}

#[test]
fn the_looking_glass_shows_members_their_states_and_why_a_route_was_filtered() {
    let mut exchange = Exchange::start("looking-glass", RouteServerKind::Ours, members())
        .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();
    wait_for_policy(&exchange);
    // Charlie's router dies: its sessions go down and the route server keeps why.
    exchange.member_mut("charlie").kill();
    exchange.wait_for(
        Duration::from_secs(15),
        "charlie's sessions to be down with a last error",
        |exchange| {
            let neighbors = get_json(exchange, "/api/v1/neighbors");
            neighbors["neighbors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["member"] == "charlie")
                .all(|n| n["state"] != "Established" && n["last_error"].is_string())
        },
    );
    let neighbors = get_json(&exchange, "/api/v1/neighbors");
    let base = format!("http://{ROUTE_SERVER_HTTP}");
    let mut browser = Chromium::new(exchange.route_server_host().netns())
        .unwrap_or_else(|error| panic!("{error}"));
    let shots = exchange.dir().to_path_buf();

    // The neighbors table: every session, its state and its last error, as the API has them.
    let dom = browser
        .dump_dom(&format!("{base}/"), Window::DESKTOP)
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(dom.contains("data-ready=\"true\""), "{dom}");
    assert!(dom.contains("data-fits-width=\"true\""), "{dom}");
    assert!(!dom.contains("class=\"error\""), "{dom}");
    let text = visible_text(&dom);
    assert!(
        text.contains("4 of 6 sessions established"),
        "summary missing: {text}"
    );
    for neighbor in neighbors["neighbors"].as_array().expect("neighbors") {
        let id = neighbor["id"].as_str().expect("id");
        let rows = rows_for(&dom, id);
        assert_eq!(rows.len(), 1, "{id} has no single row: {dom}");
        let row_text = visible_text(rows[0]);
        assert_eq!(row_state(rows[0]), neighbor["state"], "{id}: {row_text}");
        let asn = format!("AS{}", neighbor["asn"]);
        let address = neighbor["address"].as_str().expect("address");
        assert!(row_text.contains(&asn), "{id}: {row_text}");
        assert!(row_text.contains(address), "{id}: {row_text}");
        if let Some(error) = neighbor["last_error"].as_str() {
            assert!(row_text.contains(error), "{id} lacks {error:?}: {row_text}");
        }
    }
    assert_eq!(row_state(rows_for(&dom, "alpha.ipv4")[0]), "Established");
    assert_ne!(row_state(rows_for(&dom, "charlie.ipv4")[0]), "Established");
    // The check can fail: just above the phone breakpoint the ten-column table is wider than
    // the window and scrolls inside its box.
    let narrow = Window {
        width: 800,
        height: 720,
    };
    let dom = browser
        .dump_dom(&format!("{base}/"), narrow)
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(dom.contains("data-fits-width=\"false\""), "{dom}");
    let shot = shots.join("looking-glass-neighbors.png");
    browser
        .screenshot(&format!("{base}/"), Window::DESKTOP, &shot)
        .unwrap_or_else(|error| panic!("{error}"));
    keep_screenshot(&shot);

    // Alpha's filtered routes, each with the reason in plain words.
    let filtered_url = format!("{base}/lg/neighbors/alpha.ipv4?view=filtered");
    let dom = browser
        .dump_dom(&filtered_url, Window::DESKTOP)
        .unwrap_or_else(|error| panic!("{error}"));
    let text = visible_text(&dom);
    assert!(
        text.contains("next hop 198.18.0.12 is not alpha's LAN address 198.18.0.11"),
        "{text}"
    );
    assert!(text.contains("transit-free AS174"), "{text}");
    let api = get_json(&exchange, "/api/v1/neighbors/alpha.ipv4/routes/filtered");
    for route in api["routes"].as_array().expect("routes") {
        let reason = route["filtered"]["reason"].as_str().expect("reason");
        let network = route["network"].as_str().expect("network");
        assert!(text.contains(network), "{network} missing: {text}");
        assert!(text.contains(reason), "{reason:?} missing: {text}");
    }
    assert!(
        !text.contains("198.18.140.0/24"),
        "accepted route listed as filtered"
    );
    let shot = shots.join("looking-glass-filtered.png");
    browser
        .screenshot(&filtered_url, Window::DESKTOP, &shot)
        .unwrap_or_else(|error| panic!("{error}"));
    keep_screenshot(&shot);

    // What alpha does not get, and why: bravo's rs:0:peer action.
    let dom = browser
        .dump_dom(
            &format!("{base}/lg/neighbors/alpha.ipv4?view=not-exported"),
            Window::DESKTOP,
        )
        .unwrap_or_else(|error| panic!("{error}"));
    let text = visible_text(&dom);
    assert!(text.contains("198.18.150.0/24"), "{text}");
    assert!(
        text.contains(&format!("{ROUTE_SERVER_ASN}:0:64501")),
        "{text}"
    );

    // A prefix lookup by address: bravo's route, accepted.
    let dom = browser
        .dump_dom(&format!("{base}/lg/lookup?q=198.18.150.7"), Window::DESKTOP)
        .unwrap_or_else(|error| panic!("{error}"));
    let text = visible_text(&dom);
    assert!(
        text.contains("198.18.150.0/24") && text.contains("bravo"),
        "{text}"
    );

    // A neighbor that does not exist is said so, with the ones that do.
    let dom = browser
        .dump_dom(&format!("{base}/lg/neighbors/nobody.ipv4"), Window::DESKTOP)
        .unwrap_or_else(|error| panic!("{error}"));
    let text = visible_text(&dom);
    assert!(
        text.contains("No neighbor nobody.ipv4") && text.contains("alpha.ipv6"),
        "{text}"
    );

    // On a phone every view fits the width (one card per row, no sideways scrolling); on a
    // desktop the neighbors table fits too.
    for path in [
        "/",
        "/lg/neighbors/alpha.ipv4?view=filtered",
        "/lg/neighbors/alpha.ipv4?view=not-exported",
        "/lg/lookup?q=198.18.150.7",
    ] {
        let dom = browser
            .dump_dom(&format!("{base}{path}"), Window::PHONE)
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(dom.contains("data-ready=\"true\""), "{path}: {dom}");
        assert!(
            dom.contains("data-fits-width=\"true\""),
            "{path} needs sideways scrolling on a phone"
        );
    }
    let shot = shots.join("looking-glass-phone.png");
    browser
        .screenshot(&filtered_url, Window::PHONE_PAGE, &shot)
        .unwrap_or_else(|error| panic!("{error}"));
    keep_screenshot(&shot);
}

#[test]
fn the_api_answers_bad_input_with_a_json_error_and_serves_only_public_data() {
    let exchange = Exchange::start("lg-api", RouteServerKind::Ours, members())
        .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();
    wait_for_policy(&exchange);
    // A node's private key beside the fabric file, as on a host that runs both: nothing the
    // route server serves may ever contain it.
    let secret = "6MSxL0BO2tTcqR5mXmXe7AhQuAgYnaPAR1WeEvjuq3M=";
    std::fs::write(exchange.path("private.key"), format!("{secret}\n")).expect("key file");

    let filtered = "/api/v1/neighbors/alpha.ipv4/routes/filtered";
    let bad = [
        (
            "/api/v1/neighbors/nobody.ipv4/routes/received".to_owned(),
            404,
        ),
        (format!("{filtered}?page_size=0"), 400),
        (format!("{filtered}?page_size=10001"), 400),
        (format!("{filtered}?page_size=99999999999999999999999"), 400),
        (format!("{filtered}?page_size=ten"), 400),
        (format!("{filtered}?page=-1"), 400),
        (format!("{filtered}?page=first"), 400),
        // Two routes at one per page: pages 0 and 1 exist, page 2 does not.
        (format!("{filtered}?page=2&page_size=1"), 400),
        (format!("{filtered}?page=1&page=2"), 400),
        ("/api/v1/neighbors/%FF/routes/received".to_owned(), 400),
        ("/api/v1/lookup/prefix?q=198.18.0.0/99".to_owned(), 400),
        ("/api/v1/lookup/prefix?q=%3Cscript%3E".to_owned(), 400),
        ("/api/v1/lookup/prefix".to_owned(), 400),
        ("/api/v1/nothing-here".to_owned(), 404),
    ];
    for (path, status) in &bad {
        let (code, body) = get(&exchange, path);
        assert_eq!(code, *status, "GET {path}: {body}");
        let value: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("GET {path}: not JSON ({error}): {body}"));
        assert!(
            value["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    let (_, body) = get(&exchange, &format!("{filtered}?page_size=10001"));
    assert!(body.contains("from 1 to 10000"), "{body}");
    let page = get_json(&exchange, &format!("{filtered}?page=1&page_size=1"));
    assert_eq!(page["routes"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["pagination"]["total_pages"], 2, "{page}");

    // Read-only: a POST changes nothing and is refused.
    let before = get_json(&exchange, "/api/v1/neighbors");
    let refused = exchange
        .route_server_host()
        .netns()
        .run(
            "curl",
            &[
                "-sS",
                "-X",
                "POST",
                "--max-time",
                "5",
                "-w",
                "\n%{http_code}",
                &format!("http://{ROUTE_SERVER_HTTP}/api/v1/neighbors"),
            ],
        )
        .expect("POST");
    assert!(refused.ends_with("\n405"), "{refused}");
    let after = get_json(&exchange, "/api/v1/neighbors");
    let states = |value: &serde_json::Value| {
        value["neighbors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| (n["id"].clone(), n["state"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(states(&before), states(&after));

    // Every page, asset and API answer, and attempts to climb out of them: no secret, and the
    // only keys shown are the fabric's public ones.
    let public_keys: Vec<String> = [1, 11, 12, 13].into_iter().map(test_public_key).collect();
    let mut paths: Vec<String> = [
        "/",
        "/lg/lg.js",
        "/lg/lg.css",
        "/lg/neighbors/alpha.ipv4",
        "/lg/lookup?q=198.18.140.0/24",
        "/api/v1/status",
        "/api/v1/neighbors",
        "/api/v1/lookup/prefix?q=198.18.140.0/24",
        "/ixf-member-export.json",
        "/metrics",
        "/lg/../private.key",
        "/lg/%2e%2e/private.key",
        "/lg/lg.js/../../private.key",
        "/../../../../etc/shadow",
        "/lg/neighbors/..%2f..%2fprivate.key",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for id in ["alpha.ipv4", "alpha.ipv6", "bravo.ipv4", "charlie.ipv6"] {
        for view in ["received", "filtered", "not-exported"] {
            paths.push(format!("/api/v1/neighbors/{id}/routes/{view}"));
        }
    }
    paths.extend(bad.iter().map(|(path, _)| path.clone()));
    for path in &paths {
        let (code, body) = get(&exchange, path);
        assert!(code != 0, "GET {path}: no answer");
        assert!(!body.contains(secret), "GET {path} shows the private key");
        assert!(!body.contains("root:"), "GET {path} shows a system file");
        for token in key_like_tokens(&body) {
            assert!(
                public_keys.contains(&token),
                "GET {path} shows {token}, which is not a public key of the fabric"
            );
        }
    }
}

/// Substrings shaped like WireGuard keys: 43 base64 characters and `=`.
fn key_like_tokens(text: &str) -> Vec<String> {
    let is_base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    text.split(|c: char| !(is_base64(c) || c == '='))
        .filter(|token| {
            token.len() == 44 && token.ends_with('=') && token[..43].chars().all(is_base64)
        })
        .map(str::to_owned)
        .collect()
}
