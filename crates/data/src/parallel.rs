//! Work over many files on all cores, with a progress bar (shown on a terminal only).

/// `f(0)`, `f(1)`, ... `f(n - 1)` on all cores, in contiguous chunks; results in order.
pub fn map_indexed<T: Send>(n: usize, what: &str, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(1);
    let template = format!(
        "{what:>8} [{{bar:30.green/white}}] {{pos}}/{{len}}  {{elapsed_precise}} ETA {{eta_precise}}"
    );
    let bar = indicatif::ProgressBar::new(n as u64)
        .with_style(indicatif::ProgressStyle::with_template(&template).expect("valid template"));
    let (f, bar_ref) = (&f, &bar);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || {
                    (start..(start + chunk).min(n))
                        .map(|i| {
                            let r = f(i);
                            bar_ref.inc(1);
                            r
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    });
    bar.finish_and_clear();
    results
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_in_order() {
        assert_eq!(
            super::map_indexed(10, "t", |i| i * i),
            (0..10).map(|i| i * i).collect::<Vec<_>>()
        );
        assert!(super::map_indexed(0, "t", |i| i).is_empty());
    }
}
