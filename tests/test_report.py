"""`metevo.report`: figures and the static HTML report of an analysed 2-patient cohort, checked
in headless Chromium (every image loads, the console stays silent)."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import make_mini_cohort  # noqa: E402

from metevo.report import draw_figures, write_report  # noqa: E402


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    from metevo import analyze, open_cohort

    root = tmp_path_factory.mktemp("report_cohort")
    mini = make_mini_cohort(root, n_patients=2, n_visits=3)
    # P002's lesion is gone at V2 (complete response there): a visit without target or new lesion
    import SimpleITK as sitk

    path = root / "P002" / "V2" / "lesion.nii.gz"
    empty = sitk.ReadImage(str(path)) * 0
    sitk.WriteImage(empty, str(path))
    cohort = open_cohort(mini["manifest"], clinical=mini["clinical"], events=mini["events"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stage warnings are the stages' tests' business
        analyze(cohort, root / "analysis", workers=1, progress=False)
    return {**mini, "analysis": root / "analysis"}


def test_draw_figures_writes_png_and_pdf(analysed, tmp_path):
    table = draw_figures(analysed["analysis"], tmp_path, events=analysed["events"], dpi=50)
    written = table[table.status == "written"]
    cohort = set(written.loc[written.patient_id == "", "figure"])
    assert cohort == {"waterfall", "spider", "swimmer"}  # patterns did not run: no pattern figure
    per_patient = written[written.patient_id != ""].groupby("patient_id")["figure"].apply(set)
    assert per_patient.to_dict() == {
        p: {"lesion_graph", "trajectory_panel", "timeline"} for p in ("P001", "P002")
    }
    for row in written.itertuples():
        for rel in (row.png, row.pdf):
            head = (tmp_path / rel).read_bytes()[:8]
            assert head.startswith(b"\x89PNG" if rel.endswith(".png") else b"%PDF")


def test_analysis_records_its_manifest_and_options(analysed, tmp_path):
    import json

    from metevo.cohort import recorded_cohort
    from metevo.exceptions import CohortError

    record = json.loads((analysed["analysis"] / "inputs.json").read_text(encoding="utf-8"))
    assert record["manifest"] == str(Path(analysed["manifest"]).resolve())
    assert record["options"]["lesion_mask_kind"] == "binary" and record["options"]["liver_label"] is None
    cohort = recorded_cohort(analysed["analysis"], options={"liver_label": None, "baseline_window_days": 7})
    assert cohort.patient_ids == ["P001", "P002"] and cohort.options.baseline_window_days == 7
    assert recorded_cohort(tmp_path) is None  # nothing recorded, nothing given
    (tmp_path / "inputs.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CohortError, match="inputs.json is not valid JSON"):
        recorded_cohort(tmp_path)


def test_draw_figures_bad_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        draw_figures(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not an analysis folder"):
        draw_figures(tmp_path)


@pytest.fixture(scope="module")
def report(analysed, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    # no manifest: the analysis folder recorded it (inputs.json)
    write_report(analysed["analysis"], out, events=analysed["events"], dpi=60)
    return out


def test_report_pages_and_lesion_crops(report, analysed):
    assert (report / "index.html").is_file()
    pages = sorted(p.name for p in (report / "patients").glob("*.html"))
    assert pages == ["P001.html", "P002.html"]
    index = (report / "index.html").read_text(encoding="utf-8")
    assert 'href="patients/P001.html"' in index and "Quality control per scan" in index
    rl = pd.read_parquet(analysed["analysis"] / "recist_lesions.parquet")
    lesions = pd.read_parquet(analysed["analysis"] / "lesions.parquet")
    for pid, expected in (("P001", 3), ("P002", 2)):
        html = (report / "patients" / f"{pid}.html").read_text(encoding="utf-8")
        # one crop per visit and present target/new lesion: one target per visit, none at P002 V2
        n_targets = int(((rl.patient_id == pid) & rl.role.isin(["target", "new"]) & (rl.state == "present")).sum())
        crops = re.findall(rf'src="{pid}/(V\d)_lesion(\d+)\.png"', html)
        assert len(crops) == n_targets == expected
        assert ("no target or new lesion at this visit." in html) == (pid == "P002")
        assert "<td>V2</td>" in html and "&lt;" not in html.split("RECIST 1.1 per visit")[1][:200]
        # each response with its margin: the one-decimal value of the recist table
        assert "target_response_margin_mm" in html
        rec = pd.read_parquet(analysed["analysis"] / "recist.parquet")
        margins = rec.loc[rec.patient_id == pid, "target_response_margin_mm"].dropna()
        assert len(margins) >= 1 and all(f"<td>{v:.1f}</td>" in html for v in margins)
        # the crop shows the lesion contour in its track's colour
        import matplotlib.image as mpimg

        from metevo.plotting.graph import track_color

        tp, lid = crops[-1]
        row = lesions[(lesions.patient_id == pid) & (lesions.timepoint == tp) & (lesions.lesion_id == int(lid))]
        track = int(row.track_id.iloc[0])
        img = mpimg.imread(report / "patients" / pid / f"{tp}_lesion{lid}.png")[..., :3]
        near = np.abs(img - np.array(track_color(track))).max(axis=-1) < 0.12
        assert near.sum() >= 10


def test_visit_slices_read_the_ct_only_where_a_crop_is_drawn(analysed, tmp_path, monkeypatch):
    """P001's V2 lesion given a track of its own without RECIST role: nothing is drawn at V2 (its
    position there is still placed, from the header), and V2's CT is not read."""
    from metevo import open_cohort
    from metevo.cohort import Scan
    from metevo.report._crops import visit_slices

    tables = {name: pd.read_parquet(analysed["analysis"] / f"{name}.parquet")
              for name in ("recist", "recist_lesions", "lesions", "registrations", "scans")}
    lesions = tables["lesions"]
    at_v2 = (lesions.patient_id == "P001") & (lesions.timepoint == "V2")
    assert at_v2.sum() == 1
    lesions.loc[at_v2, "track_id"] = lesions.track_id.max() + 1
    read = []
    image = Scan.image

    def counting_image(scan):
        read.append(scan.timepoint)
        return image(scan)

    monkeypatch.setattr(Scan, "image", counting_image)
    cohort = open_cohort(analysed["manifest"], clinical=analysed["clinical"], events=analysed["events"])
    visits, _ = visit_slices("P001", tables, cohort, tmp_path, fov_mm=80.0, limit=4, dpi=20)
    assert [len(v["slices"]) for v in visits] == [1, 1, 0]
    assert visits[2]["note"] == "no target or new lesion at this visit."
    assert read == ["V0", "V1"]


