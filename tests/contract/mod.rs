//! The contract suite: one behaviour story per seam, run against the fake that the saga's unit
//! tests use and against the real adapter. A fake that drifts from the real thing fails here.

mod engine;
mod proxy;

/// Runs a seam's story (its futures are not `Send`) on a runtime of its own.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}
