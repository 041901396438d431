//! A loopback TCP port for the programs a drill starts (the application, a migration command),
//! forwarded to a sandboxed target's Unix socket. The target itself has no network: this port
//! lives in pgdrill, on 127.0.0.1, only while the drill runs.
//!
//! The socket trusts `postgres`, which only pgdrill reaches through its private folder; every
//! other role must give its password. Anyone on the machine can reach a loopback port, so the
//! bridge reads each connection's startup packet and refuses the trusted role before anything
//! reaches the server: through the port, every login needs a password.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::task::JoinSet;

/// PostgreSQL's limit on a startup packet.
const MAX_STARTUP: usize = 10_000;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
const PROTOCOL_3: u32 = 196_608;

/// The open port; closed, with every connection through it, when dropped.
pub(crate) struct Bridge {
    pub port: u16,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Opens a port on 127.0.0.1 that forwards to the server socket `socket` (its folder and port, as
/// libpq names it), refusing logins as `trusted`.
pub(crate) async fn open(socket_dir: &Path, port: u16, trusted: &str) -> std::io::Result<Bridge> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let local = listener.local_addr()?.port();
    let socket = socket_dir.join(format!(".s.PGSQL.{port}"));
    let accept = tokio::spawn(serve(listener, socket, trusted.to_owned()));
    Ok(Bridge { port: local, accept })
}

/// Forwards every connection `listener` accepts to the server socket `socket`, refusing logins
/// as `trusted`; also the body of a kept target's forwarder ([`super::kept`]).
pub(crate) async fn serve(listener: TcpListener, socket: PathBuf, trusted: String) {
    // Connections live in this set: dropping the future ends them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(forward(client, socket.clone(), trusted.clone()));
                }
                Err(e) => tracing::warn!("the programs' port stopped accepting: {e}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What the first packets of a connection ask for.
#[derive(Debug, PartialEq, Eq)]
enum Opening {
    /// A startup packet, whole, and the role it names.
    Startup { packet: Vec<u8>, user: Option<String> },
    /// A cancel request, whole (it carries a secret key, not a login).
    Cancel(Vec<u8>),
}

async fn forward(mut client: TcpStream, socket: PathBuf, trusted: String) {
    let opening = match read_opening(&mut client).await {
        Ok(opening) => opening,
        Err(e) => {
            tracing::debug!("the programs' port dropped a connection: {e}");
            return;
        }
    };
    let packet = match opening {
        Opening::Startup { user, .. } if user.as_deref() == Some(trusted.as_str()) || user.is_none() => {
            let message = format!(
                "pgdrill: role \"{}\" may not connect through the port for programs; use the credentials pgdrill gave the program",
                user.unwrap_or_default()
            );
            let _ = client.write_all(&error_response("28000", &message)).await;
            return;
        }
        Opening::Startup { packet, .. } | Opening::Cancel(packet) => packet,
    };
    let Ok(mut server) = UnixStream::connect(&socket).await else { return };
    if server.write_all(&packet).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}

/// Reads until the startup packet (answering SSL and GSS encryption requests with "no", as a
/// server without them does) or a cancel request.
async fn read_opening(client: &mut TcpStream) -> std::io::Result<Opening> {
    for _ in 0..3 {
        let length = client.read_u32().await? as usize;
        if !(8..=MAX_STARTUP).contains(&length) {
            return Err(std::io::Error::other(format!("a startup packet of {length} bytes")));
        }
        let mut packet = vec![0u8; length];
        packet[..4].copy_from_slice(&(length as u32).to_be_bytes());
        client.read_exact(&mut packet[4..]).await?;
        match parse_opening(&packet)? {
            Some(opening) => return Ok(opening),
            None => client.write_all(b"N").await?,
        }
    }
    Err(std::io::Error::other("too many encryption requests"))
}

/// Parses one opening packet (its length included); `None` for an encryption request.
fn parse_opening(packet: &[u8]) -> std::io::Result<Option<Opening>> {
    let code = u32::from_be_bytes(packet.get(4..8).and_then(|b| b.try_into().ok()).unwrap_or_default());
    match code {
        SSL_REQUEST | GSSENC_REQUEST => Ok(None),
        CANCEL_REQUEST => Ok(Some(Opening::Cancel(packet.to_vec()))),
        PROTOCOL_3 => {
            let mut fields = packet[8..].split(|b| *b == 0);
            let mut user = None;
            while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
                if key == b"user" {
                    user = Some(String::from_utf8_lossy(value).into_owned());
                }
            }
            Ok(Some(Opening::Startup { packet: packet.to_vec(), user }))
        }
        other => Err(std::io::Error::other(format!("an unknown startup code {other}"))),
    }
}

/// A FATAL ErrorResponse message.
fn error_response(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', message)] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = PROTOCOL_3.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut packet = (body.len() as u32 + 4).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        packet
    }

    #[test]
    fn the_role_is_read_from_the_startup_packet() {
        let packet = startup(&[("database", "plur"), ("user", "plur_app"), ("application_name", "x")]);
        assert_eq!(
            parse_opening(&packet).unwrap(),
            Some(Opening::Startup { packet: packet.clone(), user: Some("plur_app".into()) })
        );
        let packet = startup(&[("database", "user")]);
        assert!(matches!(parse_opening(&packet).unwrap(), Some(Opening::Startup { user: None, .. })));
    }

    #[test]
    fn encryption_requests_and_cancels() {
        let ssl = [0, 0, 0, 8, 4, 210, 22, 47];
        assert_eq!(parse_opening(&ssl).unwrap(), None);
        let mut cancel = vec![0, 0, 0, 16];
        cancel.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
        cancel.extend_from_slice(&[0; 8]);
        assert!(matches!(parse_opening(&cancel).unwrap(), Some(Opening::Cancel(_))));
        let mut odd = vec![0, 0, 0, 8];
        odd.extend_from_slice(&7u32.to_be_bytes());
        assert!(parse_opening(&odd).is_err());
    }

    #[test]
    fn the_refusal_is_a_well_formed_error() {
        let msg = error_response("28000", "no");
        assert_eq!(msg[0], b'E');
        assert_eq!(u32::from_be_bytes(msg[1..5].try_into().unwrap()) as usize, msg.len() - 1);
        assert!(msg.ends_with(b"no\0\0"));
    }
}
