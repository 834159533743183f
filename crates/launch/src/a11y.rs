//! The accessibility bus (AT-SPI), where screen readers meet apps: the app
//! reaches it through its own filter in the bus proxy, with the rules
//! Flatpak uses (embed itself in the registry, and the registry's and the
//! device event controller's few calls); the screen reader, outside, talks
//! to the app's connection as to any app's.

use std::path::PathBuf;

/// Where the app finds it, as Flatpak puts it.
pub const INNER_SOCKET: &str = "/run/flatpak/at-spi-bus";

/// The accessibility bus's address, from `org.a11y.Bus` on the session bus
/// (which starts it where it is activatable), if there is one. On a
/// connection the caller made, in its child process ([`crate::session`]).
pub(crate) fn address_on(conn: &zbus::blocking::Connection) -> Option<String> {
    let reply = conn
        .call_method(
            Some("org.a11y.Bus"),
            "/org/a11y/bus",
            Some("org.a11y.Bus"),
            "GetAddress",
            &(),
        )
        .ok()?;
    let a: String = reply.body().deserialize().ok()?;
    (a.starts_with("unix:") && !a.chars().any(char::is_control)).then_some(a)
}

/// The socket path of a `unix:path=` address (to bind into the proxy's
/// sandbox); None for an abstract one (the proxy shares the host's network
/// namespace, where abstract sockets live).
pub fn socket_path(address: &str) -> Option<PathBuf> {
    address
        .strip_prefix("unix:")?
        .split(',')
        .find_map(|kv| kv.strip_prefix("path="))
        .map(PathBuf::from)
}

/// xdg-dbus-proxy's rules for the app's accessibility bus.
pub fn proxy_args() -> Vec<String> {
    const REG: &str = "org.a11y.atspi.Registry";
    let call = |method: &str, path: &str| format!("--call={REG}={method}@{path}");
    vec![
        "--filter".into(),
        "--sloppy-names".into(),
        call(
            "org.a11y.atspi.Socket.Embed",
            "/org/a11y/atspi/accessible/root",
        ),
        call(
            "org.a11y.atspi.Socket.Unembed",
            "/org/a11y/atspi/accessible/root",
        ),
        call(
            "org.a11y.atspi.Registry.GetRegisteredEvents",
            "/org/a11y/atspi/registry",
        ),
        call(
            "org.a11y.atspi.DeviceEventController.GetKeystrokeListeners",
            "/org/a11y/atspi/registry/deviceeventcontroller",
        ),
        call(
            "org.a11y.atspi.DeviceEventController.GetDeviceEventListeners",
            "/org/a11y/atspi/registry/deviceeventcontroller",
        ),
        call(
            "org.a11y.atspi.DeviceEventController.NotifyListenersSync",
            "/org/a11y/atspi/registry/deviceeventcontroller",
        ),
        call(
            "org.a11y.atspi.DeviceEventController.NotifyListenersAsync",
            "/org/a11y/atspi/registry/deviceeventcontroller",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            socket_path("unix:path=/run/user/1000/at-spi/bus_0,guid=ab"),
            Some(PathBuf::from("/run/user/1000/at-spi/bus_0"))
        );
        assert_eq!(socket_path("unix:abstract=/tmp/dbus-x,guid=ab"), None);
        assert_eq!(socket_path("tcp:host=x"), None);
    }
}
