//! A flood of idle connections, up to the process's last file descriptor, cannot make the
//! local server spin: it waits when it cannot accept, and serves again once it can.
//! A test binary of its own, because it runs its process out of file descriptors.

use std::net::TcpStream;
use std::time::{Duration, Instant};
use tandem_helpers::prelude::{http_get, LocalServer};

/// CPU time this process has used so far (user + system).
fn cpu_time() -> Duration {
    // SAFETY: rusage is plain data, and getrusage writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

#[test]
fn idle_connections_up_to_the_last_descriptor_do_not_make_the_server_spin() {
    // A low limit, so that the flood reaches it quickly.
    let limit = libc::rlimit {
        rlim_cur: 256,
        rlim_max: 256,
    };
    // SAFETY: lowers this test process's own limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let server = LocalServer::start(0.0).unwrap();
    let address = server.address();
    let mut idle = Vec::new();
    // Connect until the process has no descriptor left: the server's own accept then
    // fails for every connection still waiting in the backlog.
    while idle.len() < 10_000 {
        match TcpStream::connect(address) {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    assert!(idle.len() > 50, "only {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(200));
    let (cpu_before, wall_before) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let (cpu, wall) = (cpu_time() - cpu_before, wall_before.elapsed());
    println!(
        "{} idle connections: {cpu:?} of CPU in {wall:?}",
        idle.len()
    );
    assert!(
        cpu < wall / 4,
        "the server spun: {cpu:?} of CPU in {wall:?}"
    );
    // With descriptors free again, it serves as before.
    drop(idle);
    let page = http_get(&server.url("/after-the-flood.json")).unwrap();
    assert!(page.contains("after-the-flood"), "{page}");
}
