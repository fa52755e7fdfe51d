"""load_dataset: every format reads clean data, and every kind of bad input gets one clear line."""

from __future__ import annotations

import logging
import sys
import warnings

import numpy as np
import pytest

from latentlapse.xray.data import grid
from latentlapse.xray.data.pha import rebin
from latentlapse.xray.data.readers import load_dataset
from latentlapse.core.errors import InputError, MissingExtraError, UsageError

# Three values per spectrum keep the literal fixtures readable: rows have 5 or 6 fields.
CLEAN = "S1 1 2 1 100 AGN\nS2 2 1 1 200\nS3 1 1 2 300 yso\n"


def write(tmp_path, text, name="spectra.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


# --- the text format: good input -------------------------------------------------------------


def test_text_mixes_labelled_and_unlabelled_rows(tmp_path):
    data = load_dataset(write(tmp_path, CLEAN))
    assert data.kind == "spectra" and data.X.dtype == np.float32
    assert data.labels.tolist() == ["AGN", "", "YSO"]
    assert data.ids.tolist() == ["S1", "S2", "S3"]
    assert data.counts.tolist() == [100.0, 200.0, 300.0]
    np.testing.assert_allclose(data.X[0], [0.25, 0.5, 0.25])


def test_unnormalised_rows_are_divided_by_their_sum_and_noted(tmp_path):
    data = load_dataset(write(tmp_path, CLEAN))
    np.testing.assert_allclose(data.X.sum(axis=1), 1.0, rtol=1e-6)
    assert any("3 of 3 spectra did not sum to 1" in note for note in data.notes)


def test_crlf_and_byte_order_mark_read_like_clean_input(tmp_path):
    clean = load_dataset(write(tmp_path, CLEAN, "clean.txt"))
    path = tmp_path / "windows.txt"
    path.write_bytes(b"\xef\xbb\xbf" + CLEAN.replace("\n", "\r\n").encode())
    windows = load_dataset(path)
    np.testing.assert_array_equal(windows.X, clean.X)
    assert windows.ids.tolist() == clean.ids.tolist()
    assert windows.labels.tolist() == clean.labels.tolist()


def test_comments_blank_lines_and_a_header_are_skipped(tmp_path):
    text = "# written by hand\nsrc_id v1 v2 v3 net_counts label\n\n" + CLEAN
    data = load_dataset(write(tmp_path, text))
    assert len(data) == 3
    assert any("line 2 read as a column header" in note for note in data.notes)


def test_labels_with_other_spellings_and_case_are_canonical(tmp_path):
    text = "S1 1 1 1 9 hmstar\nS2 1 1 1 9 NS-BIN\nS3 1 1 1 9 Lm_Star\n"
    assert load_dataset(write(tmp_path, text)).labels.tolist() == ["HM-STAR", "NS_BIN", "LM-STAR"]


def test_a_single_spectrum_loads(tmp_path):
    data = load_dataset(write(tmp_path, "ONLY 1 2 3 4 5 60 AGN\n"))
    assert data.X.shape == (1, 5) and data.labels.tolist() == ["AGN"]


def test_duplicate_ids_give_one_warning(tmp_path, caplog):
    text = "S1 1 1 1 9\nS1 1 1 1 9\nS2 1 1 1 9\nS2 1 1 1 9\nS3 1 1 1 9\n"
    with caplog.at_level(logging.WARNING):
        data = load_dataset(write(tmp_path, text))
    assert len(data) == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 source ids appear more than once (S1, S2)" in warnings[0]


def test_380_bin_file_is_on_the_energy_grid(tmp_path):
    row = "S1 " + " ".join(["1"] * grid.N_BINS) + " 380 AGN\n"
    data = load_dataset(write(tmp_path, row))
    np.testing.assert_array_equal(data.energy, grid.centres())
    assert data.feature_names[0] == "E0.5125"


# --- the text format: bad input --------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"data\.txt: no such file; check the path \(current directory: "):
        load_dataset(tmp_path / "data.txt")


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match=r"spectra\.txt: the file is empty; expected one spectrum per line"):
        load_dataset(write(tmp_path, ""))


def test_comment_only_file(tmp_path):
    with pytest.raises(InputError, match=r"spectra\.txt: no data rows \(only blank lines, comments or a header\)"):
        load_dataset(write(tmp_path, "# nothing here\n\n   \n"))


def test_a_longer_row_after_a_short_first_line_also_names_the_first_line(tmp_path):
    """Every row's width is set by the first: when that one lacks a value, the right rows after
    it are the ones refused, so the message names the first line too."""
    text = "S1 0.2 0.8 100 AGN\nS2 0.1 0.3 0.6 100 YSO\n"
    expected = (r"spectra\.txt: line 2 has 6 fields, expected 4 \(unlabelled\) or 5 \(labelled\) \(src_id, 2 values, "
                r"net_counts\[, label\]\) as set by line 1; fix or remove that row \(or line 1, if it is the row short "
                r"of values\)$")
    with pytest.raises(InputError, match=expected):
        load_dataset(write(tmp_path, text))
    with pytest.raises(InputError, match=r"fix or remove that row$"):  # a row short of values: only its own line
        load_dataset(write(tmp_path, "S1 0.2 0.3 0.5 100 AGN\nS2 0.5 100\n"))


def test_header_only_file(tmp_path):
    with pytest.raises(InputError, match=r"spectra\.txt: no data rows"):
        load_dataset(write(tmp_path, "src_id v1 v2 v3 net_counts label\n"))


def test_wrong_number_of_fields(tmp_path):
    text = "# comment\n" + CLEAN + "S4 1 1 100\n"
    expected = (
        r"spectra\.txt: line 5 has 4 fields, expected 5 \(unlabelled\) or 6 \(labelled\) \(src_id, 3 values, "
        r"net_counts\[, label\]\) as set by line 2; fix or remove that row"
    )
    with pytest.raises(InputError, match=expected):
        load_dataset(write(tmp_path, text))


