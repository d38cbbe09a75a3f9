//! The published peering policy: who may join, the import filters in the order they run with
//! their parameters, max-prefix, RPKI and IRR, the community scheme and the route servers,
//! rendered from the fabric in force as Markdown (`route-server policy`) and as an HTML page
//! (`/policy`, served by [`page`]). Pure apart from that handler: takes the fabric and the
//! route server's name; must not change any state nor decide anything the filters decide. Every value comes from where the route server takes it: the [`Policy`]
//! fields the filters read, the order from [`Filter::ORDER`] (which `policy::import` iterates),
//! reason labels and Euro-IX codes from [`Reason`], action communities from the constants
//! `rib::actions` matches on. So the page cannot say one thing while the filters do another.
//!
//! The page is a [`Document`] of [`Section`]s built by the functions in [`SECTIONS`]; the
//! Markdown and HTML writers only lay it out. A new section is one function and one entry there.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use vixp_fabric::{
    Asn, AspaAction, BogonPrefixes, Fabric, InvalidAction, MaxPrefixAction, Member, NextHopPolicy,
    Policy, RouteServer, RpkiPolicy,
};

use crate::driver::Handles;
use crate::policy::{BogonAsnKind, Filter, Reason};
use crate::rib::actions;

/// A piece of running text: plain words or a literal (an ASN, a prefix, a community, a field
/// of the fabric file) shown as code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// Plain words.
    Text(String),
    /// A literal, set in a monospace font.
    Code(String),
}

/// One block of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph.
    Paragraph(Vec<Span>),
    /// A heading inside the section.
    Heading(String),
    /// A bulleted list, one item per entry.
    Bullets(Vec<Vec<Span>>),
    /// A table: column titles and rows of cells.
    Table {
        /// Column titles.
        header: Vec<String>,
        /// Rows, each with one cell per column.
        rows: Vec<Vec<Vec<Span>>>,
    },
}

/// A top-level section of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Anchor in the HTML page (`#filters`).
    pub id: &'static str,
    /// Title.
    pub heading: String,
    /// Content, in order.
    pub blocks: Vec<Block>,
}

/// The whole page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Page title.
    pub title: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

/// What the section builders read: the fabric and the route server the page is published by
/// (its ASN is the global part of the action and informational communities).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The fabric in force.
    pub fabric: &'a Fabric,
    /// The route server publishing the page.
    pub route_server: &'a RouteServer,
}

