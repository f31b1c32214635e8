//! The event-loop benchmark's reference (tests/bench/event_loop.py): the cell it times,
//! spawning and awaiting 10,000 trivial tasks, on a plain tokio runtime in a program of its own.

const TASKS: u64 = 10_000;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(7);
    for _ in 0..runs {
        let seconds = runtime.block_on(async {
            let started = std::time::Instant::now();
            let handles: Vec<_> = (0..TASKS).map(|i| tokio::spawn(async move { i })).collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("a trivial task");
            }
            assert_eq!(sum, TASKS * (TASKS - 1) / 2);
            started.elapsed().as_secs_f64()
        });
        println!("{seconds}");
    }
}
