//! The pages the middleware shows people itself: what happened ([`Page`]), its words in the
//! visitor's language, the default look, and the seam through which an app renders them its way.

use std::{fmt, sync::Arc};

use actix_web::{
    http::{header, StatusCode},
    HttpResponse,
};

use crate::config::Lang;

/// What a page of the crate's is about. `#[non_exhaustive]`: new kinds come with new features.
///
/// ```
/// use actix_wechat_auth::{Lang, PageKind};
/// let text = PageKind::Snapshot.text(Lang::ZhCn);
/// assert!(text.message.contains("使用完整服务"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageKind {
    /// A page needs a signed-in user and there is none (401).
    SignInRequired,
    /// The callback's `state` is not one this browser holds, or it expired (400).
    StateInvalid,
    /// The callback's query could not be read (400).
    CallbackUnreadable,
    /// The user declined on WeChat's consent page (403).
    Declined,
    /// The user only saw WeChat's snapshot page (快照页) (403).
    Snapshot,
    /// The app's sign-in hook refused this account (403).
    SignInRefused,
    /// WeChat refused the sign-in code again after one fresh authorization (400).
    CodeRejected,
    /// The user granted less than the page needs (403).
    ScopeNotGranted,
    /// WeChat is busy or throttling (503).
    WeChatBusy,
    /// WeChat answered with an error or an unreadable answer (502).
    WeChatError,
    /// WeChat cannot be reached (503).
    WeChatUnreachable,
    /// WeChat did not answer in time (504).
    WeChatTimeout,
    /// Sign-in is briefly unavailable: the session store is down, or this user's upstream calls
    /// are used up for the minute (503).
    Unavailable,
    /// The app is wired or configured wrongly (500).
    Misconfigured,
    /// A desktop browser's sign-in: WeChat's QR code of the Website app, embedded (200).
    QrSignIn,
    /// A browser outside WeChat without a QR sign-in for it: open this link in WeChat, with a QR
    /// code of it (200).
    OpenInWeChat,
}

impl PageKind {
    /// Every kind, for apps that render each one (and for tests that check each one).
    pub const ALL: [PageKind; 16] = [
        PageKind::SignInRequired,
        PageKind::StateInvalid,
        PageKind::CallbackUnreadable,
        PageKind::Declined,
        PageKind::Snapshot,
        PageKind::SignInRefused,
        PageKind::CodeRejected,
        PageKind::ScopeNotGranted,
        PageKind::WeChatBusy,
        PageKind::WeChatError,
        PageKind::WeChatUnreachable,
        PageKind::WeChatTimeout,
        PageKind::Unavailable,
        PageKind::Misconfigured,
        PageKind::QrSignIn,
        PageKind::OpenInWeChat,
    ];

    /// The words of the crate's default page of this kind, in `lang`.
    ///
    /// ```
    /// use actix_wechat_auth::{Lang, PageKind};
    /// assert_eq!(PageKind::WeChatBusy.text(Lang::En).title, "WeChat is busy");
    /// assert_eq!(PageKind::WeChatBusy.text(Lang::ZhTw).action, Some("重試"));
    /// ```
    pub fn text(self, lang: Lang) -> PageText {
        let [zh_cn, zh_tw, en] = texts(self);
        match lang {
            Lang::ZhCn => zh_cn,
            Lang::ZhTw => zh_tw,
            Lang::En => en,
        }
    }

    /// The icon of the default page: a warning for what the visitor can fix, an error otherwise.
    fn tone(self) -> Tone {
        match self {
            PageKind::SignInRequired
            | PageKind::Snapshot
            | PageKind::ScopeNotGranted
            | PageKind::QrSignIn
            | PageKind::OpenInWeChat => Tone::Info,
            PageKind::Declined
            | PageKind::SignInRefused
            | PageKind::StateInvalid
            | PageKind::CallbackUnreadable
            | PageKind::CodeRejected
            | PageKind::WeChatBusy
            | PageKind::WeChatUnreachable
            | PageKind::WeChatTimeout
            | PageKind::Unavailable => Tone::Warn,
            PageKind::WeChatError | PageKind::Misconfigured => Tone::Error,
        }
    }
}

/// The words of a page: a short title, one sentence saying what happened and what to do, and the
/// label of its button (`None`: the sentence is the way forward, as on the snapshot page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageText {
    /// A few words, for `<title>` and the heading.
    pub title: &'static str,
    /// One sentence.
    pub message: &'static str,
    /// The button's label, when the page has a way forward to click.
    pub action: Option<&'static str>,
}

