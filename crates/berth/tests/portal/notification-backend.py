# A notification backend for xdg-desktop-portal (org.freedesktop.impl.portal.Notification)
# that writes down, one line each, the app ID the portal found for the
# caller, the notification ID and its title. Usage: notification-backend.py OUT
import sys, gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
XML = """<node><interface name="org.freedesktop.impl.portal.Notification">
<method name="AddNotification"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="a{sv}" direction="in"/></method>
<method name="RemoveNotification"><arg type="s" direction="in"/><arg type="s" direction="in"/></method>
<signal name="ActionInvoked"><arg type="s"/><arg type="s"/><arg type="s"/><arg type="av"/></signal>
</interface></node>"""
out = open(sys.argv[1], "a")
def call(conn, sender, path, iface, method, params, inv):
    if method == "AddNotification":
        app_id, nid, n = params.unpack()
        out.write("%s\t%s\t%s\n" % (app_id, nid, n.get("title", "")))
        out.flush()
    inv.return_value(None)
bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
bus.register_object("/org/freedesktop/portal/desktop", Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0], call, None, None)
bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
              GLib.Variant("(su)", ("org.freedesktop.impl.portal.desktop.berthtest", 4)), None, 0, -1, None)
print("ready", flush=True)
GLib.MainLoop().run()
