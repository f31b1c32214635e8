//! CPU-bound work: real computation (counting primes), sized by a parameter. Waiting
//! overlaps under async; computing does not, only more threads on more cores help.

use crate::spans::Kind;
use crate::task_run::TaskRun;

/// Counts the primes below `limit` by trial division (deliberately plain, so the time
/// grows with `limit`), and records a `cpu` span named `name`.
///
/// ```
/// assert_eq!(tandem_helpers::count_primes("small", 100), 25);
/// assert_eq!(tandem_helpers::count_primes("none", 2), 0);
/// ```
pub fn count_primes(name: &str, limit: u64) -> u64 {
    let run = TaskRun::start(name, Kind::Cpu, false);
    let count = (2..limit)
        .filter(|&n| {
            if n % 1024 == 0 {
                crate::interrupt::stop_if_interrupted();
            }
            is_prime(n)
        })
        .count() as u64;
    run.finish();
    count
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut divisor = 2;
    while divisor * divisor <= n {
        if n.is_multiple_of(divisor) {
            return false;
        }
        divisor += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn primes_below_ten_thousand() {
        assert_eq!((2..10_000).filter(|&n| super::is_prime(n)).count(), 1229);
    }
}
