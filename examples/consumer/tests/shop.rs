//! The shop's tests: a protected page and a 401 API over real HTTP, and a handler unit test.

use actix_web::{body::to_bytes, cookie::Key};
use actix_wechat_auth::emulator::{EmulatedUser, Emulator};
use actix_wechat_auth::testing::{FakeUser, TestApp, TestClient};

#[actix_web::test]
async fn account_page_and_orders_api() {
    let emu = Emulator::start().unwrap();
    let openid = emu.add_user(EmulatedUser::new("小明"));
    let key = Key::generate();
    let app = TestApp::start(emu.config(), move |wechat| shop::app(wechat, key.clone()));
    let wechat = TestClient::wechat();
    assert_eq!(wechat.get_json(&app.url("/api/orders")).await.status, 401);
    wechat.sign_in(&app.url("/account"), &openid).await;
    let page = wechat.get(&app.url("/account")).await;
    assert!(page.body.contains("你好，小明"));
    let orders = wechat.get_json(&app.url("/api/orders")).await.json();
    assert_eq!(orders["openid"], openid.as_str());
}

#[actix_web::test]
async fn account_greets_by_nickname() {
    let user = FakeUser::new("o1").nickname("<小红>").build();
    let page = to_bytes(shop::account(user).await.into_body()).await;
    assert!(String::from_utf8_lossy(&page.unwrap()).contains("你好，&lt;小红&gt;"));
}
