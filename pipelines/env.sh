# Sourced by the example pipelines: if gst-launch-1.0 cannot find rbvremove yet
# (installed, or on GST_PLUGIN_PATH), use the plugin built in this checkout.
if ! gst-inspect-1.0 rbvremove >/dev/null 2>&1; then
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:+$GST_PLUGIN_PATH:}$repo/target/release"
  if ! gst-inspect-1.0 rbvremove >/dev/null 2>&1; then
    echo "rbvremove not found: build it first (cargo build --release -p gst-plugin-rbv) or set GST_PLUGIN_PATH" >&2
    exit 1
  fi
fi

# Opaque results go to VP8/WebM, which any browser or player opens.
webm="videoconvert ! vp8enc deadline=1 cpu-used=4 target-bitrate=6000000 ! webmmux"
