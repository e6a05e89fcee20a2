"""TensorFlow's native log lines are dropped from stored chapters; everything else on stderr stays."""

import bookbuild.run


def test_native_log_lines_are_dropped_and_other_stderr_kept():
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stderr", "text":
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795817621.144848   19065 port.cc:153] oneDNN custom operations are on.\n"
            "E0000 00:00:1795817636.256091   19065 cuda_platform.cc:52] failed call to cuInit\n"
            "UserWarning: something the reader should see\n"},
        {"output_type": "stream", "name": "stderr", "text": "I0000 00:00:1.5   7 cudart_stub.cc:31] no GPU\n"},
        {"output_type": "stream", "name": "stdout", "text": "I0000 00:00:1.5   7 x.cc:1] stdout is left alone\n"},
    ]}]}
    bookbuild.run._drop_native_log_lines(nb)
    outputs = nb["cells"][0]["outputs"]
    assert len(outputs) == 2  # the all-log stderr output disappears entirely
    assert outputs[0]["text"] == "UserWarning: something the reader should see\n"
    assert outputs[1]["name"] == "stdout"
