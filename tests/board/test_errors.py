from dyndnn.board.errors import BoardPermissionError
from dyndnn.errors import DyndnnError


def test_permission_error_says_what_and_how():
    e = BoardPermissionError("/sys/x", "write", "run as root")
    assert isinstance(e, PermissionError) and isinstance(e, DyndnnError)
    assert "cannot write /sys/x" in str(e) and "run as root" in str(e)
