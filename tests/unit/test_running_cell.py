"""The running-cell file: what the worker writes before user code, the supervisor reads."""

from kernelsvc.supervisor.running_cell import RunningCellWriter, running_cell_count


def test_the_supervisor_reads_the_number_of_that_cell_only(tmp_path):
    writer = RunningCellWriter(str(tmp_path))
    assert running_cell_count(tmp_path, "m1") is None  # nothing written yet
    writer.note("a-long-message-id-0001", 12)
    assert running_cell_count(tmp_path, "a-long-message-id-0001") == 12
    assert running_cell_count(tmp_path, "another-request") is None
    writer.note("m2", 13)  # rewritten in place: no tail of the longer record remains
    assert running_cell_count(tmp_path, "m2") == 13
    assert running_cell_count(tmp_path, "a-long-message-id-0001") is None


def test_no_file_no_number(tmp_path):
    assert running_cell_count(tmp_path / "missing", "m1") is None
