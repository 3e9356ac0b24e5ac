//! sweep-core's integration tests: one binary, one module per topic (ripgrep style).
//! `util` has the helpers they share.

mod util;

mod report_external;
mod report_leaderboard;
mod report_show;
mod report_statistics;
mod search_run;
mod store;
mod sweepfile_cv;
mod sweepfile_errors;
mod sweepfile_fuzz;
mod sweepfile_plan;
mod toy_worker;
