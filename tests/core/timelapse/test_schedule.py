from latentlapse.core.timelapse.schedule import epoch_width, frame_name, should_visualize, visualized_epochs


def test_guide_run_of_150_epochs_every_10():
    assert visualized_epochs(150, 10) == [1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100, 110, 120, 130, 140, 150]


def test_issue_example_12_epochs_every_5():
    assert visualized_epochs(12, 5) == [1, 5, 10, 12]


def test_runs_shorter_than_five_epochs():
    assert visualized_epochs(1, 10) == [1]
    assert visualized_epochs(3, 10) == [1, 3]
    assert visualized_epochs(4, 2) == [1, 2, 4]


def test_long_run_keeps_milestones_and_last():
    epochs = visualized_epochs(1234, 250)
    assert epochs == [1, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 1234]


def test_out_of_range_epochs_are_not_visualized():
    assert not should_visualize(0, 10, 5)
    assert not should_visualize(11, 10, 5)
    assert should_visualize(7, 7, 5)


def test_guide_keyword_name_is_accepted():
    assert should_visualize(20, 100, visualize_every=20)
    assert not should_visualize(21, 100, visualize_every=20)


def test_frame_names_are_padded_so_they_sort():
    assert frame_name(1, 150, 0.52341) == "epoch_001_acc0.5234.png"
    assert epoch_width(999) == 3
    assert epoch_width(1000) == 4
    names = [frame_name(e, 1200, 0.5) for e in (1, 5, 999, 1000, 1200)]
    assert names == sorted(names)
    assert names[0] == "epoch_0001_acc0.5000.png"
