//! What the session holds: the signed-in user's tokens and profile. (Pending sign-ins live in
//! cookies of their own, see `pending.rs`: nothing is written to the session before a sign-in.)
//!
//! Kept small because the cookie store refuses state over about 4 KB (and encryption grows it
//! about 1.4×): short field names, no `null`s, and caps on what WeChat may send too much of. The
//! worst case (capped nickname and avatar URL, unionid, 4 privileges) is measured by
//! `tests/it/wiring.rs` and stated in the crate docs.

use std::{
    cell::RefCell,
    rc::Rc,
    time::{SystemTime, UNIX_EPOCH},
};

use actix_session::Session;
use log::warn;
use serde::{Deserialize, Serialize};

use crate::{
    config::{App, AppKind, Apps},
    error::ErrorKind,
    tokens::{AccessToken, RefreshToken, Scope},
    wire::{truncate_at_char, Profile, TokenResponse},
};

const SIGNED_IN_KEY: &str = "wx";
/// Where the previous release kept pending sign-ins; removed whenever the session is written.
const LEGACY_PENDING_KEY: &str = "wxp";

/// Longest return-to kept; longer targets fall back to their path, then to `/`.
pub(crate) const MAX_RETURN_TO: usize = 256;
const MAX_NICKNAME: usize = 128;
const MAX_HEADIMGURL: usize = 512;
const MAX_PRIVILEGES: usize = 4;
const MAX_PRIVILEGE: usize = 32;

fn is_official(kind: &AppKind) -> bool {
    *kind == AppKind::OfficialAccount
}

/// Seconds since the Unix epoch: the session outlives the process, so no `Instant`s.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A signed-in user, as stored in the session.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SignedIn {
    /// The app it was granted for: a sign-in of an appid the configuration does not have (two
    /// configurations, or a move from the test account to the real one) is not this one's.
    #[serde(rename = "i")]
    pub(crate) appid: String,
    /// The kind of that app (sessions of 0.1.0, which lack it, are Official Account sign-ins).
    #[serde(rename = "k", default, skip_serializing_if = "is_official")]
    pub(crate) app: AppKind,
    #[serde(rename = "o")]
    pub(crate) openid: String,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub(crate) unionid: Option<String>,
    #[serde(rename = "s")]
    pub(crate) scope: Scope,
    #[serde(rename = "a")]
    pub(crate) access_token: AccessToken,
    #[serde(rename = "r")]
    pub(crate) refresh_token: RefreshToken,
    /// When the access token expires (Unix seconds).
    #[serde(rename = "e")]
    pub(crate) expires_at: u64,
    /// When the token was last confirmed with `/sns/auth` or issued.
    #[serde(rename = "c")]
    pub(crate) checked_at: u64,
    /// When the callback signed this user in (Unix seconds): `max_sign_in_age` counts from it,
    /// whatever refreshes happen. Sessions of the previous release lack it and count from their
    /// last check (`AuthSession::signed_in`).
    #[serde(rename = "g", default)]
    pub(crate) signed_in_at: u64,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub(crate) profile: Option<Profile>,
    /// What the app's sign-in hook attached (its own user id, say), at most 256 bytes.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub(crate) attached: Option<String>,
}

/// Sign-ins this worker has parsed, each with its stored form exactly as the session holds it
/// (already authenticated by actix-session). A request carrying a stored form seen before costs a
/// comparison, not a parse (the parse was most of what the middleware added to a signed-in
/// request, BENCHMARKS.md). A fixed table: the slot comes from a few bytes of the openid, so a
/// user's newer sign-in replaces the older. A stored form is admitted only when it misses twice
/// in a row in its slot, so a miss costs what no table would (the parse) and a comparison: many
/// users in rotation (production's shape) copy nothing and evict nothing, while a user's burst
/// of requests is served from the table from its third request. Nothing is added to the
/// session. Only fresh sign-ins are kept, and the token's status is still judged on every
/// request.
pub(crate) struct KnownSignIns(RefCell<Box<[Slot]>>);

