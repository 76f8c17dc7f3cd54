//! A `WeChatUser` made up for a handler's unit test, with no server and no emulator.

use std::rc::Rc;

use actix_web::HttpMessage;

use crate::extractor::AuthContext;
use crate::session::SignedIn;
use crate::{AccessToken, AppKind, Profile, RefreshToken, Scope, WeChatUser};

/// The `config_id` of a fake user's context: no configuration has it, so a real `WeChatAuth` on
/// the same request resolves it again instead of trusting the fake.
const FAKE_CONFIG: usize = usize::MAX;

/// A made-up [`WeChatUser`] for unit tests: build one and pass it to a handler, or attach it to a
/// request of `actix_web::test::TestRequest` so that `WeChatUser` and `Option<WeChatUser>`
/// extract it.
///
/// **Test-only**: it lives in the `emulator` feature (a dev-dependency), and only code can put
/// it on a request: no header, cookie or session of a real request makes one.
///
/// # Example
///
/// ```
/// use actix_web::{test::TestRequest, FromRequest};
/// use actix_wechat_auth::testing::FakeUser;
/// use actix_wechat_auth::{Scope, WeChatUser};
///
/// # actix_web::rt::System::new().block_on(async {
/// let req = TestRequest::default().to_http_request();
/// FakeUser::new("o_alice").nickname("爱丽丝").scope(Scope::UserInfo).attach(&req);
/// let user = WeChatUser::extract(&req).await.unwrap();
/// assert_eq!(user.openid(), "o_alice");
/// assert_eq!(user.profile().unwrap().nickname, "爱丽丝");
///
/// let anonymous = TestRequest::default().to_http_request();
/// FakeUser::attach_anonymous(&anonymous);
/// assert!(Option::<WeChatUser>::extract(&anonymous).await.unwrap().is_none());
/// # });
/// ```
#[derive(Clone)]
pub struct FakeUser {
    user: SignedIn,
}

impl std::fmt::Debug for FakeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FakeUser")
            .field(&self.clone().build())
            .finish()
    }
}

impl FakeUser {
    /// An Official Account user with `openid`, `snsapi_base`, no unionid and no profile, its
    /// appid `wxfakeappid`.
    pub fn new(openid: impl Into<String>) -> Self {
        let far = u64::MAX / 2;
        FakeUser {
            user: SignedIn {
                appid: "wxfakeappid".to_owned(),
                app: AppKind::OfficialAccount,
                openid: openid.into(),
                unionid: None,
                scope: Scope::Base,
                access_token: AccessToken::new("fake-access-token"),
                refresh_token: RefreshToken::new("fake-refresh-token"),
                expires_at: far,
                checked_at: far,
                signed_in_at: 0,
                profile: None,
                attached: None,
            },
        }
    }

    /// The unionid.
    pub fn unionid(mut self, unionid: impl Into<String>) -> Self {
        self.user.unionid = Some(unionid.into());
        self
    }

    /// The granted scope (default `snsapi_base`).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.user.scope = scope;
        self
    }

    /// The app the sign-in came from and its appid (default the Official Account,
    /// `wxfakeappid`). A Website-app user has scope `snsapi_login`.
    pub fn app(mut self, app: AppKind, appid: impl Into<String>) -> Self {
        self.user.app = app;
        self.user.appid = appid.into();
        if app == AppKind::Website {
            self.user.scope = Scope::Login;
        }
        self
    }

    /// The profile (its `openid` is set to the user's). Raises a `snsapi_base` scope to
    /// `snsapi_userinfo`: only that scope has a profile.
    pub fn profile(mut self, mut profile: Profile) -> Self {
        profile.openid.clone_from(&self.user.openid);
        if self.user.scope == Scope::Base {
            self.user.scope = Scope::UserInfo;
        }
        self.user.profile = Some(profile);
        self
    }

    /// A profile with this nickname (see [`profile`](Self::profile)).
    pub fn nickname(self, nickname: impl Into<String>) -> Self {
        let profile = Profile {
            nickname: nickname.into(),
            ..Profile::default()
        };
        self.profile(profile)
    }

    /// What the app's sign-in hook would have attached.
    pub fn attached(mut self, value: impl Into<String>) -> Self {
        self.user.attached = Some(value.into());
        self
    }

    /// The `WeChatUser`, to pass to a handler directly.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::testing::FakeUser;
    ///
    /// async fn greet(user: actix_wechat_auth::WeChatUser) -> String {
    ///     format!("hi {}", user.openid())
    /// }
    /// # actix_web::rt::System::new().block_on(async {
    /// assert_eq!(greet(FakeUser::new("o1").build()).await, "hi o1");
    /// # });
    /// ```
    pub fn build(self) -> WeChatUser {
        WeChatUser::new(Rc::new(self.user))
    }

    /// Puts the user on a request (`TestRequest::to_http_request()`, `to_request()` or
    /// `to_srv_request()`), as `WeChatAuth` would.
    pub fn attach(self, req: &impl HttpMessage) {
        put(req, Some(self.build()));
    }

    /// Marks a request as passed by `WeChatAuth` with nobody signed in: `Option<WeChatUser>` is
    /// `None` and `WeChatUser` answers "sign-in required" (401 for an API call).
    pub fn attach_anonymous(req: &impl HttpMessage) {
        put(req, None);
    }
}

fn put(req: &impl HttpMessage, user: Option<WeChatUser>) {
    req.extensions_mut().insert(AuthContext {
        config_id: FAKE_CONFIG,
        outcome: Ok(user),
        reply: None,
        sign_in: None,
    });
}