const fn t(title: &'static str, message: &'static str, action: Option<&'static str>) -> PageText {
    PageText {
        title,
        message,
        action,
    }
}

/// `[zh-CN, zh-TW, en]`. An exhaustive match: a new kind does not compile without its words.
fn texts(kind: PageKind) -> [PageText; 3] {
    const RETRY: [Option<&str>; 3] = [Some("重试"), Some("重試"), Some("Try again")];
    const SIGN_IN_AGAIN: [Option<&str>; 3] =
        [Some("重新登录"), Some("重新登入"), Some("Sign in again")];
    match kind {
        PageKind::SignInRequired => [
            t("需要登录", "请使用微信登录后继续。", Some("微信登录")),
            t("需要登入", "請使用微信登入後繼續。", Some("微信登入")),
            t(
                "Sign-in required",
                "Please sign in with WeChat to continue.",
                Some("Sign in with WeChat"),
            ),
        ],
        PageKind::StateInvalid => [
            t("登录已失效", "这个登录链接已失效或已过期，请重新登录。", SIGN_IN_AGAIN[0]),
            t("登入已失效", "這個登入連結已失效或已過期，請重新登入。", SIGN_IN_AGAIN[1]),
            t(
                "Sign-in expired",
                "This sign-in link is invalid or has expired. Please sign in again.",
                SIGN_IN_AGAIN[2],
            ),
        ],
        PageKind::CallbackUnreadable => [
            t("登录失败", "无法读取微信返回的登录信息，请重新登录。", SIGN_IN_AGAIN[0]),
            t("登入失敗", "無法讀取微信傳回的登入資訊，請重新登入。", SIGN_IN_AGAIN[1]),
            t(
                "Sign-in failed",
                "The sign-in answer from WeChat could not be read. Please sign in again.",
                SIGN_IN_AGAIN[2],
            ),
        ],
        PageKind::Declined => [
            t("未授权", "你已拒绝微信授权，授权后才能继续使用。", Some("重新授权")),
            t("未授權", "你已拒絕微信授權，授權後才能繼續使用。", Some("重新授權")),
            t(
                "Not authorized",
                "You declined to sign in with WeChat, which this page needs.",
                Some("Authorize again"),
            ),
        ],
        PageKind::Snapshot => [
            t(
                "当前为预览页",
                "你正在浏览页面快照，请点击屏幕底部的“使用完整服务”，授权后继续。",
                None,
            ),
            t(
                "目前為預覽頁",
                "你正在瀏覽頁面快照，請點擊螢幕底部的「使用完整服務」，授權後繼續。",
                None,
            ),
            t(
                "This is a preview",
                "You are viewing a snapshot of this page: tap “使用完整服务” (Use full service) at \
                 the bottom of the screen and allow sign-in to continue.",
                None,
            ),
        ],
        PageKind::SignInRefused => [
            t("无法登录", "这个微信账号不能登录本网站。", None),
            t("無法登入", "這個微信帳號不能登入本網站。", None),
            t(
                "Sign-in refused",
                "This WeChat account cannot sign in to this site.",
                None,
            ),
        ],
        PageKind::CodeRejected => [
            t("登录失败", "微信未能确认这次登录，请重试。", RETRY[0]),
            t("登入失敗", "微信未能確認這次登入，請重試。", RETRY[1]),
            t(
                "Sign-in failed",
                "WeChat could not confirm this sign-in. Please try again.",
                RETRY[2],
            ),
        ],
        PageKind::ScopeNotGranted => [
            t(
                "需要授权",
                "这个页面需要你的微信昵称和头像，请在授权页点击“允许”。",
                Some("重新授权"),
            ),
            t(
                "需要授權",
                "這個頁面需要你的微信暱稱和頭像，請在授權頁點擊「允許」。",
                Some("重新授權"),
            ),
            t(
                "Permission needed",
                "This page needs your WeChat nickname and avatar: tap “Allow” on the consent page.",
                Some("Authorize again"),
            ),
        ],
        PageKind::WeChatBusy => [
            t("微信繁忙", "微信系统繁忙，请稍后再试。", RETRY[0]),
            t("微信繁忙", "微信系統繁忙，請稍後再試。", RETRY[1]),
            t(
                "WeChat is busy",
                "WeChat is busy right now. Please try again in a moment.",
                RETRY[2],
            ),
        ],
        PageKind::WeChatError => [
            t("登录失败", "微信登录出错了，请稍后再试。", RETRY[0]),
            t("登入失敗", "微信登入出錯了，請稍後再試。", RETRY[1]),
            t(
                "Sign-in failed",
                "WeChat sign-in failed. Please try again later.",
                RETRY[2],
            ),
        ],
        PageKind::WeChatUnreachable => [
            t("无法连接微信", "暂时无法连接微信，请稍后再试。", RETRY[0]),
            t("無法連線微信", "暫時無法連線微信，請稍後再試。", RETRY[1]),
            t(
                "Cannot reach WeChat",
                "WeChat cannot be reached right now. Please try again in a moment.",
                RETRY[2],
            ),
        ],
        PageKind::WeChatTimeout => [
            t("微信响应超时", "微信没有及时响应，请稍后再试。", RETRY[0]),
            t("微信回應逾時", "微信沒有及時回應，請稍後再試。", RETRY[1]),
            t(
                "WeChat is slow",
                "WeChat did not answer in time. Please try again in a moment.",
                RETRY[2],
            ),
        ],
        PageKind::Unavailable => [
            t("暂时无法登录", "登录服务暂时不可用，请稍后再试。", RETRY[0]),
            t("暫時無法登入", "登入服務暫時無法使用，請稍後再試。", RETRY[1]),
            t(
                "Briefly unavailable",
                "Sign-in is briefly unavailable. Please try again in a moment.",
                RETRY[2],
            ),
        ],
        PageKind::Misconfigured => [
            t("服务器错误", "网站的登录配置有误，暂时无法登录。", None),
            t("伺服器錯誤", "網站的登入設定有誤，暫時無法登入。", None),
            t(
                "Server error",
                "Sign-in is unavailable because of a server error.",
                None,
            ),
        ],
        PageKind::QrSignIn => [
            t(
                "微信扫码登录",
                "请使用微信扫描二维码，并在手机上确认登录。",
                Some("二维码无法显示？打开登录页"),
            ),
            t(
                "微信掃碼登入",
                "請使用微信掃描 QR 碼，並在手機上確認登入。",
                Some("QR 碼無法顯示？開啟登入頁"),
            ),
            t(
                "Sign in with WeChat",
                "Scan the QR code with WeChat and confirm on your phone.",
                Some("No QR code? Open the sign-in page"),
            ),
        ],
        PageKind::OpenInWeChat => [
            t(
                "请在微信中打开",
                "请用微信扫描二维码，或复制链接后在微信中打开。",
                Some("在其他设备上用微信登录"),
            ),
            t(
                "請在微信中開啟",
                "請用微信掃描 QR 碼，或複製連結後在微信中開啟。",
                Some("在其他裝置上用微信登入"),
            ),
            t(
                "Open in WeChat",
                "Scan this QR code with WeChat, or copy the link and open it in WeChat.",
                Some("Sign in with WeChat on another device"),
            ),
        ],
    }
}

