//! Where the orchestrator's own time per attempt goes, phase by phase (not the job process):
//! the profile `sweep bench orchestrator` prints, so that a regression names its phase.

use std::time::Duration;

/// Wall time of one attempt's (or, summed, many attempts') orchestrator work.
#[derive(Default, Clone, Copy, Debug, PartialEq)]
pub struct Overhead {
    /// Claiming the job (one statement).
    pub claim: Duration,
    /// Looking up its sweep, making its folder safe and recording it.
    pub folder: Duration,
    /// Writing the ticket the job process reads.
    pub ticket: Duration,
    /// Storing what the job reports while it runs: curve batches, checkpoints, evaluations.
    pub events: Duration,
    /// Lease renewals (and the last iteration of a job that ends without a result).
    pub heartbeats: Duration,
    /// Recording how the attempt ended: status, metrics, per-image rows, final checkpoint.
    pub finish: Duration,
}

impl Overhead {
    pub fn total(&self) -> Duration {
        self.phases().iter().map(|(_, d)| *d).sum()
    }

    pub fn add(&mut self, other: &Overhead) {
        self.claim += other.claim;
        self.folder += other.folder;
        self.ticket += other.ticket;
        self.events += other.events;
        self.heartbeats += other.heartbeats;
        self.finish += other.finish;
    }

    /// Each phase with its name, in the order an attempt goes through them.
    pub fn phases(&self) -> [(&'static str, Duration); 6] {
        [
            ("claim", self.claim),
            ("folder", self.folder),
            ("ticket", self.ticket),
            ("events", self.events),
            ("heartbeats", self.heartbeats),
            ("finish", self.finish),
        ]
    }
}

/// CPU time (user + system) this process has used, its job processes not included.
pub fn own_cpu_secs() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid rusage.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_the_sum_of_the_phases_and_adding_adds_each() {
        let ms = Duration::from_millis;
        let one = Overhead {
            claim: ms(1),
            folder: ms(2),
            ticket: ms(3),
            events: ms(4),
            heartbeats: ms(5),
            finish: ms(6),
        };
        let mut sum = Overhead::default();
        sum.add(&one);
        sum.add(&one);
        assert_eq!(one.total(), ms(21));
        assert_eq!(sum.total(), ms(42));
        assert_eq!(sum.phases()[5], ("finish", ms(12)));
    }
}
