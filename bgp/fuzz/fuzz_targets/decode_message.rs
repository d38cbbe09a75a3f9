//! Fuzz target: the wire decoder under every decode context; must never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vixp_bgp::wire::{self, DecodeContext};

fuzz_target!(|data: &[u8]| {
    for (four_octet_as, max_message_len, external) in
        [(true, 4096, true), (false, 4096, true), (true, 65535, false)]
    {
        let cx = DecodeContext { four_octet_as, max_message_len, external };
        if let Ok(Some(length)) = wire::frame_length(data, max_message_len) {
            let _ = wire::decode_message(Bytes::copy_from_slice(&data[..length]), &cx);
        }
        let _ = wire::decode_message(Bytes::copy_from_slice(data), &cx);
    }
});
