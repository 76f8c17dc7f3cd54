//! Reading a request: whether the middleware leaves it alone, whether it answers it as a page
//! (redirects, HTML) or as an API call (401 JSON, JSON errors), and in which language.

use std::sync::Arc;

use actix_web::{
    dev::ServiceRequest,
    http::header::{self, Header as _},
    HttpMessage,
};

use crate::{config::Lang, pages::PageRenderer};

type RequestPredicate = Arc<dyn Fn(&ServiceRequest) -> bool + Send + Sync>;

/// How the middleware answers a request it answers itself: chosen from the request, because
/// [`ResponseError::error_response`](actix_web::ResponseError::error_response) does not see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Html,
    Json,
}

/// How the middleware answers one request: the format, the visitor's language and the app's page
/// renderer, if any.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) format: Format,
    pub(crate) lang: Lang,
    pub(crate) pages: Option<PageRenderer>,
    /// A misconfiguration answer says what to fix (see `PageSettings::developer`).
    pub(crate) developer: bool,
}

/// Whether a configuration of this process said it runs on a developer's machine: what an
/// answer made without a configuration (`WeChatUser` with no `WeChatAuth`) goes by.
static DEVELOPER_MACHINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called by `build` for a developer's configuration.
pub(crate) fn developer_machine_seen() {
    DEVELOPER_MACHINE.store(true, std::sync::atomic::Ordering::Relaxed);
}

impl Reply {
    /// A default page in `lang`.
    pub(crate) fn page(lang: Lang) -> Self {
        Self {
            format: Format::Html,
            lang,
            pages: None,
            developer: false,
        }
    }

    /// JSON, its `message` in `lang`.
    #[cfg(test)]
    pub(crate) fn json(lang: Lang) -> Self {
        Self {
            format: Format::Json,
            ..Self::page(lang)
        }
    }

    /// The same reply as a page, whatever the request's format: the callback is a navigation.
    pub(crate) fn as_page(&self) -> Self {
        Self {
            format: Format::Html,
            ..self.clone()
        }
    }

    /// A reply when no configuration is at hand (the extractor without the middleware, the
    /// session store guard): the format and language from the headers alone, default pages.
    pub(crate) fn guess(req: &impl HttpMessage) -> Self {
        Self {
            format: guess_format(req),
            lang: visitor_lang(req.headers()),
            pages: None,
            developer: DEVELOPER_MACHINE.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// The visitor's language: `Accept-Language` first, then the `Language/…` token WeChat puts in
/// its User-Agent (which of the two follows the user's WeChat language is not documented), else
/// Simplified Chinese.
pub(crate) fn visitor_lang(headers: &header::HeaderMap) -> Lang {
    accept_language(headers)
        .or_else(|| wechat_language(headers))
        .unwrap_or(Lang::ZhCn)
}

/// The best-ranked language of `Accept-Language` that a page exists in.
fn accept_language(headers: &header::HeaderMap) -> Option<Lang> {
    let value = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    value
        .split(',')
        .take(16)
        .filter_map(|item| {
            let mut parts = item.split(';');
            let lang = lang_of_tag(parts.next()?.trim())?;
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), quality)?;
            (q > 0).then_some((q, lang))
        })
        // The highest weight; of equal weights, the first in the header (no allocation: this
        // runs for every request the store guard sees).
        .fold(None, |best: Option<(u16, Lang)>, (q, lang)| match best {
            Some((top, _)) if top >= q => best,
            _ => Some((q, lang)),
        })
        .map(|(_, lang)| lang)
}

/// A q-value in thousandths (`0.8` → 800); `None` when unreadable.
fn quality(q: &str) -> Option<u16> {
    let q: f32 = q.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&q)
        .then(|| (q * 1000.0).round() as u16)
}

