//! Once the router is up, hand back the memory only start-up needed (Linux with glibc).
//!
//! - **The binary's read-only pages.** Start-up (configuration, migrations, the console's
//!   routes, the local runtime) runs code spread over most of the 20 MB of machine code,
//!   and the kernel maps what it faults in by the 64 KB and, since 6.x, by whole page-cache
//!   folios: ~19 MB of the binary stayed mapped in an idle router. `MADV_DONTNEED` on the
//!   segments that were never writable unmaps them; the pages stay in the page cache and
//!   whatever runs next maps its own code back with a minor fault. The writable segments
//!   (statics, and RELRO, which the dynamic loader wrote its relocations into) are left
//!   alone: dropping them would lose what was written.
//! - **Free heap.** `malloc_trim(0)` returns the free pages of every glibc arena that
//!   start-up's threads left behind.
//!
//! Skipped while a debugger is attached (its breakpoints are private copies of code pages).

/// What [`release_startup_pages`] handed back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Bytes of the binary's read-only segments unmapped (their pages remain in the page cache).
    pub code_bytes: usize,
    /// Whether glibc returned any free heap to the system.
    pub heap_trimmed: bool,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_startup_pages() -> Released {
    if traced() {
        return Released::default();
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader hands a valid `dl_phdr_info` for the duration of the call, and
        // `data` is the `Vec` passed below. The first object it reports is the executable.
        unsafe {
            let ranges = &mut *(data as *mut Vec<(usize, usize)>);
            let info = &*info;
            let page = page_size();
            let headers = std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
            for h in headers {
                if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
                    continue;
                }
                let start = info.dlpi_addr as usize + h.p_vaddr as usize;
                let end = start + h.p_memsz as usize;
                // Whole pages inside the segment only: a page shared with a writable
                // neighbour is kept.
                let (start, end) = (start.next_multiple_of(page), end / page * page);
                if end > start {
                    ranges.push((start, end));
                }
            }
        }
        1 // stop after the executable
    }
    // SAFETY: `each` only reads what the loader passes and writes into `ranges`.
    unsafe {
        libc::dl_iterate_phdr(Some(each), &mut ranges as *mut _ as *mut libc::c_void);
    }
    let mut released = Released::default();
    for (start, end) in ranges {
        // SAFETY: the range is whole pages of a never-writable, file-backed segment of this
        // executable: unmapping them loses nothing, the next access maps them back.
        if unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) }
            == 0
        {
            released.code_bytes += end - start;
        }
    }
    released.heap_trimmed = gateway_core::trim_heap();
    released
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_startup_pages() -> Released {
    Released::default()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

/// A debugger attached (`TracerPid` not 0): its breakpoints live in copied code pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn traced() -> bool {
    std::fs::read_to_string("/proc/self/status").map_or(true, |s| {
        s.lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .is_none_or(|pid| pid.trim() != "0")
    })
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static WRITTEN: AtomicU64 = AtomicU64::new(1);

    fn rss_file_kb() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn code_pages_are_handed_back_and_statics_and_heap_survive() {
        WRITTEN.store(0xB0C_C10D, Ordering::SeqCst);
        let on_heap = vec![7u8; 1 << 20];
        let table: Vec<String> = (0..1000).map(|i| format!("row {i}")).collect();
        let before = rss_file_kb();
        let released = release_startup_pages();
        let after = rss_file_kb();
        // The test binary's code is tens of MB; most of what was mapped goes.
        assert!(released.code_bytes > 8 << 20, "{released:?}");
        assert!(after + 4096 < before, "RssFile {before} kB -> {after} kB");
        // Writable data and the heap are untouched, and code still runs.
        assert_eq!(WRITTEN.load(Ordering::SeqCst), 0xB0C_C10D);
        assert!(on_heap.iter().all(|&b| b == 7));
        assert_eq!(table[999], "row 999");
        assert_eq!(
            serde_json::json!({"a": [1, 2]}).to_string(),
            r#"{"a":[1,2]}"#
        );
    }
}
