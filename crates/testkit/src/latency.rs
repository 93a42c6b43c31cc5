//! A TCP delay line in front of a server: a registry as far away as an upstream across the
//! internet is, on loopback.
//!
//! The kernel here has no `netem` queueing discipline (`tc qdisc … netem` answers "unknown
//! qdisc"), so the delay is made in user space: every connection accepted is held for one
//! round trip before it is passed on (the TCP handshake a distant server costs), and every
//! chunk read from either side is written to the other half a round trip after it arrived.
//! Chunks keep their order and the line does not wait for one chunk to leave before it reads
//! the next, so a stream keeps its bandwidth and only its latency grows, as on a long link.
//! Bytes are forwarded unchanged: what the clients and the server say to each other is theirs.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Stack of each forwarding thread: they hold a few locals; the buffers are on the heap.
const STACK: usize = 128 * 1024;

/// Bytes read at once from either side.
const CHUNK: usize = 64 * 1024;

/// A delay line listening on a free loopback port, forwarding to one upstream address.
/// Stopped when dropped (connections already open run until either side closes them).
#[derive(Debug)]
pub struct Latency {
    /// `127.0.0.1:PORT`: where clients connect instead of the upstream.
    pub host: String,
    /// The round trip it adds.
    pub rtt: Duration,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Latency {
    /// A delay line to `upstream` (`HOST:PORT`) that adds `rtt` to every round trip, and one
    /// more to every new connection.
    pub fn start(upstream: &str, rtt: Duration) -> anyhow::Result<Latency> {
        let target: SocketAddr = upstream
            .parse()
            .with_context(|| format!("`{upstream}` is not an IP address and port"))?;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let accept = thread::Builder::new()
            .name("latency-accept".into())
            .stack_size(STACK)
            .spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let _ = thread::Builder::new()
                        .name("latency-conn".into())
                        .stack_size(STACK)
                        .spawn(move || connect(client, target, rtt));
                }
            })
            .context("starting the delay line's thread")?;
        Ok(Latency {
            host: addr.to_string(),
            rtt,
            addr,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Latency {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One connection: a round trip for the handshake, then a pump each way.
fn connect(client: TcpStream, target: SocketAddr, rtt: Duration) {
    thread::sleep(rtt);
    let Ok(server) = TcpStream::connect(target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let one_way = rtt / 2;
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
    }
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let back = thread::Builder::new()
        .name("latency-pump".into())
        .stack_size(STACK)
        .spawn(move || pump(s2, c2, one_way));
    pump(client, server, one_way);
    if let Ok(back) = back {
        let _ = back.join();
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read; `from`'s end of
/// stream is passed on as a half close, after the same delay.
fn pump(mut from: TcpStream, to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Option<Vec<u8>>)>();
    let Ok(from_too) = from.try_clone() else {
        return;
    };
    let writer = thread::Builder::new()
        .name("latency-write".into())
        .stack_size(STACK)
        .spawn(move || {
            let mut to = to;
            for (due, chunk) in rx {
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                let Some(chunk) = chunk else {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                };
                if to.write_all(&chunk).is_err() {
                    // The receiver is gone: stop reading from the sender too.
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from_too.shutdown(Shutdown::Both);
                    return;
                }
            }
        });
    let Ok(writer) = writer else { return };
    let mut buf = vec![0; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send((Instant::now() + delay, None));
                break;
            }
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, Some(buf[..n].to_vec())))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = writer.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the line: a reply takes at least one round trip, a new
    /// connection one more, and the bytes come back unchanged and in order.
    #[test]
    fn a_round_trip_takes_the_delay_and_bytes_arrive_unchanged() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = echo.local_addr().unwrap().to_string();
        thread::spawn(move || {
            for s in echo.incoming() {
                let mut s = s.unwrap();
                thread::spawn(move || {
                    let mut buf = [0; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let rtt = Duration::from_millis(40);
        let line = Latency::start(&upstream, rtt).unwrap();
        let started = Instant::now();
        let mut s = TcpStream::connect(&line.host).unwrap();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = s.try_clone().unwrap();
        let expected = payload.clone();
        let read = thread::spawn(move || {
            let mut got = vec![0; expected.len()];
            reader.read_exact(&mut got).unwrap();
            (got == expected, Instant::now())
        });
        s.write_all(&payload).unwrap();
        let (same, done) = read.join().unwrap();
        assert!(same, "the bytes came back changed or out of order");
        // Handshake plus one round trip.
        assert!(done - started >= rtt * 2, "{:?}", done - started);
        let again = Instant::now();
        s.write_all(b"x").unwrap();
        let mut one = [0; 1];
        s.read_exact(&mut one).unwrap();
        assert_eq!(&one, b"x");
        assert!(again.elapsed() >= rtt, "{:?}", again.elapsed());
    }
}