/// The page language of a BCP 47 tag: English, Traditional Chinese (Taiwan, Hong Kong, Macau,
/// `Hant`), other Chinese; `None` for the rest.
fn lang_of_tag(tag: &str) -> Option<Lang> {
    // `_` as WeChat writes it (`zh_CN`), any case; compared in place, without a lowered copy.
    let mut subtags = tag.split(['-', '_']);
    let primary = subtags.next()?;
    if primary.eq_ignore_ascii_case("en") {
        Some(Lang::En)
    } else if primary.eq_ignore_ascii_case("zh") {
        let traditional = subtags.any(|s| {
            ["tw", "hk", "mo", "hant"]
                .iter()
                .any(|t| s.eq_ignore_ascii_case(t))
        });
        Some(if traditional { Lang::ZhTw } else { Lang::ZhCn })
    } else {
        None
    }
}

/// `… Language/zh_CN …` in WeChat's User-Agent.
fn wechat_language(headers: &header::HeaderMap) -> Option<Lang> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let (_, after) = ua.split_once("Language/")?;
    lang_of_tag(after.split_whitespace().next()?)
}

/// What kind of browser asks, from its User-Agent: what decides the sign-in flow.
///
/// ```
/// use actix_wechat_auth::Browser;
/// let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.47";
/// assert_eq!(Browser::from_user_agent(ua), Browser::WeChat);
/// assert_eq!(Browser::from_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120"), Browser::Desktop);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Browser {
    /// WeChat's webview on a phone (`MicroMessenger`).
    WeChat,
    /// WeChat for Windows or Mac (`MicroMessenger` with `WindowsWechat` / `MacWechat`): the
    /// Official Account flow works there too.
    WeChatDesktop,
    /// Another browser on a phone or tablet: Safari, Chrome, WeCom (`wxwork`, not supported yet).
    Phone,
    /// Another browser on a computer (and any client without a User-Agent).
    Desktop,
}

impl Browser {
    /// The kind of browser a User-Agent names. WeCom (企业微信) says `MicroMessenger` too, but
    /// it is another product with its own sign-in: it counts as a phone or desktop browser.
    pub fn from_user_agent(ua: &str) -> Browser {
        let mobile = ["Mobile", "Android", "iPhone", "iPad", "HarmonyOS"]
            .iter()
            .any(|m| ua.contains(m));
        if ua.contains("MicroMessenger") && !ua.contains("wxwork") {
            if ua.contains("WindowsWechat") || ua.contains("MacWechat") {
                Browser::WeChatDesktop
            } else {
                Browser::WeChat
            }
        } else if mobile {
            Browser::Phone
        } else {
            Browser::Desktop
        }
    }

    /// The kind of browser of a request.
    pub fn of(headers: &header::HeaderMap) -> Browser {
        let ua = headers
            .get(header::USER_AGENT)
            .and_then(|ua| ua.to_str().ok())
            .unwrap_or("");
        Browser::from_user_agent(ua)
    }

    /// Whether the Official Account's authorize page works in it.
    pub fn is_wechat(self) -> bool {
        matches!(self, Browser::WeChat | Browser::WeChatDesktop)
    }
}

/// How a browser is signed in.
///
/// ```
/// use actix_wechat_auth::{Browser, Flow};
/// assert_eq!(Flow::default_for(Browser::WeChat, true), Flow::OfficialAccount);
/// assert_eq!(Flow::default_for(Browser::Desktop, true), Flow::QrPage);
/// assert_eq!(Flow::default_for(Browser::Desktop, false), Flow::OpenInWeChat);
/// assert_eq!(Flow::default_for(Browser::Phone, true), Flow::OpenInWeChat);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Flow {
    /// A redirect to the Official Account's authorize page (inside WeChat).
    OfficialAccount,
    /// A page of ours embedding the Website app's QR code (WeChat's own frame), with a link to
    /// the full-page QR as a fallback.
    QrPage,
    /// A redirect to the Website app's full-page QR sign-in (`/connect/qrconnect`).
    QrRedirect,
    /// A page that says to open the link in WeChat, with a QR code of it (and, with a Website
    /// app, a link to sign in by scanning on another device).
    OpenInWeChat,
}

