"""snnlab.formatting.first_line: the part of an exception a one-line message quotes."""

from snnlab.formatting import first_line


def test_first_line_is_the_first_line_of_text_or_the_type():
    assert (
        first_line(RuntimeError("Error(s) in loading state_dict:\n\tMissing key(s)"))
        == "Error(s) in loading state_dict:"
    )
    assert first_line(OSError("\n  no such file\nmore")) == "no such file"
    assert first_line(ValueError()) == "ValueError"
    assert first_line(EOFError("  \n ")) == "EOFError"
