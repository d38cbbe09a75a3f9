//! Decoding UPDATE messages into project types with RFC 7606 revised error handling.
//! Must not apply policy or keep RIB state: it reports what the UPDATE says, or withdraws
//! everything it announced when RFC 7606 says so.

use std::net::IpAddr;

use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustbgpd_wire::attribute::{AsPathSegment, MpReachNlri, PathAttribute};
use rustbgpd_wire::nlri::{NlriEntry, Prefix as WirePrefix};
use rustbgpd_wire::validate::{
    ErrorDisposition, UpdateValidationOptions, validate_update_attributes_with_context,
};
use rustbgpd_wire::{NotificationCode, UpdateMessage};

use crate::types::{
    AsPath, Attributes, Family, LargeCommunity, Origin, Prefix, RawAttribute, Segment, SegmentKind,
};
use crate::wire::{DecodeContext, DecodeError, HEADER_LEN, family_of};

const OPTIONAL_TRANSITIVE: u8 = 0xc0;

/// Routes announced with one attribute set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The path attributes, next hop included.
    pub attributes: Attributes,
    /// Prefixes announced with them, all of one family.
    pub prefixes: Vec<Prefix>,
}

/// An UPDATE after RFC 7606 handling, IPv4 and IPv6 unicast only.
///
/// IPv4 body NLRI (with NEXT_HOP) and each unicast MP_REACH_NLRI become separate
/// announcements. An End-of-RIB marker (RFC 4724 section 2) is an otherwise empty Update
/// with `end_of_rib` set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Withdrawn prefixes: body withdrawn routes, unicast MP_UNREACH_NLRI, and every
    /// announced prefix when the UPDATE is treated as withdraw.
    pub withdrawn: Vec<Prefix>,
    /// Announced routes.
    pub announcements: Vec<Announcement>,
    /// RFC 7606 section 2 treat-as-withdraw was applied.
    pub treated_as_withdraw: bool,
    /// Type codes of attributes dropped by RFC 7606 attribute-discard.
    pub discarded_attributes: Vec<u8>,
    /// MP_REACH_NLRI / MP_UNREACH_NLRI attributes of other AFI/SAFIs, ignored.
    pub ignored_non_unicast: u32,
    /// The UPDATE was the End-of-RIB marker of this family (RFC 4724 section 2).
    pub end_of_rib: Option<Family>,
}

impl Update {
    /// No withdrawals and no announcements.
    pub fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.announcements.is_empty()
    }

    /// Number of announced prefixes.
    pub fn announced_len(&self) -> usize {
        self.announcements
            .iter()
            .map(|announcement| announcement.prefixes.len())
            .sum()
    }
}