def test_an_unlabelled_row_with_a_value_too_many_is_not_read_as_a_label(tmp_path):
    text = "S1 0.2 0.3 0.5 100\nS2 0.1 0.4 0.5 80\nS3 0.1 0.4 0.3 0.2 90\n"
    with pytest.raises(InputError, match=r"spectra\.txt: line 3 has 6 fields and ends in the number '90', not a label: "
                                         r"one value too many for the 5 \(src_id, 3 values, net_counts\) set by line 1"):
        load_dataset(write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    ("name;f1;label\nA;1;AGN\nB;2;CV\n", r"line 1: the header is a single column with ';' in it: a semicolon-separated "
                                          r"file\? save it with commas as the separator"),
    ("name,f1,label\nA,1,AGN\nname,f1,label\nB,2,CV\n", r"line 3 repeats the header of line 1 \(files joined "
                                                        r"together\?\); remove that line"),
])
def test_csv_mistakes_are_named_for_what_they_are(tmp_path, text, message):
    with pytest.raises(InputError, match=r"cat\.csv: " + message):
        load_dataset(write(tmp_path, text, "cat.csv"))


def test_labelled_row_missing_a_value_is_named_by_its_field_count(tmp_path):
    """A real-size labelled row (380 values) with one value dropped: the message counts fields
    instead of calling the label a non-numeric net_counts."""
    row = " ".join(["0.001"] * 380)
    short = " ".join(["0.001"] * 379)
    text = "".join(f"S{i} {row} 120 AGN\n" for i in range(1, 17)) + f"S17 {short} 90 LM-STAR\n"
    with pytest.raises(InputError) as caught:
        load_dataset(write(tmp_path, text))
    assert str(caught.value) == (
        f"{tmp_path / 'spectra.txt'}: line 17 has 381 fields and the label 'LM-STAR', where 382 (unlabelled) or "
        f"383 (labelled) fields are expected (src_id, 380 values, net_counts[, label]) as set by line 1; "
        f"a value is missing: fix or remove that row"
    )


def test_non_numeric_token(tmp_path):
    text = CLEAN + "S4 1 abc 1 100\n"
    with pytest.raises(InputError, match=r"spectra\.txt: line 4, column 3: 'abc' is not a number; spectra values must be numeric"):
        load_dataset(write(tmp_path, text))


def test_nan_in_a_spectrum(tmp_path):
    with pytest.raises(InputError, match=r"line 2 \(S2\): spectrum contains NaN/inf at column 3; remove the row"):
        load_dataset(write(tmp_path, "S1 1 1 1 9\nS2 1 nan 1 9\n"))


def test_inf_in_a_spectrum(tmp_path):
    with pytest.raises(InputError, match=r"line 1 \(S1\): spectrum contains NaN/inf at column 4"):
        load_dataset(write(tmp_path, "S1 1 1 inf 9\n"))


def test_unknown_labels_are_listed_with_the_known_ones(tmp_path):
    text = "S1 1 1 1 9 AGN\nS2 1 1 1 9 QSO\nS3 1 1 1 9 BLAZAR\nS4 1 1 1 9 QSO\n"
    expected = (
        r"spectra\.txt: unknown labels 'QSO' \(lines 2, 4\), 'BLAZAR' \(line 3\); "
        r"known labels: AGN, CV, HM-STAR, .*YSO \(spellings like HMSTAR, NS-BIN and any case are accepted\)"
    )
    with pytest.raises(InputError, match=expected):
        load_dataset(write(tmp_path, text))


def test_all_zero_spectrum(tmp_path):
    with pytest.raises(InputError, match=r"spectra\.txt: line 2 \(S2\): all-zero spectrum; remove the row"):
        load_dataset(write(tmp_path, "S1 1 1 1 9\nS2 0 0 0 9\n"))


def test_spectrum_summing_to_a_negative_number(tmp_path):
    with pytest.raises(InputError, match=r"line 1 \(S1\): spectrum sums to -1, so it cannot be normalised"):
        load_dataset(write(tmp_path, "S1 1 -3 1 9\n"))


@pytest.mark.parametrize("counts", ["-12", "0"])
def test_net_counts_that_are_not_positive_are_refused_with_their_line(tmp_path, counts):
    with pytest.raises(InputError, match=rf"spectra\.txt: line 2 \(S2\): net_counts is {counts}, not positive: the "
                                         rf"spectrum is the net spectrum divided by them.*or remove the row"):
        load_dataset(write(tmp_path, f"S1 1 1 1 9\nS2 1 1 1 {counts}\n"))


def test_a_huge_bin_value_names_the_first_spectrum_divided_by_its_sum(tmp_path):
    data = load_dataset(write(tmp_path, "S1 0.25 0.5 0.25 9 AGN\nS2 0.25 1e12 0.25 9 AGN\nS3 0.5 2 0.5 9\n"))
    assert "2 of 3 spectra did not sum to 1 and were divided by their sum (the first: line 2 (S2), which summed " \
           "to 1e+12)" in data.notes
    np.testing.assert_allclose(data.X[1], [0.0, 1.0, 0.0], atol=1e-9)


def test_a_spectrum_too_large_to_sum_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"line 1 \(S1\): spectrum sums to inf, so it cannot be normalised"):
        load_dataset(write(tmp_path, "S1 1e308 1e308 1 9\n"))


def test_garbage_binary_file_fails_fast(tmp_path):
    path = tmp_path / "junk.txt"
    path.write_bytes(np.random.default_rng(0).bytes(2_000_000) + b"\0")
    before = _bytes_read()
    with pytest.raises(InputError, match=r"junk\.txt: not a text, CSV, FITS or VOTable file \(binary content at byte \d+\)"):
        load_dataset(path)
    assert _bytes_read() - before < 1_000_000  # refused from its head, not parsed (not timed: the machine may be busy)


