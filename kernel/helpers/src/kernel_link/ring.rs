//! Plumbing: a ring of bytes with one writer and one reader at a time, neither of which
//! waits for the other. The poll recorder gives each thread one, so recording takes no lock.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A byte ring. `head` and `tail` count the bytes written and read since it was made; the
/// bytes in [tail, head) are written and not yet read.
pub struct Ring {
    bytes: Box<[UnsafeCell<u8>]>,
    head: AtomicUsize,
    tail: AtomicUsize,
}

// SAFETY: the writer only writes bytes in [head, tail + capacity), which the reader does not
// read, and publishes them with a Release store of `head`; the reader only reads bytes in
// [tail, head) after an Acquire load of `head`, and gives them back with a Release store of
// `tail`, which the writer loads with Acquire before writing there again. That there is one
// writer and one reader at a time is the callers' promise (`push` and `drain_into`).
unsafe impl Sync for Ring {}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        assert!(capacity > 0, "a ring holds at least a byte");
        Ring {
            bytes: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    fn start(&self) -> *mut u8 {
        UnsafeCell::raw_get(self.bytes.as_ptr())
    }

    /// Appends `bytes` whole, or returns `false` if there is no room for them.
    ///
    /// # Safety
    /// No other thread calls `push` on this ring while this call runs.
    #[inline]
    pub unsafe fn push(&self, bytes: &[u8]) -> bool {
        let capacity = self.bytes.len();
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if capacity - (head - tail) < bytes.len() {
            return false;
        }
        let at = head % capacity;
        let first = bytes.len().min(capacity - at);
        // SAFETY: both ranges lie inside the ring (`first` ends at its end at most, the rest
        // is shorter than the room left) and are free: see `impl Sync for Ring`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.start().add(at), first);
            let rest = bytes.len() - first;
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.start(), rest);
        }
        self.head.store(head + bytes.len(), Ordering::Release);
        true
    }

    /// Moves every byte written so far to `out`, in the order written.
    ///
    /// # Safety
    /// No other thread calls `drain_into` on this ring while this call runs.
    pub unsafe fn drain_into(&self, out: &mut Vec<u8>) {
        let capacity = self.bytes.len();
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let (at, length) = (tail % capacity, head - tail);
        let first = length.min(capacity - at);
        // SAFETY: [tail, head) was published by the writer, which does not touch it until
        // `tail` moves past it; both ranges lie inside the ring.
        unsafe {
            out.extend_from_slice(std::slice::from_raw_parts(self.start().add(at), first));
            out.extend_from_slice(std::slice::from_raw_parts(self.start(), length - first));
        }
        self.tail.store(head, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn bytes_come_out_in_order_across_the_end_and_a_full_ring_refuses() {
        let ring = Ring::new(8);
        let mut out = Vec::new();
        // SAFETY (all calls): this test is the only writer and the only reader.
        unsafe {
            assert!(ring.push(b"abcde"));
            assert!(!ring.push(b"xyzw"), "4 bytes do not fit in the 3 left");
            ring.drain_into(&mut out);
            assert!(ring.push(b"fghijk"), "wraps around the end");
            ring.drain_into(&mut out);
            ring.drain_into(&mut out);
        }
        assert_eq!(out, b"abcdefghijk");
    }

    #[test]
    fn a_reader_beside_the_writer_sees_every_byte_once_in_order() {
        let ring = Arc::new(Ring::new(64));
        let out = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let (ring, out) = (ring.clone(), out.clone());
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    // SAFETY: the lock makes this the only reader.
                    unsafe { ring.drain_into(&mut out.lock().unwrap()) };
                }
            })
        };
        let mut written = Vec::new();
        for n in 0..20_000u32 {
            let record = n.to_le_bytes();
            // SAFETY: this thread is the only writer; the lock makes it the only reader.
            while !unsafe { ring.push(&record) } {
                unsafe { ring.drain_into(&mut out.lock().unwrap()) };
            }
            written.extend_from_slice(&record);
        }
        reader.join().unwrap();
        // SAFETY: the reader thread is done.
        unsafe { ring.drain_into(&mut out.lock().unwrap()) };
        assert_eq!(*out.lock().unwrap(), written);
    }
}
