//! Whose move it is after a failure. Every layer's error enum says which
//! of three kinds each of its variants is (as Arroyo's error domains do),
//! and the command line words its message and picks its exit status from
//! that alone: the user fixes a spec, a record or a flag; an outside
//! failure may pass if tried again; a bug should be reported.

/// The three kinds of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A spec, a record, a flag or a file the user named is wrong: the
    /// same command fails the same way until the user changes something.
    User,
    /// Something outside the engine failed: a store, a socket, a disk, a
    /// file damaged at rest. Trying again later may succeed.
    External,
    /// The engine broke a promise of its own.
    Bug,
}

impl Class {
    /// The exit status of a command that failed this way (docs/cli.md).
    /// `1` is also `check`'s status for a spec with errors; the other two
    /// are sysexits.h's `EX_UNAVAILABLE` and `EX_SOFTWARE`.
    pub fn exit_code(self) -> u8 {
        match self {
            Class::User => 1,
            Class::External => 69,
            Class::Bug => 70,
        }
    }

    /// Its name in machine-read output (`--log-format json`).
    pub fn name(self) -> &'static str {
        match self {
            Class::User => "user",
            Class::External => "external",
            Class::Bug => "bug",
        }
    }

    /// What the message adds after the cause, so the reader knows what to do.
    pub fn advice(self) -> &'static str {
        match self {
            Class::User => "",
            Class::External => " (a failure outside dataflow: it may pass if tried again)",
            Class::Bug => " (a bug in dataflow: please report it, with this message and the spec)",
        }
    }
}

/// An error that knows its [`Class`].
pub trait Classify {
    fn class(&self) -> Class;
}

/// Whose failure a file or socket operation's error is. A path that is
/// missing, of the wrong kind or not allowed is one the user gave (a spec's
/// `path`, `state.dir`); a full disk, a refused connection or a failing
/// device is outside.
pub fn io_class(e: &std::io::Error) -> Class {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound
        | K::PermissionDenied
        | K::AlreadyExists
        | K::NotADirectory
        | K::IsADirectory
        | K::InvalidInput
        | K::InvalidFilename
        | K::ReadOnlyFilesystem => Class::User,
        _ => Class::External,
    }
}

#[cfg(test)]
mod tests {
    use super::{io_class, Class};
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_path_the_user_gave_is_theirs_a_full_disk_is_not() {
        assert_eq!(
            io_class(&Error::from(ErrorKind::NotADirectory)),
            Class::User
        );
        assert_eq!(
            io_class(&Error::from(ErrorKind::PermissionDenied)),
            Class::User
        );
        assert_eq!(
            io_class(&Error::from(ErrorKind::StorageFull)),
            Class::External
        );
        assert_eq!(
            io_class(&Error::from(ErrorKind::ConnectionRefused)),
            Class::External
        );
    }

    #[test]
    fn each_class_has_its_own_exit_status() {
        let codes = [Class::User, Class::External, Class::Bug].map(Class::exit_code);
        assert_eq!(codes, [1, 69, 70]);
        // 2 is a usage error (clap's and ours), 128 + n a signal.
        assert!(codes.iter().all(|c| *c != 2 && *c < 128));
    }
}
