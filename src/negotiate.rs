//! Reading a request: whether the middleware leaves it alone, and whether it answers it as a page
//! (redirects, HTML) or as an API call (401 JSON, JSON errors).

use std::sync::Arc;

use actix_web::{
    dev::ServiceRequest,
    http::header::{self, Header as _},
    HttpMessage,
};

pub(crate) type RequestPredicate = Arc<dyn Fn(&ServiceRequest) -> bool + Send + Sync>;

/// How the middleware answers a request it answers itself: chosen from the request, because
/// [`ResponseError::error_response`](actix_web::ResponseError::error_response) does not see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Html,
    Json,
}

/// How API requests are told from page requests.
#[derive(Clone)]
enum ApiDetection {
    /// `Accept` prefers JSON, `X-Requested-With: XMLHttpRequest`, a `Sec-Fetch-Mode` other than
    /// `navigate` (fetch, XHR, subresources), or a configured prefix.
    Default { prefixes: Vec<String> },
    /// A predicate of the app's.
    Custom(RequestPredicate),
}

/// Which requests the middleware leaves alone, and which it treats as API calls. Default: none
/// excluded; API calls told by their headers alone.
#[derive(Clone)]
pub(crate) struct RequestFilter {
    api_detection: ApiDetection,
    excluded_paths: Vec<String>,
    excluded_prefixes: Vec<String>,
    exclude_if: Option<RequestPredicate>,
}

impl Default for RequestFilter {
    fn default() -> Self {
        Self {
            api_detection: ApiDetection::Default {
                prefixes: Vec::new(),
            },
            excluded_paths: Vec::new(),
            excluded_prefixes: Vec::new(),
            exclude_if: None,
        }
    }
}

impl RequestFilter {
    pub(crate) fn add_api_prefix(&mut self, prefix: String) {
        match &mut self.api_detection {
            ApiDetection::Default { prefixes } => prefixes.push(prefix),
            ApiDetection::Custom(_) => {
                self.api_detection = ApiDetection::Default {
                    prefixes: vec![prefix],
                }
            }
        }
    }

    pub(crate) fn set_api_predicate(&mut self, predicate: RequestPredicate) {
        self.api_detection = ApiDetection::Custom(predicate);
    }

    pub(crate) fn exclude_path(&mut self, path: String) {
        self.excluded_paths.push(path);
    }

    pub(crate) fn exclude_prefix(&mut self, prefix: String) {
        self.excluded_prefixes.push(prefix);
    }

    pub(crate) fn exclude_if(&mut self, predicate: RequestPredicate) {
        self.exclude_if = Some(predicate);
    }

    /// Whether the app keeps `req` public: the middleware does not look at it.
    pub(crate) fn is_excluded(&self, req: &ServiceRequest) -> bool {
        let path = req.path();
        self.excluded_paths.iter().any(|p| p == path)
            || self
                .excluded_prefixes
                .iter()
                .any(|p| path.starts_with(p.as_str()))
            || self.exclude_if.as_ref().is_some_and(|f| f(req))
    }

    /// How to answer `req` when the middleware answers it itself.
    pub(crate) fn format(&self, req: &ServiceRequest) -> Format {
        let api = match &self.api_detection {
            ApiDetection::Custom(predicate) => predicate(req),
            ApiDetection::Default { prefixes } => {
                prefixes.iter().any(|p| req.path().starts_with(p.as_str()))
                    || is_script(req.headers())
                    || prefers_json(req)
            }
        };
        if api {
            Format::Json
        } else {
            Format::Html
        }
    }
}

/// The answer format for a request when no configuration is at hand (the extractor without the
/// middleware, the session store guard): JSON for scripts, HTML for pages.
pub(crate) fn guess_format(req: &impl HttpMessage) -> Format {
    if is_script(req.headers()) || prefers_json(req) {
        Format::Json
    } else {
        Format::Html
    }
}

/// A script's request rather than a navigation: it cannot follow a redirect to WeChat.
fn is_script(headers: &header::HeaderMap) -> bool {
    headers
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"))
        || headers
            .get("sec-fetch-mode")
            .is_some_and(|v| v.as_bytes() != b"navigate" && v.as_bytes() != b"nested-navigate")
}

/// `Accept` ranks a JSON type above HTML (and above `*/*`, which `fetch` sends by default).
fn prefers_json(req: &impl HttpMessage) -> bool {
    let Some(accept) = req.headers().get(header::ACCEPT) else {
        return false;
    };
    // Fast path for the common browser and API values before parsing q-values.
    let raw = accept.as_bytes();
    if raw.starts_with(b"text/html") {
        return false;
    }
    if raw == b"application/json" {
        return true;
    }
    match header::Accept::parse(req) {
        Ok(accept) => accept.ranked().first().is_some_and(|mime| {
            mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
        }),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn pages_and_scripts_are_told_apart() {
        let mut filter = RequestFilter::default();
        filter.add_api_prefix("/api/".to_owned());
        let format = |req: TestRequest| filter.format(&req.to_srv_request());
        assert_eq!(format(TestRequest::get().uri("/")), Format::Html);
        assert_eq!(format(TestRequest::get().uri("/api/me")), Format::Json);
        for (name, value) in [
            ("accept", "application/json"),
            ("accept", "application/problem+json, text/html;q=0.5"),
            ("x-requested-with", "XMLHttpRequest"),
            ("sec-fetch-mode", "cors"),
        ] {
            assert_eq!(
                format(TestRequest::get().insert_header((name, value))),
                Format::Json,
                "{name}: {value}"
            );
        }
        for (name, value) in [
            ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            ("sec-fetch-mode", "navigate"),
            ("accept", "*/*"),
        ] {
            assert_eq!(
                format(TestRequest::get().insert_header((name, value))),
                Format::Html,
                "{name}: {value}"
            );
        }
    }
}
