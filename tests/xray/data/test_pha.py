"""OGIP PHA input as pipelines write it: the files beside a spectrum, damaged copies, ids,
instruments, background and net spectra, and the messages that name what to change."""

from __future__ import annotations

import numpy as np
import pytest

from latentlapse.xray import cli
from latentlapse.xray.data.readers import load_dataset
from latentlapse.core.errors import InputError


@pytest.fixture
def observation(tmp_path, make_pha):
    """A source with its background and RMF in one folder, as SAS writes them."""
    rng = np.random.default_rng(7)
    make_pha(tmp_path / "bkg.fits", rng.poisson(40, 2000), EXPOSURE=1000.0, BACKSCAL=4.0)
    make_pha.rmf(tmp_path / "PN_rmf.fits")
    source = make_pha(tmp_path / "PN.pha", rng.poisson(20, 2000), BACKFILE="bkg.fits", RESPFILE="PN_rmf.fits")
    return source


@pytest.mark.parametrize("name", ["bkg.fits", "PN_rmf.fits"])
def test_predict_refuses_an_out_that_would_replace_a_file_beside_a_pha_data_file(observation, capsys,
                                                                                 monkeypatch, name):
    monkeypatch.chdir(observation.parent)
    before = {p: p.read_bytes() for p in observation.parent.iterdir()}
    code = cli.main(["predict", "--checkpoint", "absent.pt", "--data", "PN.pha", "--out", name])
    assert code == 2
    assert capsys.readouterr().err == (
        f"latentlapse predict: error: --out {name}: would replace a file the PHA --data file names (background, "
        f"response) beside PN.pha; choose another --out\n")
    assert {p: p.read_bytes() for p in observation.parent.iterdir()} == before


def test_predict_beside_a_pha_file_may_replace_its_own_earlier_predictions_not_another_spectrum(
        observation, make_pha, capsys, monkeypatch):
    """Refusing every existing file of the folder also refused rerunning the same command."""
    monkeypatch.chdir(observation.parent)
    (observation.parent / "pred.csv").write_text("id,predicted_class\n")  # an earlier run's output
    make_pha(observation.parent / "other_src.fits", np.ones(2000))  # a PHA spectrum, by its content
    from latentlapse.xray.predict import check_out_spares_data

    check_out_spares_data("pred.csv", "PN.pha")  # no refusal
    code = cli.main(["predict", "--checkpoint", "absent.pt", "--data", "PN.pha", "--out", "other_src.fits"])
    assert code == 2 and "would replace another PHA spectrum beside PN.pha" in capsys.readouterr().err


# --- damaged copies: one line that names the file and says it was cut short -----------------

CUT = r"it was cut short \(an interrupted copy or download\?\); copy it again"


def _cut(path, fraction):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])
    return path


def test_a_cut_short_pha_source_is_named_as_such(observation):
    _cut(observation, 0.6)
    with pytest.raises(InputError, match=rf"PN\.pha: the file ends after \d+ bytes, but its SPECTRUM HDU needs "
                                         rf"\d+: {CUT}"):
        load_dataset(observation)


def test_a_cut_short_background_is_named_as_the_background_of_its_source(observation):
    _cut(observation.parent / "bkg.fits", 0.6)
    with pytest.raises(InputError, match=rf"bkg\.fits \(the background of PN\.pha\): the file ends after \d+ bytes, "
                                         rf"but its SPECTRUM HDU needs \d+: {CUT}"):
        load_dataset(observation)


def test_a_cut_short_file_in_a_folder_is_named(observation, make_pha):
    make_pha(observation.parent / "PN_cut.pha", np.ones(2000, int), BACKFILE="bkg.fits", RESPFILE="PN_rmf.fits")
    _cut(observation.parent / "PN_cut.pha", 0.6)
    with pytest.raises(InputError, match=rf"PN_cut\.pha: the file ends after \d+ bytes, but .* needs \d+: {CUT}"):
        load_dataset(observation.parent)


def test_a_file_cut_inside_its_spectrum_header_is_not_taken_for_a_table(observation):
    _cut(observation, 2880 * 1.5 / observation.stat().st_size)  # half-way through the SPECTRUM header
    with pytest.raises(InputError, match=rf"PN\.pha: the file has 1440 bytes after its PRIMARY HDU that do not read "
                                         rf"as a FITS header: {CUT}"):
        load_dataset(observation)


@pytest.mark.parametrize("fraction", [0.2, 0.8, 0.99])
def test_a_cut_short_ftz_is_named_as_such(tmp_path, make_pha, fraction):
    path = _cut(make_pha(tmp_path / "src.FTZ", np.arange(2000) % 50, gzip=True), fraction)
    with pytest.raises(InputError, match=rf"src\.FTZ: the gzip stream stops before its end: {CUT}"):
        load_dataset(path)


# --- ids --------------------------------------------------------------------------------------


def test_ids_are_file_names_where_object_is_shared_or_absent_else_object(observation, make_pha):
    folder, counts = observation.parent, np.arange(2000) % 30
    for name in ("src_a.pha", "src_b.pha"):  # OBJECT copied from the event file: the pointing's target
        make_pha(folder / name, counts, RESPFILE="PN_rmf.fits", OBJECT="M 31")
    make_pha(folder / "src_c.pha", counts, RESPFILE="PN_rmf.fits", OBJECT="NGC 1")
    data = load_dataset(folder)
    assert data.ids.tolist() == ["PN", "src_a", "src_b", "NGC 1"]  # PN.pha has no OBJECT
    assert ("2 files (src_a.pha, src_b.pha) have the same OBJECT 'M 31' (the observation's target, not the "
            "source): their ids are their file names") in data.notes
    assert load_dataset(folder / "src_a.pha").ids.tolist() == ["M 31"]  # alone, OBJECT repeats nothing


