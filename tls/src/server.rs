//! The `wss_server` example's parts: a self-signed certificate, the TLS
//! settings, and the echo loop for one accepted connection.

use crate::Tls;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};
use sansproto::blocking;
use sansproto::ws::{CloseCode, Config, Connection, DeflateConfig, Event};
use std::io;
use std::net::TcpStream;
use std::sync::Arc;

/// A self-signed certificate for `names` (DNS names or IP addresses), its
/// private key, and the certificate as PEM.
pub fn self_signed(
    names: &[&str],
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>, String), rcgen::Error> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    Ok((
        certified.cert.der().clone(),
        key.into(),
        certified.cert.pem(),
    ))
}

/// TLS settings for a server presenting `cert` (ring as the crypto provider).
pub fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok(Arc::new(config))
}

/// Serves one accepted TCP connection: TLS, then a WebSocket that echoes
/// every message until the client closes.
pub fn serve(mut stream: TcpStream, tls_config: Arc<ServerConfig>) -> io::Result<()> {
    let session = ServerConnection::new(tls_config).map_err(io::Error::other)?;
    let config = Config::default()
        .with_max_message_size(16 << 20)
        .with_deflate(DeflateConfig::default());
    let mut machine = Tls::new(session, Connection::server(config));
    blocking::drive(&mut stream, &mut machine, |machine, event| {
        let conn = machine.inner_mut();
        match event {
            Event::HttpRequest(_) => {
                let _ = conn.send_http_response(
                    426,
                    "Upgrade Required",
                    &[("Upgrade", "websocket")],
                    b"this is a WebSocket endpoint\n",
                );
            }
            Event::Message(m) => {
                let refused = conn.send(m).is_err();
                if refused {
                    let _ = conn.close(CloseCode::POLICY_VIOLATION, "send queue full");
                }
            }
            _ => {}
        }
    })
    .map(drop)
}
