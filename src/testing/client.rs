//! A browser for tests: a cookie jar, a user agent, and a one-call sign-in through the emulator.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use cookie_store::CookieStore;
use url::Url;

/// WeChat on an iPhone: the Official Account's sign-in.
const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
    (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN";
/// Chrome on Windows: the Website app's QR sign-in.
const DESKTOP_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// How many redirects `sign_in` follows back to the app.
const MAX_REDIRECTS: usize = 10;

/// A browser for tests: it keeps cookies (RFC 6265, per host and path, across the app and the
/// emulator), sends one user agent, and follows no redirects except in [`sign_in`](Self::sign_in).
/// Clones share the cookie jar.
///
/// # Example
///
/// ```
/// use actix_wechat_auth::testing::TestClient;
///
/// let phone = TestClient::wechat();
/// assert!(phone.user_agent().contains("MicroMessenger"));
/// ```
#[derive(Clone)]
pub struct TestClient {
    http: awc::Client,
    jar: Rc<RefCell<CookieStore>>,
    user_agent: String,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Cookies hold sessions: not in test output.
        f.debug_struct("TestClient")
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

/// What a [`TestClient`] request got back.
///
/// # Example
///
/// ```
/// use actix_web::http::{header::HeaderMap, StatusCode};
/// use actix_wechat_auth::testing::TestResponse;
///
/// let res = TestResponse { status: StatusCode::OK, headers: HeaderMap::new(), body: r#"{"a":1}"#.into() };
/// assert_eq!(res.json()["a"], 1);
/// assert_eq!(res.location(), None);
/// ```
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl TestResponse {
    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON (the panic shows it).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), HTTP {}: {}", self.status, self.body))
    }

    /// The `Location` header of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
}

impl TestClient {
    /// WeChat on a phone: signs in with the Official Account.
    pub fn wechat() -> Self {
        Self::with_user_agent(WECHAT_UA)
    }

    /// A desktop browser: signs in by QR code with the Website app (when the app has one).
    ///
    /// # Example
    ///
    /// ```
    /// # use actix_wechat_auth::testing::TestClient;
    /// assert!(!TestClient::desktop().user_agent().contains("MicroMessenger"));
    /// ```
    pub fn desktop() -> Self {
        Self::with_user_agent(DESKTOP_UA)
    }

    /// A browser sending `user_agent`.
    ///
    /// # Example
    ///
    /// ```
    /// # use actix_wechat_auth::testing::TestClient;
    /// assert_eq!(TestClient::with_user_agent("curl/8").user_agent(), "curl/8");
    /// ```
    pub fn with_user_agent(user_agent: impl Into<String>) -> Self {
        TestClient {
            http: awc::Client::builder().disable_redirects().finish(),
            jar: Rc::default(),
            user_agent: user_agent.into(),
        }
    }

    /// The user agent it sends.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// A page load (`Accept: text/html`, `Sec-Fetch-Mode: navigate`); redirects are not followed.
    pub async fn get(&self, url: &str) -> TestResponse {
        self.send(
            Method::GET,
            url,
            &[
                ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                ("sec-fetch-mode", "navigate"),
            ],
            None,
        )
        .await
    }

    /// A script's call (`Accept: application/json`, `Sec-Fetch-Mode: cors`).
    pub async fn get_json(&self, url: &str) -> TestResponse {
        self.send(Method::GET, url, &JSON_HEADERS, None).await
    }

    /// A script's `POST` of `body` as JSON.
    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> TestResponse {
        self.send(Method::POST, url, &JSON_HEADERS, Some(body.to_string()))
            .await
    }