def test_binary_content_is_placed_at_its_first_non_text_byte_not_its_first_nul(tmp_path):
    path = tmp_path / "damaged.csv"
    path.write_bytes(b"name,f1,label\nA,1,AGN\nB,\x9c\x01,AGN\n" + b"\0" * 10)  # 0x9c at 24, first NUL at 31
    with pytest.raises(InputError, match=r"damaged\.csv: not a text, CSV, FITS or VOTable file \(binary content at byte 24\)"):
        load_dataset(path)
    path.write_bytes(b"name,f1\nA,1\x07\n\0")  # a control byte (BEL) before the NUL
    with pytest.raises(InputError, match=r"binary content at byte 11\)"):
        load_dataset(path)


def _bytes_read() -> int:
    """Bytes this process has read so far (Linux's ``/proc/self/io``); 0 where there is none."""
    try:
        return next(int(line.split()[1]) for line in open("/proc/self/io") if line.startswith("rchar:"))
    except OSError:
        return 0


def test_gzip_compressed_text_is_refused_with_the_fix(tmp_path):
    import gzip

    path = tmp_path / "spectra.txt.gz"
    path.write_bytes(gzip.compress(CLEAN.encode()))
    with pytest.raises(InputError, match=r"spectra\.txt\.gz: gzip-compressed, and only FITS files are read compressed; decompress it"):
        load_dataset(path)


def test_one_endless_line_is_refused_without_reading_it_all(tmp_path):
    path = write(tmp_path, "S1 " + "1 " * 1_000_000)
    with pytest.raises(InputError, match=r"line 1 is longer than 1048576 characters; this is not a spectra text file"):
        load_dataset(path)


def test_features_option_on_a_spectra_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"--features and --exclude apply to catalogue tables, but this is a spectra text file"):
        load_dataset(write(tmp_path, CLEAN), features=["a"])


def test_placeholder_option_on_spectra_is_a_usage_error_not_ignored(tmp_path):
    with pytest.raises(UsageError, match=r"--placeholder applies to catalogue tables, but this is a spectra text file; "
                                         r"drop it"):
        load_dataset(write(tmp_path, CLEAN), placeholders=[-99.0])
    table = write(tmp_path, "src_id,v1,v2,v3,net_counts\nA,0.1,0.3,0.6,9\n", "spectra.csv")
    with pytest.raises(UsageError, match=r"--placeholder applies to catalogue tables, but this table holds spectra"):
        load_dataset(table, placeholders=[-99.0])


def test_unknown_missing_policy(tmp_path):
    with pytest.raises(UsageError, match=r"--missing must be one of indicator, median, drop, got 'zero'"):
        load_dataset(write(tmp_path, CLEAN), missing="zero")


# --- catalogue tables ------------------------------------------------------------------------

CATALOG = """name,f1,e_f1,f2,label
A,1.0,0.1,10,AGN
B,,0.2,20,yso
C,3.0,0.3,,AGN
D,5.0,,40,  Yso  
E,7.0,0.5,50,
"""


def test_catalog_values_stay_raw_with_gaps_for_the_training_split_schema(tmp_path):
    # imputation and indicators are fitted on the training split later (data/schema.py), not on the file
    data = load_dataset(write(tmp_path, CATALOG, "cat.csv"), missing="indicator")
    assert data.kind == "catalog" and data.feature_names == ("f1", "f2") and data.feature_types == ("number", "number")
    expected = [[1, 10], [np.nan, 20], [3, np.nan], [5, 40], [7, 50]]
    np.testing.assert_array_equal(data.X, np.array(expected, dtype=np.float32))
    assert data.labels.tolist() == ["AGN", "YSO", "AGN", "YSO", ""]
    assert data.ids.tolist() == ["A", "B", "C", "D", "E"]
    assert np.isnan(data.counts).all()
    assert any("policy 'indicator'" in note and "f1 1, f2 1" in note for note in data.notes)


def test_catalog_quoted_errors_go_into_errors_aligned_with_features(tmp_path):
    data = load_dataset(write(tmp_path, CATALOG, "cat.csv"), missing="median")
    np.testing.assert_allclose(data.errors[:, 0], [0.1, 0.2, 0.3, np.nan, 0.5], rtol=1e-6)
    assert np.isnan(data.errors[:, 1]).all()


def test_catalog_missing_policy_median_keeps_every_row(tmp_path):
    data = load_dataset(write(tmp_path, CATALOG, "cat.csv"), missing="median")
    assert data.feature_names == ("f1", "f2") and len(data) == 5
    assert any("policy 'median': filled with the training split's median" in note for note in data.notes)


def test_catalog_missing_policy_drop(tmp_path):
    data = load_dataset(write(tmp_path, CATALOG, "cat.csv"), missing="drop")
    np.testing.assert_array_equal(data.X, np.array([[1, 10], [5, 40], [7, 50]], dtype=np.float32))
    assert data.ids.tolist() == ["A", "D", "E"]
    assert any("2 of 5 rows dropped (per class: AGN 1 of 2, YSO 1 of 2;" in note for note in data.notes)


def test_catalog_drop_leaving_no_rows(tmp_path):
    text = "name,f1,f2\nA,,1\nB,2,\n"
    with pytest.raises(InputError, match=r"cat\.csv: every row misses at least one feature value .* use --missing indicator or median"):
        load_dataset(write(tmp_path, text, "cat.csv"), missing="drop")


def test_catalog_label_column_found_automatically(tmp_path):
    text = "CSCv2_name,Fs,True_Class\nX1,1.5,AGN\nX2,2.5,CV\n"
    data = load_dataset(write(tmp_path, text, "cat.csv"))
    assert data.labels.tolist() == ["AGN", "CV"] and data.feature_names == ("Fs",)
    assert data.ids.tolist() == ["X1", "X2"]