/// Decodes a whole UPDATE message (header already checked by `frame_length`).
pub(crate) fn decode_update(message: &Bytes, cx: &DecodeContext) -> Result<Update, DecodeError> {
    let mut body = message.slice(HEADER_LEN..);
    let body_len = body.len();
    let mut raw = UpdateMessage::decode(&mut body, body_len).map_err(update_error)?;
    let (section, ignored) = strip_non_unicast(&raw.path_attributes);
    raw.path_attributes = section;
    let parsed = raw
        .parse_revised(cx.four_octet_as, !cx.external, false, &[])
        .map_err(update_error)?;
    let mut update = Update {
        ignored_non_unicast: ignored,
        ..Update::default()
    };
    let mut disposition = None;
    for malformed in &parsed.malformed {
        disposition = disposition.max(Some(malformed.disposition));
        if malformed.disposition == ErrorDisposition::AttributeDiscard {
            update.discarded_attributes.push(malformed.type_code);
        }
    }
    let mut attributes = parsed.update.attributes;
    attributes.retain(|attribute| !update.discarded_attributes.contains(&attribute.type_code()));

    let body_announced: Vec<Prefix> = parsed
        .update
        .announced
        .iter()
        .filter_map(|entry| ipv4(entry.prefix))
        .collect();
    update.withdrawn = parsed
        .update
        .withdrawn
        .iter()
        .filter_map(|entry| ipv4(entry.prefix))
        .collect();
    let has_mp_nlri = attributes.iter().any(
        |attribute| matches!(attribute, PathAttribute::MpReachNlri(mp) if !mp.announced.is_empty()),
    );
    let has_nlri = !body_announced.is_empty() || has_mp_nlri;

    // RFC 7606 section 3 (d) and RFC 4271 section 6.3 semantic checks (missing well-known
    // attributes, bad NEXT_HOP, empty AS_PATH segments) unless decoding already decided to
    // withdraw.
    // Each round removes one attribute or stops, so the loop is bounded by their number.
    for _ in 0..=attributes.len() {
        if disposition >= Some(ErrorDisposition::TreatAsWithdraw) {
            break;
        }
        let checked = validate_update_attributes_with_context(
            &attributes,
            has_nlri,
            !body_announced.is_empty(),
            cx.external,
            UpdateValidationOptions::default(),
        );
        let Err(invalid) = checked else { break };
        disposition = disposition.max(Some(invalid.error.disposition));
        match invalid.error.disposition {
            ErrorDisposition::AttributeDiscard => {
                update.discarded_attributes.push(invalid.type_code);
                attributes.retain(|attribute| attribute.type_code() != invalid.type_code);
            }
            ErrorDisposition::TreatAsWithdraw => {}
            ErrorDisposition::SessionReset => {
                return Err(DecodeError::Update {
                    subcode: invalid.error.subcode,
                    data: invalid.error.data,
                    reason: format!("attribute {} failed validation", invalid.type_code),
                });
            }
        }
    }

    let mut mp_announced: Vec<(&MpReachNlri, Vec<Prefix>)> = Vec::new();
    for attribute in &attributes {
        match attribute {
            PathAttribute::MpReachNlri(mp) => match family_of(mp.afi as u16, mp.safi as u8) {
                Some(_) => mp_announced.push((mp, unicast(&mp.announced))),
                None => update.ignored_non_unicast += 1,
            },
            PathAttribute::MpUnreachNlri(mp) => match family_of(mp.afi as u16, mp.safi as u8) {
                Some(_) => update.withdrawn.extend(unicast(&mp.withdrawn)),
                None => update.ignored_non_unicast += 1,
            },
            _ => {}
        }
    }
    if ignored == 0 {
        update.end_of_rib = end_of_rib(&raw, &attributes);
    }

    let base = convert_attributes(&attributes, &raw.path_attributes);
    let treat_as_withdraw = disposition >= Some(ErrorDisposition::TreatAsWithdraw);
    if treat_as_withdraw || base.is_none() && has_nlri {
        update.treated_as_withdraw = true;
        update.withdrawn.extend(body_announced);
        for (_, prefixes) in mp_announced {
            update.withdrawn.extend(prefixes);
        }
    } else if let Some(base) = base {
        if !body_announced.is_empty() {
            match next_hop(&attributes) {
                Some(next_hop) => update.announcements.push(Announcement {
                    attributes: Attributes {
                        next_hop: IpAddr::V4(next_hop),
                        ..base.clone()
                    },
                    prefixes: body_announced,
                }),
                // Internal peer without NEXT_HOP: the routes cannot be used (RFC 7606 section 3 (d)).
                None => {
                    update.treated_as_withdraw = true;
                    update.withdrawn.extend(body_announced);
                }
            }
        }
        for (mp, prefixes) in mp_announced {
            if prefixes.is_empty() {
                continue;
            }
            update.announcements.push(Announcement {
                attributes: Attributes {
                    next_hop: mp.next_hop,
                    link_local_next_hop: mp.link_local_next_hop,
                    ..base.clone()
                },
                prefixes,
            });
        }
    }
    Ok(update)
}