/// A slot of [`KnownSignIns`]: a stored form and what it parsed to (`None`: empty).
#[derive(Clone, Default)]
struct Slot {
    stored: String,
    user: Option<Rc<SignedIn>>,
    /// The fingerprint of the stored form that last missed here: admitted if it comes back next.
    candidate: u64,
}

impl Default for KnownSignIns {
    fn default() -> Self {
        Self(RefCell::new(
            vec![Slot::default(); Self::SLOTS].into_boxed_slice(),
        ))
    }
}

/// What [`KnownSignIns::lookup`] found.
pub(crate) enum Lookup {
    /// The session holds no sign-in of the configured apps (or held an unreadable one, now
    /// dropped).
    Absent,
    /// Parsed before.
    Known(Rc<SignedIn>),
    /// Parsed now: to [`remember`](KnownSignIns::remember) at its place once it proves fresh.
    Parsed(Rc<SignedIn>, Place),
}

/// Where a stored form goes in [`KnownSignIns`], and its fingerprint there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    at: usize,
    fingerprint: u64,
}

impl KnownSignIns {
    /// A power of two, and small: the table must stay in the processor's cache. With 1,024 slots
    /// (2.5 MB at about 2.5 KB a slot: the stored form and its parse) 5,000 users rotating made
    /// 21 last-level cache misses per request against 2.5 without a table, and every miss of the
    /// table slower than no table (BENCHMARKS.md, case 7); 32 slots (80 KB) hold a page's burst
    /// of requests and the users a worker serves at once.
    const SLOTS: usize = 32;
    /// Where the 16 bytes the slot is read from start: the last 16 of the 28-character openid,
    /// which follows the 18-character appid (`{"i":"wx…","o":"o…`). (Openids of one app share
    /// their first characters; their ends are random.)
    const OPENID_AT: usize = 43;

    /// The session's sign-in of one of `apps`: from the table when its stored form was parsed
    /// before, else parsed from the same borrowed entry (the session's map is looked in once).
    pub(crate) fn lookup(&self, session: &Session, apps: &Apps) -> Lookup {
        let parsed = {
            let entries = session.entries();
            let Some(stored) = entries.get(SIGNED_IN_KEY) else {
                return Lookup::Absent;
            };
            let place = Self::place(stored);
            if let Slot {
                stored: known,
                user: Some(user),
                ..
            } = &self.0.borrow()[place.at]
            {
                if known == stored {
                    return Lookup::Known(Rc::clone(user));
                }
            }
            SignedIn::from_stored(stored, apps).map(|user| user.map(|u| (u, place)))
        };
        match parsed {
            Ok(Some((user, place))) => Lookup::Parsed(user, place),
            Ok(None) => Lookup::Absent,
            Err(e) => {
                AuthSession(session).drop_unreadable(&e);
                Lookup::Absent
            }
        }
    }

    /// Remembers `user` as what the session's stored sign-in, found at `place`, parses to: on
    /// its first miss there only its fingerprint is noted (nothing copied, the session not
    /// read again); on its second in a row it is admitted. The session must still hold the form
    /// `lookup` parsed (nothing written in between).
    pub(crate) fn remember(&self, session: &Session, place: Place, user: Rc<SignedIn>) {
        let mut slots = self.0.borrow_mut();
        let slot = &mut slots[place.at];
        if slot.candidate != place.fingerprint {
            slot.candidate = place.fingerprint;
            return;
        }
        let entries = session.entries();
        let Some(stored) = entries.get(SIGNED_IN_KEY) else {
            return;
        };
        debug_assert_eq!(
            Self::place(stored),
            place,
            "the session changed since its lookup"
        );
        // The slot's buffer is reused: no allocation once it has held a sign-in this long.
        slot.stored.clear();
        slot.stored.push_str(stored);
        slot.user = Some(user);
    }