/// The section builders, in page order.
pub const SECTIONS: [fn(&Context<'_>) -> Section; 8] = [
    exchange_section,
    members_section,
    filters_section,
    max_prefix_section,
    validation_section,
    action_communities_section,
    informational_communities_section,
    route_servers_section,
];

/// The page for route server `route_server` of `fabric`, or `None` when the fabric has no
/// route server of that name.
pub fn document(fabric: &Fabric, route_server: &str) -> Option<Document> {
    let route_server = fabric.route_server(Some(route_server))?;
    let context = Context {
        fabric,
        route_server,
    };
    Some(Document {
        title: format!("{} peering policy", fabric.exchange.name),
        sections: SECTIONS.iter().map(|build| build(&context)).collect(),
    })
}

fn text(words: impl Into<String>) -> Span {
    Span::Text(words.into())
}

fn code(literal: impl ToString) -> Span {
    Span::Code(literal.to_string())
}

fn paragraph(spans: Vec<Span>) -> Block {
    Block::Paragraph(spans)
}

fn cell(words: impl Into<String>) -> Vec<Span> {
    vec![text(words)]
}

fn code_cell(literal: impl ToString) -> Vec<Span> {
    vec![code(literal)]
}

fn optional_code(value: Option<impl ToString>) -> Vec<Span> {
    value.map_or_else(|| cell("-"), code_cell)
}

/// `AS174, AS701, ...` as code spans separated by commas, or `none` as words.
fn asn_list(asns: &[Asn]) -> Vec<Span> {
    if asns.is_empty() {
        return vec![text("none")];
    }
    let mut spans = Vec::new();
    for (index, asn) in asns.iter().enumerate() {
        if index > 0 {
            spans.push(text(", "));
        }
        spans.push(code(asn));
    }
    spans
}

fn exchange_section(context: &Context<'_>) -> Section {
    let exchange = &context.fabric.exchange;
    let lan = &context.fabric.lan;
    let mut blocks = Vec::new();
    if let Some(description) = &exchange.description {
        blocks.push(paragraph(vec![text(description.clone())]));
    }
    blocks.push(paragraph(vec![
        text("Peering LAN: "),
        code(lan.ipv4),
        text(" and "),
        code(lan.ipv6),
        text(". Members exchange routes through the route servers below, which are transparent (RFC 7947): they add no ASN to the AS path and pass NEXT_HOP and MED on unchanged, so traffic flows member to member."),
    ]));
    blocks.push(paragraph(match &exchange.contact {
        Some(contact) => vec![text("Contact of the operators: "), code(contact)],
        None => vec![text("The operators publish no contact in the fabric file.")],
    }));
    blocks.push(paragraph(vec![
        text("This page is generated by route server "),
        code(&context.route_server.name),
        text(" from the fabric file it runs with; the filters it describes are the ones that route server applies, with the same parameters and in the same order."),
    ]));
    Section {
        id: "exchange",
        heading: exchange.name.clone(),
        blocks,
    }
}

/// A member's IRR data as a table cell: the AS-SET with its sources, and what lists the fabric
/// file gives.
fn irr_cell(member: &Member) -> Vec<Span> {
    let Some(irr) = &member.irr else {
        return cell("-");
    };
    let mut spans = Vec::new();
    if let Some(as_set) = &irr.as_set {
        spans.push(code(as_set));
        if !irr.sources.is_empty() {
            spans.push(text(format!(" ({})", irr.sources.join(", "))));
        }
    }
    let mut lists = Vec::new();
    if !irr.prefixes.is_empty() {
        lists.push(format!("{} prefixes listed", irr.prefixes.len()));
    }
    if !irr.origins.is_empty() {
        lists.push(format!("{} origin ASNs listed", irr.origins.len()));
    }
    if irr.has_files() {
        lists.push("lists from bgpq4 files".to_string());
    }
    if !lists.is_empty() {
        if !spans.is_empty() {
            spans.push(text("; "));
        }
        spans.push(text(lists.join(", ")));
    }
    if spans.is_empty() {
        return cell("-");
    }
    spans
}

fn members_section(context: &Context<'_>) -> Section {
    let members = &context.fabric.members;
    let rows = members
        .iter()
        .map(|member| {
            vec![
                cell(member.name.clone()),
                code_cell(member.asn),
                optional_code(member.ipv4),
                optional_code(member.ipv6),
                code_cell(member.max_prefix.ipv4),
                code_cell(member.max_prefix.ipv6),
                irr_cell(member),
            ]
        })
        .collect();
    Section {
        id: "members",
        heading: "Who may join".to_string(),
        blocks: vec![
            paragraph(vec![text(format!(
                "The exchange has {} member(s). A route server accepts a BGP session only from a member's LAN address listed here, with the member's ASN; a network that wants to join asks the operators to be added to the fabric file.",
                members.len()
            ))]),
            Block::Table {
                header: [
                    "Member",
                    "ASN",
                    "IPv4",
                    "IPv6",
                    "Max prefixes IPv4",
                    "Max prefixes IPv6",
                    "AS-SET / IRR",
                ]
                .map(String::from)
                .to_vec(),
                rows,
            },
        ],
    }
}

/// The reserved ASN ranges [`crate::policy::filters::classify_asn`] knows, by kind (its unit
/// test checks each bound against that function).
const ASN_RANGES: [(BogonAsnKind, &[(u32, u32)]); 6] = [
    (BogonAsnKind::Zero, &[(0, 0)]),
    (BogonAsnKind::AsTrans, &[(23456, 23456)]),
    (
        BogonAsnKind::Documentation,
        &[(64496, 64511), (65536, 65551)],
    ),
    (
        BogonAsnKind::Private,
        &[(64512, 65534), (4_200_000_000, 4_294_967_294)],
    ),
    (BogonAsnKind::Last, &[(65535, 65535), (u32::MAX, u32::MAX)]),
    (BogonAsnKind::IanaReserved, &[(65552, 131_071)]),
];

fn asn_ranges(kind: BogonAsnKind) -> String {
    ASN_RANGES
        .iter()
        .filter(|(listed, _)| *listed == kind)
        .flat_map(|(_, ranges)| ranges.iter())
        .map(|(first, last)| {
            if first == last {
                format!("AS{first}")
            } else {
                format!("AS{first}-AS{last}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The title and rule of one filter, with the policy's parameters.
fn describe(filter: Filter, context: &Context<'_>) -> (&'static str, Vec<Block>) {
    let policy = &context.fabric.policy;
    let lan = &context.fabric.lan;
    match filter {
        Filter::NextHop => (
            "Next hop is the member",
            vec![paragraph(match policy.next_hop {
                NextHopPolicy::OwnAddress => vec![
                    text("NEXT_HOP must be the member's own LAN address of the route's family ("),
                    code("next_hop: own_address"),
                    text(
                        "). The route servers pass it on unchanged, so another address would draw other members' traffic elsewhere. An IPv6 link-local next hop is not checked.",
                    ),
                ],
                NextHopPolicy::SameAsn => vec![
                    text(
                        "NEXT_HOP must be a LAN address of the member or of another member with the same ASN (",
                    ),
                    code("next_hop: same_asn"),
                    text("). An IPv6 link-local next hop is not checked."),
                ],
            })],
        ),
        Filter::FirstAsn => (
            "AS path starts with the member's ASN",
            vec![paragraph(vec![text(
                "The AS path must begin with an AS_SEQUENCE whose first ASN is the member's own (RFC 4271 section 6.3). A transparent route server adds no ASN of its own, so the receiving members cannot check this themselves.",
            )])],
        ),
        Filter::AsPathLength => (
            "AS path length",
            vec![paragraph(vec![
                text("The AS path must hold at least one ASN and at most "),
                code(policy.max_as_path_length),
                text(" ("),
                code("max_as_path_length"),
                text("). Prepends count; an AS_SET counts as one."),
            ])],
        ),
        Filter::BogonAsns => {
            let always = [
                BogonAsnKind::Zero,
                BogonAsnKind::AsTrans,
                BogonAsnKind::Last,
                BogonAsnKind::IanaReserved,
            ];
            let mut items: Vec<Vec<Span>> = always
                .iter()
                .map(|kind| vec![text(format!("{}: {kind}", asn_ranges(*kind)))])
                .collect();
            let switchable = [BogonAsnKind::Private, BogonAsnKind::Documentation];
            let private_rule = if policy.reject_private_asns {
                "refused as well"
            } else {
                "allowed on this exchange"
            };
            for kind in switchable {
                items.push(vec![
                    text(format!("{}: {kind}, {private_rule} (", asn_ranges(kind))),
                    code(format!(
                        "reject_private_asns: {}",
                        policy.reject_private_asns
                    )),
                    text(")"),
                ]);
            }
            (
                "No reserved or private ASNs",
                vec![
                    paragraph(vec![text(
                        "No ASN of these ranges anywhere in the AS path:",
                    )]),
                    Block::Bullets(items),
                ],
            )
        }
        Filter::TransitFreeAsns => {
            let mut spans = vec![
                text(
                    "No transit-free network behind the member (anywhere in the AS path after the member's own ASN; a transit-free member may prepend itself). Such a route is a leak of transit onto the exchange. Listed (",
                ),
                code("transit_free_asns"),
                text("): "),
            ];
            spans.extend(asn_list(&policy.transit_free_asns));
            spans.push(text("."));
            (
                "No transit-free networks behind the member",
                vec![paragraph(spans)],
            )
        }
        Filter::NeverViaRouteServers => {
            let mut spans = vec![
                text(
                    "No network that asks never to be reached through route servers (PeeringDB's \"never via route servers\") anywhere in the AS path, the member's own ASN included. Listed (",
                ),
                code("never_via_route_servers_asns"),
                text("): "),
            ];
            spans.extend(asn_list(&policy.never_via_route_servers_asns));
            spans.push(text("."));
            (
                "No never-via-route-servers networks",
                vec![paragraph(spans)],
            )
        }
        Filter::BogonPrefix => {
            let mut blocks = vec![paragraph(vec![
                text("Never a default route ("),
                code("0.0.0.0/0"),
                text(", "),
                code("::/0"),
                text("), nothing inside the peering LAN ("),
                code(lan.ipv4),
                text(", "),
                code(lan.ipv6),
                text("), and nothing inside a bogon prefix."),
            ])];
            let (intro, list) = match &policy.bogon_prefixes {
                BogonPrefixes::Default => (
                    "Bogon prefixes: the default list (non-global entries of the IANA special-purpose registries, RFC 6890, with deprecated and documentation space):",
                    policy.bogon_prefixes.prefixes(),
                ),
                BogonPrefixes::List(list) => (
                    "Bogon prefixes: the exchange's own list (bogon_prefixes), replacing the default one:",
                    list.as_slice(),
                ),
            };
            blocks.push(paragraph(vec![text(intro)]));
            blocks.push(if list.is_empty() {
                paragraph(vec![text("(empty)")])
            } else {
                Block::Bullets(list.iter().map(|prefix| vec![code(prefix)]).collect())
            });
            let mut allowed = vec![
                text("Exempt from the bogon list, with everything inside them ("),
                code("allow_prefixes"),
                text("): "),
            ];
            if policy.allow_prefixes.is_empty() {
                allowed.push(text("none"));
            } else {
                for (index, prefix) in policy.allow_prefixes.iter().enumerate() {
                    if index > 0 {
                        allowed.push(text(", "));
                    }
                    allowed.push(code(prefix));
                }
            }
            allowed.push(text(
                ". The default routes and the peering LAN are never exempt.",
            ));
            blocks.push(paragraph(allowed));
            ("No bogon prefixes", blocks)
        }
        Filter::PrefixLength => {
            let lengths = policy.prefix_length;
            (
                "Prefix length",
                vec![paragraph(vec![
                    text("IPv4 prefixes from "),
                    code(format!("/{}", lengths.ipv4.min)),
                    text(" to "),
                    code(format!("/{}", lengths.ipv4.max)),
                    text(", IPv6 prefixes from "),
                    code(format!("/{}", lengths.ipv6.min)),
                    text(" to "),
                    code(format!("/{}", lengths.ipv6.max)),
                    text(", both bounds included ("),
                    code("prefix_length"),
                    text(")."),
                ])],
            )
        }
        Filter::Blackhole => (
            "BLACKHOLE routes",
            vec![paragraph(vec![
                text(
                    "A route with the BLACKHOLE community 65535:666 (RFC 7999) is accepted only from a member that opted in (",
                ),
                code("members[N].blackhole: true"),
                text(
                    ") and only inside its IRR prefixes, at any length down to /32 and /128; it skips the longest-length check above, nothing else. It is exported with NO_EXPORT added",
                ),
                text(
                    match (
                        policy.blackhole.next_hop_ipv4,
                        policy.blackhole.next_hop_ipv6,
                    ) {
                        (None, None) => " and its next hop unchanged.",
                        _ => {
                            " and its next hop set to the exchange's blackhole address (policy.blackhole)."
                        }
                    },
                ),
            ])],
        ),
        Filter::Otc => (
            "No route leaks marked by OTC",
            vec![paragraph(vec![text(
                "Every member is a client of the route server (BGP Role RS-Client, RFC 9234). A route that arrives already carrying the OTC (Only to Customer) attribute was learnt from a provider, a peer or another route server and is a route leak: it is refused. The route server adds OTC with its own ASN to every route it sends, so members that check roles do not pass them on to their providers or peers.",
            )])],
        ),
        Filter::Irr => (
            "IRR prefixes and origins",
            vec![paragraph(vec![
                text(
                    "The prefix must be covered by the member's IRR prefix list, within each entry's length range, and the origin ASN (the last of the AS path) must be in its IRR origin list (",
                ),
                code("members[N].irr"),
                text(
                    ": bgpq4 output for the member's AS-SET, refreshed by the operators, or lists in the fabric file). A member without IRR data, or without one of the two lists, is not checked against it.",
                ),
            ])],
        ),
        Filter::Rpki => (
            "RPKI origin validation",
            vec![paragraph(match &policy.rpki {
                None => vec![text("Not configured: no RPKI check.")],
                Some(rpki) => vec![
                    text(
                        "The route's origin ASN and prefix length are checked against the validated ROA payloads (RFC 6811). ",
                    ),
                    text(match rpki.invalid {
                        vixp_fabric::InvalidAction::Reject => {
                            "An RPKI-invalid route is refused (rs:1101:13); valid and not-found routes pass, marked rs:1000:1 and rs:1000:2 in the looking glass."
                        }
                        vixp_fabric::InvalidAction::Tag => {
                            "An RPKI-invalid route is accepted and announced to members; the looking glass marks it rs:1000:4 (valid rs:1000:1, not found rs:1000:2)."
                        }
                    }),
                    text(match rpki.aspa {
                        vixp_fabric::AspaAction::Reject => {
                            " ASPA verification refuses a path that ASPA records show to be a route leak."
                        }
                        vixp_fabric::AspaAction::Tag => {
                            " ASPA verification runs and only marks its outcome in the looking glass (rs:1002:1 valid, rs:1002:2 unknown, rs:1002:4 invalid)."
                        }
                        vixp_fabric::AspaAction::Off => "",
                    }),
                ],
            })],
        ),
        Filter::Communities => (
            "Number of communities",
            vec![paragraph(if policy.max_communities == 0 {
                vec![
                    text("No limit on the number of communities ("),
                    code("max_communities: 0"),
                    text(")."),
                ]
            } else {
                vec![
                    text("At most "),
                    code(policy.max_communities),
                    text(" communities, standard, extended and large counted together ("),
                    code("max_communities"),
                    text(")."),
                ]
            })],
        ),
    }
}

/// `rs:1101:code` of a reason, with the route server's ASN.
fn reason_community(reason: &Reason, route_server: Asn) -> String {
    let community = reason.large_community(route_server);
    format!("{}:{}:{}", community.0, community.1, community.2)
}

fn filters_section(context: &Context<'_>) -> Section {
    let policy: &Policy = &context.fabric.policy;
    let mut blocks = vec![paragraph(vec![
        text(
            "Every route a member announces passes these filters in this order. The first that refuses it gives the reason; a refused route is kept (never exported) and shown with that reason in the looking glass, the API (",
        ),
        code("/api/v1/neighbors/{id}/routes/filtered"),
        text("), the metrics and as the large community shown with it."),
    ])];
    for (index, filter) in Filter::ORDER.iter().enumerate() {
        let (title, rule) = describe(*filter, context);
        blocks.push(Block::Heading(format!("{}. {title}", index + 1)));
        blocks.extend(rule);
        let refusals: Vec<Reason> = filter
            .refusals(policy)
            .into_iter()
            .filter(|reason| refused_under(reason, policy))
            .collect();
        if refusals.is_empty() {
            blocks.push(paragraph(vec![text(
                "With this configuration no route is refused at this step.",
            )]));
            continue;
        }
        let mut refused = vec![text("Refused as ")];
        for (position, reason) in refusals.iter().enumerate() {
            if position > 0 {
                refused.push(text(" or "));
            }
            refused.push(code(reason.label()));
            refused.push(text(" ("));
            refused.push(code(reason_community(reason, context.route_server.asn)));
            refused.push(text(")"));
        }
        refused.push(text("."));
        blocks.push(paragraph(refused));
    }
    Section {
        id: "filters",
        heading: "Import filters".to_string(),
        blocks,
    }
}

fn max_prefix_section(context: &Context<'_>) -> Section {
    let action = match context.fabric.policy.max_prefix_action {
        MaxPrefixAction::Shutdown => vec![
            text(
                "the route server ends the session with a Cease NOTIFICATION, Maximum Number of Prefixes Reached (RFC 4486 subcode 1), and keeps it down until the route server restarts or reloads its fabric file (",
            ),
            code("max_prefix_action: shutdown"),
            text(")."),
        ],
        MaxPrefixAction::Restart { minutes } => vec![
            text(
                "the route server ends the session with a Cease NOTIFICATION, Maximum Number of Prefixes Reached (RFC 4486 subcode 1), and accepts the member again after ",
            ),
            code(minutes),
            text(" minutes ("),
            code("max_prefix_action: restart"),
            text(")."),
        ],
        MaxPrefixAction::Warn => vec![
            text("the route server only logs and counts it; the session stays up ("),
            code("max_prefix_action: warn"),
            text(")."),
        ],
    };
    let mut rule = vec![text(
        "Each member may announce at most its max-prefix limit per address family (the table under \"Who may join\"), counting every prefix it announces in the family, accepted or filtered. When a member goes over it, ",
    )];
    rule.extend(action);
    Section {
        id: "max-prefix",
        heading: "Max-prefix".to_string(),
        blocks: vec![paragraph(rule)],
    }
}

fn validation_section(context: &Context<'_>) -> Section {
    let mut blocks = vec![Block::Heading("RPKI".to_string())];
    blocks.extend(rpki_blocks(context.fabric.policy.rpki.as_ref()));
    blocks.push(Block::Heading("IRR".to_string()));
    blocks.extend(irr_blocks(&context.fabric.members));
    Section {
        id: "rpki-irr",
        heading: "RPKI and IRR".to_string(),
        blocks,
    }
}

/// Where validated ROA payload comes from and what happens to an invalid route.
fn rpki_blocks(rpki: Option<&RpkiPolicy>) -> Vec<Block> {
    let Some(rpki) = rpki else {
        return vec![paragraph(vec![
            text("Not configured ("),
            code("policy.rpki"),
            text(
                " is absent): ROAs and ASPA records do not change which routes the route servers accept.",
            ),
        ])];
    };
    let mut sources: Vec<Vec<Span>> = rpki
        .caches
        .iter()
        .enumerate()
        .map(|(index, cache)| {
            vec![
                text(if index == 0 {
                    "RTR cache (RFC 8210) "
                } else {
                    "then RTR cache "
                }),
                code(cache),
            ]
        })
        .collect();
    if rpki.vrp_file.is_some() {
        sources.push(vec![text(
            "a JSON export of validated payload (rpki-client or Routinator), read at start-up and on reload, used while no cache answers",
        )]);
    }
    let mut blocks = vec![
        paragraph(vec![text(
            "Routes are validated against the RPKI (origin validation, RFC 6811) with payload from:",
        )]),
        Block::Bullets(sources),
        paragraph(vec![
            text("Cache timers (RFC 8210 section 6, until a cache sends its own): refresh "),
            code(format!("{}s", rpki.timers.refresh)),
            text(", retry "),
            code(format!("{}s", rpki.timers.retry)),
            text(", expire "),
            code(format!("{}s", rpki.timers.expire)),
            text(". Until payload has been loaded, no route is refused for RPKI."),
        ]),
    ];
    blocks.push(paragraph(match rpki.invalid {
        InvalidAction::Reject => vec![
            text("An RPKI-invalid route is refused ("),
            code("invalid: reject"),
            text("); valid and not-found routes pass. The looking glass marks each accepted route with its state: "),
            code("rs:1000:1"),
            text(" valid, "),
            code("rs:1000:2"),
            text(" not found, "),
            code("rs:1000:3"),
            text(" not checked yet (no payload loaded); members never receive these."),
        ],
        InvalidAction::Tag => vec![
            text("An RPKI-invalid route is accepted and announced to members ("),
            code("invalid: tag"),
            text("); the looking glass marks it "),
            code("rs:1000:4"),
            text("."),
        ],
    }));
    blocks.push(paragraph(match rpki.aspa {
        AspaAction::Reject => vec![
            text("ASPA verification: a path the ASPA records show to be a leak or forged is refused ("),
            code("aspa: reject"),
            text(")."),
        ],
        AspaAction::Tag => vec![
            text("ASPA verification runs and its outcome is only shown in the looking glass ("),
            code("aspa: tag"),
            text("): "),
            code("rs:1002:1"),
            text(" valid, "),
            code("rs:1002:2"),
            text(" unknown, "),
            code("rs:1002:4"),
            text(" invalid."),
        ],
        AspaAction::Off => vec![
            text("ASPA verification is off ("),
            code("aspa: off"),
            text(")."),
        ],
    }));
    blocks
}

/// Which members' routes are checked against IRR data, and where that data comes from.
fn irr_blocks(members: &[Member]) -> Vec<Block> {
    let items: Vec<Vec<Span>> = members
        .iter()
        .filter_map(|member| {
            let irr = member.irr.as_ref()?;
            let mut item = vec![text(format!("{}: ", member.name))];
            let mut sources = Vec::new();
            if let Some(as_set) = &irr.as_set {
                let registries = if irr.sources.is_empty() {
                    String::new()
                } else {
                    format!(" from {}", irr.sources.join(", "))
                };
                sources.push(format!("AS-SET {as_set}{registries}"));
            }
            if irr.has_files() {
                sources
                    .push("prefix and origin lists made with bgpq4 by the operators".to_string());
            }
            if !irr.prefixes.is_empty() || !irr.origins.is_empty() {
                sources.push(format!(
                    "{} prefixes and {} origin ASNs listed in the fabric file",
                    irr.prefixes.len(),
                    irr.origins.len()
                ));
            }
            item.push(text(sources.join("; ")));
            Some(item)
        })
        .collect();
    if items.is_empty() {
        return vec![paragraph(vec![text(
            "No member has IRR data in the fabric file, so no route is checked against the IRR.",
        )])];
    }
    vec![
        paragraph(vec![text(
            "Routes of these members are checked against their IRR data (the IRR step of the import filters); a member not listed here is not checked against the IRR:",
        )]),
        Block::Bullets(items),
    ]
}

/// Whether the route server can give `reason` under `policy`: an RPKI or ASPA refusal only when
/// `policy.rpki` asks to reject them (`rpki::filter`).
fn refused_under(reason: &Reason, policy: &Policy) -> bool {
    match reason {
        Reason::RpkiInvalid { .. } => policy
            .rpki
            .as_ref()
            .is_some_and(|rpki| rpki.invalid == InvalidAction::Reject),
        Reason::AspaInvalid { .. } => policy
            .rpki
            .as_ref()
            .is_some_and(|rpki| rpki.aspa == AspaAction::Reject),
        _ => true,
    }
}

/// One part of an action community as published: a fixed value or the ASN of the peer the
/// action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A number.
    Value(u32),
    /// The ASN of the member the action applies to, written `peer`.
    Peer,
}

impl Part {
    fn write(self) -> String {
        match self {
            Part::Value(value) => value.to_string(),
            Part::Peer => "peer".to_string(),
        }
    }

    /// The value with `peer` standing for [`Part::Peer`].
    pub fn with(self, peer: u32) -> u32 {
        match self {
            Part::Value(value) => value,
            Part::Peer => peer,
        }
    }
}

/// One action a member can ask for, in its standard (RFC 1997) and large (RFC 8092) forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What it does.
    pub meaning: String,
    /// `high:low` of the standard form; `None` where there is none.
    pub standard: Option<[Part; 2]>,
    /// The large form.
    pub large: [Part; 3],
}

/// The action communities of route server `rs` (its ASN), as `rib::actions` matches them.
pub fn actions(rs: u32) -> Vec<Action> {
    let short = rs <= 0xffff;
    let standard = |parts: [Part; 2]| short.then_some(parts);
    let mut list = vec![
        Action {
            meaning: "Do not announce the route to peer".to_string(),
            standard: Some([Part::Value(0), Part::Peer]),
            large: [
                Part::Value(rs),
                Part::Value(actions::DO_NOT_ANNOUNCE),
                Part::Peer,
            ],
        },
        Action {
            meaning: "Announce the route to no one ...".to_string(),
            standard: standard([Part::Value(0), Part::Value(rs)]),
            large: [
                Part::Value(rs),
                Part::Value(actions::DO_NOT_ANNOUNCE),
                Part::Value(0),
            ],
        },
        Action {
            meaning: "... except to peer (announce to peer)".to_string(),
            standard: standard([Part::Value(rs), Part::Peer]),
            large: [Part::Value(rs), Part::Value(actions::ANNOUNCE), Part::Peer],
        },
    ];
    for function in actions::PREPEND {
        let times = function - actions::PREPEND.start() + 1;
        list.push(Action {
            meaning: format!("Prepend the sender's ASN {times} time(s) when announcing to peer"),
            standard: None,
            large: [Part::Value(rs), Part::Value(function), Part::Peer],
        });
        list.push(Action {
            meaning: format!("Prepend the sender's ASN {times} time(s) when announcing to anyone"),
            standard: None,
            large: [Part::Value(rs), Part::Value(function), Part::Value(0)],
        });
    }
    list.push(Action {
        meaning: "Add NO_EXPORT when announcing to peer".to_string(),
        standard: None,
        large: [
            Part::Value(rs),
            Part::Value(actions::ADD_NO_EXPORT),
            Part::Peer,
        ],
    });
    list
}

fn action_communities_section(context: &Context<'_>) -> Section {
    let rs = context.route_server.asn.0;
    let rows = actions(rs)
        .into_iter()
        .map(|action| {
            vec![
                cell(action.meaning),
                action.standard.map_or_else(
                    || cell("-"),
                    |[high, low]| code_cell(format!("{}:{}", high.write(), low.write())),
                ),
                code_cell(
                    action
                        .large
                        .iter()
                        .map(|part| part.write())
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
            ]
        })
        .collect();
    let mut blocks = vec![
        paragraph(vec![
            text(
                "A member steers where its routes go with these communities, whose global part is the route server's ASN ",
            ),
            code(rs),
            text("; "),
            code("peer"),
            text(
                " is the ASN of the member the action is about. Standard forms exist only for 16-bit ASNs. Not announcing to a peer wins over everything; \"announce to no one\" is lifted only for the peers listed with announce-to. The route server removes these communities before it exports a route; every other community passes unchanged.",
            ),
        ]),
        Block::Table {
            header: ["Action", "Standard", "Large"].map(String::from).to_vec(),
            rows,
        },
    ];
    if rs > 0xffff {
        blocks.push(paragraph(vec![text(
            "The route server's ASN does not fit a standard community, so only the large forms and 0:peer exist.",
        )]));
    }
    blocks.push(Block::Heading("Well-known communities".to_string()));
    blocks.push(Block::Bullets(vec![vec![
        code(format!(
            "{}:{}",
            crate::rib::best::GRACEFUL_SHUTDOWN >> 16,
            crate::rib::best::GRACEFUL_SHUTDOWN & 0xffff
        )),
        text(" GRACEFUL_SHUTDOWN (RFC 8326): the route server prefers any other path for the prefix, so a member can drain traffic before maintenance."),
    ]]));
    Section {
        id: "communities",
        heading: "Action communities".to_string(),
        blocks,
    }
}

fn informational_communities_section(context: &Context<'_>) -> Section {
    let policy = &context.fabric.policy;
    let rs = context.route_server.asn;
    let rows = Filter::ORDER
        .iter()
        .enumerate()
        .flat_map(|(index, filter)| {
            let (title, _) = describe(*filter, context);
            filter
                .refusals(policy)
                .into_iter()
                .filter(|reason| refused_under(reason, policy))
                .map(move |reason| (index, title, reason))
        })
        .map(|(index, title, reason)| {
            vec![
                code_cell(reason_community(&reason, rs)),
                code_cell(reason.label()),
                cell(format!("{}. {title}", index + 1)),
            ]
        })
        .collect();
    Section {
        id: "informational",
        heading: "Informational communities".to_string(),
        blocks: vec![
            paragraph(vec![
                text(
                    "A filtered route is shown in the looking glass and the API with the Euro-IX large community ",
                ),
                code(format!("{}:{}:code", rs.0, crate::policy::EURO_IX_FILTERED)),
                text(
                    " naming the reason (IXP Manager's codes). These communities are never sent to members: filtered routes are not exported.",
                ),
            ]),
            Block::Table {
                header: ["Large community", "Reason", "Filter"]
                    .map(String::from)
                    .to_vec(),
                rows,
            },
        ],
    }
}

fn route_servers_section(context: &Context<'_>) -> Section {
    let rows = context
        .fabric
        .route_servers
        .iter()
        .map(|route_server| {
            vec![
                cell(route_server.name.clone()),
                code_cell(route_server.asn),
                optional_code(route_server.ipv4),
                optional_code(route_server.ipv6),
            ]
        })
        .collect();
    Section {
        id: "route-servers",
        heading: "Route servers".to_string(),
        blocks: vec![
            paragraph(vec![text(
                "Members peer with every route server, one session per address family. Sessions use the route server's ASN; it is never inserted into AS paths.",
            )]),
            Block::Table {
                header: ["Route server", "ASN", "IPv4", "IPv6"]
                    .map(String::from)
                    .to_vec(),
                rows,
            },
        ],
    }
}

/// Text made safe for Markdown: characters with a meaning escaped, line breaks folded (they
/// would end a table row).
pub fn markdown_escape(words: &str) -> String {
    let mut escaped = String::with_capacity(words.len());
    for character in words.chars() {
        match character {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' => {
                escaped.push('\\');
                escaped.push(character);
            }
            '\r' | '\n' | '\t' => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A Markdown code span holding `literal` whatever backticks it contains.
fn markdown_code(literal: &str) -> String {
    let literal = literal.replace(['\r', '\n', '\t'], " ");
    // A table cell ends at an unescaped `|`, even inside a code span (GFM).
    let literal = literal.replace('|', "\\|");
    let longest = literal
        .split(|character| character != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if literal.starts_with('`') || literal.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{literal}{pad}{fence}")
}

fn markdown_spans(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|span| match span {
            Span::Text(words) => markdown_escape(words),
            Span::Code(literal) => markdown_code(literal),
        })
        .collect()
}

/// The page as Markdown (GitHub flavour: pipe tables).
pub fn markdown(document: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", markdown_escape(&document.title));
    for section in &document.sections {
        let _ = writeln!(out, "\n## {}", markdown_escape(&section.heading));
        for block in &section.blocks {
            out.push('\n');
            match block {
                Block::Paragraph(spans) => {
                    let _ = writeln!(out, "{}", markdown_spans(spans));
                }
                Block::Heading(heading) => {
                    let _ = writeln!(out, "### {}", markdown_escape(heading));
                }
                Block::Bullets(items) => {
                    for item in items {
                        let _ = writeln!(out, "- {}", markdown_spans(item));
                    }
                }
                Block::Table { header, rows } => {
                    let titles: Vec<String> =
                        header.iter().map(|title| markdown_escape(title)).collect();
                    let _ = writeln!(out, "| {} |", titles.join(" | "));
                    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
                    for row in rows {
                        let cells: Vec<String> =
                            row.iter().map(|cell| markdown_spans(cell)).collect();
                        let _ = writeln!(out, "| {} |", cells.join(" | "));
                    }
                }
            }
        }
    }
    out
}

/// Text made safe for HTML element content and quoted attribute values.
pub fn html_escape(words: &str) -> String {
    let mut escaped = String::with_capacity(words.len());
    for character in words.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn html_spans(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|span| match span {
            Span::Text(words) => html_escape(words),
            Span::Code(literal) => format!("<code>{}</code>", html_escape(literal)),
        })
        .collect()
}

/// Styles of the HTML page: system fonts, readable on a phone (tables scroll sideways inside
/// their box), light and dark.
const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#59636e;--line:#d1d9e0;--code:#f0f2f4}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--line:#3d444d;--code:#1f242c}}\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}\
main{max-width:60rem;margin:0 auto;padding:1rem}\
h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid var(--line)}\
h3{font-size:1.05rem;margin:1.2rem 0 .3rem}\
nav ul{padding-left:1.2rem;columns:14rem}\
code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);padding:.05em .3em;border-radius:4px;overflow-wrap:anywhere}\
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.95rem}\
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:var(--code)}\
footer{color:var(--muted);font-size:.85rem;margin-top:2rem}";

/// The page as one self-contained HTML document (inline styles, no scripts, no external
/// assets), every piece of text escaped.
pub fn html(document: &Document) -> String {
    let mut out = String::new();
    let title = html_escape(&document.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n<nav><ul>\n"
    );
    for section in &document.sections {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            html_escape(section.id),
            html_escape(&section.heading)
        );
    }
    out.push_str("</ul></nav>\n");
    for section in &document.sections {
        let _ = writeln!(
            out,
            "<section id=\"{}\">\n<h2>{}</h2>",
            html_escape(section.id),
            html_escape(&section.heading)
        );
        for block in &section.blocks {
            match block {
                Block::Paragraph(spans) => {
                    let _ = writeln!(out, "<p>{}</p>", html_spans(spans));
                }
                Block::Heading(heading) => {
                    let _ = writeln!(out, "<h3>{}</h3>", html_escape(heading));
                }
                Block::Bullets(items) => {
                    out.push_str("<ul>\n");
                    for item in items {
                        let _ = writeln!(out, "<li>{}</li>", html_spans(item));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table { header, rows } => {
                    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
                    for title in header {
                        let _ = write!(out, "<th scope=\"col\">{}</th>", html_escape(title));
                    }
                    out.push_str("</tr></thead>\n<tbody>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for cell in row {
                            let _ = write!(out, "<td>{}</td>", html_spans(cell));
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</tbody>\n</table></div>\n");
                }
            }
        }
        out.push_str("</section>\n");
    }
    let _ = write!(
        out,
        "<footer>Generated by the vixp route server {} from the fabric file in force. Also as Markdown: <code>route-server policy --markdown</code>.</footer>\n</main>\n</body>\n</html>\n",
        html_escape(env!("CARGO_PKG_VERSION"))
    );
    out
}

/// `GET /policy`: the page of the fabric in force (it follows reloads), as HTML.
pub async fn page(State(handles): State<Arc<Handles>>) -> Response {
    let fabric = Arc::clone(&handles.fabric.borrow());
    match document(&fabric, &handles.route_server) {
        Some(document) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html(&document),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "route server {} is not in the fabric in force\n",
                handles.route_server
            ),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
