//! The client of WeChat's four sns endpoints, over awc.
//!
//! One deadline per attempt covers connect, headers and body (awc's own timeout stops at the
//! headers); bodies are capped; redirects are not followed; connections are pooled per worker;
//! https goes through rustls, and only HTTP/1.1 is offered: awc's HTTP/2 path logs request heads,
//! URI included, at trace level, and our URIs hold the appsecret, codes and tokens. Failures that are safe to retry are retried a bounded number of
//! times with exponential backoff. Nothing here ever logs a URL: the query holds the appsecret or a
//! token.

use std::{fmt, time::Duration};

use actix_web::rt::time::{sleep, timeout};
use awc::error::{PayloadError, SendRequestError};
use log::{debug, warn};
use serde::de::DeserializeOwned;

use crate::{
    config::{App, ClientSettings},
    error::ErrorKind,
    telemetry,
    tokens::{AccessToken, RefreshToken},
    wire::{self, Acknowledgement, ErrCode, ParseError, Profile, TokenResponse},
};

/// Idle pooled connections are dropped before common server keep-alive timeouts (actix-web 5 s),
/// so a request is rarely written to a connection the server has just closed.
const POOL_KEEP_ALIVE: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    AccessToken,
    RefreshToken,
    UserInfo,
    Auth,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::AccessToken => "/sns/oauth2/access_token",
            Endpoint::RefreshToken => "/sns/oauth2/refresh_token",
            Endpoint::UserInfo => "/sns/userinfo",
            Endpoint::Auth => "/sns/auth",
        }
    }

    /// Whether a request that may have reached WeChat can be sent again. A `code` is single-use,
    /// so the exchange is retried only when the request surely never arrived.
    fn idempotent(self) -> bool {
        !matches!(self, Endpoint::AccessToken)
    }
}

impl Endpoint {
    /// The metrics' name: the last segment of the path.
    fn name(self) -> &'static str {
        match self {
            Endpoint::AccessToken => "access_token",
            Endpoint::RefreshToken => "refresh_token",
            Endpoint::UserInfo => "userinfo",
            Endpoint::Auth => "auth",
        }
    }
}

