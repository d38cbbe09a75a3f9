//! Tests of the published peering policy: order, escaping, rendering of every section.

use std::path::Path;

use vixp_bgp::{AsPath, Attributes, LargeCommunity, Origin, Prefix, Segment, SegmentKind};

use super::*;
use crate::policy::filters::classify_asn;
use crate::policy::{Neighbor, Verdict, import};

fn lab_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/examples/lab-policy.yaml"),
    )
    .expect("lab example readable")
}

fn parse(text: &str) -> Fabric {
    Fabric::parse(text, Path::new("lab-policy.yaml")).expect("lab fabric parses")
}

fn lab() -> Fabric {
    parse(&lab_text())
}

fn page(fabric: &Fabric) -> Document {
    document(fabric, "rs1").expect("rs1 is in the fabric")
}

fn section<'a>(document: &'a Document, id: &str) -> &'a Section {
    document
        .sections
        .iter()
        .find(|section| section.id == id)
        .unwrap_or_else(|| panic!("no section {id}"))
}

/// Alpha's route 198.18.10.0/24 with an AS path of `length` ASNs.
fn alpha_route(fabric: &Fabric, length: usize) -> Verdict {
    let mut path = vec![64501];
    path.extend((0..length - 1).map(|index| 64510 + u32::try_from(index).expect("small")));
    let attributes = Attributes::new(
        Origin::Igp,
        AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns: path,
            }],
        },
        "198.18.0.11".parse().expect("valid"),
    );
    let prefix: Prefix = "198.18.10.0/24".parse().expect("valid");
    let alpha = Neighbor::new(&fabric.members[0], &fabric.members);
    import(&prefix, &attributes, &alpha, &fabric.policy, &fabric.lan)
}

#[test]
fn the_filters_are_listed_in_the_order_the_pipeline_runs_them() {
    // RPKI and ASPA set to reject, so that every refusal the route server has is listed.
    let fabric = parse(&lab_text().replace(
        "policy:\n",
        "policy:\n  rpki:\n    caches: [\"127.0.0.1:3323\"]\n    aspa: reject\n",
    ));
    let document = page(&fabric);
    let headings: Vec<&str> = section(&document, "filters")
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::Heading(heading) => Some(heading.as_str()),
            _ => None,
        })
        .collect();
    let context = Context {
        fabric: &fabric,
        route_server: &fabric.route_servers[0],
    };
    let expected: Vec<String> = Filter::ORDER
        .iter()
        .enumerate()
        .map(|(index, filter)| format!("{}. {}", index + 1, describe(*filter, &context).0))
        .collect();
    assert_eq!(headings, expected);
    // Every reason label appears in the Markdown, in pipeline order.
    let text = markdown(&document);
    let filters = &text[text.find("## Import filters").expect("filters heading")..];
    let mut last = 0;
    for label in Reason::LABELS {
        let escaped = markdown_code(label);
        let at = filters[last..]
            .find(&escaped)
            .unwrap_or_else(|| panic!("{label} missing or out of order"));
        last += at + escaped.len();
    }
}

#[test]
fn a_changed_as_path_limit_changes_the_page_and_the_filter_alike() {
    let before = lab();
    let after = parse(&lab_text().replace("max_as_path_length: 32", "max_as_path_length: 3"));
    assert!(markdown(&page(&before)).contains("at most `32`"));
    assert!(markdown(&page(&after)).contains("at most `3` (`max_as_path_length`)"));
    assert!(html(&page(&after)).contains("at most <code>3</code>"));
    assert!(alpha_route(&before, 4).is_accept());
    assert_eq!(
        alpha_route(&after, 4).reason().map(Reason::label),
        Some("as_path_too_long")
    );
    assert!(alpha_route(&after, 3).is_accept());
}

#[test]
fn members_limits_and_route_servers_come_from_the_fabric() {
    let fabric = parse(&lab_text().replace(
        "    ipv6: \"fd00:198:18::12\"\n",
        "    ipv6: \"fd00:198:18::12\"\n    max_prefix: {ipv4: 77, ipv6: 33}\n",
    ));
    let text = markdown(&page(&fabric));
    assert!(
        text.contains(
            "| bravo | `AS64502` | `198.18.0.12` | `fd00:198:18::12` | `77` | `33` | - |"
        ),
        "{text}"
    );
    assert!(
        text.contains("| rs1 | `AS64500` | `198.18.0.1` | `fd00:198:18::1` |"),
        "{text}"
    );
    assert!(text.contains("`198.18.0.0/15`, `fd00::/8`"), "{text}");
    assert!(text.contains("allowed on this exchange"), "{text}");
    assert!(text.contains("`AS12956`"), "{text}");
    assert!(text.contains("- `10.0.0.0/8`"), "{text}");
    assert!(
        text.contains("accepts the member again after `15` minutes"),
        "{text}"
    );
    assert!(text.contains("RPKI"), "{text}");
}