def test_catalog_label_column_named_explicitly(tmp_path):
    text = "src,Fs,kind\nX1,1.5,agn\nX2,2.5,cv\n"
    data = load_dataset(write(tmp_path, text, "cat.csv"), label_column="kind")
    assert data.labels.tolist() == ["AGN", "CV"]


def test_catalog_named_label_column_missing(tmp_path):
    with pytest.raises(InputError, match=r"cat\.csv: no column 'Type' for --label_column; the columns are: name, f1, e_f1, f2, label"):
        load_dataset(write(tmp_path, CATALOG, "cat.csv"), label_column="Type")


def test_catalog_features_chosen_explicitly(tmp_path):
    data = load_dataset(write(tmp_path, CATALOG, "cat.csv"), features=("f2",), missing="median")
    assert data.feature_names == ("f2",)
    np.testing.assert_array_equal(data.X[:, 0], np.array([10, 20, np.nan, 40, 50], dtype=np.float32))


def test_catalog_unknown_feature(tmp_path):
    with pytest.raises(InputError, match=r"cat\.csv: unknown column 'f9' in --features; available: f1, e_f1, f2"):
        load_dataset(write(tmp_path, CATALOG, "cat.csv"), features=("f1", "f9"))


def test_catalog_entirely_empty_label_column_means_unlabelled(tmp_path):
    text = "name,f1,label\nA,1,\nB,2,\n"
    data = load_dataset(write(tmp_path, text, "cat.csv"))
    assert data.labels.tolist() == ["", ""]
    assert any("label column label is empty in every row" in note for note in data.notes)


def test_catalog_entirely_empty_column_is_dropped_with_a_note(tmp_path):
    text = "name,f1,f2,label\nA,1,,AGN\nB,2,,CV\n"
    data = load_dataset(write(tmp_path, text, "cat.csv"))
    assert data.feature_names == ("f1",)
    assert any("columns empty in every row, dropped: f2" in note for note in data.notes)


def test_catalog_non_numeric_cell(tmp_path):
    text = "name,f1,label\nA,1,AGN\nB,abc,CV\nC,3,CV\n"
    with pytest.raises(InputError, match=r"cat\.csv: line 3, column 2 \(f1\): 'abc' is not a number; catalogue features must be numeric"):
        load_dataset(write(tmp_path, text, "cat.csv"))


@pytest.mark.parametrize("value, reason", [("inf", ""), ("1e308", r" \(beyond ±3.4e\+38, the largest value the model can hold\)"),
                                           ("-1e39", r" \(beyond ±3.4e\+38")])
def test_catalog_infinite_or_too_large_value(tmp_path, value, reason):
    text = f"name,f1,label\nA,1,AGN\nB,{value},CV\n"
    shown = "inf" if value == "inf" else f"{float(value):g}".replace("+", r"\+")
    with pytest.raises(InputError, match=rf"cat\.csv: line 3, column 2 \(f1\): {shown} is not a usable value{reason}"):
        load_dataset(write(tmp_path, text, "cat.csv"))


def test_csv_row_with_wrong_number_of_fields(tmp_path):
    text = "name,f1,label\nA,1,AGN\nB,2\n"
    with pytest.raises(InputError, match=r"cat\.csv: line 3 has 2 fields, expected 3 as set by the header on line 1"):
        load_dataset(write(tmp_path, text, "cat.csv"))


def test_csv_header_only(tmp_path):
    with pytest.raises(InputError, match=r"cat\.csv: only a header \(line 1\), no data rows"):
        load_dataset(write(tmp_path, "name,f1,label\n", "cat.csv"))


def test_csv_unknown_label_names_its_line(tmp_path):
    text = "name,f1,label\nA,1,AGN\nB,2,QSO\n"
    with pytest.raises(InputError, match=r"cat\.csv: unknown labels 'QSO' \(line 3\); known labels"):
        load_dataset(write(tmp_path, text, "cat.csv"))


def test_csv_crlf_and_byte_order_mark_read_like_clean_input(tmp_path):
    clean = load_dataset(write(tmp_path, CATALOG, "clean.csv"))
    path = tmp_path / "windows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CATALOG.replace("\n", "\r\n").encode())
    windows = load_dataset(path)
    np.testing.assert_array_equal(windows.X, clean.X)
    assert windows.feature_names == clean.feature_names and windows.labels.tolist() == clean.labels.tolist()


def test_utf16_table_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_bytes(CATALOG.encode("utf-16"))
    with pytest.raises(InputError, match=r"cat\.csv: UTF-16 text \(as some spreadsheets export it\); save the file as UTF-8"):
        load_dataset(path)


def test_csv_without_csv_suffix_is_sniffed(tmp_path):
    data = load_dataset(write(tmp_path, CATALOG, "cat.dat"), missing="median")
    assert data.kind == "catalog" and len(data) == 5


def test_a_tab_separated_catalogue_reads_like_its_csv(tmp_path):
    """A .tsv (or tab-separated .txt with a header) was read as the spectra text format."""
    csv_data = load_dataset(write(tmp_path, CATALOG, "cat.csv"))
    tsv = CATALOG.replace(",", "\t").replace("A\t", "src A\t")
    for name in ("cat.tsv", "cat.txt"):
        data = load_dataset(write(tmp_path, tsv, name))
        assert data.kind == "catalog" and data.feature_names == csv_data.feature_names
        np.testing.assert_array_equal(data.X, csv_data.X)
        assert data.ids.tolist()[:2] == ["src A", "B"]
    from latentlapse.xray.data.csv_tables import csv_chunks

    assert [len(t) for t in csv_chunks(tmp_path / "cat.tsv", 3)] == [3, 2]  # predict's streamed reader too


