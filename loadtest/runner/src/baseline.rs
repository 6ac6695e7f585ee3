//! The bare-tokio fan-out baseline of `fanout --compare`: the least a server can do to deliver
//! one frame to N loopback WebSocket sockets, measured beside GAD in the same run.
//!
//! `gad-load baseline-server` (started by the runner as a child process, so that it has file
//! descriptors and threads of its own, like GAD) accepts WebSocket upgrades on 127.0.0.1, answers
//! each with `connection_ack` and `subscribed` (so that the runner's own handshake code opens
//! them), and then only writes: for every `event` line on its standard input it takes the clock,
//! encodes one text frame of the requested size with that instant as `ts`, and writes the same
//! bytes to every socket, one `write` per socket, in a loop per writer task. Nothing else: no
//! per-socket task on the write path, no queue, no JSON per socket. What the client measures
//! from that `ts` is the kernel's loopback send and receive plus the client itself.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The hidden `baseline-server` subcommand.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Writer tasks per event; the sockets are divided among them.
    #[arg(long, default_value_t = 1)]
    writers: usize,
}

/// The open sockets' write halves, by id (a socket leaves when its client closes it).
type Sockets = Arc<Mutex<Vec<(u64, OwnedWriteHalf)>>>;

/// Runs the server: prints its port on standard output, then serves until standard input closes.
pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", listener.local_addr()?.port())?;
    stdout.flush()?;
    drop(stdout);
    let sockets: Sockets = Arc::default();
    let next_id = Arc::new(AtomicU64::new(0));
    let accepting = {
        let sockets = Arc::clone(&sockets);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(upgrade(stream, id, Arc::clone(&sockets)));
            }
        })
    };
    let (commands, mut received) = mpsc::channel::<String>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if commands.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = received.recv().await {
        // `event <seq> <id> <payload bytes>`
        let mut words = line.split_whitespace().skip(1);
        let (Some(seq), Some(id), Some(bytes)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let (Ok(seq), Ok(bytes)) = (seq.parse::<i64>(), bytes.parse::<usize>()) else { continue };
        write_to_all(&sockets, args.writers.max(1), seq, id, bytes).await;
    }
    accepting.abort();
    Ok(())
}

