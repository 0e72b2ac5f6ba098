//! clone3 refused: a check of the test setup, not an attack. A run meant
//! to refuse `clone3(2)` (`tests/support/no_clone3.rs`) really does.

use crate::common::*;
use crate::support::{errno, outcome};

/// With `VGUEST_TEST_EXPECT_NO_CLONE3=1` (a run under
/// `tests/support/no_clone3.rs`), `clone3` must answer ENOSYS, so that the
/// suite really exercised the library's `clone(2)` fallback.
#[test]
fn clone3_is_refused_when_asked() {
    if !root_or_skip("clone3") {
        return;
    }
    // SAFETY: a null argument of size 0 creates nothing: the kernel
    // refuses the size (EINVAL) before reading it, or a filter answers
    // ENOSYS.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    let err = errno();
    assert_eq!(ret, -1, "clone3 with no arguments returned {ret}");
    let expect_none = std::env::var_os("VGUEST_TEST_EXPECT_NO_CLONE3").is_some_and(|v| v == "1");
    match err {
        libc::ENOSYS if expect_none => println!("clone3 is refused (ENOSYS), as asked"),
        libc::ENOSYS => {
            println!("SKIP clone3: refused (ENOSYS) here, though VGUEST_TEST_EXPECT_NO_CLONE3 is not set")
        }
        _ if expect_none => {
            panic!("VGUEST_TEST_EXPECT_NO_CLONE3=1, but clone3 exists (it answered {})", outcome(err))
        }
        libc::EINVAL | libc::EFAULT => println!("clone3 exists here ({})", outcome(err)),
        _ => panic!("clone3 answered {}", outcome(err)),
    }
}
