//! Work split over threads by the caller: one scoped thread per part.
//!
//! The trainers and evaluators choose their own parts (strides of a range,
//! chunks of a slice, listeners kept together) because the split decides
//! what each thread may share or keep; what they all need is the same
//! spawn, join in order, and a worker's panic raised again in the caller
//! with its own message rather than a generic "a thread panicked".

use std::panic;
use std::thread;

/// Runs `work` on each of `parts`, each on its own scoped thread, and
/// returns the results in the order of `parts`. A panic in any worker is
/// resumed in the caller once every worker has ended.
pub fn fan_out<P, T, F>(parts: impl IntoIterator<Item = P>, work: F) -> Vec<T>
where
    P: Send,
    T: Send,
    F: Fn(P) -> T + Sync,
{
    let work = &work;
    thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or_else(|p| panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_the_order_of_the_parts() {
        let squares = fan_out(0..8u64, |part| {
            // Later parts finish first.
            thread::sleep(std::time::Duration::from_millis(8 - part));
            part * part
        });
        assert_eq!(squares, vec![0, 1, 4, 9, 16, 25, 36, 49]);
    }

    #[test]
    fn parts_may_borrow_what_the_caller_owns() {
        let data: Vec<u32> = (1..=100).collect();
        let sums = fan_out(data.chunks(30), |chunk| chunk.iter().sum::<u32>());
        assert_eq!(sums.iter().sum::<u32>(), 5050);
        assert_eq!(sums.len(), 4);
    }

    #[test]
    fn a_workers_panic_reaches_the_caller_with_its_message() {
        let caught = panic::catch_unwind(|| {
            fan_out(0..3, |part| {
                assert!(part != 1, "part {part} failed");
                part
            })
        });
        let message = caught.expect_err("the panic is resumed");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(text, "part 1 failed");
    }
}