    /// The slot of a stored form, from 16 bytes of its openid (zeros past its end: a form that
    /// short only shares a slot), and its fingerprint, from those, its length and its last 8
    /// bytes: both only place and admit sign-ins (a user's next state may share the fingerprint
    /// of the last, and is then admitted on its first miss), equality is decided by the whole
    /// stored form.
    fn place(stored: &str) -> Place {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes = stored.as_bytes();
        let word = |at: usize| {
            let mut word = [0; 8];
            let part = bytes.get(at..).unwrap_or_default();
            let n = part.len().min(8);
            word[..n].copy_from_slice(&part[..n]);
            u64::from_le_bytes(word)
        };
        let (a, b) = (word(Self::OPENID_AT), word(Self::OPENID_AT + 8));
        let user = (a.wrapping_mul(K) ^ b).wrapping_mul(K);
        let at = (user >> (64 - Self::SLOTS.trailing_zeros())) as usize;
        let tail = word(bytes.len().saturating_sub(8));
        let fingerprint = (user ^ tail ^ (bytes.len() as u64).rotate_left(32)).wrapping_mul(K) | 1;
        Place { at, fingerprint }
    }
}

impl SignedIn {
    /// The stored form read back: `None` when it is a sign-in to none of `apps`. (In an `Rc`
    /// at once: the parse is moved once, not through every caller's `Option`.)
    fn from_stored(stored: &str, apps: &Apps) -> Result<Option<Rc<Self>>, serde_json::Error> {
        let mut user: Self = serde_json::from_str(stored)?;
        if !apps
            .by_appid(&user.appid)
            .is_some_and(|a| a.kind == user.app)
        {
            return Ok(None);
        }
        if user.signed_in_at == 0 {
            user.signed_in_at = user.checked_at;
        }
        Ok(Some(Rc::new(user)))
    }

    pub(crate) fn new(
        app: &App,
        tokens: TokenResponse,
        profile: Option<Profile>,
        now: u64,
    ) -> Self {
        let scope = Scope::from_granted(&tokens.scope);
        let unionid = tokens
            .unionid
            .or_else(|| profile.as_ref().and_then(|p| p.unionid.clone()))
            .filter(|u| !u.is_empty());
        Self {
            appid: app.appid.clone(),
            app: app.kind,
            openid: tokens.openid,
            unionid,
            scope,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: now.saturating_add(tokens.expires_in),
            checked_at: now,
            signed_in_at: now,
            profile: profile.map(capped),
            attached: None,
        }
    }

    /// Takes the tokens of a refresh. WeChat may or may not send a new refresh token: keep
    /// whatever comes back.
    pub(crate) fn apply_refresh(&mut self, tokens: &TokenResponse, now: u64) {
        self.access_token = tokens.access_token.clone();
        self.refresh_token = tokens.refresh_token.clone();
        self.expires_at = now.saturating_add(tokens.expires_in);
        self.checked_at = now;
    }
}

/// WeChat does not bound these fields; the cookie does.
fn capped(mut profile: Profile) -> Profile {
    truncate_at_char(&mut profile.nickname, MAX_NICKNAME);
    if profile.headimgurl.len() > MAX_HEADIMGURL {
        // A cut URL is a broken image: better none.
        profile.headimgurl.clear();
    }
    profile.privilege.truncate(MAX_PRIVILEGES);
    for privilege in &mut profile.privilege {
        truncate_at_char(privilege, MAX_PRIVILEGE);
    }
    // Also held at the top level of the session; no need to store it twice.
    profile.unionid = None;
    profile
}

/// Typed access to this crate's keys of an actix-session [`Session`].
pub(crate) struct AuthSession<'a>(pub(crate) &'a Session);

