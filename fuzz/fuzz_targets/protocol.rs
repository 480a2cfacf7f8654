//! Frontend bytes as a client would send them after login: every frame the framer accepts
//! goes through the message parsers; the whole input is also tried as a startup packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::testing::protocol::{framing, parse, startup};

fuzz_target!(|data: &[u8]| {
    let _ = startup::decode(data);
    let mut rest = data;
    while let Ok(Some(h)) = framing::complete(rest, 1 << 20) {
        assert!(h.total <= rest.len() && h.total >= framing::HEADER_LEN);
        let body = &rest[framing::HEADER_LEN..h.total];
        match h.tag {
            b'P' => drop(parse::parse_msg(body)),
            b'B' => {
                let _ = parse::bind_msg(body);
                let _ = parse::bind_head(body);
            }
            b'D' | b'C' | b'E' => drop(parse::target_msg(body, "target")),
            b'Q' => drop(parse::query_text(body)),
            b'S' => drop(parse::parameter_status(body)),
            _ => {
                let _ = parse::error_fields(body);
                let _ = parse::command_tag(body);
            }
        }
        rest = &rest[h.total..];
    }
});
