//! The `airsync` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
    airsync::cli::main()
}

/// Makes the allocator give every block of 1 MiB or more back to the system
/// when it is freed. Each password hash takes a 19 MiB block; by default
/// glibc raises its threshold for such blocks after the first is freed and
/// then keeps them in each thread's arena, so that a flood of logins left
/// the server at 110 to 400 MiB although only two hashes ran at once. With
/// the threshold fixed, memory follows the hashes that run (measured by
/// `crates/airsync/examples/flood.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only sets a tunable of the allocator, before any
    // thread is started; it takes plain integers.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_system() {}
