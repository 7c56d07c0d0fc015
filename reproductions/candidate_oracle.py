"""The candidate oracle (``gemkit diagnose oracle``) over a suite's runs, and its summary table.

Stages::

    python reproductions/candidate_oracle.py run --runs R --tasks T ... --seeds 0 1 2 --out DIR
    python reproductions/candidate_oracle.py collect --out DIR --probes P.json.gz
    python reproductions/candidate_oracle.py report --probes P.json.gz --summary S.json
    python reproductions/candidate_oracle.py decisions --file ORACLE.json

``decisions`` prints one oracle file's probes one by one (for a probe at every step or every few
steps of one episode, written by ``gemkit diagnose oracle --probe-every 1``): at each probed
step the chosen candidate's branch (return, fall, length) beside the anchor's, the fraction of
the set that falls, and the chosen candidate's rank in the set by value and by behaviour
log-likelihood: where an episode is lost, and what the critic and the behaviour model thought
of the action that lost it.

``run`` calls ``gemkit diagnose oracle`` once per task and seed (``<runs>/<task>-s<seed>``, its
dataset ``gemkit/<task>-v0``; with ``--snapshot STEP`` the run's snapshot at that gradient step)
at the given knobs, writing ``<out>/<task>-s<seed>/oracle.json``. ``collect`` gathers every
probe of those files into one gzipped JSON (floats rounded to 6 significant digits; a
snapshot's probes tagged with its ``step``), the file that is committed. ``report`` recomputes
the statistics of :func:`gemkit.eval.oracle.summarize_probes` from that file, per task, step
(the final checkpoint unless tagged), N and seed, and their mean and std over seeds, as JSON
(``--summary``) and CSV (beside it), and prints markdown tables.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import attrs

from gemkit.eval.io import write_csv, write_json
from gemkit.eval.oracle import OracleProbe, OracleSummary, summarize_probes, value_bins
from gemkit.experiments.figures import plot_oracle_bins
from gemkit.experiments.protocol import mean_std
from gemkit.train import snapshot_dir

#: the sort key of a run's final models among its snapshots' steps
FINAL = 1 << 62

#: the statistics of a summary row: every field of OracleSummary but its probe count
STATS = tuple(f.name for f in attrs.fields(OracleSummary) if f.name != "probes")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=["run", "collect", "report", "decisions"])
    p.add_argument("--file", default="", help="decisions: an oracle.json (or .json.gz)")
    p.add_argument("--runs", default="runs/loco")
    p.add_argument("--tasks", nargs="+", default=[])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--snapshot", type=int, default=None,
                   help="run: probe the runs' snapshot at this gradient step instead of their "
                        "final models")  # fmt: skip
    p.add_argument("--n", default="1,16,64", help="run: candidate budgets, comma-separated")
    p.add_argument("--value", default="lcb_z")
    p.add_argument("--lam", type=float, default=0.3)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--probe-every", type=int, default=100)
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--out",
        nargs="+",
        default=["runs/oracle"],
        help="run: where the per-run folders go; collect: the folders to gather",
    )
    p.add_argument("--probes", default="docs/results/locomotion/oracle_probes.json.gz")
    p.add_argument("--summary", default="docs/results/locomotion/oracle_summary.json")
    return p.parse_args(argv)


def _round(x: Any) -> Any:
    """Floats to 6 significant digits, in lists too; other values as they are."""
    if isinstance(x, list):
        return [_round(v) for v in x]
    return float(f"{x:.6g}") if isinstance(x, float) else x


def snapshot_step(models: str) -> int | None:
    """The gradient step of a snapshot directory (:func:`gemkit.train.snapshot_dir`'s
    ``.../snapshots/step_00040000``), else None."""
    name = Path(models).name
    if Path(models).parent.name == "snapshots" and name.startswith("step_"):
        return int(name.removeprefix("step_"))
    return None


def collect(outs: list[Path], probes_path: Path) -> int:
    """Every probe of ``<out>/<task>-s<seed>/oracle.json`` of each folder in ``outs``, tagged
    with its task and seed, into one gzipped JSON; returns the number of probes."""
    rows: list[dict[str, Any]] = []
    setups = {}
    for f in sorted(f for out in outs for f in Path(out).glob("*/oracle.json")):
        body = json.loads(f.read_text())
        run = f.parent.name
        task, seed = run.rsplit("-s", 1)
        tag: dict[str, Any] = {"task": task, "seed": int(seed)}
        step = snapshot_step(body["models"])
        if step is not None:
            tag["step"] = step
        at = "" if step is None else f" step={step}"
        setups[f"{run}{at} n={body['summary'][0]['n']}-{body['summary'][-1]['n']}"] = {
            k: v for k, v in body.items() if k not in ("summary", "probes")
        }
        rows += [tag | {k: _round(v) for k, v in p.items()} for p in body["probes"]]
    if not rows:
        raise SystemExit(f"no */oracle.json under {outs}: run the `run` stage first")
    probes_path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(probes_path, "wb", mtime=0) as g:  # mtime 0: the same bytes every time
        g.write(json.dumps({"setups": setups, "probes": rows}, sort_keys=True).encode())
    return len(rows)


#: the committed probes per (task, step, N), then per seed
Groups = dict[tuple[str, int, int], dict[int, list[OracleProbe]]]


def read_groups(probes_path: Path) -> Groups:
    """The committed probes per (task, step, N) and seed (step :data:`FINAL` for the final
    models)."""
    with gzip.open(probes_path, "rt") as g:
        rows = json.load(g)["probes"]
    groups: dict[tuple[str, int, int], dict[int, list[OracleProbe]]] = {}
    for r in rows:
        key = (r["task"], r.get("step", FINAL), r["n"])
        groups.setdefault(key, {}).setdefault(r["seed"], []).append(OracleProbe.from_dict(r))
    return dict(sorted(groups.items()))


def step_label(step: int) -> int | str:
    """A group's step as the tables write it: ``final`` for :data:`FINAL`."""
    return "final" if step == FINAL else step


