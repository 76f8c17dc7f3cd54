//! Pending sign-ins: one encrypted cookie each, between the redirect to WeChat and the callback.
//!
//! They are kept out of the session on purpose. A session written for an anonymous request is a
//! new key in a server-side store (Redis), so a flood of anonymous requests would fill it and its
//! eviction would drop real sign-ins first; and one list in the session is rewritten whole by
//! every challenge, so parallel challenges (an SPA's API calls, two tabs) overwrite each other's
//! `state`. With a cookie per pending sign-in, named after its state, nothing is shared and a
//! session is created only by a successful callback.
//!
//! - `wxs_…` (Path: where the app is mounted, so that a later challenge sees it and can reuse
//!   it): a sign-in waiting for its callback.
//! - `wxu_…` (Path: the callback only): the same sign-in once its callback consumed it, so that a
//!   double callback or a reload is recognised and never exchanged twice.
//!
//! Both are encrypted and authenticated (AES-256-GCM, actix-web's private cookies, the name bound
//! in), `HttpOnly`, `SameSite=Lax` (the callback is a cross-site navigation) and live as long as
//! the state does.

use actix_web::{
    cookie::{time::Duration as CookieDuration, Cookie, CookieJar, SameSite},
    dev::ServiceRequest,
    HttpResponse,
};
use log::debug;
use serde::{Deserialize, Serialize};

use crate::{
    config::{AppKind, SignInSettings, Site},
    session::unix_now,
    tokens::{CsrfState, Scope},
};

/// Pending sign-ins kept at once (several tabs, API 401s); older ones are dropped.
const MAX_PENDING: usize = 3;
const WAITING: &str = "wxs_";
const USED: &str = "wxu_";
/// Set when a callback with a lost `state` restarted the sign-in: the next one shows a page.
const RESTARTED: &str = "wxr";
/// How long a restart is remembered: long enough for one trip to WeChat and back.
const RESTART_MEMORY: i64 = 300;
/// How much of the state names its cookie: enough to tell a browser's few pending sign-ins apart.
const NAME_CHARS: usize = 12;

/// A sign-in between the redirect to WeChat and the callback.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PendingSignIn {
    #[serde(rename = "s")]
    pub(crate) state: CsrfState,
    /// A same-origin path (+query), already checked.
    #[serde(rename = "t")]
    pub(crate) return_to: String,
    #[serde(rename = "c")]
    pub(crate) scope: Scope,
    #[serde(rename = "at")]
    pub(crate) created_at: u64,
    /// How many times a stale `code` already restarted this sign-in (the loop guard).
    #[serde(rename = "n", default)]
    pub(crate) restarts: u8,
    /// The app whose authorize page the browser was sent to.
    #[serde(rename = "k", default)]
    pub(crate) app: AppKind,
}

/// What a callback's `state` matched.
pub(crate) enum StateMatch {
    /// A pending sign-in, now consumed.
    Fresh(PendingSignIn),
    /// A sign-in this browser already completed (double callback, reload).
    AlreadyUsed(PendingSignIn),
    /// Nothing this browser holds, or expired.
    Unknown,
}

/// The pending sign-in cookies of one request, and the changes to send back.
pub(crate) struct PendingCookies<'a> {
    site: &'a Site,
    /// How long a pending sign-in lives (`state_ttl`), in seconds.
    ttl: u64,
    now: u64,
    /// The readable, unexpired `wxs_` cookies of the request, oldest first, by cookie name.
    waiting: Vec<(String, PendingSignIn)>,
    /// Cookies to set or remove on the answer.
    changes: Vec<Cookie<'static>>,
}

impl<'a> PendingCookies<'a> {
    /// Reads the request's pending sign-ins (unreadable or expired ones are not this browser's
    /// pending sign-ins of this configuration).
    pub(crate) fn of(site: &'a Site, sign_in: &SignInSettings, req: &ServiceRequest) -> Self {
        let mut this = Self {
            site,
            ttl: sign_in.state_ttl.as_secs(),
            now: unix_now(),
            waiting: Vec::new(),
            changes: Vec::new(),
        };
        if let Ok(cookies) = req.cookies() {
            for cookie in cookies.iter().filter(|c| c.name().starts_with(WAITING)) {
                // An unreadable one may be another configuration's on the same site, or written
                // with a key being rotated in: left alone, it expires by its `Max-Age`.
                if let Some(pending) = this.open(cookie.clone()) {
                    this.waiting.push((cookie.name().to_owned(), pending));
                }
            }
        }
        this.waiting.sort_by_key(|(_, p)| p.created_at);
        this
    }