/// A page the middleware is about to show: what happened and what goes on it. An app's
/// renderer ([`WeChatConfigBuilder::pages`](crate::WeChatConfigBuilder::pages)) gets one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page {
    /// What happened.
    pub kind: PageKind,
    /// The status to answer with.
    pub status: StatusCode,
    /// The visitor's language (negotiated, or the one the app fixed).
    pub lang: Lang,
    /// Where the button goes: the sign-in again, or the page to retry. A same-origin path or the
    /// authorize URL; HTML-escape it.
    pub link: Option<String>,
    /// WeChat's errcode, where showing it helps support.
    pub errcode: Option<i64>,
    /// The crate's machine-readable name of what happened (`invalid_state`, `wechat_error`…), as
    /// in the JSON answers.
    pub code: &'static str,
    /// [`PageKind::QrSignIn`]: the `src` of WeChat's QR frame (`/connect/qrconnect?…&login_type=jssdk…`);
    /// embed it with `sandbox="allow-scripts allow-same-origin allow-top-navigation"`.
    pub qr_frame: Option<String>,
    /// [`PageKind::OpenInWeChat`]: the page's absolute URL, to open in WeChat (QR code, copy).
    pub page_url: Option<String>,
    /// [`PageKind::Misconfigured`] on a developer's machine (the configuration points at an
    /// emulator or has a loopback `public_url`): what to fix, in English. `None` in production,
    /// where visitors see only that sign-in is unavailable.
    pub hint: Option<&'static str>,
}

impl Page {
    /// The words of the crate's default page for this page, in its language.
    pub fn text(&self) -> PageText {
        self.kind.text(self.lang)
    }