def bins(groups: Groups) -> list[dict[str, Any]]:
    """:func:`value_bins` per (task, step, N) with N > 1, the probes of every seed pooled."""
    out = []
    for (task, step, n), by_seed in groups.items():
        if n > 1:
            b = value_bins([p for ps in by_seed.values() for p in ps])
            out.append({"task": task, "step": step_label(step), "n": n,
                        **{k: [_round(float(x)) for x in v] for k, v in b.items()}})  # fmt: skip
    return out


def report(groups: Groups) -> list[dict[str, Any]]:
    """Per task, step (``final``: the run's last models) and N: each statistic's mean and std over
    seeds (each seed's probes summarised on their own; NaNs left out) and the number of
    probes."""
    table = []
    for (task, step, n), by_seed in groups.items():
        per_seed = {s: summarize_probes(ps).to_dict() for s, ps in sorted(by_seed.items())}
        row: dict[str, Any] = {"task": task, "step": step_label(step), "n": n,
                               "seeds": sorted(by_seed),
                               "probes": sum(len(ps) for ps in by_seed.values())}  # fmt: skip
        for k in STATS:
            row[k], row[f"{k}_std"] = mean_std([v[k] for v in per_seed.values()])
        table.append(row)
    return table


#: the columns of the two markdown tables: ranking by return, and falls (tasks that fall)
RETURN_COLUMNS = [("spearman_value", "rho(value, return)"),
                  ("chosen_minus_anchor", "chosen - anchor"),
                  ("best_minus_chosen", "best - chosen"), ("return_spread", "return spread"),
                  ("chaos_floor", "chaos floor"), ("chosen_fell", "chosen fell"),
                  ("overrating_vs_support", "rho(overrating, -loglik)")]  # fmt: skip
FALL_COLUMNS = [("chosen_fell", "chosen fell"), ("anchor_fell", "anchor fell"),
                ("set_fell", "set fell"), ("mixed", "mixed sets"),
                ("fall_auc_value", "AUC value"), ("fall_auc_score", "AUC score"),
                ("fall_auc_support", "AUC loglik")]  # fmt: skip