#[test]
fn every_text_from_the_fabric_is_escaped() {
    let hostile = "<script>alert('x')</script> & | *bold* `tick`";
    let fabric = parse(&lab_text().replace(
        "  name: VIXP-Lab\n",
        &format!("  name: VIXP-Lab\n  description: \"{hostile}\"\n  contact: \"noc@<b>x</b>\"\n"),
    ));
    let document = page(&fabric);
    let page_html = html(&document);
    assert!(!page_html.contains("<script>"), "{page_html}");
    assert!(!page_html.contains("<b>"), "{page_html}");
    assert!(
        page_html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; | *bold* `tick`")
    );
    assert!(page_html.contains("<code>noc@&lt;b&gt;x&lt;/b&gt;</code>"));
    assert!(!page_html.contains("http://") && !page_html.contains("https://"));
    assert!(!page_html.contains("<script"), "no scripts at all");
    let text = markdown(&document);
    assert!(
        text.contains("\\<script\\>alert('x')\\</script\\> \\& \\| \\*bold\\* \\`tick\\`"),
        "{text}"
    );
    assert!(text.contains("`noc@<b>x</b>`"), "{text}");
}

#[test]
fn rpki_and_irr_are_published_as_configured() {
    let plain = markdown(&page(&lab()));
    assert!(
        plain.contains("Not configured (`policy.rpki` is absent)"),
        "{plain}"
    );
    assert!(!plain.contains("`rpki_invalid`"), "{plain}");
    assert!(plain.contains("No member has IRR data"), "{plain}");
    let fabric = parse(&lab_text().replace(
        "policy:\n",
        "policy:\n  rpki:\n    caches: [\"127.0.0.1:3323\"]\n    aspa: reject\n",
    ).replace(
        "    ipv6: \"fd00:198:18::12\"\n",
        "    ipv6: \"fd00:198:18::12\"\n    irr: {as_set: AS-BRAVO, sources: [RIPE], prefixes: [198.18.12.0/24]}\n",
    ));
    let text = markdown(&page(&fabric));
    assert!(
        text.contains("RTR cache (RFC 8210) `127.0.0.1:3323`"),
        "{text}"
    );
    assert!(text.contains("refresh `3600s`"), "{text}");
    assert!(
        text.contains("An RPKI-invalid route is refused (`invalid: reject`)"),
        "{text}"
    );
    assert!(text.contains("`rpki_invalid` (`64500:1101:13`)"), "{text}");
    assert!(text.contains("`aspa_invalid`"), "{text}");
    assert!(
        text.contains("- bravo: AS-SET AS-BRAVO from RIPE; 1 prefixes and 0 origin ASNs"),
        "{text}"
    );
}

#[test]
fn markdown_code_spans_hold_backticks_and_pipes() {
    assert_eq!(markdown_code("plain"), "`plain`");
    assert_eq!(markdown_code("a`b"), "``a`b``");
    assert_eq!(markdown_code("`x"), "`` `x ``");
    assert_eq!(markdown_code("a|b"), "`a\\|b`");
    assert_eq!(markdown_escape("line\nbreak"), "line break");
}

#[test]
fn the_asn_ranges_published_are_the_ones_the_filter_refuses() {
    for (kind, ranges) in ASN_RANGES {
        for (first, last) in ranges.iter().copied() {
            assert_eq!(classify_asn(first), Some(kind), "AS{first}");
            assert_eq!(classify_asn(last), Some(kind), "AS{last}");
            if let Some(below) = first.checked_sub(1) {
                assert_ne!(classify_asn(below), Some(kind), "AS{below}");
            }
            if let Some(above) = last.checked_add(1) {
                assert_ne!(classify_asn(above), Some(kind), "AS{above}");
            }
        }
    }
}