/// Answers the upgrade and the protocol's two greetings, then registers the socket for writes;
/// its read half is drained (and the socket unregistered when the client closes it).
async fn upgrade(stream: TcpStream, id: u64, sockets: Sockets) {
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let mut request = Vec::with_capacity(1024);
    let mut buffer = [0u8; 4096];
    let key = loop {
        let Ok(read_now) = read.read(&mut buffer).await else { return };
        if read_now == 0 || request.len() > 16 * 1024 {
            return;
        }
        request.extend_from_slice(&buffer[..read_now]);
        if request.windows(4).any(|window| window == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&request);
            let Some(key) = text.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
            }) else {
                return;
            };
            break key;
        }
    };
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes();
    response.extend(text_frame(br#"{"type":"connection_ack","data":{}}"#));
    response.extend(text_frame(br#"{"type":"subscribed","topics":["tasks"],"data":{}}"#));
    {
        // Registered under the lock that writes events, so that no event falls between the
        // client's `subscribed` and the registration.
        let mut registered = sockets.lock().await;
        if write.write_all(&response).await.is_err() {
            return;
        }
        registered.push((id, write));
    }
    while matches!(read.read(&mut buffer).await, Ok(read_now) if read_now > 0) {}
    sockets.lock().await.retain(|(registered, _)| *registered != id);
}

/// One event: the clock is taken, the frame encoded once, and the same bytes written to every
/// socket by `writers` tasks.
async fn write_to_all(sockets: &Sockets, writers: usize, seq: i64, id: &str, bytes: usize) {
    let mut registered = sockets.lock().await;
    let frame: Arc<[u8]> = text_frame(&payload(OffsetDateTime::now_utc(), seq, id, bytes)).into();
    if writers == 1 {
        for (_, socket) in registered.iter_mut() {
            let _ = socket.write_all(&frame).await;
        }
        return;
    }
    let all = std::mem::take(&mut *registered);
    let share = all.len().div_ceil(writers).max(1);
    let mut groups: Vec<Vec<(u64, OwnedWriteHalf)>> = Vec::with_capacity(writers);
    let mut rest = all.into_iter();
    loop {
        let group: Vec<_> = rest.by_ref().take(share).collect();
        if group.is_empty() {
            break;
        }
        groups.push(group);
    }
    let tasks: Vec<_> = groups
        .into_iter()
        .map(|mut group| {
            let frame = Arc::clone(&frame);
            tokio::spawn(async move {
                for (_, socket) in &mut group {
                    let _ = socket.write_all(&frame).await;
                }
                group
            })
        })
        .collect();
    for task in tasks {
        if let Ok(group) = task.await {
            registered.extend(group);
        }
    }
}

/// A `task.created`-shaped message of exactly `bytes` bytes when that is at least its minimum.
fn payload(ts: OffsetDateTime, seq: i64, id: &str, bytes: usize) -> Vec<u8> {
    let ts = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        ts.year(),
        u8::from(ts.month()),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second(),
        ts.microsecond()
    );
    let message = |pad: &str| {
        format!(
            r#"{{"type":"task.created","id":"00000000-0000-7000-8000-{seq:012}","ts":"{ts}","topic":"tasks","seq":{seq},"data":{{"id":"{id}","pad":"{pad}"}}}}"#
        )
    };
    let bare = message("");
    let pad = "x".repeat(bytes.saturating_sub(bare.len()));
    message(&pad).into_bytes()
}

/// An unmasked final text frame (RFC 6455 §5.2).
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x81);
    match payload.len() {
        len @ 0..=125 => frame.push(len as u8),
        len @ 126..=0xffff => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// The baseline server as the runner drives it; killed when dropped.
pub struct Baseline {
    child: Child,
    commands: ChildStdin,
    pub base: String,
}

impl Baseline {
    /// Starts `gad-load baseline-server` with `writers` writer tasks.
    pub fn start(writers: usize) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["baseline-server", "--writers", &writers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start the baseline server")?;
        let commands = child.stdin.take().context("baseline stdin")?;
        let stdout = child.stdout.take().context("baseline stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            bail!("the baseline server did not say its port: {line:?}");
        };
        Ok(Self { child, commands, base: format!("http://127.0.0.1:{port}") })
    }

    /// Has the server write one event of `bytes` bytes, identified by `id`, to every socket.
    pub fn event(&mut self, seq: i64, id: &str, bytes: usize) -> anyhow::Result<()> {
        writeln!(self.commands, "event {seq} {id} {bytes}")?;
        Ok(self.commands.flush()?)
    }

    /// The server's process id (its CPU time is read from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_payload_has_the_requested_size_and_parses() {
        let at = OffsetDateTime::now_utc();
        for bytes in [0, 300, 1234] {
            let payload = payload(at, 42, "baseline-1-2", bytes);
            assert!(payload.len() >= bytes.min(150));
            if bytes >= 300 {
                assert_eq!(payload.len(), bytes);
            }
            let frame: crate::ws::Frame<'_> = serde_json::from_slice(&payload).unwrap();
            assert_eq!(frame.kind, "task.created");
            assert_eq!(frame.seq, Some(42));
            assert_eq!(frame.data.as_ref().unwrap().id, Some("baseline-1-2"));
            assert!(frame.latency_ms(at + time::Duration::milliseconds(3)).unwrap() > 2.9);
        }
    }

    #[test]
    fn frames_carry_their_length() {
        assert_eq!(text_frame(b"ab"), vec![0x81, 2, b'a', b'b']);
        let long = text_frame(&[b'x'; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
    }
}
