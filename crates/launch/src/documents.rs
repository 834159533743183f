//! The document portal (xdg-document-portal, `org.freedesktop.portal.Documents`
//! on the session bus): a FUSE file system where a file the user opened is
//! handed to one app, by a path of its own (`/run/user/UID/doc/ID/NAME`),
//! without a filesystem grant. zbus's blocking API, on the host, before
//! the sandbox starts, in a child process: zbus starts threads, and the
//! launch must stay single-threaded until the sandbox is cloned.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

const DEST: &str = "org.freedesktop.portal.Documents";
const PATH: &str = "/org/freedesktop/portal/documents";
const IFACE: &str = "org.freedesktop.portal.Documents";

/// `AddFull` flags (xdg-document-portal's `DocumentAddFullFlags`): the
/// same document for the same file again, and none at all when the app
/// sees the file anyway.
const REUSE_EXISTING: u32 = 1 << 0;
const AS_NEEDED_BY_APP: u32 = 1 << 2;

pub(crate) fn connect(bus: &Path) -> zbus::Result<zbus::blocking::Connection> {
    zbus::blocking::connection::Builder::address(format!("unix:path={}", bus.display()).as_str())?
        .build()
}

/// Where the document portal is mounted on the host, if it runs (the call
/// starts it when the bus can). On a connection the caller made, in its
/// child process ([`crate::session`]).
pub(crate) fn mount_point_on(conn: &zbus::blocking::Connection) -> Option<PathBuf> {
    let reply = conn
        .call_method(Some(DEST), PATH, Some(IFACE), "GetMountPoint", &())
        .ok()?;
    // `ay`, NUL-terminated.
    let bytes: Vec<u8> = reply.body().deserialize().ok()?;
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
    Some(PathBuf::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes),
    ))
}

/// A file handed to `app_id` through the portal: its path relative to the
/// portal's mount (`ID/NAME`), or None when the app sees the file anyway.
pub fn add(
    bus: &Path,
    app_id: &str,
    file: &crate::plan::Forwarded,
) -> Result<Option<PathBuf>, String> {
    // The answer: `+` and the path, `-` and nothing (seen anyway), `!` and
    // why not.
    let out = berth_sandbox::exec::in_child(|| match add_here(bus, app_id, file) {
        Ok(Some(p)) => [b"+".as_slice(), p.as_os_str().as_encoded_bytes()].concat(),
        Ok(None) => b"-".to_vec(),
        Err(why) => [b"!".as_slice(), why.as_bytes()].concat(),
    })
    .map_err(|e| e.to_string())?;
    match out.split_first() {
        Some((b'+', p)) => Ok(Some(PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p),
        ))),
        Some((b'-', _)) => Ok(None),
        Some((b'!', why)) => Err(String::from_utf8_lossy(why).into_owned()),
        _ => Err("the helper talking to the document portal died".into()),
    }
}

fn add_here(
    bus: &Path,
    app_id: &str,
    f: &crate::plan::Forwarded,
) -> Result<Option<PathBuf>, String> {
    let (file, writable) = (&f.path, f.writable);
    // The file whose type was checked, and no other.
    let fd = crate::mime::same_file(file, f.dev, f.ino).ok_or_else(|| {
        format!(
            "{} changed while the app was starting; it is not handed over",
            file.display()
        )
    })?;
    let conn = connect(bus).map_err(|e| format!("connecting to the session bus: {e}"))?;
    let mut perms = vec!["read"];
    if writable {
        perms.push("write");
    }
    let fds = vec![zbus::zvariant::Fd::from(fd.as_fd())];
    let reply = conn
        .call_method(
            Some(DEST),
            PATH,
            Some(IFACE),
            "AddFull",
            &(fds, REUSE_EXISTING | AS_NEEDED_BY_APP, app_id, perms),
        )
        .map_err(|e| format!("the document portal refused it: {e}"))?;
    let (ids, _extra): (
        Vec<String>,
        std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
    ) = reply
        .body()
        .deserialize()
        .map_err(|e| format!("the document portal's answer: {e}"))?;
    let id = ids.into_iter().next().unwrap_or_default();
    if id.is_empty() {
        return Ok(None);
    }
    if !writable {
        // Read-only (the app's `edit=` grants do not name the file's
        // type). xdg-document-portal 1.16's AddFull replaces the app's
        // permissions on the document; a portal that added to them would
        // keep an earlier open's write.
        conn.call_method(
            Some(DEST),
            PATH,
            Some(IFACE),
            "RevokePermissions",
            &(id.as_str(), app_id, vec!["write"]),
        )
        .map_err(|e| format!("the document portal kept it writable: {e}"))?;
    }
    let name = file
        .file_name()
        .ok_or_else(|| format!("{} has no file name", file.display()))?;
    Ok(Some(PathBuf::from(&id).join(name)))
}
