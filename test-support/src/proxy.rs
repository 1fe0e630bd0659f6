//! A TCP proxy in front of a real component, to cut it off from the autoscaler (as a network
//! partition or a crashed process behind its Service would) while it keeps running for
//! everything else, or to answer HTTP garbage in its place.

use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the upstream.
    Forward,
    /// Close every connection at once, open ones included.
    Cut,
    /// Answer every HTTP request with a 200 whose body is not JSON.
    Garbage,
}

/// A running proxy; it stops with the test's runtime.
pub struct Proxy {
    /// `host:port` to point the autoscaler at.
    pub address: String,
    mode: Arc<Mutex<(Mode, u64)>>,
}

impl Proxy {
    /// Starts forwarding a local port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // The mode and a generation: a change of mode ends the connections of the last.
        let mode = Arc::new(Mutex::new((Mode::Forward, 0u64)));
        let shared = mode.clone();
        let upstream = upstream.to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (mode, generation) = *shared.lock().unwrap();
                let shared = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    serve(client, mode, generation, shared, &upstream).await;
                });
            }
        });
        Proxy { address, mode }
    }

    /// Switches the mode; open connections are closed.
    pub fn set(&self, mode: Mode) {
        let mut current = self.mode.lock().unwrap();
        *current = (mode, current.1 + 1);
    }
}

async fn serve(
    mut client: TcpStream,
    mode: Mode,
    generation: u64,
    shared: Arc<Mutex<(Mode, u64)>>,
    upstream: &str,
) {
    match mode {
        Mode::Cut => {}
        Mode::Garbage => {
            let mut request = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut client, &mut request).await;
            let body = "<html>surprise</html>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
        }
        Mode::Forward => {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let changed = async {
                while shared.lock().unwrap().1 == generation {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = changed => {}
            }
        }
    }
}
