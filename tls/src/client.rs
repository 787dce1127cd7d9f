//! The `wss_client` example's parts: the TLS settings, and one session
//! (directly or through a CONNECT proxy) that sends messages and a ping and
//! reports what came back.

use crate::Tls;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use sansproto::blocking;
use sansproto::ws::proxy::{
    ProxiedClient, ProxiedEvent, Proxy, ProxyConfig, ProxyEvent, ProxyRequest,
};
use sansproto::ws::{
    ClientRequest, CloseCode, Closed, Config, Connection, DeflateConfig, Event, HttpResponse,
    Message,
};
use std::io;
use std::net::TcpStream;
use std::sync::Arc;

/// TLS settings for a client that trusts only `roots` (ring as the crypto
/// provider).
pub fn client_config(
    roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What a session saw.
#[derive(Debug, Default)]
pub struct Report {
    /// The negotiated extension (permessage-deflate when the server agreed).
    pub extension: Option<String>,
    /// The messages that came back, in order.
    pub echoes: Vec<Message>,
    /// True when the pong answering our ping came back.
    pub pong: bool,
    /// How the connection ended.
    pub closed: Option<Closed>,
    /// The proxy's refusal, when it refused the tunnel.
    pub refused: Option<HttpResponse>,
    /// Why TLS failed, if it did (a certificate the roots do not vouch for).
    pub tls_error: Option<rustls::Error>,
}

/// The application: sends `messages` and a ping once open, closes once
/// every echo and the pong are back.
struct Session {
    messages: Vec<Message>,
    report: Report,
}

impl Session {
    fn on_event(&mut self, conn: &mut Connection, event: Event) {
        match event {
            Event::Open(opened) => {
                self.report.extension = opened.extension;
                for m in &self.messages {
                    let _ = conn.send(m.clone());
                }
                let _ = conn.ping("wss_client");
            }
            Event::Message(m) => self.report.echoes.push(m),
            Event::Pong { matched: true, .. } => self.report.pong = true,
            Event::Closed(c) => self.report.closed = Some(c),
            _ => {}
        }
        let done = self.report.pong && self.report.echoes.len() == self.messages.len();
        if done && conn.is_open() {
            let _ = conn.close(CloseCode::NORMAL, "bye");
        }
    }
}

/// Runs one session on `stream` (connected to the server, or to the proxy
/// when `proxy_url` is given) against the `wss://` `url`.
pub fn run(
    mut stream: TcpStream,
    tls_config: Arc<ClientConfig>,
    url: &str,
    proxy_url: Option<&str>,
    messages: Vec<Message>,
) -> io::Result<Report> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let request = ClientRequest::from_url(url).map_err(|e| invalid(e.to_string()))?;
    let target = sansproto::ws::proxy::websocket_target(url).map_err(|e| invalid(e.to_string()))?;
    let host = match target.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => &target,
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(e.to_string()))?;
    let session = ClientConnection::new(tls_config, name).map_err(io::Error::other)?;
    let config = Config::default().with_deflate(DeflateConfig::default());
    let conn = Connection::client(config, request).map_err(|e| invalid(e.to_string()))?;
    let machine = Tls::new(session, conn);
    let mut app = Session {
        messages,
        report: Report::default(),
    };
    match proxy_url {
        None => {
            let mut machine = machine;
            blocking::drive(&mut stream, &mut machine, |m, event| {
                app.on_event(m.inner_mut(), event)
            })?;
            app.report.tls_error = machine.error().cloned();
        }
        Some(proxy_url) => {
            let proxy_request = ProxyRequest::from_url(proxy_url, target.clone())
                .map_err(|e| invalid(e.to_string()))?;
            let proxy = Proxy::new(proxy_request, ProxyConfig::default())
                .map_err(|e| invalid(e.to_string()))?;
            let mut machine = ProxiedClient::chain(proxy, machine);
            blocking::drive(&mut stream, &mut machine, |m, event| match event {
                ProxiedEvent::Ws(event) => app.on_event(m.connection_mut().inner_mut(), event),
                ProxiedEvent::Proxy(ProxyEvent::Refused(r)) => app.report.refused = Some(r),
                ProxiedEvent::Proxy(_) => {}
            })?;
            app.report.tls_error = machine.connection().error().cloned();
        }
    }
    Ok(app.report)
}