    /// Signs this browser in as the emulated person `openid` (the openid
    /// [`Emulator::add_user`](crate::emulator::Emulator::add_user) returned; a Website-app
    /// sign-in gets that person's Website openid), through the sign-in that the app offers
    /// this browser at `url`: the Official Account's authorize page (and consent) for
    /// [`wechat`](Self::wechat), the QR page's scan for [`desktop`](Self::desktop). `url` is
    /// a route that requires sign-in, which decides the scope. Follows the callback back to the
    /// app, which returns to `url` (the sign-in starts as a script's call from that page), and
    /// returns that page's answer.
    ///
    /// # Panics
    ///
    /// When `url` offers no sign-in (already signed in, not protected, or a browser with no flow),
    /// or a step of the sign-in fails: the panic says which and shows the answer.
    pub async fn sign_in(&self, url: &str, openid: &str) -> TestResponse {
        // A script's call from the page at `url`: the sign-in comes back to that page.
        let [accept, mode] = JSON_HEADERS;
        let from_the_page = [accept, mode, ("referer", url)];
        let challenge = self.send(Method::GET, url, &from_the_page, None).await;
        let authorize = challenge
            .json()
            .get("authorize_url")
            .and_then(|u| u.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                panic!(
                    "sign_in: {url} offers no sign-in to this browser (HTTP {}: {}): is it a \
                     route that requires sign-in, and is the browser TestClient::wechat() (or \
                     TestClient::desktop() with a Website app)?",
                    challenge.status, challenge.body
                )
            });
        let mut authorize = Url::parse(&authorize)
            .unwrap_or_else(|e| panic!("sign_in: bad authorize URL {authorize}: {e}"));
        authorize.set_fragment(None);
        let user = [("x-emulator-user", openid)];
        let (mut hop, mut at) = if authorize.path().ends_with("/connect/qrconnect") {
            // The phone scans and confirms.
            let scan = confirm(&authorize, "/connect/qrconnect/confirm", None);
            (
                self.send(Method::GET, scan.as_str(), &user, None).await,
                scan,
            )
        } else {
            let page = self
                .send(Method::GET, authorize.as_str(), &user, None)
                .await;
            if page.status == StatusCode::OK {
                // The consent page: allow.
                let allow = confirm(
                    &authorize,
                    "/connect/oauth2/authorize/confirm",
                    Some(openid),
                );
                (
                    self.send(Method::GET, allow.as_str(), &user, None).await,
                    allow,
                )
            } else {
                (page, authorize)
            }
        };
        for _ in 0..MAX_REDIRECTS {
            let Some(next) = hop.location().map(|l| at.join(l)) else {
                return hop;
            };
            at = next.unwrap_or_else(|e| panic!("sign_in: bad redirect after {at}: {e}, {hop:?}"));
            hop = self.get(at.as_str()).await;
        }
        panic!("sign_in: more than {MAX_REDIRECTS} redirects after WeChat, last {hop:?}")
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> TestResponse {
        let parsed = Url::parse(url).unwrap_or_else(|e| panic!("TestClient: bad URL {url}: {e}"));
        let mut req = self
            .http
            .request(method, url)
            .insert_header((header::USER_AGENT, self.user_agent.as_str()));
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let cookies: Vec<String> = self
            .jar
            .borrow()
            .get_request_values(&parsed)
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if !cookies.is_empty() {
            req = req.insert_header((header::COOKIE, cookies.join("; ")));
        }
        let sent = match body {
            Some(body) => {
                req.insert_header((header::CONTENT_TYPE, "application/json"))
                    .send_body(body)
                    .await
            }
            None => req.send().await,
        };
        let mut res = sent.unwrap_or_else(|e| panic!("TestClient: {url}: {e}"));
        {
            let mut jar = self.jar.borrow_mut();
            for value in res.headers().get_all(header::SET_COOKIE) {
                if let Ok(value) = value.to_str() {
                    // A cookie the jar refuses (a bad domain) is dropped, as a browser does.
                    let _ = jar.parse(value, &parsed);
                }
            }
        }
        let body = res
            .body()
            .limit(8 * 1024 * 1024)
            .await
            .unwrap_or_else(|e| panic!("TestClient: {url}: reading the body: {e}"));
        TestResponse {
            status: res.status(),
            headers: res.headers().clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// What a script's call sends.
const JSON_HEADERS: [(&str, &str); 2] =
    [("accept", "application/json"), ("sec-fetch-mode", "cors")];

/// The emulator's confirm URL for an authorize (or QR) URL: the same request, allowed.
fn confirm(authorize: &Url, path: &str, openid: Option<&str>) -> Url {
    let mut url = authorize.clone();
    url.set_path(path);
    {
        let mut query = url.query_pairs_mut();
        if let Some(openid) = openid {
            query.append_pair("openid", openid);
        }
        query.append_pair("action", "allow");
    }
    url
}
