//! Any return-to candidate: `same_origin_path` keeps it or answers `/`, and what it keeps is a
//! path that a browser, resolving the callback's `Location: {mount}{return_to}#` with the WHATWG
//! URL parser, reads on the app's own origin.
#![no_main]

use actix_wechat_auth::same_origin_path;
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|candidate: &str| {
    let kept = same_origin_path(candidate);
    assert!(kept == "/" || kept == candidate);
    assert!(kept.starts_with('/') && kept.len() <= 256);
    for mount in ["", "/shop"] {
        let callback = Url::parse(&format!(
            "https://h5.example.com{mount}/wechat/callback?code=c&state=s"
        ))
        .unwrap();
        let landed = callback
            .join(&format!("{mount}{kept}#"))
            .unwrap_or_else(|e| panic!("{kept:?} does not resolve: {e}"));
        assert_eq!(
            landed.origin().ascii_serialization(),
            "https://h5.example.com",
            "{kept:?} under {mount:?} leaves the origin: {landed}"
        );
    }
});
