//! The few operating-system calls a cluster needs.

// The system calls of throwaway clusters live here, each with its SAFETY
// comment; the rest of the crate has no unsafe code.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// An unprivileged account to run the server as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// The account the server must run as: `None` when this process is not root
/// (it runs the server itself); otherwise `postgres`, else `nobody`, because
/// PostgreSQL refuses to run as root.
pub fn server_account() -> Option<Account> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    ["postgres", "nobody"]
        .iter()
        .find_map(|name| account_in_passwd(&passwd, name))
}

fn account_in_passwd(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(Account { uid, gid })
    })
}

/// Runs `command` as `account` when one is given.
pub fn run_as(command: &mut Command, account: Option<Account>) {
    if let Some(account) = account {
        command.uid(account.uid).gid(account.gid);
    }
}

/// Makes the child receive SIGQUIT (PostgreSQL's immediate shutdown) when the
/// thread that spawned it exits, so a killed test run leaves no server behind.
pub fn quit_with_parent(command: &mut Command) {
    signal_with_parent(command, libc::SIGQUIT);
}

/// Makes the child be killed (SIGKILL) when the thread that spawned it
/// exits: for the processes a test starts, so that a test run killed by a
/// timeout leaves none behind.
pub fn kill_with_parent(command: &mut Command) {
    signal_with_parent(command, libc::SIGKILL);
}

fn signal_with_parent(command: &mut Command, signal: libc::c_int) {
    // SAFETY: the closure runs between fork and exec and only calls prctl and
    // getppid, which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
}

/// Whether a process with this id exists.
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends a signal; errors (the process is gone) are of no interest.
pub fn signal(pid: i32, signal: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_in_passwd_reads_uid_and_gid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PG:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            account_in_passwd(passwd, "postgres"),
            Some(Account { uid: 101, gid: 104 })
        );
        assert_eq!(account_in_passwd(passwd, "nobody"), None);
    }

    #[test]
    fn process_alive_knows_this_process() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0));
    }
}