    /// A pending sign-in to send the browser to WeChat with: a fresh unused one for the same
    /// scope and return-to if this browser holds one (an SPA's API calls, a reload: one pending
    /// sign-in, not one each), else a new one, dropping the oldest past [`MAX_PENDING`].
    pub(crate) fn challenge(
        &mut self,
        app: AppKind,
        scope: Scope,
        return_to: String,
        restarts: u8,
    ) -> CsrfState {
        let ttl = self.ttl;
        let reusable = self.waiting.iter().find(|(_, p)| {
            p.app == app
                && p.scope == scope
                && p.return_to == return_to
                && p.restarts == restarts
                && self.now < p.created_at.saturating_add(ttl / 2)
        });
        if let Some((_, pending)) = reusable {
            return pending.state.clone();
        }
        while self.waiting.len() >= MAX_PENDING {
            let (name, _) = self.waiting.remove(0);
            self.remove(name, self.waiting_path());
        }
        let pending = PendingSignIn {
            state: CsrfState::random(),
            return_to,
            scope,
            created_at: self.now,
            restarts,
            app,
        };
        let name = name_of(WAITING, pending.state.as_str());
        self.seal(name.clone(), &pending, self.waiting_path());
        let state = pending.state.clone();
        self.waiting.push((name, pending));
        state
    }

    /// Finds the pending sign-in of a callback's `state` (constant-time comparison) and consumes
    /// it: a second callback with the same state finds it used.
    pub(crate) fn take(&mut self, state: &str, req: &ServiceRequest) -> StateMatch {
        let name = name_of(WAITING, state);
        if let Some(i) = self
            .waiting
            .iter()
            .position(|(n, p)| *n == name && p.state.matches(state))
        {
            let (name, pending) = self.waiting.remove(i);
            self.remove(name, self.waiting_path());
            self.seal(
                name_of(USED, state),
                &pending,
                self.site.callback_cookie_path.clone(),
            );
            return StateMatch::Fresh(pending);
        }
        let used = req
            .cookie(&name_of(USED, state))
            .and_then(|cookie| self.open(cookie))
            .filter(|p| p.state.matches(state));
        match used {
            Some(pending) => StateMatch::AlreadyUsed(pending),
            None => StateMatch::Unknown,
        }
    }

    /// Whether this browser already restarted a sign-in whose `state` it lost, a few minutes ago.
    pub(crate) fn restarted(&self, req: &ServiceRequest) -> bool {
        req.cookie(RESTARTED).is_some()
    }

    /// Remembers in this browser that a lost sign-in was restarted (the cookie only the callback
    /// receives).
    pub(crate) fn mark_restarted(&mut self) {
        let cookie = self
            .attributes(
                Cookie::build(RESTARTED, "1"),
                self.site.callback_cookie_path.clone(),
            )
            .max_age(CookieDuration::seconds(RESTART_MEMORY))
            .finish();
        self.changes.push(cookie);
    }

    /// Puts the changes on the answer.
    pub(crate) fn apply(self, res: &mut HttpResponse) {
        for cookie in self.changes {
            if let Err(e) = res.add_cookie(&cookie) {
                log::error!("cannot set a pending sign-in cookie: {e}");
            }
        }
    }

    /// The `wxs_` cookies' path: where the app is mounted, so that every challenge sees them.
    fn waiting_path(&self) -> String {
        let mount = &self.site.mount_path;
        if mount.is_empty() {
            "/".to_owned()
        } else {
            mount.clone()
        }
    }

    fn open(&self, cookie: Cookie<'static>) -> Option<PendingSignIn> {
        let name = cookie.name().to_owned();
        let opened = CookieJar::new()
            .private(&self.site.cookie_key)
            .decrypt(cookie)
            .and_then(|c| serde_json::from_str::<PendingSignIn>(c.value()).ok());
        let ttl = self.ttl;
        match opened {
            Some(p) if self.now < p.created_at.saturating_add(ttl) => Some(p),
            Some(_) => None,
            None => {
                // Another key (rotated, another app), an older format, or tampering.
                debug!("ignoring an unreadable pending sign-in cookie {name}");
                None
            }
        }
    }

    fn seal(&mut self, name: String, pending: &PendingSignIn, path: String) {
        let ttl = self.ttl;
        let left = pending
            .created_at
            .saturating_add(ttl)
            .saturating_sub(self.now);
        let value = serde_json::to_string(pending).expect("a pending sign-in serializes");
        let cookie = self
            .attributes(Cookie::build(name, value), path)
            .max_age(CookieDuration::seconds(
                i64::try_from(left).unwrap_or(i64::MAX),
            ))
            .finish();
        let mut jar = CookieJar::new();
        jar.private_mut(&self.site.cookie_key).add(cookie);
        self.changes.extend(jar.delta().cloned());
    }

    fn remove(&mut self, name: String, path: String) {
        let cookie = self
            .attributes(Cookie::build(name, ""), path)
            .max_age(CookieDuration::ZERO)
            .finish();
        self.changes.push(cookie);
    }

    fn attributes(
        &self,
        cookie: actix_web::cookie::CookieBuilder<'static>,
        path: String,
    ) -> actix_web::cookie::CookieBuilder<'static> {
        cookie
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.site.secure_cookies)
    }
}

fn name_of(kind: &str, state: &str) -> String {
    let mut name = String::with_capacity(kind.len() + NAME_CHARS);
    name.push_str(kind);
    name.extend(state.chars().take(NAME_CHARS));
    name
}
