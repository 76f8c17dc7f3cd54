//! Any bytes WeChat (or a proxy, or an attacker on the path) may send: the parser returns, and a
//! body with a non-zero `errcode` is never read as a success.
#![no_main]

use actix_wechat_auth::__private::parse_answers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let parsed = parse_answers(body);
    // A JSON object whose top-level `errcode` is a non-zero integer is an error for every kind of
    // answer. (Checked only on bodies that are plain JSON to the oracle, which is std-only here:
    // the cheap probe below looks for the literal key and a leading digit or minus.)
    if let Ok(text) = std::str::from_utf8(body) {
        let trimmed = text.trim_start();
        if let Some(rest) = trimmed.strip_prefix("{\"errcode\":") {
            let digits: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            let after = &rest[digits.len()..];
            if let Ok(code) = digits.parse::<i64>() {
                if code != 0 && (after.starts_with(',') || after.starts_with('}')) {
                    assert_eq!(parsed, [false; 3], "errcode {code} read as a success");
                }
            }
        }
    }
});