# --- instruments ------------------------------------------------------------------------------


@pytest.mark.parametrize("telescope, instrument, noted", [("XMM", "EMOS1", True), ("CHANDRA", "ACIS", True),
                                                          ("XMM", "EPN", False)])
def test_another_instrument_than_epic_pn_is_noted(observation, make_pha, telescope, instrument, noted):
    path = make_pha(observation.parent / "other.pha", np.arange(2000) % 30, RESPFILE="PN_rmf.fits",
                    TELESCOP=telescope, INSTRUME=instrument)
    note = (f"TELESCOP = {telescope}, INSTRUME = {instrument}: the model's inputs are XMM-Newton EPIC-pn spectra, "
            f"and its probabilities may not carry over to another instrument's")
    assert (note in load_dataset(path).notes) is noted


# --- channel energies without an RMF -----------------------------------------------------------


def test_the_fallback_channel_energies_say_how_far_they_can_be_from_the_rmf(tmp_path, make_pha):
    path = make_pha(tmp_path / "src.pha", np.arange(2000) % 30, RESPFILE="gone.rmf")
    note = ("RESPFILE 'gone.rmf' not found next to it: channel energies from the EPIC-pn channel definition "
            "(channel c covers 5c to 5(c+1) eV), which can differ from the RMF's EBOUNDS by up to about 28 eV "
            "(one 25 eV grid bin) below 2.5 keV; put the RMF next to the spectrum to use its EBOUNDS")
    assert note in load_dataset(path).notes


def test_the_fallback_note_states_the_real_pn_rmf_difference(shared_data):
    """The figure in the note is the example RMF's: up to 28 eV in 0.5-2.5 keV, next to none above."""
    fits = pytest.importorskip("astropy.io.fits")
    with fits.open(shared_data / "xmm_pn_example" / "PN.rmf") as hdus:
        ebounds = hdus["EBOUNDS"].data
        channel, e_min, e_max = (np.asarray(ebounds[c], dtype=float) for c in ("CHANNEL", "E_MIN", "E_MAX"))
    off = np.maximum(abs(e_min - 0.005 * channel), abs(e_max - 0.005 * (channel + 1))) * 1000  # eV
    soft, hard = (channel >= 100) & (channel < 500), (channel >= 500) & (channel < 2000)
    assert 27.5 < off[soft].max() < 28.5 and off[hard].max() < 0.2


# --- background and net spectra ---------------------------------------------------------------


def test_a_background_spectrum_passed_alone_is_refused(observation, make_pha):
    path = make_pha(observation.parent / "bkg_only.pha", np.arange(2000) % 30, RESPFILE="PN_rmf.fits",
                    HDUCLAS2="BKG")
    with pytest.raises(InputError, match=r"bkg_only\.pha: is a background spectrum \(HDUCLAS2 = BKG\); pass the "
                                         r"source spectrum$"):
        load_dataset(path)


def test_a_net_spectrum_is_noted_as_already_subtracted(observation, make_pha):
    path = make_pha(observation.parent / "net.pha", np.arange(2000) % 30, RESPFILE="PN_rmf.fits", HDUCLAS2="NET")
    notes = load_dataset(path).notes
    assert "already background-subtracted (HDUCLAS2 = NET)" in notes
    assert not any("without background subtraction" in note for note in notes)


# --- EXPOSURE: required where it is used ------------------------------------------------------


def _without_exposure(path):
    fits = pytest.importorskip("astropy.io.fits")
    with fits.open(path, mode="update") as hdus:
        del hdus[1].header["EXPOSURE"]
    return path


def test_counts_without_background_need_no_exposure(tmp_path, make_pha):
    counts = np.zeros(2000, int)
    counts[100:105] = 7
    data = load_dataset(_without_exposure(make_pha(tmp_path / "src.pha", counts)))
    assert data.counts[0] == pytest.approx(35.0)


def test_a_background_to_scale_needs_the_exposure_and_says_ogip_requires_it(observation):
    _without_exposure(observation.parent / "bkg.fits")
    with pytest.raises(InputError, match=r"bkg\.fits \(the background of PN\.pha\): no EXPOSURE keyword in the "
                                         r"SPECTRUM extension; it is needed to scale it to the source \(and OGIP "
                                         r"requires it\), add it to the header"):
        load_dataset(observation)
    _without_exposure(observation)
    with pytest.raises(InputError, match=r"PN\.pha: no EXPOSURE keyword .*; it is needed to scale the background "
                                         r"\(and OGIP requires it\)"):
        load_dataset(observation)


def test_a_rate_column_needs_the_exposure(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    table = fits.BinTableHDU.from_columns([fits.Column(name="CHANNEL", format="J", array=np.arange(2000)),
                                           fits.Column(name="RATE", format="E", array=np.full(2000, 0.01))])
    table.header.update(EXTNAME="SPECTRUM", HDUCLAS1="SPECTRUM")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "rate.pha")
    with pytest.raises(InputError, match=r"rate\.pha: no EXPOSURE keyword in the SPECTRUM extension; it is needed to "
                                         r"turn its RATE column into counts \(and OGIP requires it\)"):
        load_dataset(tmp_path / "rate.pha")