/// The `errcode` label of an attempt: `0`, WeChat's errcode, or how it failed.
fn errcode_label<T>(answer: &Result<T, Failure>) -> String {
    match answer {
        Ok(_) => "0".to_owned(),
        Err(Failure::Parse(ParseError::Api { code, .. })) => code.code().to_string(),
        Err(Failure::NotSent(_) | Failure::Lost(_)) => "unreachable".to_owned(),
        Err(Failure::Timeout) => "timeout".to_owned(),
        Err(Failure::Status(_)) => "http_status".to_owned(),
        Err(Failure::TooLarge) => "too_large".to_owned(),
        Err(Failure::Parse(ParseError::Malformed(_))) => "malformed".to_owned(),
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// How one attempt failed.
#[derive(Debug)]
enum Failure {
    /// The request surely did not reach WeChat (connect failed, or the write failed).
    NotSent(String),
    /// The exchange broke after the request may have arrived.
    Lost(String),
    Timeout,
    Status(u16),
    TooLarge,
    Parse(ParseError),
}

impl Failure {
    fn retryable(&self, endpoint: Endpoint) -> bool {
        match self {
            Failure::NotSent(_) => true,
            Failure::Parse(ParseError::Api { code, .. }) => *code == ErrCode::SystemBusy,
            Failure::Lost(_) => endpoint.idempotent(),
            Failure::Status(status) => *status >= 500 && endpoint.idempotent(),
            // A timeout already cost a whole deadline: waiting another would hold the user twice.
            Failure::Timeout | Failure::TooLarge | Failure::Parse(_) => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotSent(e) => write!(f, "not sent: {e}"),
            Failure::Lost(e) => write!(f, "connection lost: {e}"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Status(s) => write!(f, "HTTP status {s}"),
            Failure::TooLarge => f.write_str("body over the size limit"),
            Failure::Parse(ParseError::Api { code, errmsg }) => {
                write!(f, "errcode {code} ({errmsg})")
            }
            Failure::Parse(ParseError::Malformed(e)) => write!(f, "malformed body: {e}"),
        }
    }
}

impl From<Failure> for ErrorKind {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::NotSent(e) | Failure::Lost(e) => ErrorKind::UpstreamUnreachable(e),
            Failure::Timeout => ErrorKind::UpstreamTimeout,
            Failure::Status(s) => ErrorKind::UpstreamInvalid(format!("HTTP status {s}")),
            Failure::TooLarge => ErrorKind::UpstreamInvalid("body over the size limit".into()),
            Failure::Parse(ParseError::Api { code, errmsg }) => ErrorKind::WeChat { code, errmsg },
            Failure::Parse(ParseError::Malformed(e)) => ErrorKind::UpstreamInvalid(e),
        }
    }
}

/// Talks to `api.weixin.qq.com` (or the configured `api_base`). `awc::Client` is not `Send`, so
/// there is one per worker thread.
pub(crate) struct WeChatClient {
    http: awc::Client,
    settings: ClientSettings,
}

impl WeChatClient {
    pub(crate) fn new(settings: &ClientSettings) -> Self {
        // awc builds its TLS config with rustls' process-wide provider, which rustls cannot pick
        // by itself when another crate of the app also enables aws-lc-rs. Choosing ring here is a
        // no-op when a provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let connector = awc::Connector::new()
            .rustls_0_23(tls_config(&settings.trusted_roots))
            .timeout(settings.connect_timeout())
            .handshake_timeout(settings.connect_timeout())
            .conn_keep_alive(POOL_KEEP_ALIVE);
        let http = awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            // The deadline is ours, around the whole exchange: see `attempt`.
            .disable_timeout()
            .finish();
        Self {
            http,
            settings: settings.clone(),
        }
    }

    /// `/sns/oauth2/access_token`: exchanges a callback's `code`.
    pub(crate) async fn exchange_code(
        &self,
        app: &App,
        code: &str,
    ) -> Result<TokenResponse, ErrorKind> {
        self.call(
            Endpoint::AccessToken,
            &[
                ("appid", &app.appid),
                ("secret", app.secret.secret()),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .await
    }

    /// `/sns/oauth2/refresh_token`: a new access token from the refresh token.
    pub(crate) async fn refresh(
        &self,
        app: &App,
        token: &RefreshToken,
    ) -> Result<TokenResponse, ErrorKind> {
        self.call(
            Endpoint::RefreshToken,
            &[
                ("appid", &app.appid),
                ("grant_type", "refresh_token"),
                ("refresh_token", token.secret()),
            ],
        )
        .await
    }

    /// `/sns/userinfo`: the profile (snsapi_userinfo tokens only).
    pub(crate) async fn user_info(
        &self,
        token: &AccessToken,
        openid: &str,
    ) -> Result<Profile, ErrorKind> {
        self.call(
            Endpoint::UserInfo,
            &[
                ("access_token", token.secret()),
                ("openid", openid),
                ("lang", self.settings.lang.as_str()),
            ],
        )
        .await
    }

    /// `/sns/auth`: whether the access token is still valid for `openid`.
    pub(crate) async fn check(&self, token: &AccessToken, openid: &str) -> Result<(), ErrorKind> {
        self.call::<Acknowledgement>(
            Endpoint::Auth,
            &[("access_token", token.secret()), ("openid", openid)],
        )
        .await
        .map(drop)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        query: &[(&str, &str)],
    ) -> Result<T, ErrorKind> {
        let settings = &self.settings;
        let query = serde_urlencoded::to_string(query)
            .map_err(|e| ErrorKind::UpstreamInvalid(format!("cannot encode the query: {e}")))?;
        let url = format!("{}{}?{query}", settings.api_base, endpoint.path());
        let mut backoff = settings.retry_backoff;
        let mut attempt = 1;
        loop {
            let started = std::time::Instant::now();
            let answer = self.attempt(&url).await;
            telemetry::upstream_call(endpoint.name(), errcode_label(&answer), started.elapsed());
            match answer {
                Ok(value) => {
                    debug!("WeChat {endpoint} answered in {:?}", started.elapsed());
                    return Ok(value);
                }
                Err(failure) if attempt < settings.max_attempts && failure.retryable(endpoint) => {
                    warn!(
                        "WeChat {endpoint} attempt {attempt}/{}: {failure}; retrying in {backoff:?}",
                        settings.max_attempts
                    );
                    sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                Err(failure) => {
                    warn!("WeChat {endpoint} failed after {attempt} attempt(s): {failure}");
                    return Err(failure.into());
                }
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, url: &str) -> Result<T, Failure> {
        let settings = &self.settings;
        let exchange = async {
            let mut res = self.http.get(url).send().await.map_err(classify_send)?;
            let status = res.status();
            let body = res
                .body()
                .limit(settings.max_response_bytes)
                .await
                .map_err(|e| match e {
                    PayloadError::Overflow => Failure::TooLarge,
                    other => Failure::Lost(other.to_string()),
                })?;
            // WeChat answers errors as 200 with an errcode; any other status is a fault upstream.
            if !status.is_success() {
                return Err(Failure::Status(status.as_u16()));
            }
            wire::parse(&body).map_err(Failure::Parse)
        };
        timeout(settings.request_timeout, exchange)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

/// Web PKI roots plus the configured ones, offering HTTP/1.1 alone through ALPN (see the module
/// docs for why not h2).
fn tls_config(
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Each was parsed by `WeChatConfigBuilder::build`, which refuses one that does not add.
    let (_added, _ignored) = roots.add_parsable_certificates(extra_roots.iter().cloned());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::sync::Arc::new(config)
}

fn classify_send(e: SendRequestError) -> Failure {
    match e {
        SendRequestError::Connect(e) => Failure::NotSent(e.to_string()),
        SendRequestError::Send(e) => Failure::NotSent(e.to_string()),
        SendRequestError::Timeout => Failure::Timeout,
        SendRequestError::Url(_) => Failure::NotSent("invalid API URL".into()),
        other => Failure::Lost(other.to_string()),
    }
}