    /// The crate's own page: what is answered when the app has no renderer. Renderers call it for
    /// the kinds they leave as they are.
    ///
    /// ```
    /// use actix_wechat_auth::{Lang, Page, PageKind};
    /// let page = Page::new(PageKind::StateInvalid, Lang::ZhCn).with_link("/");
    /// let res = page.default_response();
    /// assert_eq!(res.status(), 400);
    /// ```
    pub fn default_response(&self) -> HttpResponse {
        let nonce = crate::tokens::CsrfState::random();
        let mut csp = format!("{DEFAULT_CSP}; script-src 'nonce-{}'", nonce.as_str());
        if let Some(frame) = &self.qr_frame {
            // WeChat's QR frame is the one thing from elsewhere.
            if let Ok(url) = url::Url::parse(frame) {
                csp.push_str(&format!(
                    "; frame-src {}",
                    url.origin().ascii_serialization()
                ));
            }
        }
        HttpResponse::build(self.status)
            .content_type(header::ContentType::html())
            .insert_header((header::CONTENT_SECURITY_POLICY, csp))
            .body(self.default_html(nonce.as_str()))
    }

    /// A page of `kind` in `lang`, with the kind's status and no link: for renderers' tests and
    /// previews.
    pub fn new(kind: PageKind, lang: Lang) -> Self {
        Self {
            kind,
            status: default_status(kind),
            lang,
            link: None,
            errcode: None,
            code: "",
            qr_frame: None,
            page_url: None,
            hint: None,
        }
    }

