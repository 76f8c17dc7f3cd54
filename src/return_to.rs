//! Where the browser goes after signing in: a same-origin path, or `/`.

use crate::session::MAX_RETURN_TO;

/// Returns `candidate` if a browser can only read it as a path on this origin, else `"/"`.
///
/// Refused: anything not starting with a single `/` (`//evil.com` and `/\evil.com` are
/// protocol-relative to browsers), any backslash, control character or whitespace (browsers strip
/// tabs and newlines, so `/\t/evil.com` becomes `//evil.com`), and anything over 256 bytes.
///
/// ```
/// use actix_wechat_auth::same_origin_path;
/// assert_eq!(same_origin_path("/shop?item=1"), "/shop?item=1");
/// assert_eq!(same_origin_path("//evil.com"), "/");
/// assert_eq!(same_origin_path("/\\evil.com"), "/");
/// assert_eq!(same_origin_path("https://evil.com"), "/");
/// assert_eq!(same_origin_path("/\t/evil.com"), "/");
/// ```
pub fn same_origin_path(candidate: &str) -> &str {
    let bytes = candidate.as_bytes();
    let safe = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.len() <= MAX_RETURN_TO
        && bytes
            .iter()
            .all(|&b| b > b' ' && b != b'\\' && b != 0x7f && b.is_ascii());
    if safe {
        candidate
    } else {
        "/"
    }
}

/// The return-to for a request's path and query: the whole target if it fits, else its path alone.
pub(crate) fn for_request(path: &str, query: &str) -> String {
    if !query.is_empty() && path.len() + 1 + query.len() <= MAX_RETURN_TO {
        let target = format!("{path}?{query}");
        if same_origin_path(&target) == target {
            return target;
        }
    }
    same_origin_path(path).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_targets_fall_back_to_root() {
        for bad in [
            "",
            "evil.com",
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/a\\b",
            "http://evil.com",
            "javascript:alert(1)",
            "/\n/evil.com",
            "/\r\n/evil.com",
            "/ /x",
            "/\u{7f}",
            "/é",
            " /a",
        ] {
            assert_eq!(same_origin_path(bad), "/", "{bad:?} accepted");
        }
        assert_eq!(
            same_origin_path(&format!("/{}", "a".repeat(MAX_RETURN_TO))),
            "/"
        );
    }

    #[test]
    fn plain_paths_pass() {
        for good in [
            "/",
            "/a/b?c=d&e=%2F%2Fevil.com",
            "/%5Cevil.com",
            "/a//b",
            "/?next=//x",
        ] {
            assert_eq!(same_origin_path(good), good);
        }
    }

    #[test]
    fn long_queries_keep_the_path() {
        let long = "q".repeat(MAX_RETURN_TO);
        assert_eq!(for_request("/shop", &long), "/shop");
        assert_eq!(for_request("/shop", "a=1"), "/shop?a=1");
        assert_eq!(for_request("//evil.com", ""), "/");
    }
}
