# A backend for xdg-desktop-portal, for the portal tests, one tab-separated
# line written down per call: Notification (the app ID the portal found for
# the caller, the notification ID); AppChooser (the choices, takes the
# first); Access (the app ID and the title; grants); FileChooser (the app
# ID; the user "picks" FILE). Usage: backend.py OUT [FILE]
import sys, gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
XML = """<node><interface name="org.freedesktop.impl.portal.Notification">
<method name="AddNotification"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="a{sv}" direction="in"/></method>
<method name="RemoveNotification"><arg type="s" direction="in"/><arg type="s" direction="in"/></method>
<signal name="ActionInvoked"><arg type="s"/><arg type="s"/><arg type="s"/><arg type="av"/></signal>
</interface>
<interface name="org.freedesktop.impl.portal.AppChooser">
<method name="ChooseApplication"><arg type="o" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/><arg type="a{sv}" direction="in"/><arg type="u" direction="out"/><arg type="a{sv}" direction="out"/></method>
<method name="UpdateChoices"><arg type="o" direction="in"/><arg type="as" direction="in"/></method>
</interface>
<interface name="org.freedesktop.impl.portal.FileChooser">
<method name="OpenFile"><arg type="o" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="a{sv}" direction="in"/><arg type="u" direction="out"/><arg type="a{sv}" direction="out"/></method>
</interface>
<interface name="org.freedesktop.impl.portal.Access">
<method name="AccessDialog"><arg type="o" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="a{sv}" direction="in"/><arg type="u" direction="out"/><arg type="a{sv}" direction="out"/></method>
</interface></node>"""
out = open(sys.argv[1], "a")
def call(conn, sender, path, iface, method, params, inv):
    if method == "AddNotification":
        app_id, nid, n = params.unpack()
        out.write("notification\t%s\t%s\n" % (app_id, nid)); out.flush()
        inv.return_value(None)
    elif method == "ChooseApplication":
        handle, app_id, parent, choices, opts = params.unpack()
        out.write("choose\t%s\t%s\n" % (app_id, ",".join(choices))); out.flush()
        inv.return_value(GLib.Variant("(ua{sv})", (0, {"choice": GLib.Variant("s", choices[0] if choices else "")})))
    elif method == "OpenFile":
        handle, app_id, parent, title, opts = params.unpack()
        out.write("open-file\t%s\t%s\n" % (app_id, title)); out.flush()
        picked = Gio.File.new_for_path(sys.argv[2]).get_uri() if len(sys.argv) > 2 else ""
        inv.return_value(GLib.Variant("(ua{sv})", (0 if picked else 1, {"uris": GLib.Variant("as", [picked] if picked else [])})))
    elif method == "AccessDialog":
        handle, app_id, parent, title, subtitle, body, opts = params.unpack()
        out.write("access\t%s\t%s\n" % (app_id, title)); out.flush()
        inv.return_value(GLib.Variant("(ua{sv})", (0, {})))
    else:
        inv.return_value(None)
bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
node = Gio.DBusNodeInfo.new_for_xml(XML)
for i in node.interfaces:
    bus.register_object("/org/freedesktop/portal/desktop", i, call, None, None)
bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
              GLib.Variant("(su)", ("org.freedesktop.impl.portal.desktop.berthtest", 4)), None, 0, -1, None)
print("ready", flush=True)
GLib.MainLoop().run()