def test_tab_separated_spectra_stay_the_text_format(tmp_path):
    data = load_dataset(write(tmp_path, CLEAN.replace(" ", "\t")))
    assert data.kind == "spectra" and data.labels.tolist() == ["AGN", "", "YSO"]
    with_header = load_dataset(write(tmp_path, "src_id\tv1\tv2\tv3\tnet_counts\tlabel\n" + CLEAN.replace(" ", "\t"), "h.txt"))
    assert with_header.kind == "spectra" and len(with_header) == 3


def test_a_commented_header_is_read_as_the_header_with_a_note(tmp_path):
    """'#name,f1,...' was skipped as a comment and the first source taken for the header."""
    plain = load_dataset(write(tmp_path, CATALOG, "cat.csv"))
    data = load_dataset(write(tmp_path, "# from the archive\n#" + CATALOG, "hash.csv"))
    assert data.feature_names == plain.feature_names and data.ids.tolist() == plain.ids.tolist()
    np.testing.assert_array_equal(data.X, plain.X)
    assert "line 2 read as the column header, its '#' ignored: a commented header" in data.notes
    from latentlapse.xray.data.csv_tables import csv_chunks

    assert [len(t) for t in csv_chunks(tmp_path / "hash.csv", 10)] == [5]
    # a comment of as many fields before a real header stays a comment
    comment = "# written by, a, script, today, ok\n"
    assert load_dataset(write(tmp_path, comment + CATALOG, "c.csv")).ids.tolist() == plain.ids.tolist()


def test_votable_catalog(tmp_path):
    table_module = pytest.importorskip("astropy.table")
    table = table_module.Table(
        {"name": ["A", "B", "C"], "Fs": [1.0, np.nan, 3.0], "True_Class": ["AGN", " hm-star", "cv"]}
    )
    path = tmp_path / "cat.xml"
    table.write(path, format="votable")
    data = load_dataset(path, missing="median")
    assert data.kind == "catalog" and data.feature_names == ("Fs",)
    np.testing.assert_array_equal(data.X[:, 0], np.array([1, np.nan, 3], dtype=np.float32))
    assert data.labels.tolist() == ["AGN", "HM-STAR", "CV"]


def _fits_catalog(tmp_path, **extra):
    table_module = pytest.importorskip("astropy.table")
    columns = {"name": ["A", "B", "C"], "Fs": [1.0, 2.0, 3.0], "Fm": [4.0, 5.0, 6.0], "True_Class": ["AGN", "CV", "YSO"]}
    path = tmp_path / "cat.fits"
    table_module.Table({**columns, **extra}).write(path)
    return path


def test_a_catalogue_with_a_short_array_column_is_a_catalogue_with_the_array_left_out(tmp_path):
    """Any vector column made the table spectra ("add one named net_counts"), even with --features."""
    path = _fits_catalog(tmp_path, flux_aper=np.arange(6.0).reshape(3, 2))
    data = load_dataset(path)
    assert data.kind == "catalog" and data.feature_names == ("Fs", "Fm")
    assert dict(data.left_out)["flux_aper"] == "array column (2 values per row)"
    assert load_dataset(path, features=["Fs"]).feature_names == ("Fs",)
    with pytest.raises(InputError, match=r"cat\.fits: column flux_aper holds 2 values per row; a catalogue feature is one "
                                         r"value per row"):
        load_dataset(path, features=["Fs", "flux_aper"])


def test_a_vector_of_the_grid_s_bins_is_still_spectra_and_a_spectrum_named_vector_of_fifty(tmp_path):
    table_module = pytest.importorskip("astropy.table")
    rng = np.random.default_rng(0)
    for n_bins, name in ((380, "flux_aper"), (60, "SPECTRUM")):
        path = tmp_path / f"s{n_bins}.fits"
        table_module.Table({"src_id": ["A", "B"], name: rng.uniform(0.5, 1.0, (2, n_bins)),
                            "net_counts": [100.0, 200.0]}).write(path)
        assert load_dataset(path).kind == "spectra"


def test_long_vectors_beside_counts_and_380_plainly_named_columns_stay_spectra(tmp_path):
    """A 200-bin vector named flux beside net_counts, or ch1..ch380 beside counts, were spectra
    before the catalogue rule narrowed and became catalogues without a word."""
    table_module = pytest.importorskip("astropy.table")
    rng = np.random.default_rng(1)
    path = tmp_path / "flux200.fits"
    table_module.Table({"src_id": ["A", "B"], "flux": rng.uniform(0.5, 1.0, (2, 200)),
                        "net_counts": [100.0, 200.0]}).write(path)
    assert load_dataset(path).kind == "spectra"
    no_counts = tmp_path / "flux200_alone.fits"
    table_module.Table({"name": ["A", "B"], "flux": rng.uniform(0.5, 1.0, (2, 200)), "Fs": [1.0, 2.0],
                        "True_Class": ["AGN", "CV"]}).write(no_counts)
    data = load_dataset(no_counts)
    assert data.kind == "catalog" and "beside a net-counts column" in dict(data.left_out)["flux"]
    names = [f"ch{j}" for j in range(1, 381)]
    rows = [",".join([f"X{i}", *(f"{0.5 + i * 0.1:.2f}" for _ in names), "900", "AGN"]) for i in range(2)]
    wide = write(tmp_path, f"src_id,{','.join(names)},counts,label\n" + "\n".join(rows) + "\n", "ch.csv")
    assert load_dataset(wide).kind == "spectra"


