#!/usr/bin/env python3
"""A small PyGObject application around rbvremove.

Cuts the people out of a video file and writes them over a colour to WebM,
changes the background and the composition while playing, prints the
element's rbv-stats messages, and stops cleanly on EOS or on an error.

    python3 examples/python/app.py IN OUT.webm

Needs PyGObject with GStreamer's introspection data (Debian: python3-gi,
gir1.2-gstreamer-1.0) and the rbv plugin installed where GStreamer finds it
(setup/install.sh).
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main(argv):
    if len(argv) != 3:
        print("usage: app.py IN OUT.webm", file=sys.stderr)
        return 2
    Gst.init(None)
    if Gst.ElementFactory.find("rbvremove") is None:
        print("app: rbvremove not found: install the plugin (setup/install.sh)", file=sys.stderr)
        return 1
    pipeline = Gst.parse_launch(
        "filesrc name=src ! decodebin ! videoconvert ! "
        "rbvremove name=rbv background=color background-color=#202830 stats-interval=250 ! "
        "videoconvert ! vp8enc deadline=1 ! webmmux ! filesink name=sink"
    )
    pipeline.get_by_name("src").set_property("location", argv[1])
    pipeline.get_by_name("sink").set_property("location", argv[2])
    rbv = pipeline.get_by_name("rbv")

    loop = GLib.MainLoop()
    outcome = {"code": 0, "step": 0}

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.EOS:
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"app: error: {err.message} ({debug})", file=sys.stderr)
            outcome["code"] = 1
            loop.quit()
        elif msg.type == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            print(f"app: warning: {err.message}")
        elif msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s is not None and s.get_name() == "rbv-stats":
                # Fields with nothing to report are absent (no inference
                # finished in the window, no mask yet): shown as "-".
                def ms(name):
                    v = s.get_value(name)
                    return "-" if v is None else "{:.2f}".format(v)

                age = s.get_value("mask-age")
                print(
                    "app: rbv-stats frames={} fps={:.1f} inference p50={} ms "
                    "p95={} ms mask-age={} model={} provider={}".format(
                        s.get_value("frames"),
                        s.get_value("fps"),
                        ms("inference-p50-ms"),
                        ms("inference-p95-ms"),
                        "-" if age is None else age,
                        s.get_value("model"),
                        s.get_value("execution-provider"),
                    )
                )
        return True

    def tick():
        # Settings change from the application's main loop while frames flow.
        ok, position = pipeline.query_position(Gst.Format.TIME)
        if not ok:
            return True
        if outcome["step"] == 0 and position >= 200 * Gst.MSECOND:
            rbv.set_property("background-color", "#00B140")
            print(f"app: background-color -> #00B140 at {position / Gst.SECOND:.2f} s")
            outcome["step"] = 1
        elif outcome["step"] == 1 and position >= 400 * Gst.MSECOND:
            rbv.set_property(
                "composition",
                '{"foreground":{"anchor":"bottom-right","scale":0.5,"offset":{"x":-16,"y":-16}}}',
            )
            print(f"app: composition -> bottom-right, scale 0.5 at {position / Gst.SECOND:.2f} s")
            outcome["step"] = 2
        return True

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.timeout_add(20, tick)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        # The error message on the bus says why.
        outcome["code"] = 1
        GLib.idle_add(loop.quit)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
