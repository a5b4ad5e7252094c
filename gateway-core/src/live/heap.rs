//! Handing free heap back to the system. glibc keeps what a burst of requests freed in
//! its arenas (and, after a block above its mmap threshold is freed, raises the threshold
//! so that later large blocks come from the arenas too): an idle gateway stayed at its
//! peak. The usage writer trims once the gateway has been quiet for a second, the router
//! once start-up is over.

/// `malloc_trim(0)`: every arena's free pages go back; whether any did. Elsewhere than
/// Linux with glibc, nothing to do.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: plain glibc call with no preconditions, safe from any thread.
    unsafe {
        libc::malloc_trim(0) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}
