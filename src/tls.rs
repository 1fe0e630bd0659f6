//! A TLS handshake on its own, to tell why a connection failed when the client that failed
//! keeps only "transport error" (the Pravega controller client): a certificate refused, no TLS
//! on the port, or TLS where plain text was expected.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// What a handshake with a server showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// It completed: the server speaks TLS and its certificate is trusted.
    Completed,
    /// The server speaks TLS but its certificate was refused (or it refused ours): why.
    Refused(String),
    /// The server does not speak TLS on this port: what came back.
    NotTls(String),
    /// No connection, or no answer in time: why.
    NoConnection(String),
}

/// A TLS handshake with `host:port` offering ALPN `h2` (as gRPC does), trusting the CAs in
/// `ca_pem` (none: any server that shows a certificate is [`Handshake::Refused`], which still
/// tells that it speaks TLS).
pub async fn handshake(host: &str, port: u16, ca_pem: &[u8], timeout: Duration) -> Handshake {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem).flatten() {
        // A certificate rustls cannot use is left out, as the clients would.
        let _ = roots.add(certificate);
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return Handshake::Refused(format!("{host:?} is not a host name TLS can verify"));
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| Handshake::NoConnection(e.to_string()))?;
        connector.connect(name, tcp).await.map_err(|e| {
            let text = crate::http::error_chain(&e);
            let refused = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
                .is_some_and(|e| {
                    matches!(
                        e,
                        tokio_rustls::rustls::Error::InvalidCertificate(_)
                            | tokio_rustls::rustls::Error::AlertReceived(_)
                    )
                });
            if refused {
                Handshake::Refused(text)
            } else {
                Handshake::NotTls(text)
            }
        })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(_)) => Handshake::Completed,
        Ok(Err(outcome)) => outcome,
        Err(_) => Handshake::NoConnection(format!("no handshake within {timeout:?}")),
    }
}
