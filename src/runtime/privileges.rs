//! Giving up root once the capture ports are up (`[run] user`, `group`).
//!
//! The process takes the user's and the group's ids, with its supplementary
//! groups cleared; no longer root, it keeps no capability (Linux clears
//! them at `setuid` unless told to keep them). What was opened before (NIC
//! queues, hugepages, capture files) stays usable; everything opened after
//! (rules, sockets, output files) is opened as that user. glibc applies
//! each id change to every thread, DPDK's included.

use nix::unistd::{setgid, setgroups, setuid, Gid, Group, Uid, User};

/// The switch could not be made; the run does not start.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// `run.user` names no user.
    #[error("run.user {0:?}: no such user")]
    NoUser(String),
    /// `run.group` names no group.
    #[error("run.group {0:?}: no such group")]
    NoGroup(String),
    /// Only root can switch to another user.
    #[error("run.user {user:?}: switching needs root, and this process runs as uid {uid}")]
    NotRoot {
        /// The user asked for.
        user: String,
        /// Who the process is.
        uid: u32,
    },
    /// A system call failed.
    #[error("run.user {user:?}: {call}: {source}")]
    Call {
        /// The user asked for.
        user: String,
        /// The call.
        call: &'static str,
        /// Why.
        source: nix::Error,
    },
    /// `run.user` is root: there is nothing to give up.
    #[error("run.user {0:?} is root: name an unprivileged user, or leave it empty")]
    Root(String),
    /// After the switch the process could still become root again.
    #[error("run.user {0:?}: the process could take uid 0 back after switching")]
    Regained(String),
}

/// Who the process became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switched {
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
}

/// Switches to `user` and `group` (the user's own group when empty);
/// `None` when `user` is empty.
pub fn switch_to(user: &str, group: &str) -> Result<Option<Switched>, PrivilegeError> {
    if user.is_empty() {
        return Ok(None);
    }
    let call = |call: &'static str| {
        move |source| PrivilegeError::Call {
            user: user.to_owned(),
            call,
            source,
        }
    };
    let found = User::from_name(user)
        .map_err(call("getpwnam"))?
        .ok_or_else(|| PrivilegeError::NoUser(user.to_owned()))?;
    let gid = if group.is_empty() {
        found.gid
    } else {
        Group::from_name(group)
            .map_err(call("getgrnam"))?
            .ok_or_else(|| PrivilegeError::NoGroup(group.to_owned()))?
            .gid
    };
    if found.uid.is_root() {
        return Err(PrivilegeError::Root(user.to_owned()));
    }
    let switched = Switched {
        uid: found.uid.as_raw(),
        gid: gid.as_raw(),
    };
    if Uid::effective() == found.uid && Gid::effective() == gid {
        return Ok(Some(switched));
    }
    if !Uid::effective().is_root() {
        return Err(PrivilegeError::NotRoot {
            user: user.to_owned(),
            uid: Uid::effective().as_raw(),
        });
    }
    setgroups(&[gid]).map_err(call("setgroups"))?;
    setgid(gid).map_err(call("setgid"))?;
    setuid(found.uid).map_err(call("setuid"))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivilegeError::Regained(user.to_owned()));
    }
    Ok(Some(switched))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_user_is_no_switch_and_unknown_names_are_errors() {
        assert!(matches!(switch_to("", "whatever"), Ok(None)));
        assert!(matches!(
            switch_to("root", ""),
            Err(PrivilegeError::Root(_))
        ));
        assert!(matches!(
            switch_to("no-such-user-here", ""),
            Err(PrivilegeError::NoUser(_))
        ));
        assert!(matches!(
            switch_to("root", "no-such-group-here"),
            Err(PrivilegeError::NoGroup(_))
        ));
        let me = User::from_uid(Uid::effective()).unwrap().unwrap();
        if me.uid.is_root() {
            return;
        }
        assert!(matches!(
            switch_to(&me.name, "no-such-group-here"),
            Err(PrivilegeError::NoGroup(_))
        ));
        // Switching to oneself is no switch at all.
        let own = Group::from_gid(Gid::effective()).unwrap().unwrap();
        assert_eq!(
            switch_to(&me.name, &own.name).unwrap(),
            Some(Switched {
                uid: Uid::effective().as_raw(),
                gid: Gid::effective().as_raw()
            })
        );
    }
}