def test_a_wide_catalogue_with_a_counts_column_is_a_catalogue(tmp_path):
    """A counts column beside 50 or more numeric columns made a catalogue spectra (then its empty
    cell was refused as a spectrum's)."""
    names = [f"f{j}" for j in range(55)]
    rows = [",".join(["X1", *("1.5" for _ in names), "", "12", "AGN"]), ",".join(["X2", *("2.5" for _ in names), "3", "40", "CV"])]
    path = write(tmp_path, f"name,{','.join(names)},P_inter,counts,True_Class\n" + "\n".join(rows) + "\n", "wide.csv")
    data = load_dataset(path)
    assert data.kind == "catalog" and "counts" in data.feature_names and "P_inter" in data.feature_names


def test_features_or_exclude_make_any_table_a_catalogue(tmp_path):
    path = write(tmp_path, SPECTRA_HEADER + "A,1,1,1,9,AGN\nB,1,2,1,9,CV\n", "spectra.csv")
    assert load_dataset(path).kind == "spectra"
    data = load_dataset(path, features=["v1", "v2"])
    assert data.kind == "catalog" and data.feature_names == ("v1", "v2")
    assert load_dataset(path, exclude=["v3"]).kind == "catalog"


# --- spectra tables --------------------------------------------------------------------------


SPECTRA_HEADER = "src_id," + ",".join(f"v{j}" for j in range(1, 4)) + ",net_counts,label\n"


def test_csv_spectra_with_nan_names_line_and_column(tmp_path):
    text = SPECTRA_HEADER + "A,1,1,1,9,AGN\nB,1,nan,1,9,CV\n"
    with pytest.raises(InputError, match=r"spectra\.csv: line 3 \(B\): spectrum contains NaN/inf at column 3 \(v2\)"):
        load_dataset(write(tmp_path, text, "spectra.csv"))


@pytest.mark.parametrize("row, message", [
    ("B,1,--,1,9,CV", r"line 3, column 3 \(v2\): '--' is not a number; spectra values must be numeric"),
    ("B,1,,1,9,CV", r"line 3, column 3 \(v2\): the cell is empty; spectra values must be numeric"),
    ("B,1,1,1,NA,CV", r"line 3, column 5 \(net_counts\): 'NA' is not a number; net counts must be numeric"),
])
def test_a_missing_value_token_in_a_csv_spectrum_is_named_as_the_text_it_is(tmp_path, row, message):
    with pytest.raises(InputError, match=r"spectra\.csv: " + message):
        load_dataset(write(tmp_path, SPECTRA_HEADER + "A,1,1,1,9,AGN\n" + row + "\n", "spectra.csv"))


def test_a_bin_column_missing_from_a_spectra_table_is_named(tmp_path):
    header = "src_id,v1,v2,v4,v5,net_counts\n"
    with pytest.raises(InputError, match=r"spectra\.csv: the bin columns v1 to v5 lack v3 \(1 of 5\); add the missing bin column$"):
        load_dataset(write(tmp_path, header + "A,1,1,1,1,9\n", "spectra.csv"))


def test_named_bin_columns_are_read_in_the_order_of_their_names(tmp_path):
    """A table is matched by its column names: the same table with its bin columns in another
    order gives the same spectra (it gave other predictions, read by position)."""
    in_order = load_dataset(write(tmp_path, "src_id,v1,v2,v3,net_counts\nA,0.1,0.3,0.6,9\n", "a.csv"))
    shuffled = load_dataset(write(tmp_path, "src_id,v3,v1,v2,net_counts\nA,0.6,0.1,0.3,9\n", "b.csv"))
    assert np.array_equal(shuffled.X, in_order.X) and np.allclose(in_order.X, [[0.1, 0.3, 0.6]])
    assert "the bin columns are read in the order of their names (v1 to v3), not in the file's order" in shuffled.notes
    assert not any("order of their names" in note for note in in_order.notes)


@pytest.mark.parametrize("renamed, message", [
    ({3: "flux"}, r"column 4 \(flux\) is not a bin name among bin columns named v1, v2, \.\.\., which lack v3 "
                  r"\(1 such column\); rename it to the bin it holds, or remove it"),
    ({2: "x", 4: "y"}, r"column 3 \(x\) is not a bin name .*, which lack v2 \(2 such columns\)"),
])
def test_a_column_of_another_name_among_named_bins_is_refused(tmp_path, renamed, message):
    """A renamed bin column was read in its place without a word (a table of 50 or more bins)."""
    names = [renamed.get(j, f"v{j}") for j in range(1, 61)]
    text = f"src_id,{','.join(names)},net_counts\nA,{','.join(['0.2'] * 60)},9\n"
    with pytest.raises(InputError, match=r"spectra\.csv: " + message):
        load_dataset(write(tmp_path, text, "spectra.csv"))


def test_a_bin_column_missing_from_the_standard_grid_is_named(tmp_path, make_spectra):
    from latentlapse.xray.data.writers import write_dataset

    path = tmp_path / "full.csv"
    write_dataset(path, make_spectra(["AGN", "YSO"]))
    lines = [line.split(",") for line in path.read_text().splitlines()]
    damaged = tmp_path / "damaged.csv"
    damaged.write_text("\n".join(",".join(fields[:20] + fields[21:]) for fields in lines) + "\n")
    with pytest.raises(InputError, match=r"damaged\.csv: the bin columns E0\.5125 to E9\.9875 lack E0\.9875 \(1 of 380\)"):
        load_dataset(damaged)


def test_fits_table_with_a_vector_column(tmp_path, make_spectra):
    table_module = pytest.importorskip("astropy.table")
    data = make_spectra(["AGN", "", "CV"])
    table = table_module.Table({"src_id": data.ids, "SPECTRUM": data.X, "NET_COUNTS": data.counts, "CLASS": data.labels})
    path = tmp_path / "spectra.fits"
    table.write(path)
    back = load_dataset(path)
    assert back.kind == "spectra"
    np.testing.assert_array_equal(back.X, data.X)
    assert back.labels.tolist() == ["AGN", "", "CV"] and back.ids.tolist() == data.ids.tolist()


