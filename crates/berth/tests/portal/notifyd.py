# A notification daemon (org.freedesktop.Notifications) for the portal
# tests: each Notify is written down as one tab-separated line: the app
# name, the summary, the body and the desktop-entry hint. Prints "ready"
# once it owns the name. Usage: notifyd.py OUT
import sys, gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
XML = """<node><interface name="org.freedesktop.Notifications">
<method name="Notify"><arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/><arg type="a{sv}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/></method>
<method name="CloseNotification"><arg type="u" direction="in"/></method>
<method name="GetCapabilities"><arg type="as" direction="out"/></method>
<method name="GetServerInformation"><arg type="s" direction="out"/><arg type="s" direction="out"/><arg type="s" direction="out"/><arg type="s" direction="out"/></method>
<signal name="NotificationClosed"><arg type="u"/><arg type="u"/></signal>
<signal name="ActionInvoked"><arg type="u"/><arg type="s"/></signal>
</interface></node>"""
out = open(sys.argv[1], "a")
count = [0]
def call(conn, sender, path, iface, method, params, inv):
    if method == "Notify":
        app, _replaces, _icon, summary, body, _actions, hints, _timeout = params.unpack()
        out.write("notify\t%s\t%s\t%s\t%s\n" % (app, summary, body, hints.get("desktop-entry", "")))
        out.flush()
        count[0] += 1
        inv.return_value(GLib.Variant("(u)", (count[0],)))
    elif method == "GetCapabilities":
        inv.return_value(GLib.Variant("(as)", (["body", "actions"],)))
    elif method == "GetServerInformation":
        inv.return_value(GLib.Variant("(ssss)", ("berth-test", "berth", "1", "1.2")))
    else:
        inv.return_value(None)
bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
node = Gio.DBusNodeInfo.new_for_xml(XML)
bus.register_object("/org/freedesktop/Notifications", node.interfaces[0], call, None, None)
def owned(*_):
    print("ready", flush=True)
Gio.bus_own_name_on_connection(bus, "org.freedesktop.Notifications", 0, owned, None)
GLib.MainLoop().run()