def _moved_patient(root: Path, shift_mm, lesion_dx: int) -> Path:
    """One patient, two visits of the same anatomy; V1 is moved by ``shift_mm`` (its origin) and its
    lesion by ``lesion_dx`` voxels along x inside the liver (it grew towards one side)."""
    from conftest import write_image

    shape = (20, 48, 48)  # (z, y, x), spacing (2, 2, 3) mm
    z, y, x = np.indices(shape)
    liver = ((((x - 22) / 16) ** 2 + ((y - 24) / 11) ** 2 + ((z - 10) / 7) ** 2) <= 1) | (
        (((x - 34) / 7) ** 2 + ((y - 15) / 6) ** 2 + ((z - 8) / 5) ** 2) <= 1
    )
    rows = []
    for v, (origin, centre, radius) in enumerate(
        [((0.0, 0.0, 0.0), (10, 24, 18), 3), (tuple(shift_mm), (10, 24, 18 + lesion_dx), 4)]
    ):
        lesion = (((z - centre[0]) * 1.5) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2) & liver
        ct = np.where(liver, 60, -1000).astype(np.int16)
        ct[lesion] = 20
        base = root / "P1" / f"V{v}"
        for name, arr in (("ct", ct), ("lesion", lesion.astype(np.uint8)), ("liver", liver.astype(np.uint8))):
            write_image(base / f"{name}.nii.gz", arr, origin=origin)
        rows.append({"patient_id": "P1", "timepoint": f"V{v}", "date": f"2022-0{1 + 2 * v}-10",
                     "image": f"P1/V{v}/ct.nii.gz", "lesion_mask": f"P1/V{v}/lesion.nii.gz",
                     "liver_mask": f"P1/V{v}/liver.nii.gz"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_follow_up_crops_show_the_baseline_anatomy_by_registration(tmp_path):
    """V1 = V0 moved by a known (10, -6, 6) mm, its lesion 3 voxels (6 mm) off along x: the V1 crop
    is centred on the V0 crop's anatomy (+ the known motion), not on the lesion, within a voxel;
    and the stored registration maps it back onto the V0 crop centre within a voxel."""
    from metevo import analyze, open_cohort
    from metevo.tracking import affine_from_row

    shift = np.array([10.0, -6.0, 6.0])
    manifest = _moved_patient(tmp_path, shift, lesion_dx=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyze(open_cohort(manifest), tmp_path / "analysis", workers=1, progress=False, isolate=False)
    write_report(tmp_path / "analysis", tmp_path / "report", dpi=40)
    html = (tmp_path / "report" / "patients" / "P1.html").read_text(encoding="utf-8")
    crops = {
        (tp, int(track)): np.array([float(v) for v in centre.split()])
        for tp, track, centre in re.findall(r'data-timepoint="(V\d)" data-track="(\d+)" data-slice="\d+" data-center-mm="([^"]+)"', html)
    }
    lesions = pd.read_parquet(tmp_path / "analysis" / "lesions.parquet")
    assert len(lesions) == 2 and lesions.track_id.nunique() == 1  # one lesion, matched across visits
    track = int(lesions.track_id.iloc[0])
    c0, c1 = crops[("V0", track)], crops[("V1", track)]
    voxel = np.array([2.0, 2.0, 3.0])
    # known motion: the same anatomy sits shift_mm further in V1 (a lesion-centred crop is 6 mm off in x)
    assert np.all(np.abs(c1 - (c0 + shift)) <= voxel), (c1, c0 + shift)
    # the stored registration (V1 -> V0 affine) maps the V1 crop centre onto the V0 one
    reg = pd.read_parquet(tmp_path / "analysis" / "registrations.parquet").iloc[0]
    back = np.asarray(affine_from_row(reg).TransformPoint(tuple(c1)))
    assert np.all(np.abs(back - c0) <= voxel), (back, c0)
    assert "same anatomy as at V0, by registration" in html


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (`apt-get install -y chromium`; .ci/run installs it)")
    return exe


def _render(exe: str, page: Path) -> tuple[str, str]:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
           "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
           "--dump-dom", page.resolve().as_uri()]
    run = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, run.stderr


@pytest.mark.parametrize("page", ["index.html", "patients/P001.html", "patients/P002.html"])
def test_report_renders_in_headless_chromium(report, page):
    exe = _chromium()
    path = report / page
    n_images = len(re.findall(r"<img ", path.read_text(encoding="utf-8")))
    dom, log = _render(exe, path)
    body = re.search(r'<body data-images-loaded="(\d*)" data-images-broken="(\d*)"', dom)
    assert body is not None, dom[:500]
    assert (int(body.group(1)), int(body.group(2))) == (n_images, 0)
    assert n_images >= (5 if page != "index.html" else 3)  # 3 figures + a crop per target visit
    console = [ln for ln in log.splitlines() if ":CONSOLE" in ln]
    assert console == []


def test_chromium_check_sees_a_broken_image_and_a_console_error(report):
    """The check above can fail: a missing image and a script error are both caught."""
    exe = _chromium()
    page = report / "patients" / "broken.html"
    html = (report / "patients" / "P001.html").read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", '<img src="missing.png"><script>nope();</script></body>'))
    dom, log = _render(exe, page)
    assert 'data-images-broken="1"' in dom
    assert any("nope is not defined" in ln for ln in log.splitlines() if ":CONSOLE" in ln)
    page.unlink()


def test_cli_figures_and_report(analysed, tmp_path):
    from typer.testing import CliRunner

    from metevo.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["figures", str(analysed["analysis"]), "--out", str(tmp_path / "f"),
                              "--patient", "P002", "--dpi", "40"])
    assert res.exit_code == 0, res.output
    assert "6 figure(s) written" in res.output  # waterfall, spider, swimmer + P002's three
    assert sorted(p.name for p in (tmp_path / "f" / "patients" / "P002").iterdir()) == [
        f"{n}.{s}" for n in ("lesion_graph", "timeline", "trajectory_panel") for s in ("pdf", "png")
    ]
    res = runner.invoke(app, ["report", str(analysed["analysis"]), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert f"open {tmp_path / 'r' / 'index.html'}" in res.output
    assert len(list((tmp_path / "r" / "patients" / "P001").glob("*.png"))) == 3
    # --manifest overrides the recorded one: a manifest without P002 leaves its page without CT
    manifest = pd.read_csv(analysed["manifest"])
    manifest = manifest[manifest.patient_id == "P001"]
    for col in ("image", "lesion_mask", "liver_mask"):
        manifest[col] = [str(analysed["root"] / v) for v in manifest[col]]
    only = tmp_path / "only_p001.csv"
    manifest.to_csv(only, index=False)
    res = runner.invoke(app, ["report", str(analysed["analysis"]), "--out", str(tmp_path / "r2"),
                              "--manifest", str(only)])
    assert res.exit_code == 0, res.output
    assert "patient P002 is not in the manifest given" in (tmp_path / "r2" / "patients" / "P002.html").read_text(encoding="utf-8")
    assert len(list((tmp_path / "r2" / "patients" / "P001").glob("*.png"))) == 3
    res = runner.invoke(app, ["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "does not exist" in res.output