impl AuthSession<'_> {
    /// The user signed in to one of `apps`. Unreadable data (an older format, tampering that
    /// passed the cookie's MAC) is dropped, so the user is simply anonymous.
    pub(crate) fn signed_in(&self, apps: &Apps) -> Option<SignedIn> {
        let parsed = {
            let entries = self.0.entries();
            SignedIn::from_stored(entries.get(SIGNED_IN_KEY)?, apps)
        };
        match parsed {
            // Its only owner: moved out, not cloned.
            Ok(user) => user.map(Rc::unwrap_or_clone),
            Err(e) => {
                self.drop_unreadable(&e);
                None
            }
        }
    }

    fn drop_unreadable(&self, e: &serde_json::Error) {
        // Where and what kind, never serde's message: it quotes the value, which may hold a token.
        warn!(
            "dropping unreadable WeChat sign-in from the session ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        );
        self.sign_out();
    }

    pub(crate) fn set_signed_in(&self, user: &SignedIn) -> Result<(), ErrorKind> {
        if self.0.contains_key(LEGACY_PENDING_KEY) {
            self.0.remove(LEGACY_PENDING_KEY);
        }
        self.0
            .insert(SIGNED_IN_KEY, user)
            .map_err(|e| ErrorKind::Session(e.to_string()))
    }

    /// Removes the sign-in. A session left with nothing of the app's is purged (its store key and
    /// cookie deleted); one that still holds the app's data gets a new id, so that a copy of the
    /// old cookie is worth nothing.
    pub(crate) fn sign_out(&self) {
        self.0.remove(SIGNED_IN_KEY);
        self.0.remove(LEGACY_PENDING_KEY);
        if self.0.entries().is_empty() {
            self.0.purge();
        } else {
            self.0.renew();
        }
    }
}