    /// The same page with its button pointing at `link`.
    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// The default page's HTML; `nonce` for its one script (the open-in-WeChat copy button).
    fn default_html(&self, nonce: &str) -> String {
        let text = self.text();
        let escape = |s: &str| html_escape::encode_text(s).into_owned();
        let extra = self.extra_html(nonce);
        // On the QR page the link is a fallback, not the way forward: a plain link.
        let class = if self.kind == PageKind::QrSignIn {
            "link"
        } else {
            "btn"
        };
        let action = match (text.action, &self.link) {
            (Some(label), Some(link)) => format!(
                r#"<a class="{class}" id="action" href="{}">{}</a>"#,
                html_escape::encode_double_quoted_attribute(link),
                escape(label)
            ),
            _ => String::new(),
        };
        let hint = self.hint.map_or_else(String::new, |fix| {
            let label = match self.lang {
                Lang::ZhCn => "开发提示",
                Lang::ZhTw => "開發提示",
                Lang::En => "Developer hint",
            };
            format!(
                r#"<p class="hint" id="hint"><b>{label}</b> {}</p>"#,
                escape(fix)
            )
        });
        let detail = match (self.code, self.errcode) {
            ("", None) => String::new(),
            (code, Some(errcode)) => format!(r#"<p class="code">{code} · {errcode}</p>"#),
            (code, None) => format!(r#"<p class="code">{code}</p>"#),
        };
        format!(
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1,viewport-fit=cover\">\
             <meta name=\"color-scheme\" content=\"light dark\"><title>{title}</title>\
             <style>{STYLE}</style></head><body><main class=\"msg\">{icon}\
             <h1>{title}</h1><p class=\"desc\">{message}</p>{hint}{extra}{action}{detail}</main></body></html>",
            lang = html_lang(self.lang),
            title = escape(text.title),
            message = escape(text.message),
            // The sign-in pages show a QR code instead.
            icon = if extra.is_empty() { self.kind.tone().svg() } else { "" },
        )
    }
}

impl Page {
    /// What the two sign-in pages hold besides their words: WeChat's QR frame, or the page's own
    /// QR code with its URL and a copy button.
    fn extra_html(&self, nonce: &str) -> String {
        if let Some(frame) = &self.qr_frame {
            return format!(
                r#"<iframe class="qr" id="qr-frame" src="{}" sandbox="allow-scripts allow-same-origin allow-top-navigation" scrolling="no" title="WeChat QR"></iframe>"#,
                html_escape::encode_double_quoted_attribute(frame)
            );
        }
        let Some(url) = &self.page_url else {
            return String::new();
        };
        let copy = match self.lang {
            Lang::ZhCn => ["复制链接", "已复制"],
            Lang::ZhTw => ["複製連結", "已複製"],
            Lang::En => ["Copy link", "Copied"],
        };
        format!(
            "<div class=\"qr\" id=\"page-qr\">{svg}</div><p class=\"url\" id=\"page-url\">{url}</p>\
             <button class=\"btn secondary\" id=\"copy\" type=\"button\">{label}</button>\
             <script nonce=\"{nonce}\">document.getElementById('copy').addEventListener('click',\
             function(){{var b=this,u=document.getElementById('page-url').textContent;\
             function done(){{b.textContent={copied};}}\
             if(navigator.clipboard){{navigator.clipboard.writeText(u).then(done,function(){{}});}}\
             else{{var r=document.createRange();r.selectNodeContents(document.getElementById('page-url'));\
             var s=getSelection();s.removeAllRanges();s.addRange(r);document.execCommand('copy');done();}}}});\
             </script>",
            svg = qr_svg(url),
            url = html_escape::encode_text(url),
            label = html_escape::encode_text(copy[0]),
            copied = serde_json::to_string(copy[1]).unwrap_or_default(),
        )
    }
}

/// An inline SVG QR code of `text` (no XML declaration, no namespace URL: it is inline HTML).
fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build()
            .split_once("<svg")
            .map(|(_, svg)| format!("<svg role=\"img\" aria-label=\"QR\"{svg}"))
            .unwrap_or_default()
            .replace(r#" xmlns="http://www.w3.org/2000/svg""#, "")
            .replace(r#" xmlns:xlink="http://www.w3.org/1999/xlink""#, ""),
        // Only past QR's capacity (about 2,900 bytes): the URL is shown as text anyway.
        Err(_) => String::new(),
    }
}

/// Shows `page`: the app's renderer or the default page, then the headers that hold whatever
/// renders it: nothing personal (or a `state`) cached, no `Referer` of the URL.
pub(crate) fn show(page: &Page, renderer: Option<&PageRenderer>) -> HttpResponse {
    let mut res = match renderer {
        Some(render) => (render.0)(page),
        None => page.default_response(),
    };
    let headers = res.headers_mut();
    keep_private(headers);
    if matches!(page.kind, PageKind::QrSignIn | PageKind::OpenInWeChat) {
        // Which of these pages a URL answers depends on the browser.
        headers.insert(header::VARY, header::HeaderValue::from_static("User-Agent"));
    }
    res
}

/// What every answer of the middleware's own carries: nothing personal (or a `state`) cached, and
/// no `Referer` of its URL (a callback's code) on what loads next.
pub(crate) fn keep_private(headers: &mut header::HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
}

/// The `lang` attribute of a page in `lang`.
pub(crate) fn html_lang(lang: Lang) -> &'static str {
    match lang {
        Lang::ZhCn => "zh-CN",
        Lang::ZhTw => "zh-TW",
        Lang::En => "en",
    }
}

fn default_status(kind: PageKind) -> StatusCode {
    match kind {
        PageKind::SignInRequired => StatusCode::UNAUTHORIZED,
        PageKind::StateInvalid | PageKind::CallbackUnreadable | PageKind::CodeRejected => {
            StatusCode::BAD_REQUEST
        }
        PageKind::Declined
        | PageKind::Snapshot
        | PageKind::SignInRefused
        | PageKind::ScopeNotGranted => StatusCode::FORBIDDEN,
        PageKind::WeChatBusy | PageKind::WeChatUnreachable | PageKind::Unavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        PageKind::WeChatError => StatusCode::BAD_GATEWAY,
        PageKind::WeChatTimeout => StatusCode::GATEWAY_TIMEOUT,
        PageKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        PageKind::QrSignIn | PageKind::OpenInWeChat => StatusCode::OK,
    }
}

/// How an app renders the crate's pages: see
/// [`WeChatConfigBuilder::pages`](crate::WeChatConfigBuilder::pages).
#[derive(Clone)]
pub(crate) struct PageRenderer(pub(crate) Arc<dyn Fn(&Page) -> HttpResponse + Send + Sync>);

impl fmt::Debug for PageRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PageRenderer(..)")
    }
}

/// Nothing from elsewhere: the style is inline, the icon an inline SVG.
const DEFAULT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                           base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(Clone, Copy)]
enum Tone {
    Info,
    Warn,
    Error,
}

