//! A loopback TCP proxy that paces the server's answers to a fixed rate (a
//! shop's mobile link): requests pass as they come, every answer byte waits
//! its turn. One pace per connection (the engine syncs over one).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The proxy; stops accepting when dropped.
pub struct Throttle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Throttle {
    /// Listens on a free loopback port and forwards to `upstream`, sending
    /// answers at `bytes_per_sec`.
    pub fn start(upstream: SocketAddr, bytes_per_sec: u64) -> io::Result<Throttle> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        std::thread::spawn(move || {
                            let _ = relay(client, upstream, bytes_per_sec);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Throttle { addr, stop })
    }

    /// The base URL of the server behind the proxy.
    pub fn base_url(&self) -> String {
        format!("http://{}/API/v3", self.addr)
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn relay(client: TcpStream, upstream: SocketAddr, rate: u64) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(upstream)?;
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = [0u8; 8 * 1024];
    loop {
        let n = s_read.read(&mut buf)?;
        if n == 0 {
            let _ = c_write.shutdown(Shutdown::Write);
            return Ok(());
        }
        sent += n as u64;
        // Not before the link could have carried `sent` bytes.
        let due = Duration::from_secs_f64(sent as f64 / rate.max(1) as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        c_write.write_all(&buf[..n])?;
    }
}