/// Signs the user out: removes this crate's sign-in from the session, leaving the app's own
/// session data alone. A session that holds nothing else is purged (the store's key and the cookie
/// are deleted); one that still holds the app's data is renewed (a new session id). To end the
/// app's data too, call `session.purge()` instead.
///
/// ```
/// use actix_session::Session;
/// use actix_web::HttpResponse;
///
/// async fn logout(session: Session) -> HttpResponse {
///     actix_wechat_auth::sign_out(&session);
///     HttpResponse::Ok().body("signed out")
/// }
/// ```
pub fn sign_out(session: &Session) {
    AuthSession(session).sign_out();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(expires_in: u64) -> TokenResponse {
        serde_json::from_value(serde_json::json!({
            "access_token": "AT", "expires_in": expires_in, "refresh_token": "RT",
            "openid": "o1", "scope": "snsapi_userinfo", "unionid": "u1"
        }))
        .unwrap()
    }

    #[test]
    fn a_sign_in_takes_the_grant_and_its_times() {
        let user = SignedIn::new(&App::official_for_tests("wx1"), tokens(7200), None, 1_000);
        assert_eq!(
            (user.expires_at, user.checked_at, user.signed_in_at),
            (8_200, 1_000, 1_000)
        );
        assert_eq!(user.unionid.as_deref(), Some("u1"));
        assert_eq!(user.scope, Scope::UserInfo);
    }

    #[test]
    fn sessions_of_the_previous_release_still_work() {
        use actix_session::SessionExt as _;
        let req = actix_web::test::TestRequest::default().to_srv_request();
        let session = req.get_session();
        // 0.1.0's shape: no "g" (sign-in time), pending sign-ins under "wxp".
        session
            .insert(
                SIGNED_IN_KEY,
                serde_json::json!({"i": "wx1", "o": "o1", "s": "snsapi_base", "a": "AT",
                    "r": "RT", "e": 9_000, "c": 1_234}),
            )
            .unwrap();
        session
            .insert(
                LEGACY_PENDING_KEY,
                serde_json::json!([{"s": "abc", "t": "/", "c": "snsapi_base", "at": 1}]),
            )
            .unwrap();
        let store = AuthSession(&session);
        let apps = Apps::of(vec![App::official_for_tests("wx1")]);
        let user = store.signed_in(&apps).expect("still signed in");
        assert_eq!((user.signed_in_at, user.checked_at), (1_234, 1_234));
        store.set_signed_in(&user).unwrap();
        assert!(!session.contains_key(LEGACY_PENDING_KEY));
        assert!(session.get::<SignedIn>(SIGNED_IN_KEY).unwrap().is_some());
    }

    #[test]
    fn a_known_stored_form_is_not_parsed_again_and_any_change_is_a_miss() {
        use actix_session::SessionExt as _;
        let req = actix_web::test::TestRequest::default().to_srv_request();
        let session = req.get_session();
        let store = AuthSession(&session);
        let apps = Apps::of(vec![App::official_for_tests("wx1")]);
        let mut user = SignedIn::new(&App::official_for_tests("wx1"), tokens(7200), None, 1_000);
        let known = KnownSignIns::default();
        assert!(matches!(known.lookup(&session, &apps), Lookup::Absent));
        let parsed = |known: &KnownSignIns| match known.lookup(&session, &apps) {
            Lookup::Parsed(user, place) => (user, place),
            _ => panic!("expected a parse"),
        };

        store.set_signed_in(&user).unwrap();
        let (first, place) = parsed(&known);
        assert_eq!(first.checked_at, 1_000);
        // Admitted on its second miss: one passing sign-in copies nothing.
        known.remember(&session, place, first);
        let (again, place) = parsed(&known);
        known.remember(&session, place, again);
        assert!(matches!(known.lookup(&session, &apps), Lookup::Known(u) if u.checked_at == 1_000));

        // The same user's next state (a check) lands in the same slot, and is not the old one.
        user.checked_at = 2_000;
        store.set_signed_in(&user).unwrap();
        let (next, next_place) = parsed(&known);
        assert_eq!((next.checked_at, next_place.at), (2_000, place.at));
        // (Its fingerprint may equal the old form's, which only admits it sooner.)
        known.remember(&session, next_place, Rc::clone(&next));
        known.remember(&session, next_place, next);
        assert!(matches!(known.lookup(&session, &apps), Lookup::Known(u) if u.checked_at == 2_000));

        // A sign-in to an app this configuration lacks is nobody's, and an unreadable one is
        // dropped from the session.
        let other = Apps::of(vec![App::official_for_tests("wx2")]);
        assert!(matches!(
            KnownSignIns::default().lookup(&session, &other),
            Lookup::Absent
        ));
        assert!(session.contains_key(SIGNED_IN_KEY));
        session.insert(SIGNED_IN_KEY, "not a sign-in").unwrap();
        assert!(matches!(known.lookup(&session, &apps), Lookup::Absent));
        assert!(!session.contains_key(SIGNED_IN_KEY));
    }

    #[test]
    fn slots_spread_users_and_stay_in_the_table() {
        let slots: std::collections::HashSet<usize> = (0..200)
            .map(|n| {
                KnownSignIns::place(&format!(
                    r#"{{"i":"wx0123456789abcdef","o":"o{n:027}","s":"x"}}"#
                ))
                .at
            })
            .collect();
        assert!(
            slots.len() >= 28,
            "200 openids in {} of 32 slots",
            slots.len()
        );
        assert!(slots.iter().all(|&s| s < KnownSignIns::SLOTS));
        assert!(KnownSignIns::place("").at < KnownSignIns::SLOTS);
    }

    #[test]
    fn profile_is_capped_for_the_cookie() {
        let profile = Profile {
            openid: "o1".into(),
            nickname: "😀".repeat(200),
            headimgurl: "h".repeat(600),
            privilege: vec!["p".repeat(100); 10],
            unionid: Some("u".into()),
            ..Profile::default()
        };
        let user = SignedIn::new(
            &App::official_for_tests("wx1"),
            tokens(7200),
            Some(profile),
            0,
        );
        let p = user.profile.unwrap();
        assert!(p.nickname.len() <= MAX_NICKNAME && p.nickname.starts_with('😀'));
        assert!(p.headimgurl.is_empty());
        assert_eq!(p.privilege.len(), MAX_PRIVILEGES);
        assert!(p.privilege.iter().all(|x| x.len() == MAX_PRIVILEGE));
        assert_eq!(p.unionid, None);
    }
}