/// The family whose End-of-RIB marker this UPDATE is (RFC 4724 section 2): an empty UPDATE
/// for IPv4, an UPDATE holding only an empty MP_UNREACH_NLRI for the others.
fn end_of_rib(raw: &UpdateMessage, attributes: &[PathAttribute]) -> Option<Family> {
    if !raw.withdrawn_routes.is_empty() || !raw.nlri.is_empty() {
        return None;
    }
    match attributes {
        [] if raw.path_attributes.is_empty() => Some(Family::Ipv4),
        [PathAttribute::MpUnreachNlri(mp)] if mp.withdrawn.is_empty() => {
            family_of(mp.afi as u16, mp.safi as u8)
        }
        _ => None,
    }
}

/// The body NEXT_HOP attribute.
fn next_hop(attributes: &[PathAttribute]) -> Option<std::net::Ipv4Addr> {
    attributes.iter().find_map(|attribute| match attribute {
        PathAttribute::NextHop(address) => Some(*address),
        _ => None,
    })
}

/// Project attributes from codec attributes, the next hop left unspecified; `None` when
/// ORIGIN or AS_PATH is missing.
fn convert_attributes(attributes: &[PathAttribute], section: &[u8]) -> Option<Attributes> {
    let mut origin = None;
    let mut as_path = None;
    let unspecified = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    let mut converted = Attributes::new(Origin::Igp, AsPath::default(), unspecified);
    for attribute in attributes {
        match attribute {
            PathAttribute::Origin(value) => {
                origin = Some(match value {
                    rustbgpd_wire::Origin::Igp => Origin::Igp,
                    rustbgpd_wire::Origin::Egp => Origin::Egp,
                    rustbgpd_wire::Origin::Incomplete => Origin::Incomplete,
                });
            }
            PathAttribute::AsPath(path) => {
                let segments = path
                    .segments
                    .iter()
                    .map(|segment| match segment {
                        AsPathSegment::AsSequence(asns) => Segment {
                            kind: SegmentKind::Sequence,
                            asns: asns.clone(),
                        },
                        AsPathSegment::AsSet(asns) => Segment {
                            kind: SegmentKind::Set,
                            asns: asns.clone(),
                        },
                    })
                    .collect();
                as_path = Some(AsPath { segments });
            }
            PathAttribute::Aggregator(aggregator) => {
                converted.aggregator = Some((aggregator.asn, aggregator.router_id));
            }
            PathAttribute::AtomicAggregate => converted.atomic_aggregate = true,
            PathAttribute::Med(med) => converted.med = Some(*med),
            PathAttribute::LocalPref(local_pref) => converted.local_pref = Some(*local_pref),
            PathAttribute::Communities(values) | PathAttribute::CommunitiesPartial(values) => {
                converted.communities.clone_from(values);
            }
            PathAttribute::ExtendedCommunities(values)
            | PathAttribute::ExtendedCommunitiesPartial(values) => {
                converted.extended_communities =
                    values.iter().map(|value| value.as_u64()).collect();
            }
            PathAttribute::LargeCommunities(values)
            | PathAttribute::LargeCommunitiesPartial(values) => {
                converted.large_communities = values
                    .iter()
                    .map(|value| {
                        LargeCommunity(value.global_admin, value.local_data1, value.local_data2)
                    })
                    .collect();
            }
            PathAttribute::Unknown(raw) => {
                if raw.flags & OPTIONAL_TRANSITIVE == OPTIONAL_TRANSITIVE {
                    converted.other.push(RawAttribute {
                        flags: raw.flags,
                        type_code: raw.type_code,
                        value: raw.data.to_vec(),
                    });
                }
            }
            // Carried elsewhere (next hops, NLRI) or never passed on outside the AS.
            PathAttribute::NextHop(_)
            | PathAttribute::MpReachNlri(_)
            | PathAttribute::MpUnreachNlri(_)
            | PathAttribute::OriginatorId(_)
            | PathAttribute::ClusterList(_) => {}
            // Known to the codec, not interpreted by vixp: passed on as received when
            // optional transitive (RFC 4271 section 5).
            other => {
                if let Some(raw) = raw_attribute(section, other.type_code())
                    && raw.flags & OPTIONAL_TRANSITIVE == OPTIONAL_TRANSITIVE
                {
                    converted.other.push(raw);
                }
            }
        }
    }
    converted.origin = origin?;
    converted.as_path = as_path?;
    Some(converted)
}

