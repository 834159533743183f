# Print the text of every text widget of the application NAME, read
# through the accessibility bus (AT-SPI), as a screen reader reads it.
# Usage: a11y_text.py NAME
import sys, gi
gi.require_version("Atspi", "2.0")
from gi.repository import Atspi

def walk(o, depth=0):
    if depth > 40:
        return
    try:
        if o.get_role() == Atspi.Role.TEXT:
            n = Atspi.Text.get_character_count(o)
            print(Atspi.Text.get_text(o, 0, n))
        for i in range(o.get_child_count()):
            walk(o.get_child_at_index(i), depth + 1)
    except gi.repository.GLib.Error:
        pass

desk = Atspi.get_desktop(0)
for i in range(desk.get_child_count()):
    app = desk.get_child_at_index(i)
    if app is not None and app.get_name() == sys.argv[1]:
        walk(app)