def test_a_fits_file_with_several_tables_is_read_from_the_largest(tmp_path, make_spectra, caplog):
    fits = pytest.importorskip("astropy.io.fits")
    table_module = pytest.importorskip("astropy.table")
    data = make_spectra(["AGN", "CV", "YSO"])
    info = fits.table_to_hdu(table_module.Table({"key": ["a", "b"], "value": [1.0, 2.0]}))
    info.name = "INFO"
    sources = fits.table_to_hdu(table_module.Table({"src_id": data.ids, "SPECTRUM": data.X, "NET_COUNTS": data.counts,
                                                   "CLASS": data.labels}))
    sources.name = "SOURCES"
    path = tmp_path / "two.fits"
    fits.HDUList([fits.PrimaryHDU(), info, sources]).writeto(path)
    with caplog.at_level("INFO", logger="latentlapse"):
        back = load_dataset(path)
    assert back.kind == "spectra" and back.labels.tolist() == ["AGN", "CV", "YSO"]
    assert "reading the table SOURCES (3 rows), the largest; the file also has INFO (2 rows)" in caplog.text


def test_a_cut_short_fits_file_is_named_as_such(tmp_path, make_spectra):
    table_module = pytest.importorskip("astropy.table")
    data = make_spectra(["AGN", "CV", "YSO"] * 40)
    path = tmp_path / "cut.fits"
    table_module.Table({"src_id": data.ids, "SPECTRUM": data.X, "NET_COUNTS": data.counts, "CLASS": data.labels}).write(path)
    path.write_bytes(path.read_bytes()[:path.stat().st_size * 2 // 3])
    with pytest.raises(InputError, match=r"cut\.fits: the file ends after \d+ bytes, but its table .* needs \d+: it was "
                                         r"cut short \(an interrupted copy or download\?\); copy it again"):
        load_dataset(path)
    from latentlapse.xray.data.chunks import iter_chunks

    with pytest.raises(InputError, match="it was cut short"):  # predict's streamed reader says the same
        list(iter_chunks(path))


def test_ecsv_with_wide_columns(tmp_path, make_spectra):
    table_module = pytest.importorskip("astropy.table")
    data = make_spectra(["YSO", "AGN"])
    columns = {"src_id": data.ids, **{name: data.X[:, j] for j, name in enumerate(data.feature_names)}}
    table = table_module.Table({**columns, "net_counts": data.counts, "label": data.labels})
    path = tmp_path / "spectra.ecsv"
    table.write(path)
    back = load_dataset(path)
    assert back.kind == "spectra" and back.feature_names == data.feature_names
    np.testing.assert_array_equal(back.X, data.X)
    np.testing.assert_array_equal(back.counts, data.counts)


def test_missing_astropy_names_the_extra(tmp_path, make_spectra, monkeypatch):
    path = tmp_path / "spectra.ecsv"
    path.write_text("# %ECSV 1.0\n")
    monkeypatch.setitem(sys.modules, "astropy.io", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'latentlapse\[fits\]'"):
        load_dataset(path)


# --- OGIP PHA --------------------------------------------------------------------------------


def test_rebin_shares_a_channel_by_energy_overlap():
    counts = np.array([10.0, 4.0, 8.0])
    e_min, e_max = np.array([0.49, 0.52, 9.99]), np.array([0.51, 0.53, 10.01])
    result = rebin(counts, e_min, e_max)
    assert result[0] == pytest.approx(5.0 + 2.0) and result[1] == pytest.approx(2.0)
    assert result[-1] == pytest.approx(4.0) and result.sum() == pytest.approx(13.0)


@pytest.fixture
def pha_pair(tmp_path, make_pha):
    """A source (src.pha) with background (bkg.pha) and RMF, and its expected net counts per channel."""
    rng = np.random.default_rng(3)
    source, background = rng.poisson(20, 2000), rng.poisson(40, 2000)
    make_pha(tmp_path / "bkg.pha", background, EXPOSURE=2000.0, BACKSCAL=4.0)
    make_pha.rmf(tmp_path / "src.rmf")
    keys = dict(EXPOSURE=1000.0, BACKSCAL=1.0, BACKFILE="bkg.pha", RESPFILE="src.rmf", OBJECT="NGC 1")
    make_pha(tmp_path / "src.pha", source, **keys)
    # scale = (1 / 4) * (1000 / 2000)
    return tmp_path / "src.pha", source - 0.125 * background, keys, source


def test_pha_net_spectrum_on_the_grid(pha_pair):
    path, net, _, _ = pha_pair
    data = load_dataset(path)
    expected = net[100:2000].reshape(grid.N_BINS, 5).sum(axis=1)
    assert data.X.shape == (1, grid.N_BINS) and data.ids.tolist() == ["NGC 1"]
    assert data.counts[0] == pytest.approx(expected.sum(), rel=1e-9)
    np.testing.assert_allclose(data.X[0], expected / expected.sum(), rtol=1e-5)
    assert data.labels.tolist() == [""]


def test_pha_missing_background_file(tmp_path, make_pha):
    path = make_pha(tmp_path / "src.pha", np.ones(2000, int), BACKFILE="gone.fits")
    expected = r"src\.pha: background file 'gone\.fits' named by BACKFILE not found next to it \(.*gone\.fits\); put it there or set BACKFILE"
    with pytest.raises(InputError, match=expected):
        load_dataset(path)


def test_pha_quality_flags_exclude_channels(pha_pair, make_pha):
    path, net, keys, source = pha_pair
    quality = np.zeros(2000, int)
    quality[100:105] = 1  # the whole first grid bin
    make_pha(path.parent / "flagged.pha", source, quality=quality, **keys)
    data = load_dataset(path.parent / "flagged.pha")
    assert data.X[0, 0] == 0.0
    expected = net[105:2000].sum()
    assert data.counts[0] == pytest.approx(expected, rel=1e-9)
    assert any("QUALITY flags: 5 channels excluded (5 of them in 0.5-10 keV)" in note for note in data.notes)


def test_pha_gzip_ftz_reads_like_plain(pha_pair, make_pha):
    path, _, keys, source = pha_pair
    make_pha(path.parent / "src.FTZ", source, gzip=True, **keys)
    np.testing.assert_array_equal(load_dataset(path.parent / "src.FTZ").X, load_dataset(path).X)


def test_pha_label_from_class_keyword(pha_pair, make_pha):
    path, _, keys, source = pha_pair
    make_pha(path.parent / "cv.pha", source, **{**keys, "CLASS": "cv"})
    assert load_dataset(path.parent / "cv.pha").labels.tolist() == ["CV"]


def test_pha_without_response_uses_the_pn_channel_width(tmp_path, make_pha):
    counts = np.zeros(2000, int)
    counts[100:105] = 7
    path = make_pha(tmp_path / "src.pha", counts)
    data = load_dataset(path)
    assert data.X[0, 0] == pytest.approx(1.0) and data.counts[0] == pytest.approx(35.0)
    assert any("no RESPFILE" in note for note in data.notes)


def test_pha_name_on_a_text_file(tmp_path):
    with pytest.raises(InputError, match=r"src\.pha: the name says FITS but the file does not start like one"):
        load_dataset(write(tmp_path, CLEAN, "src.pha"))


def test_folder_without_pha_files(tmp_path):
    write(tmp_path, CLEAN, "notes.txt")
    with pytest.raises(InputError, match=r": no PHA source spectra in this folder .*; pass a folder of spectra or a single file"):
        load_dataset(tmp_path)


def test_folder_of_pha_files_skips_backgrounds_and_responses(pha_pair, make_pha):
    path, _, keys, source = pha_pair
    make_pha(path.parent / "another.pha", source[::-1].copy(), **{**keys, "OBJECT": "NGC 2"})
    data = load_dataset(path.parent)
    assert data.ids.tolist() == ["NGC 2", "NGC 1"]  # sorted by file name: another.pha, src.pha
    assert data.X.shape == (2, grid.N_BINS)


# --- the real files in ../shared (skipped where absent) ---------------------------------------


def test_real_pn_spectrum(shared_data):
    data = load_dataset(shared_data / "xmm_pn_example" / "PN.pha")
    assert data.X.shape == (1, grid.N_BINS)
    assert data.counts[0] == pytest.approx(9850, rel=0.03)
    assert float(data.X.sum()) == pytest.approx(1.0, abs=1e-5)


def test_real_pn_folder_reads_the_source_only(shared_data):
    data = load_dataset(shared_data / "xmm_pn_example")
    assert len(data) == 1 and data.counts[0] == pytest.approx(9850, rel=0.03)


def test_real_catalog(shared_data):
    data = load_dataset(shared_data / "catalogs" / "muwclass_cscv2_td_2022.csv")
    assert data.kind == "catalog" and len(data) == 2941 and not np.isinf(data.X).any()
    assert not {"CSCv2_RA", "CSCv2_DEC", "CSCv2_PU", "CSCv2_S/N"} & set(data.feature_names)
    expected = {"AGN": 1390, "YSO": 1004, "LM-STAR": 207, "HM-STAR": 118, "NS": 87, "LMXB": 65, "CV": 44, "HMXB": 26}
    assert data.label_counts() == dict(sorted(expected.items()))
    assert "e_Fs" not in data.feature_names and "CSCv2_name" not in data.feature_names


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_a_latin1_byte_is_named_by_the_line_an_editor_shows(tmp_path, ending):
    from latentlapse.xray.data import encoding

    rows = [f"S{i},{i * 0.5},AGN" for i in range(1, 3000)]
    for line_no in (17, 2000):  # inside the sniffed head, and far past the readers' decoding blocks
        lines = ["name,f1,label", *rows]
        lines[line_no - 1] = lines[line_no - 1].replace("AGN", "Caf\u00e9")
        path = tmp_path / f"cat_{line_no}.csv"
        path.write_bytes(ending.join(lines).encode("latin-1"))
        with pytest.raises(InputError, match=rf"cat_{line_no}\.csv: line {line_no} is not UTF-8 text \(byte 0xe9 at "
                                             rf"offset \d+: saved as Latin-1 or Windows-1252\?\); save the file as UTF-8"):
            load_dataset(path)
        assert encoding.first_non_utf8(path)[0] == line_no
    assert encoding.first_non_utf8(write(tmp_path, "caf\u00e9\n" * 40000, "ok.txt")) is None  # UTF-8 across blocks


def test_a_latin1_byte_in_a_spectra_text_file_is_named_by_its_line(tmp_path):
    row = " ".join(["0.01"] * 100)
    lines = [f"S{i} {row} 120 AGN" for i in range(1, 200)]
    lines[149] = lines[149].replace("AGN", "Caf\u00e9")  # line 150, past the first decoding blocks
    path = tmp_path / "spectra.txt"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(InputError, match=r"spectra\.txt: line 150 is not UTF-8 text \(byte 0xe9"):
        load_dataset(path)


def test_votable_columns_keep_their_names(tmp_path):
    table_module = pytest.importorskip("astropy.table")
    rows = 12
    table = table_module.Table({"name": [f"S{i}" for i in range(rows)], "Fs": np.linspace(1e-14, 2e-14, rows),
                                "CSC_S/N": np.linspace(2, 30, rows), "True_Class": ["AGN", "YSO"] * (rows // 2)})
    path = tmp_path / "cat.vot"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy notes that the column's XML ID is made from its name
        table.write(path, format="votable")
    data = load_dataset(path)
    assert data.feature_names == ("Fs",)  # "CSC_S/N" read by its name: a detection significance, left out