/// Removes MP_REACH_NLRI and MP_UNREACH_NLRI attributes of families other than IPv4 and
/// IPv6 unicast, which vixp ignores (RFC 4760 section 7 lets a speaker ignore families it did
/// not negotiate), and counts them. A section whose framing is broken is returned unchanged
/// for the codec to classify.
fn strip_non_unicast(section: &Bytes) -> (Bytes, u32) {
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    let mut ignored = 0;
    let mut offset = 0;
    while offset < section.len() {
        let Some((start, end, flags_code, value)) = attribute_at(section, offset) else {
            return (section.clone(), 0);
        };
        let non_unicast = matches!(flags_code, 14 | 15)
            && value.get(..3).is_some_and(|head| {
                family_of(u16::from_be_bytes([head[0], head[1]]), head[2]).is_none()
            });
        if non_unicast {
            ignored += 1;
        } else {
            kept.push(start..end);
        }
        offset = end;
    }
    if ignored == 0 {
        return (section.clone(), 0);
    }
    let mut stripped = Vec::with_capacity(section.len());
    for range in kept {
        stripped.extend_from_slice(&section[range]);
    }
    (Bytes::from(stripped), ignored)
}

/// The attribute starting at `offset`: its byte range, type code and value, by checked reads.
fn attribute_at(section: &[u8], offset: usize) -> Option<(usize, usize, u8, &[u8])> {
    let rest = section.get(offset..)?;
    let (&[flags, type_code], rest) = rest.split_first_chunk::<2>()?;
    let (length, header) = if flags & 0x10 != 0 {
        let (length, _) = rest.split_first_chunk::<2>()?;
        (usize::from(u16::from_be_bytes(*length)), 4)
    } else {
        (usize::from(*rest.first()?), 3)
    };
    let value = section.get(offset + header..offset + header + length)?;
    Some((offset, offset + header + length, type_code, value))
}

/// The first attribute of `type_code` in a raw path attribute section, by a checked walk.
fn raw_attribute(section: &[u8], type_code: u8) -> Option<RawAttribute> {
    let mut offset = 0;
    while offset < section.len() {
        let (start, end, code, value) = attribute_at(section, offset)?;
        if code == type_code {
            return Some(RawAttribute {
                flags: section[start],
                type_code,
                value: value.to_vec(),
            });
        }
        offset = end;
    }
    None
}

fn ipv4(prefix: rustbgpd_wire::nlri::Ipv4Prefix) -> Option<Prefix> {
    Ipv4Net::new(prefix.addr, prefix.len).ok().map(IpNet::V4)
}

fn unicast(entries: &[NlriEntry]) -> Vec<Prefix> {
    entries
        .iter()
        .filter_map(|entry| match entry.prefix {
            WirePrefix::V4(prefix) => ipv4(prefix),
            WirePrefix::V6(prefix) => Ipv6Net::new(prefix.addr, prefix.len).ok().map(IpNet::V6),
        })
        .collect()
}

/// Maps a session-reset-class codec error onto UPDATE Message Error (RFC 4271 section 6.3).
fn update_error(error: impl Into<rustbgpd_wire::UpdateDecodeError>) -> DecodeError {
    let error = error.into().error;
    let reason = error.to_string();
    let (code, subcode, data) = error.to_notification();
    let subcode = if code == NotificationCode::UpdateMessage {
        subcode
    } else {
        1
    };
    DecodeError::Update {
        subcode,
        data: data.to_vec(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_attribute_walk_stops_on_truncation() {
        let section = [0xc0, 35, 4, 0, 0, 0xfd, 0xe8, 0xc0, 99, 0x10];
        let found = raw_attribute(&section, 35).map(|raw| raw.value);
        assert_eq!(found, Some(vec![0, 0, 0xfd, 0xe8]));
        assert_eq!(raw_attribute(&section, 99), None);
        assert_eq!(raw_attribute(&[0xd0, 40, 0], 40), None);
    }
}
