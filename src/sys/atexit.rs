//! Running a function when the process exits (`atexit(3)`).

/// Registers `handler` to run when the process exits normally (from
/// `main`'s return or `std::process::exit`). A child made by `fork(2)`
/// inherits the registration: a handler that must run only in the
/// process that registered it checks the pid itself.
///
/// The handler must not unwind: a panic in it aborts the process.
pub(crate) fn register(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function that stays valid for the
    // process's life; an `extern "C"` function aborts rather than unwind
    // across the C library.
    unsafe { libc::atexit(handler) };
}
