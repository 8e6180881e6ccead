"""What the profile-variant benchmarks share (`resolution.py`, `noise_augmentation.py`): a settings file whose extra
profiles equal [smoke] but for a few settings, one `saharank reproduce` per such profile, and a Markdown table."""
from __future__ import annotations
import configparser, json, subprocess, sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / 'settings.ini'


def settings_with_variants(variants: dict, path: Path, base: str = 'smoke') -> Path:
    """The packaged settings.ini plus, for each `variants` item name -> {setting: value}, a profile [name] equal to
    [`base`] but for those settings (`base = BASE` and the settings' lines, as `saharank.settings.load_settings`
    reads them); written to `path` (returned)."""
    cp = configparser.ConfigParser()
    cp.read(SETTINGS)
    for name, changes in variants.items():
        unknown = [k for k in changes if k not in cp[base]]
        if unknown: sys.exit(f"{SETTINGS}: [{base}] has no setting {unknown[0]!r}")
        cp[name] = {'base': base} | {k: str(v) for k, v in changes.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w') as f: cp.write(f)
    return path


def run_variant(profile: str, ini: Path, out: Path, *flags: str, log: str = 'variant.log') -> None:
    """`saharank reproduce --profile PROFILE --settings INI --out OUT --quiet FLAGS` in a subprocess; its output in
    OUT/`log`; exits naming the profile when it fails."""
    cmd = [sys.executable, '-m', 'saharank', 'reproduce', '--profile', profile, '--settings', str(ini), '--out',
           str(out), *flags, '--quiet']
    print(' '.join(cmd[1:]), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / log).write_text(r.stdout + r.stderr)
    if r.returncode: sys.exit(f"{profile}: reproduce failed (exit {r.returncode}):\n{r.stderr[-3000:]}")


def markdown_table(t: pd.DataFrame) -> str:
    "`t` as a Markdown table: its columns as the header, one line per row, values as `str` gives them."
    md = '| ' + ' | '.join(map(str, t.columns)) + ' |\n|' + '---|' * len(t.columns) + '\n'
    return md + ''.join('| ' + ' | '.join(str(v) for v in r) + ' |\n' for r in t.itertuples(index=False))


def _provenance(out: Path) -> Path:
    "A run folder's provenance.json, or a committed report's report_provenance.json (figures/PROFILE has no other)."
    return out / 'provenance.json' if (out / 'provenance.json').is_file() else out / 'report_provenance.json'


def write_runs_table(t: pd.DataFrame, fig: Path, stem: str, markdown: str, folders: dict, command: str) -> None:
    """The table `t` as STEM.csv in `fig` (made), the Markdown text `markdown` as STEM.md, and STEM_provenance.json:
    `command`, the run folders (`folders`, name -> folder) and each run's git commit, versions, generator and engine
    versions and wall times from its provenance.json (a committed report's: its report_provenance.json)."""
    fig.mkdir(parents=True, exist_ok=True)
    t.to_csv(fig / f'{stem}.csv', index=False)
    (fig / f'{stem}.md').write_text(markdown)
    keep = ('git_commit', 'versions', 'generator_version', 'engine_version', 'wall_time_s')
    prov = {str(n): {k: v for k, v in json.loads(_provenance(Path(out)).read_text()).items() if k in keep}
            for n, out in folders.items()}
    (fig / f'{stem}_provenance.json').write_text(json.dumps(
        dict(command=command, runs={str(n): str(out) for n, out in folders.items()}, provenance=prov), indent=1,
        default=str))
