//! What a launch asks the desktop's session bus before the sandbox starts:
//! the document portal's mount and the accessibility bus's address. One
//! short-lived child process and one connection: zbus starts threads, and
//! the launch must stay single-threaded until the sandbox is cloned.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The document portal's mount on the host.
    pub documents: Option<PathBuf>,
    /// The accessibility bus's address.
    pub a11y: Option<String>,
}

/// Ask the bus at `bus` (a socket path). Nothing is known when it cannot
/// be asked.
pub fn ask(bus: &Path) -> Facts {
    let out = berth_sandbox::exec::in_child(|| {
        let Ok(conn) = crate::documents::connect(bus) else {
            return Vec::new();
        };
        let docs = crate::documents::mount_point_on(&conn)
            .map(|p| p.into_os_string().into_encoded_bytes())
            .unwrap_or_default();
        let a11y = crate::a11y::address_on(&conn).unwrap_or_default();
        // Two fields, NUL-separated (neither holds a NUL).
        [docs, a11y.into_bytes()].join(&0u8)
    })
    .unwrap_or_default();
    let mut fields = out.splitn(2, |b| *b == 0);
    let docs = fields.next().unwrap_or_default();
    let a11y = fields.next().unwrap_or_default();
    let documents = Some(PathBuf::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(docs),
    ))
    .filter(|p| p.is_absolute() && p.is_dir());
    let a11y = std::str::from_utf8(a11y)
        .ok()
        .filter(|a| a.starts_with("unix:"))
        .map(str::to_owned);
    Facts { documents, a11y }
}