impl Flow {
    /// The crate's choice: WeChat's browsers the Official Account flow; desktop browsers the QR
    /// page when there is a Website app; everything else the open-in-WeChat page.
    pub fn default_for(browser: Browser, website_app: bool) -> Flow {
        match browser {
            Browser::WeChat | Browser::WeChatDesktop => Flow::OfficialAccount,
            Browser::Desktop if website_app => Flow::QrPage,
            Browser::Phone | Browser::Desktop => Flow::OpenInWeChat,
        }
    }

    /// Whether this flow signs in with the Website app.
    pub(crate) fn website(self) -> bool {
        matches!(self, Flow::QrPage | Flow::QrRedirect)
    }
}

/// The app's choice of flow: see
/// [`WeChatConfigBuilder::flow_policy`](crate::WeChatConfigBuilder::flow_policy).
pub(crate) type FlowPolicy = Arc<dyn Fn(Browser, &ServiceRequest) -> Flow + Send + Sync>;

/// Whether the browser is WeChat's, where the Official Account's authorize page works.
pub(crate) fn is_wechat(headers: &header::HeaderMap) -> bool {
    Browser::of(headers).is_wechat()
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
fn guess_format(req: &impl HttpMessage) -> Format {
    if is_script(req.headers()) || prefers_json(req) {
        Format::Json
    } else {
        Format::Html
    }
}

/// A script's request rather than a navigation: it cannot follow a redirect to WeChat.
fn is_script(headers: &header::HeaderMap) -> bool {
    // Named once: a `&str` name is parsed and validated at every lookup.
    const X_REQUESTED_WITH: header::HeaderName =
        header::HeaderName::from_static("x-requested-with");
    const SEC_FETCH_MODE: header::HeaderName = header::HeaderName::from_static("sec-fetch-mode");
    headers
        .get(X_REQUESTED_WITH)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"))
        || headers
            .get(SEC_FETCH_MODE)
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
    fn the_visitor_language() {
        let lang = |headers: &[(&str, &str)]| {
            let mut req = TestRequest::get();
            for h in headers {
                req = req.insert_header(*h);
            }
            visitor_lang(req.to_srv_request().headers())
        };
        let al = |v| [("accept-language", v)];
        assert_eq!(lang(&[]), Lang::ZhCn);
        assert_eq!(lang(&al("en-US,en;q=0.9,zh-CN;q=0.8")), Lang::En);
        assert_eq!(lang(&al("zh-CN,zh;q=0.9,en;q=0.8")), Lang::ZhCn);
        assert_eq!(lang(&al("zh-TW,zh;q=0.9")), Lang::ZhTw);
        assert_eq!(lang(&al("zh-HK")), Lang::ZhTw);
        assert_eq!(lang(&al("zh-Hant-TW;q=0.9,en;q=0.5")), Lang::ZhTw);
        assert_eq!(lang(&al("zh-Hans-CN")), Lang::ZhCn);
        assert_eq!(lang(&al("fr-FR,en;q=0.3")), Lang::En);
        assert_eq!(lang(&al("en;q=0.2,zh;q=0.9")), Lang::ZhCn);
        assert_eq!(lang(&al("en;q=0,zh-TW;q=0.1")), Lang::ZhTw);
        assert_eq!(lang(&al("garbage;;q=x,,")), Lang::ZhCn);
        let ua = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/en";
        assert_eq!(lang(&[("user-agent", ua)]), Lang::En);
        assert_eq!(
            lang(&[("user-agent", &ua.replace("Language/en", "Language/zh_TW"))]),
            Lang::ZhTw
        );
        // Accept-Language first.
        assert_eq!(
            lang(&[("user-agent", ua), ("accept-language", "zh-CN")]),
            Lang::ZhCn
        );
        assert_eq!(
            lang(&[("user-agent", ua), ("accept-language", "de")]),
            Lang::En
        );
    }

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