def markdown(table: list[dict[str, Any]], cols: list[tuple[str, str]] = RETURN_COLUMNS) -> str:
    """A markdown table of ``table``'s rows in ``cols`` (mean ± std over seeds); a step column
    when any row is a snapshot's."""
    steps = any(r["step"] != "final" for r in table)
    head = "| task | " + ("step | " if steps else "") + "N | probes | "
    lines = [head + " | ".join(h for _, h in cols) + " |",
             "| --- " * (head.count("|") - 1) + "| " + " | ".join("---" for _ in cols) + " |"]
    for r in table:
        cells = [f"{r[k]:.2f} ± {r[k + '_std']:.2f}" for k, _ in cols]
        step = f"{r['step']} | " if steps else ""
        lines.append(f"| {r['task']} | {step}{r['n']} | {r['probes']} | " + " | ".join(cells)
                     + " |")  # fmt: skip
    return "\n".join(lines)


def decisions(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Per probe of an oracle file: the chosen and the anchor's branch, the set's fall rate and
    the chosen candidate's ranks (0 = lowest of the set) by value and by log-likelihood."""
    rows = []
    for r in body["probes"]:
        p = OracleProbe.from_dict(r)
        i, m = p.index, len(p.returns)
        rows.append({"n": r["n"], "episode": p.episode, "t": p.t,
                     "chosen_return": float(p.returns[i]), "chosen_fell": bool(p.fell[i]),
                     "chosen_length": int(p.lengths[i]), "anchor_return": float(p.returns[0]),
                     "anchor_fell": bool(p.fell[0]), "set_fell": float(p.fell.mean()),
                     "value_rank": int((p.value < p.value[i]).sum()),
                     "loglik_rank": int((p.loglik < p.loglik[i]).sum()),
                     "support": float(p.support[i]), "candidates": m})  # fmt: skip
    return rows


def decisions_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| N | episode | t | chosen: return, fell (steps) | anchor: return, fell | set fell | "
             "chosen's value rank | chosen's loglik rank | chosen's support |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        m = r["candidates"]
        lines.append(
            f"| {r['n']} | {r['episode']} | {r['t']} | {r['chosen_return']:.1f}, "
            f"{'fell' if r['chosen_fell'] else 'up'} ({r['chosen_length']}) | "
            f"{r['anchor_return']:.1f}, {'fell' if r['anchor_fell'] else 'up'} | "
            f"{r['set_fell']:.2f} | {r['value_rank']}/{m - 1} | {r['loglik_rank']}/{m - 1} | "
            f"{r['support']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stage == "run":
        for task in args.tasks:
            for seed in args.seeds:
                models = Path(args.runs) / f"{task}-s{seed}"
                if args.snapshot is not None:
                    models = snapshot_dir(models, args.snapshot)
                cmd = ["gemkit", "diagnose", "oracle", "--models", str(models),
                       "--dataset", f"gemkit/{task}-v0", "--n", args.n, "--value", args.value,
                       "--lam", str(args.lam), "--beta", str(args.beta), "--episodes",
                       str(args.episodes), "--probe-every", str(args.probe_every), "--horizon",
                       str(args.horizon), "--threads", str(args.threads), "--out",
                       f"{args.out[0]}/{task}-s{seed}"]  # fmt: skip
                print(" ".join(cmd), flush=True)
                subprocess.run(cmd, check=True)
    elif args.stage == "decisions":
        if not args.file:
            raise SystemExit("decisions needs --file ORACLE.json (from gemkit diagnose oracle)")
        f = Path(args.file)
        text = gzip.decompress(f.read_bytes()).decode() if f.suffix == ".gz" else f.read_text()
        print(decisions_markdown(decisions(json.loads(text))))
    elif args.stage == "collect":
        n = collect([Path(o) for o in args.out], Path(args.probes))
        print(f"wrote {n} probes to {args.probes}")
    else:
        groups = read_groups(Path(args.probes))
        table = report(groups)
        summary = Path(args.summary)
        by_bin = bins(groups)
        write_json(summary, {"probes": Path(args.probes).name, "rows": table, "bins": by_bin})
        write_csv(summary.with_suffix(".csv"), table)
        png = plot_oracle_bins(by_bin, summary.with_name(summary.stem + "_bins.png"))
        print(markdown(table))
        falls = [r for r in table if r["mixed"] > 0]
        if falls:
            print("\nwhere candidate sets hold falls:\n" + markdown(falls, FALL_COLUMNS))
        print(f"wrote {summary}, {summary.with_suffix('.csv')} and {png}")


if __name__ == "__main__":
    main()
