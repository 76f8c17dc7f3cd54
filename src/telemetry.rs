//! The numbers an operator watches, through the [`metrics`] facade: free until the app installs a recorder.

use std::time::Duration;

use crate::config::AppKind;

/// Counter: callbacks, by `flow` (`official_account`, `website`, `unknown` when the `state` named
/// no sign-in of this browser) and `outcome` (`signed_in`, `already_signed_in`, `restarted`, or
/// the error's code: `access_denied`, `invalid_state`, `wechat_error`…).
const SIGN_INS: &str = "wechat_auth_sign_ins_total";
/// Counter: attempts of calls to WeChat's sns API, by `endpoint` (`access_token`,
/// `refresh_token`, `userinfo`, `auth`) and `errcode` (`0`, WeChat's errcode, or `timeout`,
/// `unreachable`, `http_status`, `too_large`, `malformed`).
const UPSTREAM_CALLS: &str = "wechat_auth_upstream_calls_total";
/// Histogram: seconds an attempt took, by `endpoint`.
const UPSTREAM_SECONDS: &str = "wechat_auth_upstream_seconds";
/// Counter: token refreshes, by `by`: `made` (this request called WeChat) or `shared` (it got
/// the answer of a concurrent one, or of one just made).
pub(crate) const REFRESHES: &str = "wechat_auth_refreshes_total";
/// Counter: `/sns/auth` checks, by `by` (`made` or `shared`), like refreshes.
pub(crate) const CHECKS: &str = "wechat_auth_checks_total";

/// One callback's outcome.
pub(crate) fn sign_in(app: Option<AppKind>, outcome: &'static str) {
    let flow = app.map_or("unknown", AppKind::as_str);
    metrics::counter!(SIGN_INS, "flow" => flow, "outcome" => outcome).increment(1);
}

/// One attempt of an upstream call.
pub(crate) fn upstream_call(endpoint: &'static str, errcode: String, took: Duration) {
    metrics::counter!(UPSTREAM_CALLS, "endpoint" => endpoint, "errcode" => errcode).increment(1);
    metrics::histogram!(UPSTREAM_SECONDS, "endpoint" => endpoint).record(took.as_secs_f64());
}

/// One refresh or check that a request needed: made or shared.
pub(crate) fn upkeep(name: &'static str, made: bool) {
    let by = if made { "made" } else { "shared" };
    metrics::counter!(name, "by" => by).increment(1);
}
