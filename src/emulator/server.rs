//! Starting and stopping the server thread, and the route table.

use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};

use super::state::{Config, Shared};
use super::{authorize, control, qrconnect, sns, Emulator, EmulatorBuilder};

/// How long `Drop` waits for the server thread to finish.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How long idle keep-alive connections stay open.
const KEEP_ALIVE: Duration = Duration::from_secs(75);

pub(crate) fn start(builder: EmulatorBuilder) -> io::Result<Emulator> {
    let listener = TcpListener::bind(builder.bind)?;
    let local = listener.local_addr()?;
    let port = local.port();
    let api_host = match local.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let api_base = format!("http://{api_host}:{port}");
    let open_base = format!("http://{}:{port}", builder.host_name);
    let config = Config {
        appid: builder.appid,
        secret: builder.secret,
        web_appid: builder.web_appid,
        web_secret: builder.web_secret,
        open_base,
        auto_approve: builder.auto_approve,
        access_token_ttl: builder.access_token_ttl,
        refresh_token_ttl: builder.refresh_token_ttl,
        code_ttl: builder.code_ttl,
        rotate_refresh_token: builder.rotate_refresh_token,
        redirect_domain: builder.redirect_domain,
        open_platform_bound: builder.open_platform_bound,
    };
    let shared = Arc::new(Shared::new(config));
    let workers = builder.workers.max(1);

    let for_server = Arc::clone(&shared);
    let (server, thread) = spawn(format!("wechat-emulator-{port}"), move || {
        serve(listener, for_server, workers)
    })?;
    log::info!(
        "wechat emulator listening on {local} (open base {}, api base {api_base})",
        shared.config.open_base
    );
    Ok(Emulator {
        shared,
        server,
        thread: Some(thread),
        port,
        api_base,
    })
}

/// Runs the server `build` makes on a thread of its own, in its own actix system, until stopped:
/// so that it can be started from synchronous code and from inside any runtime alike.
pub(crate) fn spawn<B>(name: String, build: B) -> io::Result<(ServerHandle, JoinHandle<()>)>
where
    B: FnOnce() -> io::Result<Server> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel::<io::Result<ServerHandle>>(1);
    let thread = thread::Builder::new().name(name).spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = match build() {
                Ok(server) => server,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            if tx.send(Ok(server.handle())).is_err() {
                return;
            }
            if let Err(e) = server.await {
                log::error!("server error: {e}");
            }
        });
    })?;
    match rx.recv() {
        Ok(Ok(handle)) => Ok((handle, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other("the server thread exited"))
        }
    }
}

/// The emulator's `HttpServer` on `listener`.
fn serve(listener: TcpListener, shared: Arc<Shared>, workers: usize) -> io::Result<Server> {
    let data = web::Data::from(Arc::clone(&shared));
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(1)
        // Longer than client pools keep idle connections (awc: 15 s), so that the client closes
        // first and never reuses a connection the server is closing.
        .keep_alive(KEEP_ALIVE)
        .on_connect(move |_, _| shared.connection_accepted())
        .listen(listener)?;
    Ok(server.run())
}

/// Stops the server at once and waits (bounded) for its thread.
pub(crate) fn stop(server: &ServerHandle, thread: Option<JoinHandle<()>>) {
    // `stop` sends the command immediately; the returned future only waits for completion.
    drop(server.stop(false));
    let Some(thread) = thread else { return };
    let deadline = Instant::now() + STOP_WAIT;
    while !thread.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    if thread.is_finished() {
        let _ = thread.join();
    } else {
        log::warn!("the server thread did not stop within {STOP_WAIT:?}");
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/connect/oauth2/authorize").route(web::get().to(authorize::authorize)),
    )
    .service(
        web::resource("/connect/oauth2/authorize/confirm")
            .route(web::get().to(authorize::confirm))
            .route(web::post().to(authorize::confirm)),
    )
    .configure(sns::routes)
    .service(web::resource("/_emulator/login").route(web::get().to(authorize::login)))
    .service(web::resource("/connect/qrconnect").route(web::get().to(qrconnect::page)))
    .service(web::resource("/connect/qrconnect/confirm").route(web::get().to(qrconnect::confirm)))
    .service(web::resource("/_emulator/avatar/{n}/{size}").route(web::get().to(authorize::avatar)))
    .service(
        web::resource("/_emulator/users")
            .route(web::get().to(control::list_users))
            .route(web::post().to(control::add_user)),
    )
    .service(
        web::resource("/_emulator/expire-access-tokens")
            .route(web::post().to(control::expire_access_tokens)),
    )
    .service(
        web::resource("/_emulator/expire-refresh-tokens")
            .route(web::post().to(control::expire_refresh_tokens)),
    )
    .service(
        web::resource("/_emulator/faults")
            .route(web::post().to(control::inject_fault))
            .route(web::delete().to(control::clear_faults)),
    )
    .service(
        web::resource("/_emulator/calls")
            .route(web::get().to(control::calls))
            .route(web::delete().to(control::reset_calls)),
    )
    .service(web::resource("/_emulator/stats").route(web::get().to(control::stats)))
    .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("not found (WeChat emulator)")
}
