//! The looking-glass page: a neighbors table, one neighbor's routes (received, filtered with
//! the reason, not exported with the reason) and a prefix lookup. Static HTML, CSS and
//! JavaScript embedded in the binary, so it works offline on the LAN; the script reads the
//! JSON API of [`crate::http`] and renders with `textContent` only. Must not change any state
//! and must not load anything from another origin (the Content-Security-Policy says so too).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The page shell every looking-glass URL answers with; the script picks the view from the URL.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// The style sheet (responsive: tables become cards on a phone).
pub const STYLE_CSS: &str = include_str!("assets/lg.css");
/// The script that fetches the API and renders the view.
pub const SCRIPT_JS: &str = include_str!("assets/lg.js");

/// Where the style sheet is served.
pub const STYLE_PATH: &str = "/lg/lg.css";
/// Where the script is served.
pub const SCRIPT_PATH: &str = "/lg/lg.js";

/// Everything from this origin, nothing from anywhere else; no inline script or style.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The looking glass's routes: `/` (neighbors), `/lg/neighbors/{id}` (one session's routes,
/// `?view=received|filtered|not-exported&page=N`), `/lg/lookup?q=...` and the two assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/lg", get(page))
        .route("/lg/", get(page))
        .route("/lg/neighbors/{id}", get(page))
        .route("/lg/lookup", get(page))
        .route(STYLE_PATH, get(style))
        .route(SCRIPT_PATH, get(script))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Embedded in the binary: an upgrade changes them, so browsers revalidate every time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `src=`, `href=` and `url(` target in the assets.
    fn references(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for marker in ["src=\"", "href=\"", "url(", "fetch("] {
            for (position, _) in text.match_indices(marker) {
                let rest = &text[position + marker.len()..];
                let end = rest.find(['"', ')', '\'', '`', ',']).unwrap_or(rest.len());
                found.push(rest[..end].trim_matches(['\'', '`', '"']).to_string());
            }
        }
        found
    }

    #[test]
    fn assets_reference_only_this_origin() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("lg.css", STYLE_CSS),
            ("lg.js", SCRIPT_JS),
        ] {
            for target in references(text) {
                assert!(
                    !target.contains("//") && !target.starts_with("http"),
                    "{name} loads {target:?} from another origin"
                );
            }
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{name}"
            );
        }
        let shell = references(INDEX_HTML);
        assert!(shell.contains(&STYLE_PATH.to_string()), "{shell:?}");
        assert!(shell.contains(&SCRIPT_PATH.to_string()), "{shell:?}");
    }

    #[test]
    fn the_script_never_writes_html_and_only_reads() {
        for unsafe_sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(
                !SCRIPT_JS.contains(unsafe_sink),
                "lg.js uses {unsafe_sink}: member data must go through textContent"
            );
        }
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            assert!(!SCRIPT_JS.contains(method), "lg.js sends {method}");
        }
    }

    #[test]
    fn the_page_is_readable_on_a_phone() {
        assert!(INDEX_HTML.contains("name=\"viewport\""));
        assert!(STYLE_CSS.contains("@media (max-width"));
    }
}
