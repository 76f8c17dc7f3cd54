//! The rustdoc example of `WeChatConfigBuilder::pages` with a template engine (minijinja), shown
//! there as `ignore` and compiled and run here instead.

#[test]
fn a_template_engine_renders_every_page() -> Result<(), Box<dyn std::error::Error>> {
    use actix_web::HttpResponse;
    use actix_wechat_auth::{Lang, Page, PageKind, WeChatConfig};

    let mut templates = minijinja::Environment::new();
    templates.add_template(
        "page",
        r#"<!doctype html><html lang="{{ lang }}"><title>{{ title }}</title>
    <body class="shop"><h1>{{ title }}</h1><p>{{ message }}</p>
    {% if link and action %}<a class="shop-btn" href="{{ link }}">{{ action }}</a>{% endif %}"#,
    )?;
    let render = move |page: &Page| {
        let text = page.text();
        let lang = match page.lang {
            Lang::En => "en",
            Lang::ZhTw => "zh-TW",
            _ => "zh-CN",
        };
        let html = templates.get_template("page").and_then(|t| {
            t.render(minijinja::context! {
                lang, title => text.title, message => text.message,
                action => text.action, link => page.link,
            })
        });
        match html {
            Ok(html) => HttpResponse::build(page.status)
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(_) => page.default_response(),
        }
    };
    let page = Page::new(PageKind::StateInvalid, Lang::ZhCn).with_link("/");
    let res = render(&page);
    assert_eq!(res.status(), 400);
    let config = WeChatConfig::builder("wx1234", "secret")
        .public_url("https://h5.example.com")
        .pages(render)
        .build()?;
    assert_eq!(config.appid(), "wx1234");
    Ok(())
}