impl Tone {
    fn svg(self) -> &'static str {
        match self {
            Tone::Info => concat!(
                r##"<svg class="icon" viewBox="0 0 64 64" aria-hidden="true"><circle cx="32" cy="32" r="32" fill="#10aeff"/>"##,
                r##"<rect x="29" y="27" width="6" height="22" rx="3" fill="#fff"/><circle cx="32" cy="18" r="3.6" fill="#fff"/></svg>"##
            ),
            Tone::Warn => concat!(
                r##"<svg class="icon" viewBox="0 0 64 64" aria-hidden="true"><circle cx="32" cy="32" r="32" fill="#fa9d3b"/>"##,
                r##"<rect x="29" y="14" width="6" height="24" rx="3" fill="#fff"/><circle cx="32" cy="47" r="3.6" fill="#fff"/></svg>"##
            ),
            Tone::Error => concat!(
                r##"<svg class="icon" viewBox="0 0 64 64" aria-hidden="true"><circle cx="32" cy="32" r="32" fill="#fa5151"/>"##,
                r##"<rect x="29" y="14" width="6" height="24" rx="3" fill="#fff"/><circle cx="32" cy="47" r="3.6" fill="#fff"/></svg>"##
            ),
        }
    }
}

/// WeUI's message page: white, centred, 17 px body text, the green primary button; dark when
/// the phone is; readable from 320 px.
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#fff;--fg:rgba(0,0,0,.9);--desc:rgba(0,0,0,.55);\
--code:rgba(0,0,0,.3);--btn:#07c160;--btn-active:#06ad56}\
@media (prefers-color-scheme:dark){:root{--bg:#191919;--fg:rgba(255,255,255,.8);\
--desc:rgba(255,255,255,.5);--code:rgba(255,255,255,.3);--btn:#07c160;--btn-active:#06ad56}}\
*{box-sizing:border-box}\
html,body{margin:0;background:var(--bg);color:var(--fg);\
font:17px/1.4 -apple-system,BlinkMacSystemFont,\"PingFang SC\",\"Helvetica Neue\",\
\"Microsoft YaHei\",\"WenQuanYi Micro Hei\",sans-serif;-webkit-text-size-adjust:100%}\
.msg{max-width:480px;margin:0 auto;padding:48px 24px calc(24px + env(safe-area-inset-bottom));\
text-align:center}\
.icon{width:64px;height:64px;margin:0 auto 32px;display:block}\
h1{font-size:22px;font-weight:500;margin:0 0 12px;overflow-wrap:anywhere}\
.desc{font-size:17px;color:var(--desc);margin:0 0 40px;overflow-wrap:anywhere}\
.btn{display:block;width:fit-content;min-width:184px;max-width:100%;margin:0 auto;padding:12px 24px;border-radius:8px;\
background:var(--btn);color:#fff;font-size:17px;font-weight:500;text-decoration:none;\
-webkit-tap-highlight-color:transparent}\
.btn:active{background:var(--btn-active)}\
.code{margin:32px 0 0;font-size:12px;color:var(--code)}\
.hint{margin:24px 0 0;padding:12px;border-radius:8px;background:#fff4e5;color:#8a4b00;font-size:14px;text-align:left;word-break:break-word}\
.link{font-size:14px;color:#576b95;text-decoration:none}\
.qr{display:block;margin:0 auto 24px;width:300px;max-width:100%;height:400px;border:0;overflow:hidden}\
div.qr{width:220px;height:auto;padding:8px;background:#fff;border-radius:8px}\
div.qr svg{display:block;width:100%;height:auto}\
.url{font-size:14px;color:var(--desc);overflow-wrap:anywhere;margin:0 0 16px}\
.btn.secondary{background:rgba(0,0,0,.05);color:#06ae56;margin-bottom:16px;border:0;font-family:inherit}\
@media (prefers-color-scheme:dark){.btn.secondary{background:rgba(255,255,255,.08)}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_words_in_every_language_and_its_status() {
        for kind in PageKind::ALL {
            let mut titles = Vec::new();
            for lang in [Lang::ZhCn, Lang::ZhTw, Lang::En] {
                let text = kind.text(lang);
                assert!(
                    !text.title.is_empty() && !text.message.is_empty(),
                    "{kind:?}"
                );
                let html = Page::new(kind, lang).with_link("/x").default_html("n");
                assert!(html.contains(&format!("lang=\"{}\"", html_lang(lang))));
                assert!(html.contains(&*html_escape::encode_text(text.message)));
                titles.push(text.title);
            }
            assert!(titles[0] != titles[2], "{kind:?}: English is not Chinese");
            assert_eq!(Page::new(kind, Lang::En).status, default_status(kind));
        }
        let html = Page::new(PageKind::StateInvalid, Lang::ZhCn)
            .with_link("/a?\"><script>")
            .default_html("n");
        assert!(
            !html.contains("<script>") && html.contains("重新登录"),
            "{html}"
        );
        assert!(!html.contains("http"), "no external request: {html}");
    }
}
