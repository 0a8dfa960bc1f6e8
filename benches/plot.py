#!/usr/bin/python3
"""Draws target/bench/fps.json (cargo bench --bench fps) as docs/bench/fps.png.

Left: throughput per chain at 720p and 1080p (I420 and RGBA input, vtest.avi),
with the 200 fps target line. Right: a live 30 fps source through each model
in mode=async: output rate and mask age.
"""
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = pathlib.Path(__file__).resolve().parent.parent
data = json.loads((root / "target/bench/fps.json").read_text())
out = root / "docs/bench/fps.png"
out.parent.mkdir(parents=True, exist_ok=True)

rows = [r for r in data["throughput"] if r["clip"] == "vtest.avi" and "videoconvert" not in r["chain"]]
chains = list(dict.fromkeys(r["chain"].replace("rbvremove model=human", "human").strip() or "human" for r in rows))
groups = [("720p", "I420"), ("720p", "RGBA"), ("1080p", "I420"), ("1080p", "RGBA")]

fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [2.2, 1]})
width = 0.8 / len(groups)
for gi, (size, fmt) in enumerate(groups):
    values = []
    for c in chains:
        match = [r["fps"] for r in rows if r["size"] == size and r["input"] == fmt
                 and (r["chain"].replace("rbvremove model=human", "human").strip() or "human") == c]
        values.append(match[0] if match else 0)
    xs = [i + (gi - (len(groups) - 1) / 2) * width for i in range(len(chains))]
    ax.bar(xs, values, width, label=f"{size} {fmt}")
ax.axhline(200, color="black", linestyle="--", linewidth=1)
ax.text(len(chains) - 0.5, 205, "200 fps", ha="right", fontsize=8)
ax.set_xticks(range(len(chains)))
ax.set_xticklabels(chains, rotation=15, ha="right", fontsize=8)
ax.set_ylabel("frames per second (whole element, full job)")
ax.set_title(f"rbvremove model=human, {data['cores']} CPU cores")
ax.legend(fontsize=8)

live = data["live_async"]
names = [r["model"].replace(" ", "\n") for r in live]
bx.bar(range(len(names)), [r["output_fps"] for r in live], color="tab:green", label="output fps")
bx.axhline(30, color="black", linestyle="--", linewidth=1)
for i, r in enumerate(live):
    bx.text(i, r["output_fps"] + 0.5, f"age {r['mask_age_frames']:.0f}", ha="center", fontsize=8)
bx.set_xticks(range(len(names)))
bx.set_xticklabels(names, fontsize=8)
bx.set_ylim(0, 36)
bx.set_ylabel("output frames per second")
bx.set_title("live 30 fps 720p, mode=async")

fig.tight_layout()
fig.savefig(out, dpi=90)
print(f"wrote {out}")
sys.exit(0)