fn with_communities(standard: Vec<u32>, large: Vec<LargeCommunity>) -> Attributes {
    let mut attributes = Attributes::new(
        Origin::Igp,
        AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns: vec![64501],
            }],
        },
        "198.18.0.11".parse().expect("valid"),
    );
    attributes.communities = standard;
    attributes.large_communities = large;
    attributes
}

/// Each published action, in its standard and large form, with `peer` = AS64502: what the
/// route server then does for AS64502 and AS64503.
#[test]
fn the_published_action_communities_do_what_the_page_says() {
    const RS: u32 = 64500;
    const PEER: u32 = 64502;
    const OTHER: u32 = 64503;
    let published = actions(RS);
    let forms = |action: &Action| {
        let large = action.large.map(|part| part.with(PEER));
        let mut forms = vec![with_communities(
            Vec::new(),
            vec![LargeCommunity(large[0], large[1], large[2])],
        )];
        if let Some([high, low]) = action.standard {
            forms.push(with_communities(
                vec![(high.with(PEER) << 16) | low.with(PEER)],
                Vec::new(),
            ));
        }
        forms
    };
    for action in &published {
        for attributes in forms(action) {
            assert!(actions::has_actions(&attributes, RS), "{}", action.meaning);
            let to_peer = actions::export_view(&attributes, RS, PEER);
            let to_other = actions::export_view(&attributes, RS, OTHER);
            let meaning = action.meaning.as_str();
            if meaning.starts_with("Do not announce") {
                assert!(!actions::allowed(&attributes, RS, PEER));
                assert!(actions::allowed(&attributes, RS, OTHER));
            } else if meaning.starts_with("Announce the route to no one") {
                assert!(!actions::allowed(&attributes, RS, PEER));
                assert!(!actions::allowed(&attributes, RS, OTHER));
            } else if meaning.starts_with("... except to peer") {
                // Together with "to no one": only the peer gets it.
                let mut both = attributes.clone();
                both.large_communities.push(LargeCommunity(RS, 0, 0));
                assert!(actions::allowed(&both, RS, PEER), "{meaning}");
                assert!(!actions::allowed(&both, RS, OTHER), "{meaning}");
            } else if let Some(rest) = meaning.strip_prefix("Prepend the sender's ASN ") {
                let times: usize = rest[..1].parse().expect("a count");
                let length = |view: &Attributes| view.as_path.asns().count();
                assert_eq!(length(&to_peer), 1 + times, "{meaning}");
                let expected_other = if meaning.ends_with("to anyone") {
                    1 + times
                } else {
                    1
                };
                assert_eq!(length(&to_other), expected_other, "{meaning}");
            } else if meaning.starts_with("Add NO_EXPORT") {
                assert!(to_peer.communities.contains(&actions::NO_EXPORT));
                assert!(!to_other.communities.contains(&actions::NO_EXPORT));
            } else {
                panic!("the test does not know the action {meaning}");
            }
            assert!(to_peer.large_communities.is_empty(), "{meaning}: removed");
            assert!(to_peer.communities.iter().all(|c| *c == actions::NO_EXPORT));
        }
    }
    let text = markdown(&page(&lab()));
    assert!(text.contains("| `0:peer` | `64500:0:peer` |"), "{text}");
    assert!(text.contains("`64500:65281:peer`"), "{text}");
    assert!(text.contains("`64500:1101:14`"), "{text}");
}

#[test]
fn a_32_bit_route_server_asn_has_no_standard_forms_but_0_peer() {
    let published = actions(4_200_000_000);
    let standard: Vec<&Action> = published
        .iter()
        .filter(|action| action.standard.is_some())
        .collect();
    assert_eq!(standard.len(), 1);
    assert_eq!(standard[0].standard, Some([Part::Value(0), Part::Peer]));
}

#[test]
fn the_html_page_is_one_self_contained_document() {
    let page_html = html(&page(&lab()));
    assert!(page_html.starts_with("<!DOCTYPE html>"));
    assert!(page_html.contains("name=\"viewport\""));
    assert!(!page_html.contains(" src="));
    assert!(!page_html.contains("<link"));
    for section in SECTIONS.map(|build| {
        let fabric = lab();
        build(&Context {
            fabric: &fabric,
            route_server: &fabric.route_servers[0],
        })
        .id
    }) {
        assert_eq!(page_html.matches(&format!("id=\"{section}\"")).count(), 1);
        assert!(page_html.contains(&format!("href=\"#{section}\"")));
    }
    assert!(document(&lab(), "no-such-route-server").is_none());
}
