"""What `pip install saharank` ships: the settings and the papermill notebooks of `saharank report` travel inside the
package, and the installed package finds its own copy (not a source checkout's)."""
import subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_settings_and_pipeline_notebooks(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "whl"), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    whl = next((tmp_path / "whl").glob("saharank-*.whl"))
    names = zipfile.ZipFile(whl).namelist()
    for n in ("saharank/settings.ini", "saharank/pipeline/01_tables.ipynb", "saharank/pipeline/02_figures.ipynb",
              "saharank/pipeline/03_findings.ipynb", "saharank/__main__.py", "saharank/reference/paper_table2_finetuning.csv"):
        assert n in names, n
    site = tmp_path / "site"
    zipfile.ZipFile(whl).extractall(site)
    code = "import saharank.experiment as e, saharank.settings as s; print(e.pipeline_dir()); print(s.SETTINGS_FILE.exists())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode == 0, r.stderr
    where, settings = r.stdout.split()
    assert Path(where) == site / "saharank" / "pipeline" and settings == "True"
    assert (site / "saharank" / "pipeline" / "01_tables.ipynb").read_bytes() == (ROOT / "pipeline" / "01_tables.ipynb").read_bytes()
