"""The report's plots (``tickertag report``): PNGs drawn with matplotlib's Agg backend from the
same rows the report's tables show, so a plot never disagrees with its table."""

from __future__ import annotations

from pathlib import Path

# Label positions tried around a point, in points (x, y): right of the error bar first.
_LABEL_SLOTS = [(7, 3), (7, -11), (7, 13), (7, -21), (7, 23), (7, -31), (7, 33),
                (-60, 14), (-60, -22)]


def _frontier(ax, rows: list[dict], x_key: str, xlabel: str) -> None:
    """F1 (95% CI bars) against a log-scale cost axis, one labelled point per system. Each
    label takes the first slot beside its point whose box overlaps no label placed before
    it (boxes measured in display pixels after the axes are fixed), so neighbours never print
    over each other."""
    pts = sorted((r for r in rows if r.get(x_key)), key=lambda r: r[x_key])
    for r in pts:
        lo, hi = r["f1_ci95"]
        ax.errorbar([r[x_key]], [r["f1"]], yerr=[[r["f1"] - lo], [hi - r["f1"]]], fmt="o",
                    capsize=3, color="#4c78a8")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("F1 on test + test2 (95% CI)")
    ax.grid(alpha=0.3)
    if not pts:
        return
    # the range that matters: the systems' intervals (not 0..1), with room for the labels
    lo = min(r["f1_ci95"][0] for r in pts)
    hi = max(r["f1_ci95"][1] for r in pts)
    ax.set_ylim(max(0.0, lo - 0.03), hi + 0.04)
    xs = [r[x_key] for r in pts]
    ax.set_xlim(min(xs) / 2, max(xs) * 10 ** (0.6 + 0.04 * max(len(r["system"]) for r in pts)))
    fig = ax.figure
    fig.canvas.draw()
    placed: list[tuple[float, float, float, float]] = []
    for r in pts:  # every error bar is an obstacle too
        bx, blo = ax.transData.transform((r[x_key], r["f1_ci95"][0]))
        _, bhi = ax.transData.transform((r[x_key], r["f1_ci95"][1]))
        placed.append((bx - 6, blo, bx + 6, bhi))
    for r in pts:
        x0, y0 = ax.transData.transform((r[x_key], r["f1"]))
        w, h = 5.0 * len(r["system"]), 10.0  # ~8 pt text at 120 dpi
        for dx, dy in _LABEL_SLOTS:
            px, py = x0 + dx * 120 / 72, y0 + dy * 120 / 72
            box = (px, py, px + w, py + h)
            if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]
                   for b in placed):
                break
        placed.append(box)
        ax.annotate(r["system"], (r[x_key], r["f1"]), textcoords="offset points",
                    xytext=(dx, dy), fontsize=8)


def write_plots(rows: list[dict], curve: list[dict] | None, silver: list[dict] | None,
                out: Path) -> list[str]:
    """The report's PNGs in ``out`` (F1, cost, the accuracy/speed/cost frontier, the silver
    and learning curves, each only with data to draw); returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(rows)))
    names = [r["system"] for r in rows]
    f1 = [r["f1"] for r in rows]
    err = [[r["f1"] - r["f1_ci95"][0] for r in rows], [r["f1_ci95"][1] - r["f1"] for r in rows]]
    ax.barh(names, f1, xerr=err, color="#4c78a8", capsize=3)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("exact-span F1 on the test files (95% bootstrap CI)")
    for i, r in enumerate(rows):  # right of the error bar, so the two never overlap
        ax.text(min(r["f1_ci95"][1] + 0.01, 0.99), i, f"{r['f1']:.3f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "f1.png", dpi=120)
    files.append("f1.png")
    plt.close(fig)
    costed = [r for r in rows if r.get("usd_per_million")]
    if costed:
        fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(costed)))
        ax.barh([r["system"] for r in costed], [r["usd_per_million"] for r in costed],
                color="#f58518")
        ax.set_xscale("log")
        ax.set_xlabel("$ per million headlines (log scale)")
        fig.tight_layout()
        fig.savefig(out / "cost.png", dpi=120)
        files.append("cost.png")
        plt.close(fig)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        _frontier(a1, rows, "headlines_per_s", "headlines/s (log scale; higher is better)")
        _frontier(a2, rows, "usd_per_million", "$ per million headlines (log; lower is better)")
        fig.suptitle("accuracy against speed and cost")
        fig.tight_layout()
        fig.savefig(out / "frontier.png", dpi=120)
        files.append("frontier.png")
        plt.close(fig)
    if silver:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        xs = [max(r["silver_headlines"], 1) for r in silver]
        ax.errorbar(xs, [r["f1"] for r in silver],
                    yerr=[[r["f1"] - r["f1_ci95"][0] for r in silver],
                          [r["f1_ci95"][1] - r["f1"] for r in silver]],
                    marker="o", capsize=3, color="#54a24b")
        ax.set_xscale("symlog", linthresh=1000)
        ax.set_xlabel("silver headlines added to the labelled ones (0 = labelled only)")
        ax.set_ylabel("student F1 on test + test2")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "silver_curve.png", dpi=120)
        files.append("silver_curve.png")
        plt.close(fig)
    if curve:
        from training.learning_curve import summarise

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for src, color in (("reviewed", "#4c78a8"), ("llm", "#e45756")):
            pts = [s for s in summarise(curve) if s["source"] == src]
            if pts:
                ax.errorbar([p["n"] for p in pts], [p["mean"] for p in pts],
                            yerr=[p["std"] for p in pts], marker="o", color=color, capsize=3,
                            label=f"{src} labels")
        ax.set_xscale("log")
        ax.set_xlabel("training headlines")
        ax.set_ylabel("test F1")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png", dpi=120)
        files.append("learning_curve.png")
        plt.close(fig)
    return files
